/**
 * Packet capture end to end: `*` captured while streams take the slow path
 * and then vnic's fast path, and while a link is down. Read back (our reader
 * and Debian's tshark, which .ci/run installs when missing), each tap point's
 * frames equal the counters of that point, drops carry their counter's name,
 * and tshark dissects Ethernet/ARP/IPv4/UDP with no malformed packet and no
 * bad checksum. On real pCPU threads and a seeded deterministic run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPcapng } from '@xsim/hypervisor';
import { Simulation, defaultTopology, dom0Stats, fabricStats, guestStats, runStream, type CaptureSummary, type StatsTree } from '@xsim/toolstack';
import { THREADS, replayOnFailure, seededModes } from './helpers.ts';
import { needs } from './tools.ts';

const at = (host: string, domain: string) => ({ host, domain });
/** Growth of the named counters of one part of the stats tree between two snapshots (a part absent before counts from 0). */
function delta<T extends object>(a: T | null | undefined, b: T | null | undefined, ...keys: (keyof T & string)[]): number {
  return keys.reduce((n, k) => n + Number(a?.[k] ?? 0) - Number(b?.[k] ?? 0), 0);
}

/** What the counters say each tap point saw between two stats snapshots (frames, drops included). */
function expected(before: StatsTree, after: StatsTree, name: string): number {
  const [host, ...rest] = name.split('/');
  const dom0a = dom0Stats(after, host);
  const dom0b = dom0Stats(before, host);
  const nicIndex = ['host-a', 'host-b'].indexOf(host);
  const nica = fabricStats(after).nics[nicIndex];
  const nicb = fabricStats(before).nics[nicIndex];
  if (rest[0] === 'uplink') return delta(dom0a.uplink, dom0b.uplink, 'txPackets', 'rxPackets', 'txDropNoSkb', 'txDropBacklogFull');
  if (rest[0] === 'bridge') return delta(dom0a.bridge, dom0b.bridge, 'dropBadSource', 'dropStaticSource', 'dropSamePort', 'dropNoPort');
  if (/^vif\d+\.\d+$/.test(rest[0]))
    return delta(dom0a.vifs[rest[0]], dom0b.vifs[rest[0]], 'txPackets', 'rxPackets', 'txDropSpoof', 'rxDropNotConnected', 'rxDropQueueFull', 'rxDropNoSkb');
  if (rest[0] === 'nic' && rest[1] === 'wire') return delta(nica, nicb, 'wireTx', 'wireRx', 'txNoLink', 'linkDownDrops');
  if (rest[0] === 'nic') {
    const id = rest[1].slice(2);
    return delta(nica.vis[id], nicb?.vis[id], 'txFrames', 'rxFrames', 'txSpoofDrops', 'txOversize', 'rxNoDesc');
  }
  // host/guest/vifN: the frontend side, either path.
  const g = Number(rest[1].slice(3));
  const ref = { host, domain: rest[0] };
  const va = guestStats(after, ref).vifs[g];
  const vb = `${host}/${rest[0]}` in before ? guestStats(before, ref).vifs[g] : undefined;
  return delta(va, vb, 'txPackets', 'txAccel', 'rxPackets', 'rxAccel') - delta(va, vb, 'txResent');
}

function tshark(...args: string[]): string {
  return execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
}

