/**
 * The benchmark's JSON output (schema "xsim-bench/6"), sketched here and
 * defined once below as a TypeBox schema: the TypeScript types derive from it,
 * validateBenchJson checks a file against it, and `xsim schema` publishes it
 * as schemas/xsim-bench-6.schema.json. ("xsim-bench/1" to "/5" files, from
 * before run metadata, before pCPUs, before the vdpa path and before the
 * bench checked itself, have the same cells; --compare reads them through
 * ComparableSchema. /5 added what the run checks of itself: each cell's
 * fast-path share and validity, wake-ups and copies per frame, the
 * machine's futex round trip, the three-thread raw reference raw3, --runs, --pairs.
 * /6 added the TCP section, `tcp`: tcp-stream and tcp-rr with offloads on
 * and off, sketched in tcp-schema.ts.)
 *
 * {
 *   schema: "xsim-bench/6", date, meta: RunMeta,
 *   machine: { cores, node, cpu, futexRoundTripUs?: { median, p99, roundTrips, noSleep } },
 *                                          // futex: two workers ping-pong with Atomics.notify/wait at the
 *                                          // start of the run, µs per round trip (two wake-ups)
 *   options: { sizes, paths, placements, reps, quick, pcpus, runs?, pairs?, wireGbps? },  // wireGbps: --wire-gbps, or null
 *   threads: { [path]: { pcpus, threads, cores, busy: ["host-a/a1@pCPU1", …], note } },
 *   cells: [{
 *     path: "unaccel" | "vnic" | "vdpa" | "null" | "dom0" | "raw" | "raw3",
 *                                          // raw3: producer -> ring -> forwarder (one copy) -> ring -> consumer,
 *                                          // three pCPUs
 *                                          // vdpa: host-c/c1 -> host-d/d1 (or c2), the virtio NIC's
 *                                          // hosts, which a run with vdpa adds (all four hosts on a switch)
 *     placement: "cross" | "same",         // cross host (over the wire) or same host
 *     size: bytes (whole Ethernet frame),
 *     reps: [{ sent, delivered, dropsCounted, conserved, pps, gbps, awake?, vcpu?, cpuUsPerFrame?,
 *              fastPathShare?, wakesPerFrame?, wakes?, copiesPerFrame?, copies? }],
 *     median: { pps, gbps }, spread: { minGbps, maxGbps },
 *     awake?: { [thread]: share },         // "pcpu0", …, "nic": median share of the stream's wall time the
 *                                          // thread was not blocked in Atomics.wait (its domains' turns,
 *                                          // its spin rounds; on a core or queued for one); under 2% left
 *                                          // out; absent for the raw ring
 *     vcpu?: { [domain]: share },          // "host-a/a1", "fabric", …: median share of the stream's time
 *                                          // the domain's vCPU spent in its turns
 *     cpuUsPerFrame?: number,              // median of: every thread's awake time / frames delivered (us)
 *     lossRate: lost / sent over all reps,
 *     rtt: { p50Us, p99Us } | null,         // UDP ping-pong with frames of this size
 *     wakesPerFrame?: number,              // median of: every thread's Atomics.wait sleeps (pCPUs, NIC) / delivered
 *     copiesPerFrame?: number,             // median of: whole-frame copies at every counted site / delivered
 *     copies?: { [site]: perFrame },       // per copy site (bench/src/counts.ts COPY_SITES, RAW_COPIES)
 *     fastPathShare: number,               // median of: frames the sender's frontend took on the fast path
 *                                          // (netfront's accel host txTaken delta) / frames sent; 0 when
 *                                          // not accelerated
 *     valid: boolean, invalid?: string     // an accelerated cell (vnic, vdpa) under 0.99 is not valid
 *   }],
 *   ratios: [{ size, placement, accelOverUnaccel, accelOverDom0,   // vnic over unaccel, over dom0
 *              vdpaOverVnic, vdpaOverUnaccel,                   // vdpa over vnic; over unaccel measured
 *                                                               // on the VI NIC's hosts (a1 -> b1 or a2)
 *              overRaw: { [path]: ratio }, overRaw3?: { [path]: ratio },
 *              invalid?: [why] }],             // a ratio pairing an invalid cell is null, and said why here
 *                                          // paired: median over repetitions of (a / b) measured in the
 *                                          // same repetition (every repetition visits every path in turn)
 *   runs?: [{ run, cells, ratios }],       // --runs N > 1: every run of the matrix (cells, ratios: the first's)
 *   acrossRuns?: [{ size, placement, ratio, median, min, max, runs, values: [{ run, value }] }],
 *                                          // each ratio's median across runs and its min..max
 *   pairs?: { cells: [{ pairs, path: "unaccel" | "vnic", size, reps: [{ sent, delivered, dropsCounted, conserved,
 *                       aggregateGbps, minFastPathShare, perPair: [{ from, to, sent, delivered, lost, gbps,
 *                       fastPathShare }] }], median: { aggregateGbps }, spread, lossRate, fastPathShare,
 *                       valid, invalid?, note }],
 *             ratios: [{ pairs, size, vnicOverUnaccel, min, max, invalid? }] }
 *                                          // --pairs 1,2,4: N pairs a_i -> b_i at once, paired per repetition
 *   micro?: [{ name, opsPerSec, margin }],
 *   capture?: [{ path, placement, size, spec, reps: [{ offGbps, onGbps, ratio, records, lost }],
 *                ratio, spread: { min, max }, taps, snaplen, note }]   // the same stream with capture off and
 *                                          // on (one point, or '*'), paired per repetition
 *   queues?: [{ queues, flows, path: "unaccel", placement: "cross", size, reps, median, spread, lossRate,
 *               perQueue: { tx: [frames], rx: [frames] }, note }]   // --queues: a1 and b1 with N queues,
 *                                          // N flows a1 -> b1 at once (one per TX queue); per queue, the
 *                                          // frames a1's netfront sent and b1's netback received there
 *   tcp?: { options, cells, ratios, notes }  // --tcp: tcp-stream, tcp-rr, a udp-stream beside each (tcp-schema.ts)
 * }
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { RunMetaSchema } from '@xsim/toolstack';
import { TcpSectionSchema } from './tcp-schema.ts';

export const BENCH_SCHEMA = 'xsim-bench/6';
/** Earlier schemas whose cells --compare can still read. */
export const READABLE_SCHEMAS = ['xsim-bench/1', 'xsim-bench/2', 'xsim-bench/3', 'xsim-bench/4', 'xsim-bench/5', BENCH_SCHEMA] as const;
export const PATHS = ['unaccel', 'vnic', 'vdpa', 'null', 'dom0', 'raw', 'raw3'] as const;
export type BenchPath = (typeof PATHS)[number];
export type Placement = 'cross' | 'same';

