/**
 * Multi-queue vifs end to end (issue 22 item 2): a1 and b1 of the built-in
 * topology ask for 4 queues ("queues": 4 on their vifs; netback's
 * max_queues is 4), netfront configures a Toeplitz hash over the control
 * ring, and:
 *
 *   - a1 streams 8 flows to b1 at once: each frame leaves a1 on the queue
 *     its flow hashes to (netfront's xennet_select_queue), netback takes it
 *     from that queue's ring (its per-queue counters agree with netfront's),
 *     and every frame is delivered or counted;
 *   - b1 receives from three senders at once: netback steers each frame by
 *     the Toeplitz hash of its addresses (UDP has no hash type of its own)
 *     through the table to the queue the test computes from the RSS key, and
 *     each carries the hash to netfront in a HASH extra-info slot;
 *   - `xsim dev stats show DEV qidx N` shows one queue's counters;
 *   - a 4-queue a1 migrates live mid-stream (and is saved and restored): the
 *     stream is conserved and the guest comes back with 4 queues;
 *   - with vnic loaded, the accelerated path beside the queues still takes
 *     the frames, conserved.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VIF_KEY, flowHash, newFlowKeys, vifFrontendPath, xenNetifToeplitzHash } from '@xsim/hypervisor';
import { parseIp } from '@xsim/netstack';
import {
  Simulation,
  defaultTopology,
  devStats,
  dom0Stats,
  guestStats,
  movedStats,
  runStream,
  serveControl,
  streamAccount,
  validateTopology,
  type DomainRef,
  type StatsTree,
  type StreamResult,
} from '@xsim/toolstack';
import { manageCommand } from '@xsim/cli';
import { THREADS, afterFrames, replayOnFailure, seededModes } from './helpers.ts';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const a2: DomainRef = { host: 'host-a', domain: 'a2' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };
const b2: DomainRef = { host: 'host-b', domain: 'b2' };
const RSS_KEY = Uint8Array.from([
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb,
  0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
]);

/** The built-in topology with a1's and b1's vifs asking for 4 queues (their RAM sized for it). */
function topology() {
  type Raw = { hosts: { domUs: { name: string; memPages?: number; vifs: { queues?: number }[] }[] }[] };
  const t = structuredClone(defaultTopology()) as unknown as Raw;
  for (const h of t.hosts)
    for (const d of h.domUs)
      if (d.name === 'a1' || d.name === 'b1') {
        d.vifs[0].queues = 4;
        delete d.memPages;
      }
  return validateTopology(t);
}

/** The queue netfront picks for a UDP frame (xennet_select_queue: flow hash % 4). */
function txQueue(src: string, dst: string, sport: number, dport: number): number {
  const f = new Uint8Array(42);
  f.set([0x08, 0x00], 12);
  f.set([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17], 14);
  const ip = (s: string) => s.split('.').map(Number);
  f.set(ip(src), 26);
  f.set(ip(dst), 30);
  f.set([sport >> 8, sport & 255, dport >> 8, dport & 255], 34);
  return flowHash(f, 0, 42, newFlowKeys()) % 4;
}

/** The queue netback steers a UDP frame from `src` to `dst` to: Toeplitz of the addresses, the table's entry (i -> i % 4). */
function rxQueue(src: string, dst: string): number {
  const buf = new Uint8Array(8);
  new DataView(buf.buffer).setUint32(0, parseIp(src));
  new DataView(buf.buffer).setUint32(4, parseIp(dst));
  return (xenNetifToeplitzHash(RSS_KEY, 40, buf, 0, 8) % 128) % 4;
}

/**
 * Several streams at once, accounted together: sent = delivered + drops (+ flood copies), no
 * duplicates. With `moved` (a sender migrating), credits its receivers send to it while it moves
 * reach its old host, where no port has its MAC any more: that dom0 drops them (rxNotForUs). They
 * are not stream frames, so they are left out (a stream frame lost there would still show, as
 * delivered + drops < sent).
 */
async function conservedStreams(
  sim: Simulation,
  flows: { from: DomainRef; to: DomainRef; srcPort: number; port: number }[],
  count: number,
  during?: () => Promise<void>,
  moved?: { domain: string; from: string; to: string },
): Promise<{ rs: StreamResult[]; before: StatsTree; after: StatsTree }> {
  for (const f of flows) {
    await sim.request(f.from, 'arp_resolve', { ip: sim.domain(f.to).ip });
    await sim.request(f.to, 'arp_resolve', { ip: sim.domain(f.from).ip });
  }
  const before = await sim.stats();
  const ps = flows.map((f, i) => runStream(sim, { ...f, count, frameSize: 1000, window: 64, streamId: 9000 + i }));
  if (during) await during();
  const rs = await Promise.all(ps);
  const after = await sim.stats();
  const sum = (k: 'sent' | 'delivered' | 'duplicated' | 'tooOld') => rs.reduce((n, r) => n + r[k], 0);
  const base = moved ? movedStats(before as Record<string, unknown>, moved.domain, moved.from, moved.to) : before;
  const acc = streamAccount(base, after, { sent: sum('sent'), delivered: sum('delivered'), duplicated: sum('duplicated'), tooOld: sum('tooOld') });
  const credits = moved ? (acc.drops.get(`${moved.from}/dom0.endpoint.stack.rxNotForUs`) ?? 0) : 0;
  const seen = sum('delivered') + sum('tooOld') + acc.dropped - credits;
  const why = `sent ${sum('sent')}, delivered ${sum('delivered')}, drops ${JSON.stringify([...acc.drops])}, copies ${acc.copies}`;
  expect(sum('duplicated'), why).toBe(0);
  expect(seen, why).toBeGreaterThanOrEqual(sum('sent'));
  expect(seen, why).toBeLessThanOrEqual(sum('sent') + acc.copies);
  return { rs, before, after };
}

