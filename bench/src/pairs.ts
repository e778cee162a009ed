/**
 * Concurrent guest pairs (`xsim bench --pairs 1,2,4`): host-a and host-b with
 * four domUs each, and N pairs a_i -> b_i streaming at the same time (each
 * its own source port and its own credit window), unaccelerated and with vnic
 * in turn within every repetition, so the ratio vnic aggregate / unaccel
 * aggregate is paired as the matrix's are. A simulation per N (fresh guests,
 * fresh flows), at 1500 B.
 *
 * Aggregate goodput: every pair's delivered bytes over the longest pair's
 * time. Loss per pair (sent - delivered - too old). Conservation: drop
 * counters are not per flow, so it is checked over the N streams together
 * (every frame sent delivered once or counted), and each pair's loss is
 * shown beside it. On vnic every pair's fast-path share is checked as the
 * matrix's cells are: a repetition where any pair's sender took under 99 %
 * on the fast path makes the cell invalid and its ratio null.
 */
import type { LogLevel } from '@xsim/hypervisor';
import { Simulation, runStream, streamAccount, validateTopology, type StatsTree, type Topology } from '@xsim/toolstack';
import { MIN_FAST_PATH_SHARE, fastPathShare } from './counts.ts';
import { benchTopology, windowFrames } from './matrix.ts';
import { median } from './ratios.ts';
import type { PairCell, PairRatio, PairRep } from './schema.ts';

export interface PairBenchOptions {
  /** Numbers of concurrent pairs (1..4). */
  pairs: number[];
  reps: number;
  /** Frames per pair per repetition at 1500 bytes; 0 = sized from the warm-up to last repSeconds. */
  frames: number;
  repSeconds: number;
  pcpus?: number;
  wireGbps?: number;
  logLevel?: LogLevel;
  progress?: (what: string) => void;
}

export const PAIR_SIZE = 1500;
export const MAX_PAIRS = 4;
const PATHS = ['unaccel', 'vnic'] as const;

/** The bench's a-b topology with four domUs on each host (a1..a4, b1..b4). */
export function pairsTopology(size: number, gbps?: number): Topology {
  type Raw = { hosts: { name: string; domUs: { name: string; vifs: { mac: string; ip: string }[] }[] }[] };
  const t = structuredClone(benchTopology(size, { gbps })) as unknown as Raw;
  t.hosts.forEach((h, n) => {
    const x = h.name.slice('host-'.length);
    for (let i = h.domUs.length + 1; i <= MAX_PAIRS; i++)
      h.domUs.push({ name: `${x}${i}`, vifs: [{ mac: `00:16:3e:0${x}:0${i}:01`, ip: `10.0.${10 + n}.${i}` }] });
  });
  return validateTopology(t);
}

const end = (host: 'a' | 'b', i: number) => ({ host: `host-${host}`, domain: `${host}${i + 1}` });

/** One repetition of one path: N streams at once. */
async function measurePairs(sim: Simulation, n: number, count: number, size: number): Promise<PairRep> {
  const before: StatsTree = await sim.stats();
  const rs = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      runStream(sim, { from: end('a', i), to: end('b', i), count, frameSize: size, window: windowFrames(size), srcPort: 42000 + i }),
    ),
  );
  const after: StatsTree = await sim.stats();
  const sum = (k: 'sent' | 'delivered' | 'duplicated' | 'tooOld') => rs.reduce((a, r) => a + r[k], 0);
  const elapsed = Math.max(...rs.map((r) => r.elapsedMs));
  const account = streamAccount(before, after, { sent: sum('sent'), delivered: sum('delivered'), duplicated: sum('duplicated'), tooOld: sum('tooOld') });
  const perPair = rs.map((r, i) => ({
    from: `host-a/a${i + 1}`,
    to: `host-b/b${i + 1}`,
    sent: r.sent,
    delivered: r.delivered,
    lost: Math.max(0, r.sent - r.delivered - r.tooOld),
    gbps: r.gbps,
    fastPathShare: fastPathShare(before, after, end('a', i), r.sent),
  }));
  return {
    sent: sum('sent'),
    delivered: sum('delivered'),
    dropsCounted: account.dropped,
    conserved: account.conserved,
    aggregateGbps: elapsed > 0 ? (sum('delivered') * size * 8) / (elapsed * 1e6) : 0,
    minFastPathShare: Math.min(...perPair.map((p) => p.fastPathShare)),
    perPair,
  };
}