const Num = (description?: string) => Type.Number(description ? { description } : {});
/** A ratio per path (each optional: only the paths measured), over a reference. */
const perPath = (description: string) =>
  Type.Object(
    {
      unaccel: Type.Optional(Num()),
      vnic: Type.Optional(Num()),
      vdpa: Type.Optional(Num()),
      null: Type.Optional(Num()),
      dom0: Type.Optional(Num()),
      raw: Type.Optional(Num()),
    },
    { description },
  );
const Share = Type.Record(Type.String(), Type.Number({ minimum: 0, maximum: 1 }));
const PathSchema = Type.Union(PATHS.map((p) => Type.Literal(p)));
const PlacementSchema = Type.Union([Type.Literal('cross'), Type.Literal('same')], { description: 'cross host (over the wire) or same host' });

export const RepResultSchema = Type.Object({
  sent: Type.Integer({ minimum: 0 }),
  delivered: Type.Integer({ minimum: 0 }),
  dropsCounted: Type.Integer({ minimum: 0 }),
  conserved: Type.Boolean({ description: 'every frame sent was delivered or counted in a drop counter' }),
  pps: Num(),
  gbps: Num(),
  awake: Type.Optional(
    Type.Record(Type.String(), Type.Number({ minimum: 0 }), { description: "thread ('pcpu0', ..., 'nic') -> share of the stream's time it was awake" }),
  ),
  vcpu: Type.Optional(
    Type.Record(Type.String(), Type.Number({ minimum: 0 }), { description: "domain -> share of the stream's time its vCPU was in its turns" }),
  ),
  cpuUsPerFrame: Type.Optional(Num('awake time of all the threads per delivered frame, us')),
  fastPathShare: Type.Optional(
    Type.Number({
      minimum: 0,
      description:
        "frames the sender's frontend took on the fast path (netfront's accel host txTaken, grown over the repetition) / frames sent; 0 on an unaccelerated path",
    }),
  ),
  wakesPerFrame: Type.Optional(
    Type.Number({
      minimum: 0,
      description: "every thread's sleeps in Atomics.wait begun over the repetition (pCPU workers and the NIC thread) / frames delivered",
    }),
  ),
  wakes: Type.Optional(
    Type.Record(Type.String(), Type.Integer({ minimum: 0 }), { description: "thread ('pcpu0', ..., 'nic') -> its sleeps over the repetition" }),
  ),
  copiesPerFrame: Type.Optional(
    Type.Number({ minimum: 0, description: 'whole-frame copies counted at every copy site (bench/src/counts.ts COPY_SITES) / frames delivered' }),
  ),
  copies: Type.Optional(Type.Record(Type.String(), Type.Number({ minimum: 0 }), { description: 'copy site -> its copies / frames delivered' })),
});
export type RepResult = Static<typeof RepResultSchema>;

