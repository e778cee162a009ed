/**
 * The throughput matrix: for each frame size a topology is brought up once
 * (MTU 9000 when the frame needs it), and every path is measured in it, in
 * the same process, so the ratios compare like with like (a run with the vdpa
 * path adds two hosts with the virtio NIC to that topology). Each cell: several
 * flow-controlled streams (receiver goodput; median and spread), conservation
 * checked per repetition, and a UDP ping-pong for latency.
 */
import { runMeta } from '@xsim/toolstack';
import type { LogLevel } from '@xsim/hypervisor';
import { availableParallelism, cpus } from 'node:os';
import { Simulation } from '@xsim/toolstack';
import { runPing, runStream } from '@xsim/toolstack';
import { streamAccount } from '@xsim/toolstack';
import { awakeShare, busyShare, pcpuSleepTimes, vcpuTimes } from '@xsim/toolstack';
import { NIC_MODELS, validateTopology, type Topology } from '@xsim/toolstack';
import { runRawRing } from './raw.ts';
import { futexRoundTrip } from './futex.ts';
import { benchRatios, median, ratiosAcrossRuns } from './ratios.ts';

export { benchRatios, median, ratiosAcrossRuns };
import { ACCELERATED, MIN_FAST_PATH_SHARE, RAW_COPIES, copyDelta, fastPathShare, threadSleeps, wakeDelta } from './counts.ts';
import { BENCH_SCHEMA, type BenchCell, type BenchJson, type BenchPath, type BenchRatio, type Placement, type RepResult } from './schema.ts';

export interface BenchOptions {
  sizes: number[];
  paths: BenchPath[];
  placements: Placement[];
  reps: number;
  /**
   * Frames per repetition at 1500 bytes (scaled by bytes for other sizes); 0 = size each
   * path's repetitions from its warm-up rate to last about `repSeconds`.
   */
  frames: number;
  repSeconds: number;
  pings: number;
  quick: boolean;
  /** pCPU worker threads of the simulation (default: the machine's cores). */
  pcpus?: number;
  progress?: (done: number, total: number, what: string) => void;
  /** The simulations' log level (default warn: their warnings and errors, not their chatter). */
  logLevel?: LogLevel;
  /** Futex round trips measured at the start (0: none). */
  futexRoundTrips?: number;
  /** Times the whole matrix is measured, each run with fresh simulations (default 1). */
  runs?: number;
  /** Concurrent guest pairs to measure (pairs.ts), e.g. [1, 2, 4]; none: no pairs section. */
  pairs?: number[];
  /** A line rate (Gbit/s) on every wire of the bench's topologies (`"gbps"`); none: wires as fast as the NIC thread. */
  wireGbps?: number;
}

export const DEFAULT_BENCH: BenchOptions = {
  sizes: [64, 512, 1500, 9000],
  paths: ['unaccel', 'vnic', 'vdpa', 'null', 'dom0', 'raw', 'raw3'],
  placements: ['cross', 'same'],
  reps: 5,
  frames: 0,
  repSeconds: 0.5,
  pings: 200,
  quick: false,
  futexRoundTrips: 20_000,
  pairs: [1, 2, 4],
};
export const QUICK_BENCH: BenchOptions = {
  sizes: [64, 1500],
  paths: ['unaccel', 'vnic', 'vdpa', 'null', 'dom0', 'raw', 'raw3'],
  placements: ['cross', 'same'],
  reps: 1,
  frames: 1500,
  repSeconds: 0,
  pings: 10,
  quick: true,
  futexRoundTrips: 5_000,
  pairs: [],
};

/**
 * The sender's credit window, in bytes as TCP's is: 256 standard frames, fewer
 * jumbo ones (a 256 x 9000-byte window would be larger than any receive ring).
 */
export function windowFrames(size: number): number {
  return Math.max(32, Math.min(256, Math.floor((256 * 1514) / size)));
}

/** The switch that joins the four hosts of a run with vdpa. */
export const BENCH_SWITCH = 'bench-sw';

/**
 * A size's topology: host-a and host-b with the VI NIC, wired to each other,
 * each with dom0 and two domUs. With `virtio` (a run with the vdpa path),
 * host-c and host-d too, with the virtio NIC (vdpa's), their domUs c1, c2 and
 * d1, d2; then all four hosts hang off one switch, since a NIC has one port
 * and every host must be reachable (validateTopology), so a-b's direct wire
 * cannot stay beside a c-d one. Without `virtio` the topology is what it was
 * before vdpa, so earlier results stay comparable.
 */
