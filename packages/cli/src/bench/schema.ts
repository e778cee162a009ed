/**
 * The benchmark's JSON output (schema "xsim-bench/2"), documented here and
 * checked by validateBenchJson so a later run can be compared against it.
 * ("xsim-bench/1" files, from before domains ran as vCPUs on pCPUs, have the
 * same cells and ratios; --compare reads both.)
 *
 * {
 *   schema: "xsim-bench/2", date, machine: { cores, node, cpu },
 *   options: { sizes, paths, placements, reps, quick, pcpus },
 *   threads: { [path]: { pcpus, threads, cores, busy: ["host-a/a1@pCPU1", …], note } },
 *   cells: [{
 *     path: "unaccel" | "vnic" | "null" | "dom0" | "raw",
 *     placement: "cross" | "same",         // cross host (over the wire) or same host
 *     size: bytes (whole Ethernet frame),
 *     reps: [{ sent, delivered, dropsCounted, conserved, pps, gbps, awake?, vcpu?, cpuUsPerFrame? }],
 *     median: { pps, gbps }, spread: { minGbps, maxGbps },
 *     awake?: { [thread]: share },         // "pcpu0", …, "nic": median share of the stream's wall time the
 *                                          // thread was not blocked in Atomics.wait (its domains' turns,
 *                                          // its spin rounds; on a core or queued for one); under 2% left
 *                                          // out; absent for the raw ring
 *     vcpu?: { [domain]: share },          // "host-a/a1", "fabric", …: median share of the stream's time
 *                                          // the domain's vCPU spent in its turns
 *     cpuUsPerFrame?: number,              // median of: every thread's awake time / frames delivered (us)
 *     lossRate: lost / sent over all reps,
 *     rtt: { p50Us, p99Us } | null          // UDP ping-pong with frames of this size
 *   }],
 *   ratios: [{ size, placement, accelOverUnaccel, accelOverDom0, overRaw: { [path]: ratio } }],
 *                                          // paired: median over repetitions of (a / b) measured in the
 *                                          // same repetition (every repetition visits every path in turn)
 *   micro?: [{ name, opsPerSec, margin }]
 * }
 */
export const BENCH_SCHEMA = 'xsim-bench/2';
/** Earlier schemas whose cells and ratios --compare can still read. */
export const READABLE_SCHEMAS = ['xsim-bench/1', BENCH_SCHEMA] as const;
export const PATHS = ['unaccel', 'vnic', 'null', 'dom0', 'raw'] as const;
export type BenchPath = (typeof PATHS)[number];
export type Placement = 'cross' | 'same';

export interface RepResult {
  sent: number;
  delivered: number;
  dropsCounted: number;
  conserved: boolean;
  pps: number;
  gbps: number;
  /** Thread ("pcpu0", ..., "nic") -> share of this repetition's stream time it was awake. */
  awake?: Record<string, number>;
  /** Domain ("host-a/a1", "fabric", ...) -> share of the stream's time its vCPU was in its turns. */
  vcpu?: Record<string, number>;
  /** Awake time of all the path's workers per delivered frame, in microseconds. */
  cpuUsPerFrame?: number;
}

export interface BenchCell {
  path: BenchPath;
  placement: Placement;
  size: number;
  reps: RepResult[];
  median: { pps: number; gbps: number };
  spread: { minGbps: number; maxGbps: number };
  awake?: Record<string, number>;
  vcpu?: Record<string, number>;
  cpuUsPerFrame?: number;
  lossRate: number;
  rtt: { p50Us: number; p99Us: number } | null;
}

export interface BenchRatio {
  size: number;
  placement: Placement;
  accelOverUnaccel: number | null;
  accelOverDom0: number | null;
  overRaw: Partial<Record<BenchPath, number>>;
}

export interface BenchJson {
  schema: typeof BENCH_SCHEMA;
  date: string;
  machine: { cores: number; node: string; cpu: string };
  options: { sizes: number[]; paths: BenchPath[]; placements: Placement[]; reps: number; quick: boolean; pcpus?: number };
  threads: Record<string, { pcpus: number; threads: number; cores: number; busy: string[]; note: string }>;
  cells: BenchCell[];
  ratios: BenchRatio[];
  micro?: { name: string; opsPerSec: number; margin: number }[];
}

/** Problems with a parsed benchmark file (empty = valid); `accept` lists the schemas taken. */
export function validateBenchJson(v: unknown, accept: readonly string[] = [BENCH_SCHEMA]): string[] {
  const out: string[] = [];
  const o = v as Partial<BenchJson>;
  if (!o || typeof o !== 'object') return ['not an object'];
  if (!accept.includes(String(o.schema))) out.push(`schema: expected ${accept.map((x) => `"${x}"`).join(' or ')}, got ${JSON.stringify(o.schema)}`);
  if (typeof o.date !== 'string') out.push('date: missing');
  if (!o.machine || typeof o.machine.cores !== 'number') out.push('machine.cores: missing');
  if (!o.options || !Array.isArray(o.options.sizes)) out.push('options.sizes: missing');
  if (!Array.isArray(o.cells)) out.push('cells: missing');
  else
    o.cells.forEach((c, i) => {
      if (!PATHS.includes(c.path)) out.push(`cells[${i}].path: ${JSON.stringify(c.path)}`);
      if (c.placement !== 'cross' && c.placement !== 'same') out.push(`cells[${i}].placement: ${JSON.stringify(c.placement)}`);
      if (!Number.isInteger(c.size)) out.push(`cells[${i}].size`);
      if (!Array.isArray(c.reps) || c.reps.length === 0) out.push(`cells[${i}].reps: empty`);
      for (const k of ['pps', 'gbps'] as const) if (typeof c.median?.[k] !== 'number' || !Number.isFinite(c.median[k])) out.push(`cells[${i}].median.${k}`);
      if (typeof c.lossRate !== 'number') out.push(`cells[${i}].lossRate`);
      if (c.awake !== undefined && (typeof c.awake !== 'object' || Object.values(c.awake).some((x) => typeof x !== 'number' || x < 0 || x > 1))) out.push(`cells[${i}].awake`);
    });
  if (!Array.isArray(o.ratios)) out.push('ratios: missing');
  if (!o.threads || typeof o.threads !== 'object') out.push('threads: missing');
  return out;
}