export const BenchCellSchema = Type.Object({
  path: PathSchema,
  placement: PlacementSchema,
  size: Type.Integer({ minimum: 64, description: 'whole Ethernet frame, bytes' }),
  reps: Type.Array(RepResultSchema, { minItems: 1 }),
  median: Type.Object({ pps: Num(), gbps: Num() }),
  spread: Type.Object({ minGbps: Num(), maxGbps: Num() }),
  awake: Type.Optional(Share),
  vcpu: Type.Optional(Share),
  cpuUsPerFrame: Type.Optional(Num()),
  lossRate: Type.Number({ minimum: 0, maximum: 1 }),
  rtt: Type.Union([Type.Object({ p50Us: Num(), p99Us: Num() }), Type.Null()]),
  fastPathShare: Type.Number({ minimum: 0, description: 'median over repetitions of the fast-path share (0 on an unaccelerated path)' }),
  wakesPerFrame: Type.Optional(Num('median over repetitions of wake-ups (every thread) per delivered frame')),
  copiesPerFrame: Type.Optional(Num('median over repetitions of whole-frame copies per delivered frame')),
  copies: Type.Optional(Type.Record(Type.String(), Type.Number({ minimum: 0 }), { description: 'copy site -> median copies per delivered frame' })),
  valid: Type.Boolean({
    description: 'false: the cell does not measure what its path says (an accelerated path whose median fast-path share is under 0.99); its ratios are null',
  }),
  invalid: Type.Optional(Type.String({ description: 'why the cell is not valid' })),
});
export type BenchCell = Static<typeof BenchCellSchema>;

const Ratio = (description: string) => Type.Union([Type.Number(), Type.Null()], { description });
export const BenchRatioSchema = Type.Object({
  size: Type.Integer(),
  placement: PlacementSchema,
  accelOverUnaccel: Ratio('vnic over unaccel (the VI NIC: host-a, host-b)'),
  accelOverDom0: Ratio('vnic over dom0 to dom0 (cross host only)'),
  vdpaOverVnic: Ratio("vdpa (the virtio NIC's hosts, host-c and host-d) over vnic (the VI NIC's, host-a and host-b), same placement and size"),
  vdpaOverUnaccel: Ratio("vdpa over unaccel; the slow-path baseline is measured on the VI NIC's hosts (host-a, host-b), as vnic's is"),
  overRaw: perPath('each path over the raw ring'),
  overRaw3: Type.Optional(
    perPath('each path over the three-thread raw reference (producer -> forwarder -> consumer): every real path runs three threads or more'),
  ),
  invalid: Type.Optional(Type.Array(Type.String(), { description: 'ratios left null because a cell they pair is not valid, and why' })),
});
export type BenchRatio = Static<typeof BenchRatioSchema>;

export const AcrossRunsSchema = Type.Object({
  size: Type.Integer(),
  placement: PlacementSchema,
  ratio: Type.String({ description: "the ratio's name: accelOverUnaccel, accelOverDom0, vdpaOverVnic, vdpaOverUnaccel, overRaw.PATH, overRaw3.PATH" }),
  median: Num("median across runs of the run's paired ratio"),
  min: Num(),
  max: Num(),
  runs: Type.Integer({ minimum: 1, description: 'runs in which the ratio was measured (not null)' }),
  values: Type.Array(Type.Object({ run: Type.Integer({ minimum: 1 }), value: Num() })),
});
export type AcrossRuns = Static<typeof AcrossRunsSchema>;

export const PairRepSchema = Type.Object({
  sent: Type.Integer({ minimum: 0 }),
  delivered: Type.Integer({ minimum: 0 }),
  dropsCounted: Type.Integer({ minimum: 0 }),
  conserved: Type.Boolean({ description: 'over the N streams together: every frame sent delivered once or counted (drop counters are not per flow)' }),
  aggregateGbps: Num("every pair's delivered bytes over the longest pair's time"),
  minFastPathShare: Type.Number({ minimum: 0, description: "the least fast-path share among the pairs' senders" }),
  perPair: Type.Array(
    Type.Object({
      from: Type.String(),
      to: Type.String(),
      sent: Type.Integer({ minimum: 0 }),
      delivered: Type.Integer({ minimum: 0 }),
      lost: Type.Integer({ minimum: 0, description: 'sent - delivered - too old' }),
      gbps: Num(),
      fastPathShare: Type.Number({ minimum: 0 }),
    }),
  ),
});
export type PairRep = Static<typeof PairRepSchema>;

