/**
 * Multi-queue vifs in the benchmark (`xsim bench --queues 1,2,4`): for each
 * frame size and each N, the size's topology with a1's and b1's vifs asking
 * for N queues (a simulation of its own, since queues are set at boot), and N
 * flows a1 -> b1 at once over the slow path, each flow's source port chosen
 * so that it leaves on a TX queue of its own (netfront picks by flow hash %
 * N), the N sharing the window one flow has (each window / N frames in
 * flight). A repetition is the N flows together: frames summed, the rate
 * over the longest flow, conservation over all of them. Per queue, the frames a1's
 * netfront put on each TX queue and b1's netback copied into each RX queue:
 * b1's netfront configures a Toeplitz hash, which for UDP covers the
 * addresses alone, so every flow of the pair lands on one RX queue (as it
 * would under Linux's netback with a frontend that configures one).
 *
 * xsim runs each domain as one vCPU: a guest's queues are served one after
 * another in its turn, never in parallel, so N queues measure what the
 * queues cost, not what parallel queues would gain.
 */
import { flowHash, newFlowKeys } from '@xsim/hypervisor';
import { parseIp } from '@xsim/netstack';
import { Simulation, awakeShare, dom0Stats, guestStats, pcpuSleepTimes, runStream, streamAccount, validateTopology, type StatsTree } from '@xsim/toolstack';
import type { LogLevel } from '@xsim/hypervisor';
import { benchTopology, median, windowFrames } from './matrix.ts';
import type { QueueCell, RepResult } from './schema.ts';

export interface QueueBenchOptions {
  sizes: number[];
  queues: number[];
  reps: number;
  /** Frames per repetition at 1500 bytes (all flows together); 0 = sized from the warm-up to last repSeconds. */
  frames: number;
  repSeconds: number;
  pcpus?: number;
  logLevel?: LogLevel;
  progress?: (what: string) => void;
}

const a1 = { host: 'host-a', domain: 'a1' };
const b1 = { host: 'host-b', domain: 'b1' };

/** The size's topology with a1's and b1's vifs asking for `n` queues (their RAM sized for them). */
export function queueTopology(size: number, n: number) {
  type Raw = { hosts: { domUs: { name: string; memPages?: number; vifs: { queues?: number }[] }[] }[] };
  const t = structuredClone(benchTopology(size)) as unknown as Raw;
  for (const h of t.hosts)
    for (const d of h.domUs)
      if (d.name === 'a1' || d.name === 'b1') {
        d.vifs[0].queues = n;
        delete d.memPages;
      }
  return validateTopology(t);
}

/** N flows (source port, destination port) a1 -> b1, flow i leaving on TX queue i (netfront's flow hash % N). */
export function flowsOverQueues(src: string, dst: string, n: number): { srcPort: number; port: number }[] {
  const f = new Uint8Array(42);
  f.set([0x08, 0x00], 12);
  f.set([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17], 14);
  const dv = new DataView(f.buffer);
  dv.setUint32(26, parseIp(src));
  dv.setUint32(30, parseIp(dst));
  const keys = newFlowKeys();
  const out: { srcPort: number; port: number }[] = [];
  let sport = 42000;
  for (let q = 0; q < n; q++) {
    const port = 5001 + q;
    for (; ; sport++) {
      dv.setUint16(34, sport);
      dv.setUint16(36, port);
      if (flowHash(f, 0, 42, keys) % n === q) break;
    }
    out.push({ srcPort: sport++, port });
  }
  return out;
}

type Flows = { srcPort: number; port: number }[];