/** One N: a simulation of its own; two warm-up rounds, then o.reps in which both paths take their turn. */
async function measureN(o: PairBenchOptions, n: number): Promise<{ cells: PairCell[]; ratio: PairRatio }> {
  const size = PAIR_SIZE;
  const sim = await Simulation.start(pairsTopology(size, o.wireGbps), { pcpus: o.pcpus, logLevel: o.logLevel ?? 'warn' });
  let loaded = false;
  const use = async (path: (typeof PATHS)[number]) => {
    if ((path === 'vnic') === loaded) return;
    if (loaded) await sim.unloadPlugin('vnic');
    else {
      await sim.loadPlugin('vnic');
      // Its frontends attach after the load returns: every pair's ends up before a frame is measured.
      await sim.waitAccelerated(Array.from({ length: n }, (_, i) => [end('a', i), end('b', i)]).flat(), { plugin: 'vnic' });
    }
    loaded = !loaded;
  };
  try {
    const fixed = Math.max(200, Math.round((o.frames * 1500) / size));
    const warm = o.frames > 0 ? Math.min(2_000, fixed) : 20_000;
    const count = new Map<string, number>();
    const reps = new Map<string, PairRep[]>(PATHS.map((p) => [p, []]));
    for (let r = -2; r < o.reps; r++)
      for (const path of PATHS) {
        await use(path);
        if (r < 0) {
          const w = await measurePairs(sim, n, warm, size);
          const pps = (w.aggregateGbps * 1e9) / (size * 8) / n;
          count.set(path, o.frames > 0 ? fixed : Math.max(2_000, Math.min(5_000_000, Math.round(pps * o.repSeconds))));
          continue;
        }
        reps.get(path)!.push(await measurePairs(sim, n, count.get(path)!, size));
      }
    await use('unaccel');
    const cells = PATHS.map((path) => pairCell(n, path, size, reps.get(path)!, sim.threads().placement));
    const [u, v] = PATHS.map((p) => reps.get(p)!);
    const rs = v.map((x, i) => x.aggregateGbps / Math.max(1e-9, u[i].aggregateGbps));
    const bad = cells.filter((c) => !c.valid);
    const ratio: PairRatio = {
      pairs: n,
      size,
      vnicOverUnaccel: bad.length ? null : median(rs),
      min: bad.length ? null : Math.min(...rs),
      max: bad.length ? null : Math.max(...rs),
      ...(bad.length ? { invalid: bad.map((c) => `${c.path} with ${n} pair(s): ${c.invalid ?? ''}`) } : {}),
    };
    return { cells, ratio };
  } finally {
    await sim.shutdown();
  }
}

function pairCell(n: number, path: (typeof PATHS)[number], size: number, reps: PairRep[], placement: string): PairCell {
  const sent = reps.reduce((a, r) => a + r.sent, 0);
  const delivered = reps.reduce((a, r) => a + r.delivered, 0);
  const share = median(reps.map((r) => r.minFastPathShare));
  const valid = path !== 'vnic' || share >= MIN_FAST_PATH_SHARE;
  return {
    pairs: n,
    path,
    size,
    reps,
    median: { aggregateGbps: median(reps.map((r) => r.aggregateGbps)) },
    spread: { min: Math.min(...reps.map((r) => r.aggregateGbps)), max: Math.max(...reps.map((r) => r.aggregateGbps)) },
    lossRate: sent > 0 ? (sent - delivered) / sent : 0,
    fastPathShare: share,
    valid,
    ...(valid
      ? {}
      : {
          invalid: `the least-accelerated pair's sender took ${(share * 100).toFixed(1)}% on the fast path (median over repetitions), under ${MIN_FAST_PATH_SHARE * 100}%`,
        }),
    note: `a1..a${n} -> b1..b${n} at once (source ports 42000..${42000 + n - 1}, a window each); ${placement}`,
  };
}

export async function runPairBench(o: PairBenchOptions): Promise<{ cells: PairCell[]; ratios: PairRatio[] }> {
  const cells: PairCell[] = [];
  const ratios: PairRatio[] = [];
  for (const n of o.pairs) {
    if (!Number.isInteger(n) || n < 1 || n > MAX_PAIRS) throw new Error(`--pairs: ${n} is not 1..${MAX_PAIRS}`);
    o.progress?.(`${n} concurrent pair(s) @${PAIR_SIZE}B`);
    const m = await measureN(o, n);
    cells.push(...m.cells);
    ratios.push(m.ratio);
  }
  return { cells, ratios };
}