export function benchTopology(size: number, o: { virtio?: boolean; gbps?: number } = {}): Topology {
  const mtu = size - 14 > 1500 ? 9000 : 1500;
  const host = (x: 'a' | 'b' | 'c' | 'd', n: number, nic: { vendor: string; device: string; oui: string }) => ({
    name: `host-${x}`,
    nic: { vendor: nic.vendor, device: nic.device, mac: `${nic.oui}:00:0${x}:00`, vis: 8, mtu },
    dom0: { ip: `10.0.0.${n}` },
    domUs: [1, 2].map((i) => ({ name: `${x}${i}`, vifs: [{ mac: `00:16:3e:0${x}:0${i}:01`, ip: `10.0.${9 + n}.${i}` }] })),
  });
  const vi = NIC_MODELS.vi;
  const ab = [host('a', 1, vi), host('b', 2, vi)];
  // A line rate on every wire only when asked (`--wire-gbps`): without it the topology is what it was.
  const rate = o.gbps !== undefined ? { gbps: o.gbps } : {};
  if (!o.virtio) return validateTopology({ name: `bench-${size}`, hosts: ab, wires: [{ a: 'host-a', b: 'host-b', ...rate }] });
  const hosts = [...ab, host('c', 3, NIC_MODELS.virtio), host('d', 4, NIC_MODELS.virtio)];
  return validateTopology({
    name: `bench-${size}-vdpa`,
    hosts,
    switches: [{ name: BENCH_SWITCH, ports: hosts.length }],
    wires: hosts.map((h) => ({ a: h.name, b: BENCH_SWITCH, ...rate })),
  });
}

function ends(path: BenchPath, placement: Placement) {
  if (path === 'dom0') return { from: { host: 'host-a', domain: 'dom0' }, to: { host: 'host-b', domain: 'dom0' } };
  if (path === 'vdpa')
    return { from: { host: 'host-c', domain: 'c1' }, to: placement === 'cross' ? { host: 'host-d', domain: 'd1' } : { host: 'host-c', domain: 'c2' } };
  return { from: { host: 'host-a', domain: 'a1' }, to: placement === 'cross' ? { host: 'host-b', domain: 'b1' } : { host: 'host-a', domain: 'a2' } };
}

/**
 * Which domains each path keeps busy and the pCPU each runs on (from the
 * simulation's placement), out of how many threads on how many cores.
 */
export function threadAccounting(sim: Simulation, cores: number): BenchJson['threads'] {
  const t = sim.threads();
  const at = (host: string, domain: string) => {
    const d = sim.domain({ host, domain });
    return `${host}/${d.name}@pCPU${d.pcpu}`;
  };
  const nic = 'NIC thread';
  const virtio = sim.topology.hosts.some((h) => h.name === 'host-c');
  // In a run with vdpa every cross-host frame also passes the switch (in the NIC thread).
  const wire = virtio ? `; cross host through switch ${BENCH_SWITCH} (the four hosts of a run with vdpa)` : '';
  const entry = (busy: string[], note: string) => ({ pcpus: t.pcpus, threads: t.pcpus + t.nic, cores, busy, note: `${note}${wire}; ${t.placement}` });
  const cross = [at('host-a', 'a1'), at('host-a', 'dom0'), nic, at('host-b', 'dom0'), at('host-b', 'b1')];
  return {
    unaccel: entry(cross, 'cross; same host: a1, dom0-a, a2'),
    vnic: entry(
      [at('host-a', 'a1'), nic, at('host-b', 'b1')],
      "cross, after learning (dom0s only for the first frames); same host (a1 -> a2) through the NIC's internal switch since issue 21",
    ),
    ...(virtio
      ? {
          vdpa: entry(
            [at('host-c', 'c1'), nic, at('host-d', 'd1')],
            "the virtio NIC (host-c, host-d): cross, after learning (dom0s only for the first frames); same host (c1 -> c2) through the NIC's switch since issue 21",
          ),
        }
      : {}),
    null: entry(cross, 'as unaccel, plus the hook calls'),
    dom0: entry([at('host-a', 'dom0'), nic, at('host-b', 'dom0')], 'cross host only'),
    raw: {
      pcpus: 2,
      threads: 2,
      cores,
      busy: ['producer@pCPU0', 'consumer@pCPU1'],
      note: 'a runtime of its own: two pCPU workers, one domain each, on a bare SAB ring',
    },
    raw3: {
      pcpus: 3,
      threads: 3,
      cores,
      busy: ['producer@pCPU0', 'forwarder@pCPU1', 'consumer@pCPU2'],
      note: 'a runtime of its own: three pCPU workers, one domain each, two bare SAB rings; the forwarder copies each frame once from one to the other, as a NIC does',
    },
  };
}