const qcount = (tree: StatsTree, ref: DomainRef, key: 'txPackets' | 'rxPackets' | 'rxHashExtras') => guestStats(tree, ref).vifs[0].queues.map((q) => q[key]);
const bqcount = (tree: StatsTree, ref: DomainRef, sim: Simulation, key: 'txPackets' | 'rxPackets') =>
  dom0Stats(tree, ref.host).vifs[`vif${sim.domain(ref).domid}.0`].queues.map((q) => q[key]);
const minus = (a: number[], b: number[]) => a.map((x, i) => x - (b[i] ?? 0));

describe.each([THREADS, ...seededModes()])('multi-queue vifs ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);
  beforeAll(async () => {
    sim = await Simulation.start(topology(), { ...mode.opts, log: () => {} });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  it('a1 and b1 connect with 4 queues (queue-N/ keys), the control ring configured Toeplitz; a2 keeps one queue and the flat keys', async () => {
    await sim.waitFor('the control rings configured', async () => {
      const s = await sim.stats();
      return [a1, b1].every((r) => guestStats(s, r).vifs[0].ctrlRing === 'configured');
    });
    const s = await sim.stats();
    for (const r of [a1, b1]) {
      const xs = sim.host(r.host).xenstore;
      const fe = vifFrontendPath(sim.domain(r).domid, 0);
      expect(xs.read(0, `${fe}/${VIF_KEY.multiQueueNumQueues}`)).toBe('4');
      expect(xs.read(0, `${fe}/queue-3/${VIF_KEY.txRingRef}`)).toMatch(/^\d+$/);
      expect(guestStats(s, r).vifs[0].numQueues).toBe(4);
      const be = dom0Stats(s, r.host).vifs[`vif${sim.domain(r).domid}.0`];
      expect([be.numQueues, be.ctrlRing, be.hash.algorithm, be.hash.mappingSize]).toEqual([4, true, 'toeplitz', 128]);
    }
    expect(guestStats(s, a2).vifs[0].numQueues).toBe(1);
    expect(sim.host('host-a').xenstore.read(0, `${vifFrontendPath(sim.domain(a2).domid, 0)}/${VIF_KEY.multiQueueNumQueues}`)).toBeUndefined();
  });

  it("8 flows a1 -> b1: each frame leaves on its flow's queue (both ends count it there), all land on b1's one Toeplitz queue for the pair, conserved", async () => {
    const flows = Array.from({ length: 8 }, (_v, i) => ({ from: a1, to: b1, srcPort: 41000 + i, port: 5101 + i }));
    const { rs, before, after } = await conservedStreams(sim, flows, 600);
    const want = [0, 0, 0, 0];
    rs.forEach((r, i) => (want[txQueue(sim.domain(a1).ip, sim.domain(b1).ip, flows[i].srcPort, flows[i].port)] += r.sent));
    expect(minus(qcount(after, a1, 'txPackets'), qcount(before, a1, 'txPackets'))).toEqual(want);
    expect(minus(bqcount(after, a1, sim, 'txPackets'), bqcount(before, a1, sim, 'txPackets'))).toEqual(want);
    expect(want.filter((n) => n > 0).length).toBeGreaterThan(1);
    const delivered = rs.reduce((n, r) => n + r.delivered, 0);
    const q = rxQueue(sim.domain(a1).ip, sim.domain(b1).ip);
    expect(minus(bqcount(after, b1, sim, 'rxPackets'), bqcount(before, b1, sim, 'rxPackets'))).toEqual([0, 1, 2, 3].map((i) => (i === q ? delivered : 0)));
    expect(minus(qcount(after, b1, 'rxHashExtras'), qcount(before, b1, 'rxHashExtras'))[q]).toBe(delivered);
  });

  it('b1 receives from a1, a2 and b2 at once: each sender is steered to the queue the Toeplitz hash of its addresses picks, conserved', async () => {
    const flows = [a1, a2, b2].map((from, i) => ({ from, to: b1, srcPort: 42000 + i, port: 5201 + i }));
    const { rs, before, after } = await conservedStreams(sim, flows, 600);
    const want = [0, 0, 0, 0];
    rs.forEach((r, i) => (want[rxQueue(sim.domain(flows[i].from).ip, sim.domain(b1).ip)] += r.delivered));
    expect(minus(qcount(after, b1, 'rxPackets'), qcount(before, b1, 'rxPackets'))).toEqual(want);
    expect(minus(bqcount(after, b1, sim, 'rxPackets'), bqcount(before, b1, sim, 'rxPackets'))).toEqual(want);
  });

  it('dev stats show DEV qidx N: one queue at each end; a queue past the last is refused', async () => {
    const q = await devStats(sim, 'host-a/a1', 2);
    expect(q.frontend).toMatchObject({ id: 2 });
    expect(q.backend).toMatchObject({ id: 2 });
    expect(typeof q.frontend.txPackets).toBe('number');
    await expect(devStats(sim, 'host-a/a1', 4)).rejects.toThrow(/has 4 queues \(qidx 0\.\.3\)/);
    await expect(devStats(sim, 'host-a/a2', 1)).rejects.toThrow(/has 1 queue \(qidx 0\)/);
    // The same through the control socket, as `xsim dev stats show DEV qidx N` asks.
    const socket = join(mkdtempSync(join(tmpdir(), 'xsim-mq-')), 'ctl.sock');
    const server = await serveControl(sim, socket);
    try {
      const cli = (...argv: string[]) => manageCommand('dev', [...argv, '--socket', socket]);
      const text = await cli('stats', 'show', 'host-a/a1', 'qidx', '1');
      expect(text).toMatch(/^host-a\/a1\/vif0 qidx 1\n/);
      expect(text).toMatch(/^netfront +txPackets +\d+ *$/m);
      expect(text).toMatch(/^netback +rxPackets +\d+ *$/m);
      const whole = await cli('stats', 'show', 'host-a/a1');
      expect(whole).toMatch(/^netback +numQueues +4 *$/m);
      expect(whole).not.toMatch(/queues\.0/);
      const json = JSON.parse(await cli('stats', 'show', 'host-a/a1', '-j')) as { frontend: { queues: unknown[] } };
      expect(json.frontend.queues).toHaveLength(4);
      await expect(cli('stats', 'show', 'host-a/a1', 'qidx', 'x')).rejects.toThrow(/usage: xsim dev stats show DEV \[qidx N\]/);
    } finally {
      await server.close();
    }
  });

  it('a 4-queue a1 migrates live mid-stream (4 flows): conserved, and it comes back with 4 queues and its hash configured', async () => {
    const flows = Array.from({ length: 4 }, (_v, i) => ({ from: a1, to: b1, srcPort: 43000 + i, port: 5301 + i }));
    await conservedStreams(
      sim,
      flows,
      1500,
      async () => {
        await afterFrames(sim, b1, 1000);
        await sim.migrateDomain(a1, 'host-b', { live: true });
      },
      { domain: 'a1', from: 'host-a', to: 'host-b' },
    );
    const moved: DomainRef = { host: 'host-b', domain: 'a1' };
    await sim.waitFor('a1 configured again', async () => guestStats(await sim.stats(), moved).vifs[0].ctrlRing === 'configured');
    const s = await sim.stats();
    expect(guestStats(s, moved).vifs[0].numQueues).toBe(4);
    expect(dom0Stats(s, 'host-b').vifs[`vif${sim.domain(moved).domid}.0`].numQueues).toBe(4);
    // And back by save and restore, then one more stream.
    const dir = mkdtempSync(join(tmpdir(), 'xsim-mq-'));
    try {
      await sim.saveDomain(moved, join(dir, 'a1.save'));
      await sim.restoreDomain(join(dir, 'a1.save'), 'host-a');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await conservedStreams(sim, [{ from: a1, to: b1, srcPort: 44000, port: 5401 }], 500);
    expect(guestStats(await sim.stats(), a1).vifs[0].numQueues).toBe(4);
  });

  it('with vnic loaded, the accelerated path beside the 4 queues takes the frames; conserved', async () => {
    await sim.loadPlugin('vnic');
    await sim.waitFor('vnic to attach a1 and b1', async () => {
      const s = await sim.stats();
      return [a1, b1].every((r) => guestStats(s, r).vifs[0].accel?.current?.ready === true);
    });
    const flows = [0, 1, 2, 3].map((i) => ({ from: a1, to: b1, srcPort: 45000 + i, port: 5501 + i }));
    // Learning: the first frames of each flow reach b1 through host-b's dom0, which installs its filters.
    await conservedStreams(sim, flows, 300);
    const { rs, before, after } = await conservedStreams(sim, flows, 800);
    const fast = (t: StatsTree, r: DomainRef, k: 'txAccel' | 'rxAccel') => guestStats(t, r).vifs[0][k];
    expect(fast(after, a1, 'txAccel') - fast(before, a1, 'txAccel')).toBe(rs.reduce((n, r) => n + r.sent, 0));
    expect(fast(after, b1, 'rxAccel') - fast(before, b1, 'rxAccel')).toBeGreaterThan(0);
    await sim.unloadPlugin('vnic');
  });
});