/** One repetition: every flow at once; the frames a1 sent per TX queue and b1 received per RX queue. */
async function measureFlows(sim: Simulation, flows: Flows, count: number, size: number): Promise<{ rep: RepResult; tx: number[]; rx: number[] }> {
  const per = Math.max(1, Math.round(count / flows.length));
  // The flows share one flow's window (its frames in flight), so N flows put no more on b1's one RX queue than one.
  const window = Math.max(16, Math.floor(windowFrames(size) / flows.length));
  const [before, pBefore] = await Promise.all([sim.stats(), sim.runtime.pcpuStats(5000)]);
  const t0 = performance.now();
  const rs = await Promise.all(flows.map((f) => runStream(sim, { from: a1, to: b1, count: per, frameSize: size, window, ...f })));
  const wallMs = performance.now() - t0;
  const [after, pAfter] = await Promise.all([sim.stats(), sim.runtime.pcpuStats(5000)]);
  const sum = (k: 'sent' | 'delivered' | 'duplicated' | 'tooOld') => rs.reduce((n, r) => n + r[k], 0);
  const elapsed = Math.max(...rs.map((r) => r.elapsedMs));
  const account = streamAccount(before, after, { sent: sum('sent'), delivered: sum('delivered'), duplicated: sum('duplicated'), tooOld: sum('tooOld') });
  const awake = awakeShare(pcpuSleepTimes(pBefore), pcpuSleepTimes(pAfter), wallMs, elapsed);
  const awakeMs = Object.values(awake).reduce((a, b) => a + b, 0) * elapsed;
  const rep: RepResult = {
    sent: sum('sent'),
    delivered: sum('delivered'),
    dropsCounted: account.dropped,
    conserved: account.conserved,
    pps: (sum('delivered') * 1000) / elapsed,
    gbps: rs.reduce((n, r) => n + r.gbps * r.elapsedMs, 0) / elapsed,
    awake,
    cpuUsPerFrame: (awakeMs * 1000) / Math.max(1, sum('delivered')),
  };
  return {
    rep,
    tx: perQueue(before, after, (t) => guestStats(t, a1).vifs[0].queues.map((q) => q.txPackets)),
    rx: perQueue(before, after, (t) => rxQueues(sim, t)),
  };
}

function rxQueues(sim: Simulation, t: StatsTree): number[] {
  return dom0Stats(t, 'host-b').vifs[`vif${sim.domain(b1).domid}.0`].queues.map((q) => q.rxPackets);
}

function perQueue(before: StatsTree, after: StatsTree, of: (t: StatsTree) => number[]): number[] {
  const b = of(before);
  return of(after).map((x, i) => x - (b[i] ?? 0));
}

/** One N at one size: warm up (twice: the JIT, then the rate the repetitions are sized by), then o.reps measured. */
async function measureQueues(o: QueueBenchOptions, size: number, n: number): Promise<QueueCell> {
  const sim = await Simulation.start(queueTopology(size, n), { pcpus: o.pcpus, logLevel: o.logLevel ?? 'warn' });
  try {
    const got = guestStats(await sim.stats(), a1).vifs[0].numQueues;
    if (got !== n) throw new Error(`a1 connected ${got} queues, not ${n} (host-a's netback offers fewer?)`);
    const flows = flowsOverQueues(sim.domain(a1).ip, sim.domain(b1).ip, n);
    const fixed = Math.max(200, Math.round((o.frames * 1500) / Math.max(size, 500)));
    const warm = o.frames > 0 ? Math.min(2_000, fixed) : 20_000;
    let pps = 0;
    for (let w = 0; w < 2; w++) pps = (await measureFlows(sim, flows, warm, size)).rep.pps;
    const count = o.frames > 0 ? fixed : Math.max(2_000, Math.round(pps * o.repSeconds));
    const reps: RepResult[] = [];
    const tx = new Array<number>(n).fill(0);
    const rx = new Array<number>(n).fill(0);
    for (let r = 0; r < o.reps; r++) {
      const m = await measureFlows(sim, flows, count, size);
      reps.push(m.rep);
      m.tx.forEach((x, i) => (tx[i] += x));
      m.rx.forEach((x, i) => (rx[i] += x));
    }
    const sent = reps.reduce((a, r) => a + r.sent, 0);
    const delivered = reps.reduce((a, r) => a + r.delivered, 0);
    return {
      queues: n,
      flows: n,
      path: 'unaccel',
      placement: 'cross',
      size,
      reps,
      median: { pps: median(reps.map((r) => r.pps)), gbps: median(reps.map((r) => r.gbps)) },
      spread: { minGbps: Math.min(...reps.map((r) => r.gbps)), maxGbps: Math.max(...reps.map((r) => r.gbps)) },
      lossRate: sent > 0 ? (sent - delivered) / sent : 0,
      perQueue: { tx, rx },
      note: `a1 -> b1 unaccelerated, ${n} flow(s) at once (source ports ${flows.map((f) => f.srcPort).join(', ')}), one per TX queue, sharing one flow's window; RX steered by b1's Toeplitz hash (UDP: addresses only, one queue for the pair)`,
    };
  } finally {
    await sim.shutdown();
  }
}

export async function runQueueBench(o: QueueBenchOptions): Promise<QueueCell[]> {
  const out: QueueCell[] = [];
  for (const size of o.sizes)
    for (const n of o.queues) {
      o.progress?.(`queues ${n} @${size}B`);
      out.push(await measureQueues(o, size, n));
    }
  return out;
}