type PlanCell = { size: number; path: BenchPath; placement: Placement };

/** Every cell the options ask for (dom0 and the raw references exist only across hosts). */
function benchPlan(o: BenchOptions): PlanCell[] {
  const plan: PlanCell[] = [];
  for (const size of o.sizes) {
    for (const path of o.paths) {
      for (const placement of o.placements) {
        if ((path === 'dom0' || path === 'raw' || path === 'raw3') && placement === 'same') continue;
        plan.push({ size, path, placement });
      }
    }
  }
  return plan;
}

/**
 * Loads the plugin a path needs (vnic, vdpa, null; none for the others),
 * unloading the previous one: one plugin at a time. Loaded without a host,
 * each goes to the hosts whose NIC it drives (vdpa to host-c and host-d).
 */
function pluginSwitcher(): (s: Simulation, path: BenchPath) => Promise<void> {
  let loaded: BenchPath | undefined;
  return async (s, path) => {
    const want = path === 'vnic' || path === 'vdpa' || path === 'null' ? path : undefined;
    if (loaded === want) return;
    if (loaded) await s.unloadPlugin(loaded);
    if (want) await s.loadPlugin(want);
    loaded = want;
  };
}

/**
 * One frame size: two unmeasured rounds (the first warms the JIT up and lets
 * vnic and vdpa learn their flows, the second, steady now, sizes the measured
 * repetitions), then o.reps rounds in which every path takes its turn, then
 * each cell's ping.
 */
async function measureSize(o: BenchOptions, size: number, order: PlanCell[], sim: Simulation | null, tick: (what: string) => void): Promise<BenchCell[]> {
  const fixed = Math.max(200, Math.round((o.frames * 1500) / Math.max(size, 500)));
  const warmup = o.frames > 0 ? Math.min(2_000, fixed) : 20_000;
  // Frames per repetition, per path: fixed, or what the warm-up rate gives in repSeconds.
  const counts = new Map<string, number>();
  const sized = (key: string, warmPps: number) =>
    counts.set(key, o.frames > 0 ? fixed : Math.max(2_000, Math.min(5_000_000, Math.round(warmPps * o.repSeconds))));
  const reps = new Map<string, RepResult[]>(order.map((c) => [`${c.path}/${c.placement}`, []]));
  const srcPort = 42000; // fixed, so vnic (vdpa) learns the flow and its credits once
  const use = pluginSwitcher();
  for (let r = -2; r < o.reps; r++) {
    for (const { path, placement } of order) {
      if (r === 0) tick(`${path} ${placement} @${size}B`);
      const key = `${path}/${placement}`;
      if (path === 'raw' || path === 'raw3') {
        const threads = path === 'raw' ? 2 : 3;
        if (r < 0) {
          sized(key, (await runRawRing(warmup * 4, size, threads)).pps);
          continue;
        }
        const x = await runRawRing(counts.get(key)! * (o.frames > 0 ? 4 : 1), size, threads);
        reps.get(key)!.push({
          sent: x.frames,
          delivered: x.frames,
          dropsCounted: 0,
          conserved: true,
          pps: x.pps,
          gbps: x.gbps,
          cpuUsPerFrame: x.cpuUsPerFrame,
          fastPathShare: 0,
          wakesPerFrame: x.wakes / Math.max(1, x.frames),
          wakes: x.wakesPerThread,
          ...perFrame(RAW_COPIES[path], 1),
        });
        continue;
      }
      await use(sim!, path);
      const { from, to } = ends(path, placement);
      // A plugin just loaded: its frontends attach after the load returns (slower on a loaded machine); measure once they are up.
      if (path === 'vnic' || path === 'vdpa') await sim!.waitAccelerated([from, to], { plugin: path });
      if (r < 0) {
        sized(key, (await runStream(sim!, { from, to, count: warmup, frameSize: size, window: windowFrames(size), srcPort })).pps);
        continue;
      }
      reps.get(key)!.push(await measure(sim!, { from, to, count: counts.get(key)!, frameSize: size, window: windowFrames(size), srcPort }));
    }
  }
  const cells: BenchCell[] = [];
  for (const { path, placement } of order) {
    if (path === 'raw' || path === 'raw3') {
      cells.push(cell(path, 'cross', size, reps.get(`${path}/cross`)!, null));
      continue;
    }
    await use(sim!, path);
    const { from, to } = ends(path, placement);
    if (path === 'vnic' || path === 'vdpa') await sim!.waitAccelerated([from, to], { plugin: path });
    const ping = await runPing(sim!, from, to, o.pings, Math.max(16, size - 42));
    cells.push(cell(path, placement, size, reps.get(`${path}/${placement}`)!, { p50Us: ping.p50Us, p99Us: ping.p99Us }));
  }
  if (sim) await use(sim, 'unaccel');
  return cells;
}