export const PairCellSchema = Type.Object({
  pairs: Type.Integer({ minimum: 1 }),
  path: Type.Union([Type.Literal('unaccel'), Type.Literal('vnic')]),
  size: Type.Integer({ minimum: 64 }),
  reps: Type.Array(PairRepSchema, { minItems: 1 }),
  median: Type.Object({ aggregateGbps: Num() }),
  spread: Type.Object({ min: Num(), max: Num() }),
  lossRate: Type.Number({ minimum: 0, maximum: 1 }),
  fastPathShare: Type.Number({ minimum: 0, description: "median over repetitions of the least-accelerated pair's share" }),
  valid: Type.Boolean(),
  invalid: Type.Optional(Type.String()),
  note: Type.String(),
});
export type PairCell = Static<typeof PairCellSchema>;

export const PairRatioSchema = Type.Object({
  pairs: Type.Integer({ minimum: 1 }),
  size: Type.Integer(),
  vnicOverUnaccel: Ratio('vnic aggregate over unaccel aggregate, paired per repetition (median)'),
  min: Type.Union([Type.Number(), Type.Null()]),
  max: Type.Union([Type.Number(), Type.Null()]),
  invalid: Type.Optional(Type.Array(Type.String())),
});
export type PairRatio = Static<typeof PairRatioSchema>;

export const CaptureCellSchema = Type.Object({
  path: PathSchema,
  placement: PlacementSchema,
  size: Type.Integer(),
  spec: Type.String({ description: "what was captured: one tap point (the receiver's vif, frontend side) or '*' (every point)" }),
  reps: Type.Array(
    Type.Object({
      offGbps: Num(),
      onGbps: Num(),
      ratio: Num('on / off in this repetition'),
      records: Type.Integer({ minimum: 0 }),
      lost: Type.Integer({ minimum: 0, description: 'frames a full capture buffer could not keep' }),
    }),
    { minItems: 1 },
  ),
  ratio: Num('median over repetitions of on / off'),
  spread: Type.Object({ min: Num(), max: Num() }),
  taps: Type.Integer({ minimum: 0, description: 'tap points captured at' }),
  snaplen: Type.Integer({ minimum: 14 }),
  frames: Type.Optional(Type.Integer({ minimum: 1, description: 'frames per stream (sized per path from a warm-up)' })),
  note: Type.String(),
});
export type CaptureCell = Static<typeof CaptureCellSchema>;

export const QueueCellSchema = Type.Object({
  queues: Type.Integer({ minimum: 1, description: "queues a1's and b1's vifs asked for (and got)" }),
  flows: Type.Integer({ minimum: 1, description: 'streams a1 -> b1 at once, one per TX queue' }),
  path: PathSchema,
  placement: PlacementSchema,
  size: Type.Integer({ minimum: 64 }),
  reps: Type.Array(RepResultSchema, { minItems: 1, description: 'each: the flows together (frames summed; pps and gbps over the longest flow)' }),
  median: Type.Object({ pps: Num(), gbps: Num() }),
  spread: Type.Object({ minGbps: Num(), maxGbps: Num() }),
  lossRate: Type.Number({ minimum: 0, maximum: 1 }),
  perQueue: Type.Object({
    tx: Type.Array(Type.Integer({ minimum: 0 }), { description: "frames a1's netfront put on each TX queue, over the measured repetitions" }),
    rx: Type.Array(Type.Integer({ minimum: 0 }), { description: "frames b1's netback copied into each RX queue, over the measured repetitions" }),
  }),
  note: Type.String(),
});
export type QueueCell = Static<typeof QueueCellSchema>;

