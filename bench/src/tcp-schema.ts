/**
 * The TCP section of a bench result (schema "xsim-bench/6", `tcp`): a
 * TypeBox schema as the rest of schema.ts, kept in its own file.
 *
 *   tcp?: {
 *     options: { size, bytes, rrCount, reqSize, rspSize, writeSize, verify, udpFrames, reps, paths, placements, offloads },
 *     cells: [{ path: "unaccel" | "vnic" | "dom0", placement, offloads: "on" | "off", size, from, to, busy,
 *               reps: [{ udp: { sent, delivered, conserved, gbps }, stream: { bytes, elapsedMs, gbps, complete,
 *                        corrupt, retransmits, failed, sender, receiver }, rr: { transactions, tps, p50Us, p99Us,
 *                        complete, failed }, fastPathShare, ok, why? }],
 *               median: { gbps, udpGbps, tps, p50Us, p99Us }, spread: { minGbps, maxGbps, minTps, maxTps },
 *               fastPathShare, valid, invalid? }],
 *     ratios: [{ name, placement, a, b, median, min, max, values, invalid? }],   // paired per repetition
 *     notes: [string]                        // what the offload switch reaches, what gso does today
 *   }
 */
import { Type, type Static } from '@sinclair/typebox';

export const TCP_PATHS = ['unaccel', 'vnic', 'dom0'] as const;
export type TcpPath = (typeof TCP_PATHS)[number];
export const OFFLOAD_MODES = ['on', 'off'] as const;
export type OffloadMode = (typeof OFFLOAD_MODES)[number];

const Num = (description?: string) => Type.Number(description ? { description } : {});
const Count = (description?: string) => Type.Integer({ minimum: 0, ...(description ? { description } : {}) });
const Counters = (description: string) => Type.Record(Type.String(), Type.Number(), { description });
const PlacementSchema = Type.Union([Type.Literal('cross'), Type.Literal('same')]);
const OffloadSchema = Type.Union(
  OFFLOAD_MODES.map((m) => Type.Literal(m)),
  { description: 'on: the vifs as booted; off: the vifs of both ends with "offloads": {"csum": false, "gso": false}' },
);

export const TcpRepSchema = Type.Object({
  udp: Type.Object(
    { sent: Count(), delivered: Count(), conserved: Type.Boolean(), gbps: Num() },
    { description: 'a udp-stream (runStream, as the matrix measures) on the same ends just before the TCP stream' },
  ),
  stream: Type.Object(
    {
      bytes: Count('octets the sink received'),
      elapsedMs: Num(),
      gbps: Num('goodput: octets received over the first to last octet'),
      complete: Type.Boolean({ description: 'every octet sent and received, neither end timed out' }),
      corrupt: Count('octets that differed from the stream pattern (0 unless verified)'),
      retransmits: Count("the sender's tcpTxRetransmits over the stream"),
      failed: Counters('failure reasons from either end (connect refused, reset, ...)'),
      sender: Counters("the sender's TCP counters that moved"),
      receiver: Counters("the receiver's TCP counters that moved"),
    },
    { description: 'tcp-stream (netperf TCP_STREAM, iperf3 -n)' },
  ),
  rr: Type.Object(
    {
      transactions: Count(),
      tps: Num('transactions per second'),
      p50Us: Num(),
      p99Us: Num(),
      complete: Type.Boolean(),
      failed: Counters('failure reasons'),
    },
    { description: 'tcp-rr (netperf TCP_RR): one connection, request and response of reqSize / rspSize octets' },
  ),
  fastPathShare: Type.Number({
    minimum: 0,
    description: "frames the TCP sender's frontend took on the fast path (txTaken) / its frames sent (txTaken + txPackets) over the stream; 0 off a guest",
  }),
  ackFastPathShare: Type.Number({
    minimum: 0,
    description:
      "the same for the receiver's frames over the stream (its ACKs): vnic learns a filter per destination port, so the ACKs to each new connection's port go by dom0 until learnt; 0 off a guest",
  }),
  csumPartialShare: Type.Union([Type.Number({ minimum: 0 }), Type.Null()], {
    description:
      "frames the sender's stack handed its netfront with a partial checksum (txCsumPartial) / its frames sent over the stream: about 1 with checksum offload on, 0 off; null for dom0 (no netfront)",
  }),
  ok: Type.Boolean({ description: 'the stream and the transactions complete, no corrupt octet, the udp-stream conserved' }),
  why: Type.Optional(Type.String()),
});
export type TcpRep = Static<typeof TcpRepSchema>;