export async function runBench(o: BenchOptions): Promise<BenchJson> {
  const cores = availableParallelism();
  let accounting: BenchJson['threads'] | undefined;
  const plan = benchPlan(o);
  const runs = Math.max(1, o.runs ?? 1);
  let step = 0;
  const total = plan.length * runs;
  // The machine's futex wake round trip first, on an idle machine (no simulation yet).
  const futex = o.futexRoundTrips ? await futexRoundTrip(o.futexRoundTrips) : undefined;
  const all: { run: number; cells: BenchCell[]; ratios: BenchRatio[] }[] = [];
  for (let run = 1; run <= runs; run++) {
    const tick = (what: string) => o.progress?.(step++, total, runs > 1 ? `run ${run}/${runs}: ${what}` : what);
    const cells: BenchCell[] = [];
    for (const size of o.sizes) {
      // Round-robin: every repetition visits every path in turn (the raw rings too), so JIT
      // warm-up and machine drift fall on all paths alike, and each repetition's ratios
      // compare measurements taken moments apart.
      const order = (['raw', 'raw3', 'unaccel', 'null', 'vnic', 'vdpa', 'dom0'] as BenchPath[]).flatMap((path) =>
        plan.filter((p) => p.size === size && p.path === path),
      );
      if (order.length === 0) continue;
      // host-c and host-d (the virtio NIC) only when vdpa is measured: otherwise the topology stays as before.
      const topology = benchTopology(size, { virtio: order.some((p) => p.path === 'vdpa'), gbps: o.wireGbps });
      // A fresh simulation per size and per run.
      const sim = order.some((p) => p.path !== 'raw' && p.path !== 'raw3')
        ? await Simulation.start(topology, { pcpus: o.pcpus, logLevel: o.logLevel ?? 'warn' })
        : null;
      if (sim && !accounting) accounting = threadAccounting(sim, cores);
      try {
        cells.push(...(await measureSize(o, size, order, sim, tick)));
      } finally {
        await sim?.shutdown();
      }
    }
    all.push({ run, cells, ratios: benchRatios(cells, o) });
  }
  o.progress?.(total, total, 'done');
  return {
    schema: BENCH_SCHEMA,
    date: new Date().toISOString(),
    meta: runMeta(o.pcpus ?? cores),
    machine: {
      cores,
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      ...(futex ? { futexRoundTripUs: { median: futex.medianUs, p99: futex.p99Us, roundTrips: futex.roundTrips, noSleep: futex.noSleep } } : {}),
    },
    options: {
      sizes: o.sizes,
      paths: o.paths,
      placements: o.placements,
      reps: o.reps,
      quick: o.quick,
      pcpus: o.pcpus ?? cores,
      wireGbps: o.wireGbps ?? null,
      runs,
      pairs: o.pairs ?? [],
    },
    threads: accounting ?? {},
    // The first run's; with --runs N every run is in `runs` and each ratio's spread across them in `acrossRuns`.
    cells: all[0].cells,
    ratios: all[0].ratios,
    ...(runs > 1 ? { runs: all, acrossRuns: ratiosAcrossRuns(all.map((r) => r.ratios)) } : {}),
  };
}

/** One measured stream: goodput, exact conservation, each thread's awake share and each domain's CPU. */
async function measure(sim: Simulation, o: Parameters<typeof runStream>[1]): Promise<RepResult> {
  const [before, pBefore] = await Promise.all([sim.stats(), sim.runtime.pcpuStats(5000)]);
  const t0 = performance.now();
  const res = await runStream(sim, o);
  const wallMs = performance.now() - t0;
  const [after, pAfter] = await Promise.all([sim.stats(), sim.runtime.pcpuStats(5000)]);
  const account = streamAccount(before, after, res);
  const awake = awakeShare(pcpuSleepTimes(pBefore), pcpuSleepTimes(pAfter), wallMs, res.elapsedMs);
  const vcpu = Object.fromEntries(Object.entries(busyShare(vcpuTimes(before), vcpuTimes(after), res.elapsedMs)).filter(([, v]) => v > 0));
  const awakeMs = Object.values(awake).reduce((a, b) => a + b, 0) * res.elapsedMs;
  const wakes = wakeDelta(threadSleeps(pBefore), threadSleeps(pAfter));
  return {
    sent: res.sent,
    delivered: res.delivered,
    dropsCounted: account.dropped,
    conserved: account.conserved,
    pps: res.pps,
    gbps: res.gbps,
    awake,
    vcpu,
    cpuUsPerFrame: (awakeMs * 1000) / Math.max(1, res.delivered),
    fastPathShare: fastPathShare(before, after, o.from, res.sent),
    wakesPerFrame: wakes.total / Math.max(1, res.delivered),
    wakes: wakes.perThread,
    ...perFrame(copyDelta(before, after), res.delivered),
  };
}

