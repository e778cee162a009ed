/**
 * Bad input from the user and the toolstack gets a clear answer, never a
 * crash, a hang or a deleted file: the control socket's path and ops, device
 * names, plugins with bad manifests, bad arguments or top-level code that
 * never settles or never stops, and a domain whose code never yields.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XenbusState } from '@xsim/hypervisor';
import { Simulation, controlRequest, defaultTopology, dom0Stats, guestStats, serveControl, type ControlServer } from '@xsim/toolstack';
import { manageCommand } from '@xsim/cli';
import type { Json } from './helpers.ts';

const HOSTILE = new URL('./fixtures/hostile-guest.ts', import.meta.url).href;
const fixture = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'xsim-inputs-'));

let sim: Simulation;
let server: ControlServer;
const socket = join(dir, 'ctl.sock');
const cli = (object: string, ...argv: string[]) => manageCommand(object, [...argv, '--socket', socket]);

/**
 * The hostile b2 (whose code may never yield) shares pCPU 2 with a2 alone; every other
 * guest runs in a cpupool on pCPU 1 and the dom0s on pCPU 0. A pCPU runs its vCPUs
 * cooperatively, so a vCPU that never yields holds its whole pCPU: what a hang can
 * reach is decided by placement.
 */
function placedTopology() {
  const t = defaultTopology();
  t.cpupools = { guests: [1] };
  for (const h of t.hosts) for (const d of h.domUs) d.cpupool = 'guests';
  const [, a2] = t.hosts[0].domUs;
  const [, b2] = t.hosts[1].domUs;
  for (const d of [a2, b2]) {
    delete d.cpupool;
    d.pcpu = 2;
  }
  return t;
}

beforeAll(async () => {
  sim = await Simulation.start(placedTopology(), { pcpus: 3, kernels: { 'host-b/b2': HOSTILE }, answerMs: 1500, pluginVetMs: 10_000 });
  server = await serveControl(sim, socket);
});
afterAll(async () => {
  await server?.close();
  await sim?.shutdown();
});

describe('the control socket', () => {
  it('never deletes a file that is not a stale socket', async () => {
    const file = join(dir, 'notes.json');
    writeFileSync(file, '{"precious": true}');
    await expect(serveControl(sim, file)).rejects.toThrow(/exists and is not a socket \(it is a regular file\); refusing to replace it/);
    expect(readFileSync(file, 'utf8')).toBe('{"precious": true}');
    await expect(serveControl(sim, dir)).rejects.toThrow(/it is a directory/);
  });

  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])(
    'knows only its own declared ops: "%s" is unknown, and the answer lists what exists',
    async (op) => {
      await expect(controlRequest(socket, op)).rejects.toThrow(
        new RegExp(`unknown operation "${op.replace(/_/g, '_')}" \\(known: .*dev\\.list.*plugin\\.load`),
      );
    },
  );

  it('refuses arguments that are not an object', async () => {
    await expect(controlRequest(socket, 'dev.list', [1, 2] as unknown as Record<string, unknown>)).rejects.toThrow(/arguments must be an object/);
  });

  it('answers a device that is dom0, or does not exist, with what does', async () => {
    await expect(cli('dev', 'stats', 'show', 'host-a/dom0')).rejects.toThrow(
      /host-a\/dom0 is dom0: it has no vif of its own .* guests: host-a\/a1, host-a\/a2, host-b\/b1, host-b\/b2/,
    );
    await expect(cli('dev', 'stats', 'show', 'host-z/a1')).rejects.toThrow(/no host "host-z" \(hosts: host-a, host-b\)/);
    await expect(cli('dev', 'stats', 'show', 'host-a/zz')).rejects.toThrow(/no domain "zz" on host-a \(domains: dom0, a1, a2\)/);
    await expect(cli('dev', 'stats', 'show', 'host-a/a1/eth0')).rejects.toThrow(/is not HOST\/DOMU\[\/vifN\]/);
  });
});