export const TcpCellSchema = Type.Object({
  path: Type.Union(TCP_PATHS.map((p) => Type.Literal(p))),
  placement: PlacementSchema,
  offloads: OffloadSchema,
  size: Type.Integer({ description: 'the MTU-sized frame, bytes (MTU 1500)' }),
  from: Type.String(),
  to: Type.String(),
  busy: Type.Array(Type.String(), { description: 'the domains the cell keeps busy and their pCPUs, and the NIC thread' }),
  reps: Type.Array(TcpRepSchema, { minItems: 1 }),
  median: Type.Object({ gbps: Num('tcp-stream goodput'), udpGbps: Num(), tps: Num(), p50Us: Num(), p99Us: Num() }),
  spread: Type.Object({ minGbps: Num(), maxGbps: Num(), minTps: Num(), maxTps: Num() }),
  fastPathShare: Type.Number({ minimum: 0, description: 'median over repetitions' }),
  valid: Type.Boolean({
    description: 'false: a repetition did not complete, had corrupt octets or lost UDP frames uncounted, or vnic under 0.99 on the fast path',
  }),
  invalid: Type.Optional(Type.String()),
});
export type TcpCell = Static<typeof TcpCellSchema>;

export const TcpRatioSchema = Type.Object({
  name: Type.String({
    description:
      "'tcp-stream vnic/unaccel', 'tcp-stream vnic/dom0', 'tcp-rr vnic/unaccel', 'offloads on/off PATH', 'tcp/udp PATH' (each with its offloads where it has them)",
  }),
  placement: PlacementSchema,
  offloads: Type.Union([OffloadSchema, Type.Null()], { description: 'the offloads both cells had; null for on/off' }),
  a: Type.String({ description: "the numerator's cell: path placement offloads workload" }),
  b: Type.String(),
  median: Type.Union([Type.Number(), Type.Null()], { description: 'median over repetitions of a / b measured in the same repetition; null: not valid' }),
  min: Type.Union([Type.Number(), Type.Null()]),
  max: Type.Union([Type.Number(), Type.Null()]),
  values: Type.Array(Type.Number(), { description: 'per repetition' }),
  invalid: Type.Optional(Type.String()),
});
export type TcpRatio = Static<typeof TcpRatioSchema>;

export const TcpSectionSchema = Type.Object(
  {
    options: Type.Object({
      size: Type.Integer(),
      bytes: Count('octets per tcp-stream repetition (per cell; sized from the warm-up unless --tcp-bytes)'),
      bytesPerCell: Type.Record(Type.String(), Type.Integer({ minimum: 0 }), { description: 'cell -> octets per repetition' }),
      rrCount: Type.Record(Type.String(), Type.Integer({ minimum: 0 }), { description: 'cell -> transactions per repetition' }),
      udpFrames: Type.Record(Type.String(), Type.Integer({ minimum: 0 }), { description: 'cell -> udp-stream frames per repetition' }),
      reqSize: Type.Integer(),
      rspSize: Type.Integer(),
      writeSize: Type.Integer(),
      verify: Type.Boolean({ description: 'the sink compared every octet with the stream pattern' }),
      reps: Type.Integer({ minimum: 1 }),
      paths: Type.Array(Type.String()),
      placements: Type.Array(PlacementSchema),
      offloads: Type.Array(OffloadSchema),
    }),
    cells: Type.Array(TcpCellSchema),
    ratios: Type.Array(TcpRatioSchema),
    notes: Type.Array(Type.String()),
  },
  { description: '--tcp: tcp-stream and tcp-rr on unaccel, vnic and dom0 at MTU 1500, offloads on and off, with a udp-stream beside each' },
);
export type TcpSection = Static<typeof TcpSectionSchema>;