/** Copies per site over `frames` delivered frames, and their sum. */
function perFrame(copies: Record<string, number>, frames: number): Pick<RepResult, 'copies' | 'copiesPerFrame'> {
  const per = Object.fromEntries(Object.entries(copies).map(([k, n]) => [k, n / Math.max(1, frames)]));
  return { copies: per, copiesPerFrame: Object.values(per).reduce((a, b) => a + b, 0) };
}

/**
 * Is a cell what its path says? An accelerated path (vnic, vdpa) whose
 * sender's frontend took under 99 % of the stream on the fast path measured
 * mostly the slow path (a plugin that failed, declined or fell back), so it
 * is marked invalid, with the share in the reason. Unaccelerated paths take
 * nothing on the fast path and are valid with a share of 0.
 */
export function cellValidity(path: BenchPath, reps: Pick<RepResult, 'fastPathShare'>[]): Pick<BenchCell, 'fastPathShare' | 'valid' | 'invalid'> {
  const shares = reps.map((r) => r.fastPathShare ?? 0);
  const share = shares.length ? median(shares) : 0;
  if (!ACCELERATED.includes(path) || share >= MIN_FAST_PATH_SHARE) return { fastPathShare: share, valid: true };
  return {
    fastPathShare: share,
    valid: false,
    invalid: `${path}: the sender's frontend took ${fmtShare(share)} of the stream on the fast path (median; repetitions ${shares.map(fmtShare).join(', ')}), under ${fmtShare(MIN_FAST_PATH_SHARE)}: the rest went by the slow path`,
  };
}

const fmtShare = (x: number) => `${(x * 100).toFixed(x >= 0.995 && x < 1 ? 2 : 1)}%`;

function cell(path: BenchPath, placement: Placement, size: number, reps: RepResult[], rtt: BenchCell['rtt']): BenchCell {
  const sent = reps.reduce((a, r) => a + r.sent, 0);
  const delivered = reps.reduce((a, r) => a + r.delivered, 0);
  return {
    ...cellValidity(path, reps),
    path,
    placement,
    size,
    reps,
    median: { pps: median(reps.map((r) => r.pps)), gbps: median(reps.map((r) => r.gbps)) },
    awake: medianShare(reps, (r) => r.awake),
    vcpu: medianShare(reps, (r) => r.vcpu),
    cpuUsPerFrame: reps.every((r) => r.cpuUsPerFrame !== undefined) ? median(reps.map((r) => r.cpuUsPerFrame!)) : undefined,
    wakesPerFrame: reps.every((r) => r.wakesPerFrame !== undefined) ? median(reps.map((r) => r.wakesPerFrame!)) : undefined,
    copiesPerFrame: reps.every((r) => r.copiesPerFrame !== undefined) ? median(reps.map((r) => r.copiesPerFrame!)) : undefined,
    copies: medianOf(reps, (r) => r.copies),
    spread: { minGbps: Math.min(...reps.map((r) => r.gbps)), maxGbps: Math.max(...reps.map((r) => r.gbps)) },
    lossRate: sent > 0 ? (sent - delivered) / sent : 0,
    rtt,
  };
}

/** Per key (a copy site), the median over repetitions of its value (0 where a repetition has none). */
function medianOf(reps: RepResult[], of: (r: RepResult) => Record<string, number> | undefined): Record<string, number> | undefined {
  if (!reps.some((r) => of(r))) return undefined;
  const keys = new Set(reps.flatMap((r) => Object.keys(of(r) ?? {})));
  return Object.fromEntries([...keys].map((k) => [k, median(reps.map((r) => of(r)?.[k] ?? 0))]));
}

/** Per thread (or domain), the median over repetitions of its share; those under 2% are left out. */
function medianShare(reps: RepResult[], of: (r: RepResult) => Record<string, number> | undefined): Record<string, number> | undefined {
  if (!reps.some((r) => of(r))) return undefined;
  const workers = new Set(reps.flatMap((r) => Object.keys(of(r) ?? {})));
  const out: Record<string, number> = {};
  for (const w of workers) {
    const m = median(reps.map((r) => of(r)?.[w] ?? 0));
    if (m >= 0.02) out[w] = m;
  }
  return out;
}
