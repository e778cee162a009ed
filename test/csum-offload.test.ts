/**
 * Checksum offload end to end (issue 23 item 3), on real pCPU threads: TCP
 * streams whose segments the stack leaves partial (CHECKSUM_PARTIAL) cross
 * guest to guest on the slow path (netfront, netback, the bridge, the
 * uplink, the NIC, the wire) and on vnic's fast path, with the vif's offload
 * on and off (the topology's "offloads" and `xsim dev set ... csum`), and
 * arrive with correct checksums: every octet checked by the sink, no TCP
 * segment dropped for its checksum, and the counters say where each was
 * completed (the NIC, netback on a copy, netfront in software). Captured at
 * every tap point, tshark finds no bad TCP checksum.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MANAGE_OPS,
  Simulation,
  defaultTopology,
  dom0Stats,
  fabricStats,
  guestStats,
  runTcpStream,
  type DomainRef,
  type StatsTree,
  type Topology,
} from '@xsim/toolstack';
import { THREADS, replayOnFailure } from './helpers.ts';
import { needs } from './tools.ts';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const a2: DomainRef = { host: 'host-a', domain: 'a2' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };

/** The default topology, a2's vif with checksum offload off. */
function topology(): Topology {
  const t = defaultTopology();
  t.hosts[0].domUs[1].vifs[0].offloads = { csum: false };
  return t;
}

type Counted = Record<string, unknown> | null | undefined;
const n = (o: Counted, k: string): number => Number(o?.[k] ?? 0);
/** How much counter `k` of the part `pick` selects grew between two snapshots. */
const grew = (before: StatsTree, after: StatsTree, pick: (t: StatsTree) => Counted, k: string): number => n(pick(after), k) - n(pick(before), k);

const fe = (ref: DomainRef) => (t: StatsTree) => guestStats(t, ref).vifs[0] as unknown as Counted;
const be = (host: string, vif: string) => (t: StatsTree) => dom0Stats(t, host).vifs[vif] as unknown as Counted;
const uplink = (host: string) => (t: StatsTree) => dom0Stats(t, host).uplink as unknown as Counted;
const vi = (nic: number, id: number) => (t: StatsTree) => fabricStats(t).nics[nic].vis[id] as unknown as Counted;
const tcpOf = (ref: DomainRef) => (t: StatsTree) => guestStats(t, ref).endpoint?.stack as unknown as Counted;