describe('plugins', () => {
  it('a manifest without matches or features is refused, naming the fields', async () => {
    await expect(sim.loadPlugin(fixture('plugins/bad-manifest'))).rejects.toThrow(/bad manifest: .*\/matches.*\/features/);
  });

  it("bad arguments are refused by the plugin's own schema before it runs", async () => {
    await expect(sim.loadPlugin('firewall', { args: { rules: 'x' } })).rejects.toThrow(/plugin firewall: bad arguments: \/rules: Expected array/);
    await expect(sim.loadPlugin('firewall', { args: { rules: [{ dstIp: '10.0.0.300' }] } })).rejects.toThrow(/bad arguments: \/rules\/0\/dstIp/);
    const s = await sim.stats();
    expect(Object.keys(dom0Stats(s, 'host-a').accel.plugins)).toEqual([]);
  });

  it('a plugin module too large to be code is refused for its size, naming the file, before anything reads it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xsim-huge-plugin-'));
    try {
      // A manifest with a 5 MiB table in it (the attack was 50 MB, refused as "did not finish loading").
      const filler = 'x'.repeat(5 << 20);
      writeFileSync(
        join(dir, 'backend.ts'),
        `export const manifest = { name: 'huge', version: '1', matches: ['nic:xsim-vnic'], features: ['intercept'], notes: '${filler}' };\nexport function createBackend() { return {}; }\n`,
      );
      writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
      await expect(sim.loadPlugin(dir)).rejects.toThrow(
        /its backend module .*backend\.ts is 5\.0 MiB; a plugin module may be at most 4 MiB: refused, no domain has run it/,
      );
      expect(dom0Stats(await sim.stats(), 'host-a').accel.plugins).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a plugin loaded by path is unloaded by that path', async () => {
    const flaky = fixture('flaky');
    await sim.loadPlugin(flaky, { host: 'host-a' });
    expect(Object.keys(dom0Stats(await sim.stats(), 'host-a').accel.plugins)).toEqual(['flaky']);
    await sim.unloadPlugin(flaky, { host: 'host-a' });
    expect(Object.keys(dom0Stats(await sim.stats(), 'host-a').accel.plugins)).toEqual([]);
  });

  it.each([
    ['never settles', 'plugins/never-settles', /top-level code awaits something that never settles: refused, no domain has run it/],
    ['never stops', 'plugins/loops-forever', /did not finish loading within 10000 ms .* refused, no domain has run it/],
  ])('a module whose top-level code %s is refused by the vetting worker; no domain ever ran it', async (_what, path, message) => {
    await expect(sim.loadPlugin(fixture(path))).rejects.toThrow(message);
    // dom0 never imported it and still answers at once.
    const s = await sim.stats();
    expect(dom0Stats(s, 'host-a').accel.plugins).toEqual({});
    expect(s['host-a/dom0']).not.toHaveProperty('hung');
  });
});

describe('a domain whose code never yields', () => {
  it('is reported hung by stats within the deadline; everyone else answers; management works', async () => {
    const b2 = sim.domain({ host: 'host-b', domain: 'b2' });
    void sim.request({ host: 'host-b', domain: 'b2' }, 'hang').catch(() => {});
    // Ask once the hang has begun (b2's turn holds pCPU 2), so a2 cannot answer before it.
    await sim.waitFor('b2 to hold pCPU 2', () => sim.runtime.pcpuTurn(2)?.uid === b2.uid);
    const s = await sim.stats();
    expect(s['host-b/b2']).toMatchObject({
      hung: expect.stringMatching(/no answer to "stats" within 1500 ms: its code never yields \(pCPU 2 has been in its turn for \d+ ms\)/),
    });
    // a2 shares b2's pCPU: it is held, and the report says by whom.
    expect(s['host-a/a2']).toMatchObject({ hung: expect.stringMatching(/pCPU 2 is held by host-b\/b2, whose code never yields/) });
    // Everyone else answers with its own stats, its vif connected, not with a hang report.
    const connected = { handle: 0, state: XenbusState.Connected, backendState: XenbusState.Connected, broken: null };
    expect(guestStats(s, { host: 'host-a', domain: 'a1' })).toMatchObject({ name: 'a1', vifs: [connected] });
    expect(guestStats(s, { host: 'host-b', domain: 'b1' })).toMatchObject({ name: 'b1', vifs: [connected] });
    const backend = { state: XenbusState.Connected, frontendState: XenbusState.Connected };
    expect(dom0Stats(s, 'host-b').vifs).toMatchObject({ 'vif1.0': backend, 'vif2.0': backend });
    for (const d of ['host-a/a1', 'host-b/b1', 'host-a/dom0', 'host-b/dom0'] as const) expect(s[d], d).not.toHaveProperty('hung');
    const devs = (JSON.parse(await cli('dev', 'list', '-j')) as { dev: Record<string, Json> }).dev;
    expect(Object.keys(devs)).toContain('host-a/a1/vif0');
    await expect(sim.request({ host: 'host-b', domain: 'b2' }, 'stats')).rejects.toThrow(/host-b\/b2 is hung/);
  });

  it('shutdown ends it: its worker is terminated, and the others stop cleanly', async () => {
    await server.close();
    const r = await sim.shutdown();
    expect(r.domains['host-b/b2']).toMatchObject({ hung: expect.stringMatching(/never yields/), terminated: true });
    // a2 was held on b2's pCPU: ended with it, and reported as held by b2.
    expect(r.domains['host-a/a2']).toMatchObject({ hung: expect.stringMatching(/pCPU 2 is held by host-b\/b2/), terminated: true });
    // The others stop cleanly: each gives its final word (its stats), not a hang report.
    expect(r.domains['host-a/a1']).toMatchObject({ name: 'a1', vifs: [{ handle: 0, broken: null }] });
    expect(r.domains['host-b/b1']).toMatchObject({ name: 'b1', vifs: [{ handle: 0, broken: null }] });
    for (const d of ['host-a/a1', 'host-b/b1', 'host-a/dom0', 'host-b/dom0'] as const) expect(r.domains[d], d).toMatchObject({ name: d.split('/')[1] });
  });
});