export const BenchJsonSchema = Type.Object(
  {
    schema: Type.Literal(BENCH_SCHEMA),
    date: Type.String({ format: 'date-time' }),
    meta: RunMetaSchema,
    machine: Type.Object({
      cores: Type.Integer({ minimum: 1 }),
      node: Type.String(),
      cpu: Type.String(),
      futexRoundTripUs: Type.Optional(
        Type.Object(
          {
            median: Num(),
            p99: Num(),
            roundTrips: Type.Integer({ minimum: 1 }),
            noSleep: Type.Integer({ minimum: 0, description: 'waits that found the answer already there (no sleep)' }),
          },
          {
            description:
              'two worker threads ping-pong on a SharedArrayBuffer word with Atomics.notify / Atomics.wait, measured at the start of the run: µs per round trip (two wake-ups)',
          },
        ),
      ),
    }),
    options: Type.Object({
      sizes: Type.Array(Type.Integer()),
      paths: Type.Array(PathSchema),
      placements: Type.Array(PlacementSchema),
      reps: Type.Integer({ minimum: 1 }),
      quick: Type.Boolean(),
      pcpus: Type.Optional(Type.Integer({ minimum: 1 })),
      runs: Type.Optional(Type.Integer({ minimum: 1, description: '--runs: times the whole matrix was measured' })),
      pairs: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { description: '--pairs: the numbers of concurrent guest pairs measured' })),
      wireGbps: Type.Optional(
        Type.Union([Type.Number({ minimum: 0.001, maximum: 400 }), Type.Null()], {
          description: "--wire-gbps: the line rate (Gbit/s) set on every wire of the bench's topologies; null: none (wires as fast as the NIC thread)",
        }),
      ),
    }),
    threads: Type.Record(
      Type.String(),
      Type.Object({ pcpus: Type.Integer(), threads: Type.Integer(), cores: Type.Integer(), busy: Type.Array(Type.String()), note: Type.String() }),
    ),
    cells: Type.Array(BenchCellSchema, { description: "the first run's (--runs N: every run's are in runs)" }),
    ratios: Type.Array(BenchRatioSchema, { description: "paired: median over repetitions of (a / b) measured in the same repetition (the first run's)" }),
    runs: Type.Optional(
      Type.Array(Type.Object({ run: Type.Integer({ minimum: 1 }), cells: Type.Array(BenchCellSchema), ratios: Type.Array(BenchRatioSchema) }), {
        description: '--runs N (N > 1): every run of the whole matrix, each with fresh simulations, the first included',
      }),
    ),
    acrossRuns: Type.Optional(Type.Array(AcrossRunsSchema, { description: "--runs N: each ratio's median across runs and its min..max" })),
    pairs: Type.Optional(
      Type.Object(
        { cells: Type.Array(PairCellSchema), ratios: Type.Array(PairRatioSchema) },
        { description: '--pairs: N guest pairs a_i -> b_i streaming at once (host-a and host-b with four domUs each), unaccel and vnic' },
      ),
    ),
    micro: Type.Optional(Type.Array(Type.Object({ name: Type.String(), opsPerSec: Num(), margin: Num() }))),
    capture: Type.Optional(Type.Array(CaptureCellSchema, { description: "the capture's cost: the same stream with capture off and on" })),
    queues: Type.Optional(Type.Array(QueueCellSchema, { description: 'multi-queue vifs (--queues): N flows over N queues, unaccel across hosts' })),
    tcp: Type.Optional(TcpSectionSchema),
  },
  { $id: 'https://xsim.invalid/schemas/xsim-bench-6.schema.json', title: 'xsim bench result' },
);
export type BenchJson = Static<typeof BenchJsonSchema>;

/**
 * What --compare needs of an earlier file, of any readable schema: cells with
 * medians and repetitions (other fields may be there or not).
 */
export const ComparableSchema = Type.Object({
  schema: Type.Union(READABLE_SCHEMAS.map((s) => Type.Literal(s))),
  date: Type.String(),
  cells: Type.Array(
    Type.Object({
      path: PathSchema,
      placement: PlacementSchema,
      size: Type.Integer(),
      median: Type.Object({ gbps: Type.Number() }),
      reps: Type.Array(Type.Object({ gbps: Type.Number() }), { minItems: 1 }),
    }),
    { minItems: 1 },
  ),
});
export type Comparable = Static<typeof ComparableSchema>;

/** Problems of `v` against `schema`, one line each ("/cells/3/median/gbps: Expected number"); empty = valid. */
export function schemaProblems(schema: TSchema, v: unknown, max = 20): string[] {
  const out: string[] = [];
  for (const e of Value.Errors(schema, v)) {
    out.push(`${e.path || '/'}: ${e.message}${e.value === undefined ? '' : `, got ${JSON.stringify(e.value)?.slice(0, 60)}`}`);
    if (out.length >= max) break;
  }
  return out;
}

/** Problems with a parsed benchmark file of this schema (empty = valid). */
export function validateBenchJson(v: unknown): string[] {
  return schemaProblems(BenchJsonSchema, v);
}
