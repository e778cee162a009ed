/**
 * `xsim run -j`'s output (schema "xsim-run/1"), defined once as TypeBox
 * schemas: the stream's, the intervals' and the capture's TypeScript types
 * derive from these, and `xsim schema` publishes the whole as
 * schemas/xsim-run-1.schema.json.
 */
import { Type, type Static } from '@sinclair/typebox';
import { RunMetaSchema } from './meta.ts';

export const RUN_SCHEMA = 'xsim-run/1';

export const IntervalSampleSchema = Type.Object({
  start: Type.Number({ description: "seconds since the stream started, on the simulation's clock" }),
  end: Type.Number(),
  frames: Type.Integer({ minimum: 0, description: 'frames delivered in the interval (first copies)' }),
  gbps: Type.Number(),
  lost: Type.Integer({ minimum: 0, description: 'sequence numbers passed over in the interval and not (yet) delivered: lost, or still to come out of order' }),
});
export type IntervalSample = Static<typeof IntervalSampleSchema>;

export const StreamResultSchema = Type.Object({
  from: Type.String({ description: 'HOST/DOMAIN' }),
  to: Type.String(),
  count: Type.Integer({ minimum: 0 }),
  frameSize: Type.Integer({ minimum: 64 }),
  sent: Type.Integer({ minimum: 0 }),
  delivered: Type.Integer({ minimum: 0 }),
  lost: Type.Integer({ minimum: 0 }),
  duplicated: Type.Integer({ minimum: 0 }),
  reordered: Type.Integer({ minimum: 0 }),
  tooOld: Type.Integer({ minimum: 0 }),
  elapsedMs: Type.Number(),
  pps: Type.Number(),
  gbps: Type.Number(),
  senderMs: Type.Number(),
  stalls: Type.Integer({ minimum: 0 }),
  complete: Type.Boolean(),
  reorderSamples: Type.Array(Type.Tuple([Type.Number(), Type.Number()])),
});
export type StreamResult = Static<typeof StreamResultSchema>;

/** What moved in an end's TCP counters during a run (only the counters that moved). */
export const TcpDeltaSchema = Type.Record(Type.String(), Type.Number(), {
  description: "the TCP counters this end's stack moved during the run (those that moved)",
});
const failures = Type.Record(Type.String(), Type.Integer({ minimum: 1 }), {
  description: 'connections that ended otherwise than by an orderly close, by reason',
});

export const TcpStreamRunSchema = Type.Object({
  from: Type.String(),
  to: Type.String(),
  flows: Type.Integer({ minimum: 0 }),
  bytes: Type.Integer({ minimum: 0, description: 'octets the sink received' }),
  sentBytes: Type.Integer({ minimum: 0, description: 'octets the sender saw acknowledged' }),
  elapsedMs: Type.Number({ description: "from the sink's first octet to its last" }),
  gbps: Type.Number(),
  corrupt: Type.Integer({ minimum: 0, description: "octets that differed from the stream's pattern (when the sink checked)" }),
  complete: Type.Boolean(),
  failed: failures,
  sender: TcpDeltaSchema,
  receiver: TcpDeltaSchema,
});
export type TcpStreamRun = Static<typeof TcpStreamRunSchema>;

export const TcpRrRunSchema = Type.Object({
  from: Type.String(),
  to: Type.String(),
  transactions: Type.Integer({ minimum: 0 }),
  elapsedMs: Type.Number(),
  tps: Type.Number({ description: 'transactions per second' }),
  p50Us: Type.Number(),
  p99Us: Type.Number(),
  minUs: Type.Number(),
  maxUs: Type.Number(),
  meanUs: Type.Number(),
  complete: Type.Boolean(),
  failed: failures,
  sender: TcpDeltaSchema,
  receiver: TcpDeltaSchema,
});
export type TcpRrRun = Static<typeof TcpRrRunSchema>;

export const TcpIntervalSampleSchema = Type.Object({
  start: Type.Number({ description: "seconds since the stream started, on the simulation's clock" }),
  end: Type.Number(),
  bytes: Type.Integer({ minimum: 0, description: 'octets the sink received in the interval' }),
  gbps: Type.Number(),
  retransmits: Type.Integer({ minimum: 0, description: "segments the sender sent again in the interval (iperf3's Retr)" }),
});
export type TcpIntervalSample = Static<typeof TcpIntervalSampleSchema>;

export const CaptureSummarySchema = Type.Object({
  file: Type.String(),
  bytes: Type.Integer({ minimum: 0 }),
  interfaces: Type.Array(
    Type.Object({
      name: Type.String({ description: 'the tap point, as the pcapng IDB names it' }),
      packets: Type.Integer({ minimum: 0 }),
      drops: Type.Integer({ minimum: 0, description: 'of them, frames captured where they were dropped' }),
      lost: Type.Integer({ minimum: 0, description: 'frames a full capture buffer could not keep' }),
    }),
  ),
  badBatches: Type.Optional(Type.Integer({ minimum: 1, description: 'drains a kernel answered with something no capture sink writes: skipped' })),
});
export type CaptureSummary = Static<typeof CaptureSummarySchema>;

export const TraceSummarySchema = Type.Object({
  file: Type.String(),
  events: Type.Integer({ minimum: 0 }),
  dropped: Type.Integer({ minimum: 0, description: 'events a thread could not keep (its limit reached)' }),
  frames: Type.Integer({ minimum: 0, description: 'frames whose journey was traced' }),
  hops: Type.Integer({ minimum: 0, description: 'tap points those frames passed, in all' }),
  bytes: Type.Integer({ minimum: 0 }),
});
export type TraceSummary = Static<typeof TraceSummarySchema>;

export const PingSchema = Type.Object({
  count: Type.Integer({ minimum: 0 }),
  lost: Type.Integer({ minimum: 0 }),
  minUs: Type.Number(),
  p50Us: Type.Number(),
  p99Us: Type.Number(),
  maxUs: Type.Number(),
  meanUs: Type.Number(),
});

export const RunJsonSchema = Type.Object(
  {
    schema: Type.Literal(RUN_SCHEMA),
    meta: RunMetaSchema,
    topology: Type.String(),
    workload: Type.Optional(
      Type.Union([Type.Literal('udp-stream'), Type.Literal('tcp-stream'), Type.Literal('tcp-rr'), Type.Literal('ping')], {
        description: 'what ran after the ping (absent: udp-stream, as before workloads)',
      }),
    ),
    ping: PingSchema,
    stream: Type.Optional(StreamResultSchema),
    tcpStream: Type.Optional(TcpStreamRunSchema),
    tcpRr: Type.Optional(TcpRrRunSchema),
    intervals: Type.Optional(Type.Array(Type.Union([IntervalSampleSchema, TcpIntervalSampleSchema]))),
    capture: Type.Optional(CaptureSummarySchema),
    trace: Type.Optional(TraceSummarySchema),
    stats: Type.Record(Type.String(), Type.Unknown(), {
      description: "every domain's and the NIC fabric's counters after the stream, by HOST/DOMAIN and 'fabric'",
    }),
  },
  { $id: 'https://xsim.invalid/schemas/xsim-run-1.schema.json', title: 'xsim run -j result' },
);
export type RunJson = Static<typeof RunJsonSchema>;
