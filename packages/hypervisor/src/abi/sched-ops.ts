/**
 * A pCPU worker's management channel (CH.sched), from the main thread's
 * runtime: which domains the worker runs, and its tracer.
 *
 *   op            args                                         reply
 *   create        {spec: packed DomainSpec}  shared: its SABs  {pcpu}: the kernel booted here
 *   destroy       {uid: number}                                {destroyed}: stopped with no cooperation
 *   reap          {uid}                                        {reaped}: a domain that shut itself down, taken out
 *   route         {addr: number, via: number}                  true: envelopes for addr go over link `via`
 *   stats         {}                                           the worker's counters
 *   shutdown      {}                                           true: the worker stops
 *   trace_start   {startNs?: number, limit?: number, sample?: number}   {tracing: true}
 *   trace_drain   {}                                           TraceBatch
 *   trace_stop    {}                                           TraceBatch; tracing stops
 *
 * And one event, worker -> main thread:
 *   crashed       {uid: number, error: string}                 a kernel threw out of its turn
 */
import { Type } from '@sinclair/typebox';
import { NO_ARGS, op, replyOf, type OpName } from './ops.ts';

export type TraceArgs = Record<string, string | number | boolean>;

/** One event: kind, start (us), duration (us; 0 for instants), track (domain uid, or pcpuTrack(N)), name, args, frame id (hops). */
export type TraceEvent = [kind: number, ts: number, dur: number, track: number, name: string, args: TraceArgs | null, frame: string | null];

/** What a trace drain hands the toolstack: a thread's events since the last drain. */
export interface TraceBatch {
  events: TraceEvent[];
  /** Events not kept because the limit was reached. */
  dropped: number;
}

/** The trace ops every thread answers (pCPU workers here; the main thread directly). */
export const TRACE_OPS = {
  trace_start: op(
    Type.Object({ startNs: Type.Optional(Type.Number()), limit: Type.Optional(Type.Number()), sample: Type.Optional(Type.Number()) }),
    replyOf<{ tracing: boolean }>(),
  ),
  trace_drain: op(NO_ARGS, replyOf<TraceBatch>()),
  trace_stop: op(NO_ARGS, replyOf<TraceBatch>()),
} as const;
export type TraceOps = typeof TRACE_OPS;
export type TraceOp = OpName<TraceOps>;

const uid = Type.Number();

export const SCHED_OPS = {
  create: op(Type.Object({ spec: Type.Unknown() }), replyOf<{ pcpu: number }>()),
  destroy: op(Type.Object({ uid }), replyOf<{ destroyed: boolean }>()),
  reap: op(Type.Object({ uid }), replyOf<{ reaped: boolean }>()),
  route: op(Type.Object({ addr: Type.Number(), via: Type.Number() }), replyOf<true>()),
  stats: op(NO_ARGS, replyOf<Record<string, unknown>>()),
  shutdown: op(NO_ARGS, replyOf<true>()),
  ...TRACE_OPS,
} as const;
export type SchedOps = typeof SCHED_OPS;

/** Events a worker sends the runtime. */
export const SCHED_EVENTS = {
  crashed: op(Type.Object({ uid, error: Type.String() }), replyOf<void>()),
} as const;
export type SchedEvents = typeof SCHED_EVENTS;
