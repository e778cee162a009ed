/**
 * The benchmark's JSON output (schema "xsim-bench/1"), documented here and
 * checked by validateBenchJson so a later run can be compared against it.
 *
 * {
 *   schema: "xsim-bench/1", date, machine: { cores, node, cpu },
 *   options: { sizes, paths, placements, reps, quick },
 *   threads: { [path]: { busyWorkers, totalWorkers, cores, note } },
 *   cells: [{
 *     path: "unaccel" | "vnic" | "null" | "dom0" | "raw",
 *     placement: "cross" | "same",         // cross host (over the wire) or same host
 *     size: bytes (whole Ethernet frame),
 *     reps: [{ sent, delivered, dropsCounted, conserved, pps, gbps, awake?, cpuUsPerFrame? }],
 *     median: { pps, gbps }, spread: { minGbps, maxGbps },
 *     awake?: { [worker]: share },         // median share of the stream's wall time each worker was
 *                                          // not blocked in Atomics.wait (on a core or queued for one);
 *                                          // workers under 2% left out; absent for the raw ring
 *     cpuUsPerFrame?: number,              // median of: every worker's awake time / frames delivered (us)
 *     lossRate: lost / sent over all reps,
 *     rtt: { p50Us, p99Us } | null          // UDP ping-pong with frames of this size
 *   }],
 *   ratios: [{ size, placement, accelOverUnaccel, accelOverDom0, overRaw: { [path]: ratio } }],
 *                                          // paired: median over repetitions of (a / b) measured in the
 *                                          // same repetition (every repetition visits every path in turn)
 *   micro?: [{ name, opsPerSec, margin }]
 * }
 */
export const BENCH_SCHEMA = 'xsim-bench/1';
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
  /** Worker ("host-a/a1", "fabric", ...) -> share of this repetition's wall time it was awake. */
  awake?: Record<string, number>;
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
  options: { sizes: number[]; paths: BenchPath[]; placements: Placement[]; reps: number; quick: boolean };
  threads: Record<string, { busyWorkers: number; totalWorkers: number; cores: number; note: string }>;
  cells: BenchCell[];
  ratios: BenchRatio[];
  micro?: { name: string; opsPerSec: number; margin: number }[];
}

/** Problems with a parsed benchmark file (empty = valid). */
export function validateBenchJson(v: unknown): string[] {
  const out: string[] = [];
  const o = v as Partial<BenchJson>;
  if (!o || typeof o !== 'object') return ['not an object'];
  if (o.schema !== BENCH_SCHEMA) out.push(`schema: expected "${BENCH_SCHEMA}", got ${JSON.stringify(o.schema)}`);
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
