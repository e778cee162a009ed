/**
 * Managing a running simulation over its control socket, as `xsim run --serve`
 * and `xsim mgmtdev|dev|plugin` do: real workers, a real Unix socket, and a
 * plugin swapped while a stream runs.
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, controlRequest, defaultTopology, guestStats, serveControl, type ControlServer, type DomainRef } from '@xsim/toolstack';
import { manageCommand } from '@xsim/cli';
import { readPcapng } from '@xsim/hypervisor';
import { conservedStream, type Json } from './helpers.ts';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };
let sim: Simulation;
let server: ControlServer;
let socket: string;

beforeAll(async () => {
  sim = await Simulation.start(defaultTopology());
  socket = join(mkdtempSync(join(tmpdir(), 'xsim-')), 'ctl.sock');
  server = await serveControl(sim, socket);
});
afterAll(async () => {
  await server?.close();
  await sim?.shutdown();
});

const cli = (object: string, ...argv: string[]) => manageCommand(object, [...argv, '--socket', socket]);

describe('the control socket', () => {
  it('lists the NICs and vifs, with their features and counters', async () => {
    // vdpa's JSON: keyed by object type, then by name; snake_case; states by name and number.
    const nics = (JSON.parse(await cli('mgmtdev', 'list', '-j')) as { mgmtdev: Record<string, Json> }).mgmtdev;
    expect(Object.values(nics).map((n) => [n.host, n.alias, n.link, n.max_vis])).toEqual([
      ['host-a', 'nic:1924-0803', 'up', 64],
      ['host-b', 'nic:1924-0803', 'up', 64],
    ]);
    const devs = (JSON.parse(await cli('dev', 'list', '-j')) as { dev: Record<string, Json> }).dev;
    expect(Object.keys(devs)).toEqual(['host-a/a1/vif0', 'host-a/a2/vif0', 'host-b/b1/vif0', 'host-b/b2/vif0']);
    expect(Object.values(devs).every((d) => d.state === 'Connected' && d.state_num === 4 && d.backend_state === 'Connected' && d.accel === null)).toBe(true);
    // What netfront published for its handshake, read back from xenstore as xl network-list shows it.
    const a1v = devs['host-a/a1/vif0'];
    expect(a1v).toMatchObject({ domid: 1, handle: 0, backend_id: 0, backend_path: '/local/domain/0/backend/vif/1/0' });
    expect([a1v.event_channel, a1v.tx_ring_ref, a1v.rx_ring_ref].every((x) => Number.isInteger(x) && (x as number) > 0)).toBe(true);
    expect(await cli('dev', 'list')).toMatch(/^dev +domid +Idx +BE +mac +ip +state +BE state +evt-ch +tx-\/rx-ring-ref +BE-path +accel$/m);
    expect(await cli('dev', 'show', 'host-a/a1')).toMatch(
      // evt-ch: the TX/RX ports (split event channels).
      /host-a\/a1\/vif0 +1 +0 +0 +00:16:3e:\S+ +\S+ +4 Connected +4 Connected +\d+\/\d+ +\d+\/\d+ +\/local\/domain\/0\/backend\/vif\/1\/0 +-/,
    );
    const f = JSON.parse(await cli('dev', 'features', 'show', 'host-a/a1', '-j')) as { frontend: Json; backend: Json };
    expect(f.frontend['feature-sg']).toBe('1');
    expect(f.backend['feature-rx-copy']).toBe('1');
    const text = await cli('dev', 'stats', 'show', 'host-a/a1/vif0');
    expect(text).toMatch(/^host-a\/a1\/vif0\n/);
    expect(text).toMatch(/netfront +txPackets/);
    expect(text).toMatch(/netback +rxPackets/);
  });

  it('loads, lists and unloads a plugin while a stream runs; every frame delivered or counted', async () => {
    const { r } = await conservedStream(sim, { from: a1, to: b1, count: 40_000, frameSize: 1500, window: 256, srcPort: 44000 }, async () => {
      expect(await cli('plugin', 'load', 'vnic')).toBe('plugin vnic loaded on every host');
      await sim.waitFor('vnic attached to a1', async () => guestStats(await sim.stats(), a1).vifs[0].accel?.current?.ready === true);
      const list = JSON.parse(await cli('plugin', 'list', '-j')) as Json[];
      expect(list).toEqual([
        { host: 'host-a', name: 'vnic', version: '1.0.0', vifs: 2, unloading: false },
        { host: 'host-b', name: 'vnic', version: '1.0.0', vifs: 2, unloading: false },
      ]);
      expect((JSON.parse(await cli('dev', 'show', 'host-a/a1', '-j')) as { dev: Record<string, Json> }).dev['host-a/a1/vif0'].accel).toBe('vnic');
      expect(await cli('plugin', 'unload', 'vnic', '--host', 'host-a')).toBe('plugin vnic unloaded on host-a');
      await cli('plugin', 'unload', 'vnic', '--host', 'host-b');
    });
    expect(r.delivered).toBeGreaterThan(0);
    expect(await cli('plugin', 'list')).toBe('no plugins loaded');
  });

  it('creates, lists, shuts down and destroys domains (xl create/list/shutdown/destroy)', async () => {
    const made = await cli('domain', 'create', 'host-b', 'web', '--mac', '00:16:3e:0b:99:01', '--ip', '10.0.11.99');
    expect(made).toMatch(/^host-b\/web created: domain 3 on pCPU \d+, \d+ pages, vif0 00:16:3e:0b:99:01 10\.0\.11\.99 connected$/);
    const list = JSON.parse(await cli('domain', 'list', '-j')) as Json[];
    expect(list.map((d) => `${d.host}/${d.name}:${d.domid}:${d.state}`)).toEqual([
      'host-a/Domain-0:0:running',
      'host-a/a1:1:running',
      'host-a/a2:2:running',
      'host-b/Domain-0:0:running',
      'host-b/b1:1:running',
      'host-b/b2:2:running',
      'host-b/web:3:running',
    ]);
    expect(await cli('domain', 'list')).toMatch(/host-b +web +3 +running/);
    // The new guest streams at once, and shows up as a device like the others.
    const { r } = await conservedStream(sim, { from: a1, to: { host: 'host-b', domain: 'web' }, count: 3000, frameSize: 1000, window: 256 });
    expect(r.delivered).toBe(3000);
    expect((JSON.parse(await cli('dev', 'show', 'host-b/web', '-j')) as { dev: Record<string, Json> }).dev['host-b/web/vif0']).toMatchObject({
      state: 'Connected',
      backend_state_num: 4,
    });
    expect(await cli('domain', 'shutdown', 'host-b/web')).toMatch(/^host-b\/web \(domain 3\) shut down in \d+ ms: 1 vif\(s\) removed/);
    await cli('domain', 'create', 'host-b', 'tmp');
    const gone = JSON.parse(await cli('domain', 'destroy', 'host-b/tmp', '-j')) as Json;
    expect(gone).toMatchObject({ host: 'host-b', name: 'tmp', domid: 4, how: 'destroy', vifsRemoved: 1 });
    expect((JSON.parse(await cli('domain', 'list', '-j')) as Json[]).length).toBe(6);
    await expect(cli('domain', 'destroy', 'web')).rejects.toThrow(/usage: xsim domain destroy HOST\/NAME/);
    await expect(cli('domain', 'create', 'host-b')).rejects.toThrow(/usage: xsim domain create HOST NAME/);
    await expect(cli('domain', 'create', 'host-b', 'x', '--mem', 'lots')).rejects.toThrow(/--mem/);
    await expect(cli('domain', 'frob')).rejects.toThrow(/unknown command "xsim domain frob"/);
  });

  it('captures while a stream runs (xsim capture start|stop), and refuses what it cannot do by name', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'xsim-cap-')), 'ab.pcapng');
    expect(await cli('capture', 'list')).toMatch(/^host-a\/a1\/vif0$/m);
    expect(await cli('capture', 'start', 'host-a/a1,host-b/vif1.0', '--file', file)).toMatch(/capturing at 2 tap point\(s\)/);
    await expect(cli('capture', 'start', 'host-a', '--file', file)).rejects.toThrow(/already capturing into .*ab\.pcapng/);
    const { r } = await conservedStream(sim, { from: a1, to: b1, count: 400, frameSize: 700, window: 64 });
    const stop = JSON.parse(await cli('capture', 'stop', '-j')) as { interfaces: { name: string; packets: number }[] };
    const f = readPcapng(readFileSync(file));
    expect(f.interfaces.map((i) => i.name).sort()).toEqual(['host-a/a1/vif0', 'host-b/vif1.0']);
    // The sender's side saw every frame it sent (and the credits that came back).
    expect(f.packets.filter((p) => p.ifId === f.interfaces.findIndex((i) => i.name === 'host-a/a1/vif0')).length).toBeGreaterThanOrEqual(r.sent);
    expect(stop.interfaces.reduce((n, i) => n + i.packets, 0)).toBe(f.packets.length);
    await expect(cli('capture', 'stop')).rejects.toThrow(/not capturing/);
    await expect(cli('capture', 'start', 'host-z/*')).rejects.toThrow(/no tap point matches "host-z\/\*" \(tap points: /);
  });

  it("sets a NIC's link, MTU and resets it (mgmtdev set), naming what exists when it cannot", async () => {
    expect(await cli('mgmtdev', 'set', 'host-a', 'link', 'down')).toMatch(/^\S+ \(host-a\): link down$/);
    const down = (JSON.parse(await cli('mgmtdev', 'show', 'host-a', '-j')) as { mgmtdev: Record<string, Json> }).mgmtdev;
    expect(Object.values(down)[0].link).toBe('down');
    expect(await cli('mgmtdev', 'set', 'host-a', 'link', 'up')).toMatch(/link up$/);
    expect(JSON.parse(await cli('mgmtdev', 'set', 'host-a', 'mtu', '1400', '-j'))).toMatchObject({ host: 'host-a', done: 'mtu 1400', result: { mtu: 1400 } });
    expect(Object.values((JSON.parse(await cli('mgmtdev', 'show', 'host-a', '-j')) as { mgmtdev: Record<string, Json> }).mgmtdev)[0].mtu).toBe(1400);
    await cli('mgmtdev', 'set', 'host-a', 'mtu', '1500');
    expect(await cli('mgmtdev', 'set', 'host-a', 'reset')).toMatch(/: reset$/);
    // After the reset the link and the path still carry a stream.
    const { r } = await conservedStream(sim, { from: a1, to: b1, count: 500, frameSize: 600, window: 64 });
    expect(r.delivered).toBe(500);
    await expect(cli('mgmtdev', 'set', 'host-q', 'link', 'up')).rejects.toThrow(/no management device "host-q" \(have: .*\(host-a\), .*\(host-b\)\)/);
    await expect(cli('mgmtdev', 'set', 'host-a', 'link', 'sideways')).rejects.toThrow(/link is "up" or "down", got "sideways"/);
    await expect(cli('mgmtdev', 'set', 'host-a', 'mtu', 'big')).rejects.toThrow(/mtu needs a number, got "big"/);
    await expect(cli('mgmtdev', 'set', 'host-a', 'mtu', '4000')).rejects.toThrow(/refused MTU 4000/);
    await expect(cli('mgmtdev', 'set', 'host-a', 'speed', '10')).rejects.toThrow(/unknown attribute "speed" \(attributes: link, mtu, reset\)/);
    await expect(cli('mgmtdev', 'set', 'host-a')).rejects.toThrow(/usage: xsim mgmtdev set DEV/);
  });

  it("sets a vif's rate at run time (dev set DEV rate, xl's syntax), which netback applies, and lifts it", async () => {
    expect(await cli('dev', 'set', 'host-a/a1', 'rate', '10Mb/s@20ms')).toBe(
      'host-a/a1/vif0: rate 10Mb/s@20ms: 25000 bytes every 20000 us (10.0 Mbit/s) (/local/domain/0/backend/vif/1/0/rate)',
    );
    expect(sim.host('host-a').xenstore.read(0, '/local/domain/0/backend/vif/1/0/rate')).toBe('25000,20000');
    const stats = JSON.parse(await cli('dev', 'stats', 'show', 'host-a/a1', '-j')) as { backend: Json };
    expect(stats.backend.rate).toBe('25000,20000');
    expect(JSON.parse(await cli('dev', 'set', 'host-a/a1', 'rate', 'unlimited', '-j'))).toMatchObject({ dev: 'host-a/a1/vif0', rate: null });
    await expect(cli('dev', 'set', 'host-a/a1', 'rate', '10Mbit')).rejects.toThrow(/invalid rate in `10Mbit'/);
    await expect(cli('dev', 'set', 'host-a/a1', 'rate')).rejects.toThrow(/rate needs a value/);
    expect(sim.host('host-a').xenstore.read(0, '/local/domain/0/backend/vif/1/0/rate')).toBeUndefined();
  });

  it("switches a vif's offloads at run time (dev set DEV csum|gso on|off, as ethtool -K): the vif reconnects with the new keys", async () => {
    const fe = '/local/domain/2/device/vif/0';
    const xs = sim.host('host-b').xenstore;
    expect(await cli('dev', 'set', 'host-b/b2', 'csum', 'off', 'gso', 'off')).toBe(
      'host-b/b2/vif0: csum off, gso off (the vif reconnects: feature-no-csum-offload, feature-gso-tcpv4)',
    );
    await sim.waitFor(
      'b2 connected with the offloads off',
      async () => xs.read(0, `${fe}/state`) === '4' && xs.read(0, `${fe}/feature-no-csum-offload`) === '1',
    );
    expect(xs.read(0, `${fe}/feature-gso-tcpv4`)).toBe('0');
    expect(JSON.parse(await cli('dev', 'set', 'host-b/b2', 'csum', 'off', '-j'))).toMatchObject({ offloads: { csum: false, gso: false, changed: false } });
    expect(await cli('dev', 'set', 'host-b/b2', 'csum', 'on', 'gso', 'on')).toMatch(/csum on, gso on \(the vif reconnects/);
    await sim.waitFor(
      'b2 connected with the offloads on',
      async () => xs.read(0, `${fe}/state`) === '4' && xs.read(0, `${fe}/feature-no-csum-offload`) === undefined,
    );
    expect(xs.read(0, `${fe}/feature-gso-tcpv4`)).toBe('1');
    await expect(cli('dev', 'set', 'host-b/b2', 'csum', 'maybe')).rejects.toThrow(/csum needs on or off, got "maybe"/);
  });

  it('traces while a stream runs (xsim trace start|stop), and refuses what it cannot do by name', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'xsim-tr-')), 't.json');
    expect(await cli('trace', 'start', '--file', file, '--sample', '32')).toBe(`tracing every thread into ${file}`);
    await expect(cli('trace', 'start', '--file', file)).rejects.toThrow(/already tracing into .*t\.json/);
    await conservedStream(sim, { from: a1, to: b1, count: 640, frameSize: 700, window: 64 });
    const s = JSON.parse(await cli('trace', 'stop', '-j')) as { events: number; frames: number };
    expect(s.frames).toBeGreaterThanOrEqual(20);
    expect((JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: unknown[] }).traceEvents.length).toBe(s.events);
    await expect(cli('trace', 'stop')).rejects.toThrow(/not tracing/);
    await expect(cli('trace', 'start', '--file', '/nonexistent-dir/t.json')).rejects.toThrow(/trace: cannot write \/nonexistent-dir\/t\.json/);
    await expect(cli('trace', 'start', '--sample', '0')).rejects.toThrow(/--sample must be an integer from 1/);
  });

  it('answers bad requests with clear errors', async () => {
    await expect(cli('dev', 'add')).rejects.toThrow(/usage: xsim dev add HOST\/DOMU/);
    await expect(cli('dev', 'add', 'host-a/a1', 'colour', 'red')).rejects.toThrow(/unknown attribute "colour"/);
    await expect(cli('dev', 'stats', 'show', 'host-a/zz')).rejects.toThrow(/zz/);
    await expect(cli('plugin', 'load', 'nonesuch')).rejects.toThrow(/no plugin "nonesuch"/);
    await expect(controlRequest(socket, 'frobnicate')).rejects.toThrow(/unknown operation "frobnicate"/);
    await expect(controlRequest(join(tmpdir(), 'no-such-xsim.sock'), 'dev.list')).rejects.toThrow(/no simulation is serving/);
    await expect(serveControl(sim, socket)).rejects.toThrow(/another simulation is serving there/);
    expect(statSync(socket).mode & 0o777, 'only the owner may drive the simulation').toBe(0o600);
  });
});