describe('checksum offload end to end (threads)', () => {
  let sim: Simulation;
  let file: string;
  replayOnFailure(THREADS, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(topology(), { ...THREADS.opts, logLevel: 'warn' });
    file = join(mkdtempSync(join(tmpdir(), 'xsim-csum-')), 'csum.pcapng');
    await sim.captureStart(['*'], { file });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  /** The vif (which dev set closed to reconnect) is connected at both ends again. */
  async function reconnected(ref: DomainRef): Promise<boolean> {
    const v = guestStats(await sim.stats(), ref).vifs[0];
    return v.state === 4 && v.backendState === 4 && v.history.some((h) => h.includes('reconnect'));
  }

  /** A verified TCP stream and the stats around it. */
  async function stream(from: DomainRef, to: DomainRef, bytes = 300_000): Promise<{ before: StatsTree; after: StatsTree }> {
    const before = await sim.stats();
    const r = await runTcpStream(sim, { from, to, bytes, verify: true });
    expect(r).toMatchObject({ bytes, corrupt: 0, complete: true });
    const after = await sim.stats();
    expect(grew(before, after, tcpOf(to), 'tcpRxBadChecksum')).toBe(0);
    expect(grew(before, after, tcpOf(from), 'tcpRxBadChecksum')).toBe(0);
    return { before, after };
  }

  it('slow path across hosts, offload on: partial from a1, completed by host-a’s NIC, checked by host-b’s, flagged validated to b1', async () => {
    const { before, after } = await stream(a1, b1);
    const g = (pick: (t: StatsTree) => Counted, k: string) => grew(before, after, pick, k);
    // Partial from a1: MTU frames (netback counts them txCsumPartial) and TSO frames (txGsoFrames, cut into partial segments).
    expect(g(fe(a1), 'txCsumPartial')).toBeGreaterThan(10);
    expect(g(fe(a1), 'txCsumSoftware')).toBe(0);
    expect(g(be('host-a', 'vif1.0'), 'txCsumPartial') + g(be('host-a', 'vif1.0'), 'txGsoFrames')).toBe(g(fe(a1), 'txCsumPartial'));
    expect(g(uplink('host-a'), 'txCsumOffloaded')).toBeGreaterThan(100);
    expect(g(uplink('host-a'), 'csumCompletedSw')).toBe(0);
    expect(g(vi(0, 0), 'txCsumOffloaded')).toBeGreaterThan(100);
    expect(g(vi(1, 0), 'rxCsumGood')).toBeGreaterThan(100);
    expect(g(be('host-b', 'vif1.0'), 'rxCsumValidated')).toBeGreaterThan(100);
    expect(g(fe(b1), 'rxCsumValidated')).toBeGreaterThan(100);
  });

  it('slow path with TSO: a1’s stack hands down frames up to 64 KiB, netfront sends them with a GSO slot, netback cuts them into MSS segments', async () => {
    const { before, after } = await stream(a1, b1, 1_000_000);
    const g = (pick: (t: StatsTree) => Counted, k: string) => grew(before, after, pick, k);
    const gso = g(fe(a1), 'txGsoFrames');
    expect(gso).toBeGreaterThan(5);
    expect(g(be('host-a', 'vif1.0'), 'txGsoFrames')).toBe(gso);
    expect(g(be('host-a', 'vif1.0'), 'txGsoSegments')).toBeGreaterThan(2 * gso);
    expect(g(be('host-a', 'vif1.0'), 'txErrGso')).toBe(0);
    expect(g(fe(a1), 'txGsoRefused')).toBe(0);
  });

  it('within host-a to a2 (offloads.csum false in the topology): netback completes a copy for it; a2’s own stack completes its checksums', async () => {
    expect(guestStats(await sim.stats(), a2).vifs[0].backendFeatures).toBeTruthy();
    const { before, after } = await stream(a1, a2, 200_000);
    const g = (pick: (t: StatsTree) => Counted, k: string) => grew(before, after, pick, k);
    expect(g(be('host-a', 'vif2.0'), 'rxCsumCompletedSw')).toBeGreaterThan(50);
    expect(g(be('host-a', 'vif2.0'), 'rxCsumBlank')).toBe(0);
    expect(g(fe(a2), 'rxCsumBlank')).toBe(0);
    // a2's ACKs leave complete: its stack was told not to offload.
    expect(g(fe(a2), 'txCsumPartial')).toBe(0);
    expect(g(be('host-a', 'vif2.0'), 'txPackets')).toBeGreaterThan(10);
  });

  it('dev set host-a/a2 csum on: the vif reconnects, and a2 then takes partial frames flagged csum_blank', async () => {
    const r = await MANAGE_OPS['dev.set'](sim, { dev: 'host-a/a2', csum: true });
    expect(r.offloads).toEqual({ csum: true, gso: true, changed: true });
    await sim.waitFor('a2 connected again', () => reconnected(a2));
    const { before, after } = await stream(a1, a2, 200_000);
    const g = (pick: (t: StatsTree) => Counted, k: string) => grew(before, after, pick, k);
    // a1's TSO frames now reach a2 whole (its vif's gso is on: test/gso-rx.test.ts), each one partial frame, not one per MSS.
    expect(g(be('host-a', 'vif2.0'), 'rxCsumBlank')).toBeGreaterThan(5);
    expect(g(fe(a2), 'rxCsumBlank')).toBeGreaterThan(5);
    expect(g(be('host-a', 'vif2.0'), 'rxCsumCompletedSw')).toBe(0);
    expect(g(fe(a2), 'txCsumPartial')).toBeGreaterThan(10);
  });

  it('vnic, offloads on: a1’s partial frames posted with TXD_CSUM or cut by its VI’s NIC (TXD_TSO), which computes every checksum; b1’s VI reports them checked', async () => {
    await sim.loadPlugin('vnic');
    await sim.waitAccelerated([a1, b1], { plugin: 'vnic' });
    // The first segments teach vnic where b1 is; the second stream runs on the fast path.
    await stream(a1, b1, 100_000);
    const { before, after } = await stream(a1, b1);
    const g = (pick: (t: StatsTree) => Counted, k: string) => grew(before, after, pick, k);
    // TSO (plugin API 1.5, vnic's default): most of the stream leaves a1 as frames of up to 64 KiB, each one taken.
    expect(g(fe(a1), 'txAccelTso')).toBeGreaterThan(5);
    expect(g(fe(a1), 'txCsumSoftware')).toBe(0);
    const a1vi = Object.entries(fabricStats(after).nics[0].vis).find(([id, v]) => id !== '0' && v.domid === 1)?.[0];
    expect(a1vi).toBeDefined();
    expect(g(vi(0, Number(a1vi)), 'txTsoBad')).toBe(0);
    expect(g(vi(0, Number(a1vi)), 'txCsumOffloaded') + g(vi(0, Number(a1vi)), 'txTsoSegments')).toBeGreaterThan(100);
    expect(g(fe(b1), 'rxAccel')).toBeGreaterThan(100);
    expect(g(fe(b1), 'rxCsumValidated')).toBeGreaterThan(100);
  });

  it('vnic, offload off on a1 (dev set csum off): a1’s stack completes its checksums, nothing partial reaches the VI', async () => {
    const r = await MANAGE_OPS['dev.set'](sim, { dev: 'host-a/a1', csum: false });
    expect(r.offloads).toEqual({ csum: false, gso: true, changed: true });
    await sim.waitFor('a1 connected again', () => reconnected(a1));
    await sim.waitAccelerated([a1], { plugin: 'vnic', timeoutMs: 20_000 });
    await stream(a1, b1, 100_000);
    const { before, after } = await stream(a1, b1);
    const g = (pick: (t: StatsTree) => Counted, k: string) => grew(before, after, pick, k);
    expect(g(fe(a1), 'txAccel')).toBeGreaterThan(100);
    expect(g(fe(a1), 'txCsumPartial')).toBe(0);
    const a1vi = Object.entries(fabricStats(after).nics[0].vis).find(([id, v]) => id !== '0' && v.domid === 1 && v.running)?.[0];
    expect(g(vi(0, Number(a1vi)), 'txCsumOffloaded')).toBe(0);
    expect(g(vi(0, Number(a1vi)), 'txFrames')).toBeGreaterThan(100);
  });

  it('captured at every tap point, inside hosts and on the wire, tshark finds no bad IP, TCP or UDP checksum', needs('tshark'), async () => {
    await sim.unloadPlugin('vnic');
    await sim.captureStop();
    const tshark = (...args: string[]) => execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    const opts = ['-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE'];
    const bad = tshark(
      '-r',
      file,
      ...opts,
      '-Y',
      'ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0',
      '-T',
      'fields',
      '-e',
      'frame.interface_name',
    );
    expect(bad.trim()).toBe('');
    const good = tshark('-r', file, ...opts, '-Y', 'tcp.checksum.status == 1', '-T', 'fields', '-e', 'frame.number')
      .split('\n')
      .filter(Boolean).length;
    expect(good).toBeGreaterThan(1000);
  });
});

describe('checksum offload end to end on the virtio NIC (threads)', () => {
  let sim: Simulation;
  replayOnFailure(THREADS, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology({ nics: ['virtio', 'virtio'] }), { ...THREADS.opts, logLevel: 'warn' });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  async function stream(bytes: number): Promise<{ before: StatsTree; after: StatsTree }> {
    const before = await sim.stats();
    const r = await runTcpStream(sim, { from: a1, to: b1, bytes, verify: true });
    expect(r).toMatchObject({ bytes, corrupt: 0, complete: true });
    const after = await sim.stats();
    expect(grew(before, after, tcpOf(b1), 'tcpRxBadChecksum')).toBe(0);
    return { before, after };
  }

  it('slow path: dom0’s virtio driver hands partial frames over with NEEDS_CSUM; the far device flags them DATA_VALID', async () => {
    const { before, after } = await stream(200_000);
    const g = (pick: (t: StatsTree) => Counted, k: string) => grew(before, after, pick, k);
    expect(g(uplink('host-a'), 'txCsumOffloaded')).toBeGreaterThan(50);
    expect(g(vi(0, 0), 'txCsumOffloaded')).toBeGreaterThan(50);
    expect(g(uplink('host-b'), 'rxCsumValidated')).toBeGreaterThan(50);
    expect(g(fe(b1), 'rxCsumValidated')).toBeGreaterThan(50);
  });

  it('vdpa: a1’s partial segments go with NEEDS_CSUM on its function, b1’s function delivers them DATA_VALID', async () => {
    await sim.loadPlugin('vdpa');
    await sim.waitFor('vdpa on a1 and b1', async () =>
      (await sim.listDomains()).filter((d) => ['a1', 'b1'].includes(d.name)).every((d) => d.vifs[0].accel === 'vdpa'),
    );
    await stream(100_000);
    const { before, after } = await stream(300_000);
    const g = (pick: (t: StatsTree) => Counted, k: string) => grew(before, after, pick, k);
    expect(g(fe(a1), 'txAccel')).toBeGreaterThan(100);
    expect(g(fe(a1), 'txCsumSoftware')).toBe(0);
    const a1fn = Object.entries(fabricStats(after).nics[0].vis).find(([id, v]) => id !== '0' && v.domid === 1)?.[0];
    expect(g(vi(0, Number(a1fn)), 'txCsumOffloaded')).toBeGreaterThan(100);
    expect(g(fe(b1), 'rxAccel')).toBeGreaterThan(100);
    expect(g(fe(b1), 'rxCsumValidated')).toBeGreaterThan(100);
  });
});