describe.each([THREADS, seededModes()[0]])('capture ($name)', (mode) => {
  let sim: Simulation;
  let summary: CaptureSummary;
  let file: string;
  let before: StatsTree;
  let after: StatsTree;
  let linkDrops = 0;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, log: () => {} });
    file = join(mkdtempSync(join(tmpdir(), 'xsim-cap-')), 'all.pcapng');
    await sim.captureStart(['*'], { file });
    before = await sim.stats();
    // The slow path, across the hosts; then vnic's fast path; then into a link that is down.
    await runStream(sim, { from: at('host-a', 'a1'), to: at('host-b', 'b1'), count: 1500, frameSize: 900, window: 64 });
    await sim.loadPlugin('vnic');
    await sim.waitFor('vnic on every vif', async () => (await sim.listDomains()).every((d) => d.domid === 0 || d.vifs.every((v) => v.accel === 'vnic')));
    await runStream(sim, { from: at('host-b', 'b2'), to: at('host-a', 'a2'), count: 1500, frameSize: 600, window: 64 });
    await sim.unloadPlugin('vnic');
    await sim.setLink('host-b', false);
    const n0 = (await sim.fabricStats()).nics[0].linkDownDrops;
    // Nothing arrives: the receiver gives up after timeoutMs (the link is down).
    await runStream(sim, { from: at('host-a', 'a1'), to: at('host-b', 'b1'), count: 20, frameSize: 200, window: 0, timeoutMs: 1500 });
    linkDrops = (await sim.fabricStats()).nics[0].linkDownDrops - n0;
    await sim.setLink('host-b', true);
    after = await sim.stats();
    summary = await sim.captureStop();
  });

  afterAll(async () => {
    await sim?.shutdown();
  });

  it('each tap point holds exactly the frames its counters counted', () => {
    const f = readPcapng(readFileSync(file));
    const per = new Map<string, number>();
    for (const p of f.packets) per.set(f.interfaces[p.ifId].name, (per.get(f.interfaces[p.ifId].name) ?? 0) + 1);
    const names = f.interfaces.map((i) => i.name);
    expect(names).toEqual(
      expect.arrayContaining(['host-a/a1/vif0', 'host-b/b1/vif0', 'host-a/vif1.0', 'host-b/uplink', 'host-a/nic/wire', 'host-b/nic/vi0', 'host-a/bridge']),
    );
    expect(names.some((n) => /^host-b\/nic\/vi[1-9]/.test(n))).toBe(true);
    const mismatches = names.map((n) => [n, per.get(n) ?? 0, expected(before, after, n)]).filter(([, got, want]) => got !== want);
    expect(mismatches).toEqual([]);
    expect(summary.interfaces.every((i) => i.lost === 0)).toBe(true);
    expect(f.stats).toHaveLength(f.interfaces.length);
  });

  it('frames dropped where a tap sees them carry the counter name', () => {
    expect(linkDrops).toBeGreaterThan(0);
    const f = readPcapng(readFileSync(file));
    const comments = f.packets.filter((p) => p.comment).map((p) => `${f.interfaces[p.ifId].name}: ${p.comment}`);
    expect(comments.filter((c) => c === 'host-a/nic/wire: dropped: fabric.nics.0.linkDownDrops')).toHaveLength(linkDrops);
  });

  it('tshark reads it: the same count per interface, Ethernet/ARP/IPv4/UDP, nothing malformed, no bad checksum', needs('tshark'), () => {
    const counts = new Map<string, number>();
    for (const line of tshark('-r', file, '-T', 'fields', '-e', 'frame.interface_name').split('\n').filter(Boolean))
      counts.set(line, (counts.get(line) ?? 0) + 1);
    const ours = new Map(summary.interfaces.filter((i) => i.packets > 0).map((i) => [i.name, i.packets]));
    expect(counts).toEqual(ours);
    const phs = tshark('-r', file, '-q', '-z', 'io,phs');
    expect(phs).toMatch(/^\s*eth\s/m);
    expect(phs).toMatch(/^\s+arp\s/m);
    expect(phs).toMatch(/^\s+udp\s/m);
    const bad = tshark(
      '-r',
      file,
      '-o',
      'ip.check_checksum:TRUE',
      '-o',
      'udp.check_checksum:TRUE',
      '-Y',
      '_ws.malformed || _ws.expert.severity >= error || ip.checksum.status == 0 || udp.checksum.status == 0',
    );
    expect(bad.trim()).toBe('');
    const good = tshark('-r', file, '-o', 'ip.check_checksum:TRUE', '-Y', 'ip.checksum.status == 1', '-T', 'fields', '-e', 'frame.number')
      .split('\n')
      .filter(Boolean).length;
    expect(good).toBeGreaterThan(3000);
    const dropped = tshark('-r', file, '-Y', 'frame.comment contains "linkDownDrops"', '-T', 'fields', '-e', 'frame.interface_name')
      .split('\n')
      .filter(Boolean);
    expect(dropped).toEqual(new Array(linkDrops).fill('host-a/nic/wire'));
  });
});
