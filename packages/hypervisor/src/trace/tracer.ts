/**
 * Tracing: what each thread did, as Chrome / Perfetto trace events. One Tracer
 * per thread (this module's `tracer`: every kernel on a pCPU shares it, as
 * they share the pCPU). Drivers test `tracer.on` — the whole cost when off —
 * and record on the track of whichever domain's turn is running (the
 * scheduler sets `tracer.track`). The toolstack starts, drains and stops
 * every thread's tracer and writes one JSON file (cli/toolstack/trace.ts).
 *
 * What is recorded:
 *   run      a domain's busy turns, coalesced into spans (gaps < 20 us joined)
 *   asleep   a pCPU blocked in Atomics.wait (track: the pCPU)
 *   instants ring pushes and event-channel notifications, xenbus state changes,
 *            accelerator channel messages, filter insertions
 *   slices   batches of grant copies
 *   hops     a sampled frame passing a tap point, for its journey (the
 *            toolstack links a frame's hops with flow arrows)
 *
 * Timestamps are microseconds since the trace started: the process-wide
 * monotonic clock on threads (the same on every worker), the virtual clock in
 * a deterministic run.
 */
import { realClock, type Clock } from '../sched/clock.ts';
import type { Vcpu } from '../sched/core.ts';
import { RpcOpServer, type OpHandlers } from '../rpc-server.ts';
import { TRACE_OPS, type TraceOp, type TraceOps } from '../abi/sched-ops.ts';
import type { OpArgs, OpReply } from '../abi/ops.ts';

export type { TraceArgs, TraceBatch, TraceEvent } from '../abi/sched-ops.ts';
import type { TraceArgs, TraceBatch, TraceEvent } from '../abi/sched-ops.ts';

export const EV_SPAN = 1;
export const EV_INSTANT = 2;
export const EV_HOP = 3;

/** A pCPU's own track (its sleeps), apart from its domains' (uids; the NIC hardware's is -1). */
export const PCPU_TRACK_BASE = -1000;
export const pcpuTrack = (pcpu: number): number => PCPU_TRACK_BASE - pcpu;

const GAP_US = 20;
/** Of a stream's frames, those whose sequence number is a multiple of this have their journey traced (default). */
export const DEFAULT_FRAME_SAMPLE = 1024;

export class Tracer {
  /** Tracing now: the one test a hook makes. */
  on = false;
  /** The domain whose turn runs now (0: the thread's own work). */
  track = 0;
  private events: TraceEvent[] = [];
  private dropped = 0;
  private limit = 1_000_000;
  private sample = DEFAULT_FRAME_SAMPLE;
  private nowFn: () => number = () => 0;
  /** Open run spans per domain: coalesced until a gap. */
  private readonly open = new Map<number, [start: number, end: number]>();
  /** Told when tracing starts or stops (capture sinks turn their taps on for hops); held weakly, as a domain's sink goes with it. */
  private readonly listeners = new Set<WeakRef<{ traceChanged(): void }>>();

  /**
   * Start: `clock` is the thread's (realClock: the shared monotonic one),
   * `startNs` the toolstack's reading of it at the start (threads), or the
   * virtual time in ms (deterministic).
   */
  start(o: { clock: Clock; startNs?: number; limit?: number; sample?: number }): void {
    this.events = [];
    this.dropped = 0;
    this.open.clear();
    this.limit = o.limit ?? 1_000_000;
    this.sample = Math.max(1, o.sample ?? DEFAULT_FRAME_SAMPLE);
    if (o.clock === realClock) {
      const base = o.startNs ?? 0;
      this.nowFn = () => {
        const h = process.hrtime();
        return (h[0] * 1e9 + h[1] - base) / 1000;
      };
    } else {
      const base = o.clock.now();
      this.nowFn = () => (o.clock.now() - base) * 1000;
    }
    this.on = true;
    this.tell();
  }

  /** What was recorded since the last drain (open run spans are closed at their last end). */
  drain(): TraceBatch {
    for (const [track, [s, e]] of this.open) this.push([EV_SPAN, s, e - s, track, 'run', null, null]);
    this.open.clear();
    const b = { events: this.events, dropped: this.dropped };
    this.events = [];
    this.dropped = 0;
    return b;
  }

  stop(): TraceBatch {
    const b = this.drain();
    this.on = false;
    this.tell();
    return b;
  }

  /** Microseconds since the trace started. */
  now(): number {
    return this.nowFn();
  }

  listen(l: { traceChanged(): void }): void {
    this.listeners.add(new WeakRef(l));
  }

  private tell(): void {
    for (const r of this.listeners) {
      const l = r.deref();
      if (l) l.traceChanged();
      else this.listeners.delete(r);
    }
  }

  /** A domain's turn from `start` (us) until now that did work: joined to its open span if the gap is short. */
  busy(track: number, start: number): void {
    const end = this.nowFn();
    const o = this.open.get(track);
    if (o && start - o[1] < GAP_US) {
      o[1] = end;
      return;
    }
    if (o) this.push([EV_SPAN, o[0], o[1] - o[0], track, 'run', null, null]);
    this.open.set(track, [start, end]);
  }

  /** A span on an explicit track (a pCPU's sleep) or on the running domain's, from `start` until now. */
  span(name: string, start: number, args: TraceArgs | null = null, track = this.track): void {
    this.push([EV_SPAN, start, this.nowFn() - start, track, name, args, null]);
  }

  instant(name: string, args: TraceArgs | null = null): void {
    this.push([EV_INSTANT, this.nowFn(), 0, this.track, name, args, null]);
  }

  /**
   * A frame passing tap point `where`: recorded when it is a sampled frame of
   * a UDP stream (payload: seq u32, stream id u32, big-endian; credits, whose
   * payload is 8 octets, are not frames of the stream).
   */
  hop(where: string, u8: Uint8Array, off: number, len: number, dir: number): void {
    const id = streamFrameId(u8, off, len, this.sample);
    if (id !== null) this.push([EV_HOP, this.nowFn(), 0, this.track, where, { dir: dir === 1 ? 'in' : 'out' }, id]);
  }

  private push(e: TraceEvent): void {
    if (this.events.length >= this.limit) {
      this.dropped++;
      return;
    }
    this.events.push(e);
  }
}

/** "stream/seq" of a sampled UDP stream frame, or null (not IPv4/UDP, a credit, or not sampled). */
export function streamFrameId(u8: Uint8Array, off: number, len: number, sample: number): string | null {
  if (len < 14 + 20 + 8 + 12 || u8[off + 12] !== 0x08 || u8[off + 13] !== 0x00) return null;
  const ihl = (u8[off + 14] & 0x0f) * 4;
  if (ihl < 20 || u8[off + 14 + 9] !== 17) return null;
  const udp = off + 14 + ihl;
  const payloadLen = ((u8[udp + 4] << 8) | u8[udp + 5]) - 8;
  if (payloadLen < 12 || udp + 16 > off + len) return null;
  const p = udp + 8;
  const seq = ((u8[p] << 24) | (u8[p + 1] << 16) | (u8[p + 2] << 8) | u8[p + 3]) >>> 0;
  if (seq % sample !== 0) return null;
  const stream = ((u8[p + 4] << 24) | (u8[p + 5] << 16) | (u8[p + 6] << 8) | u8[p + 7]) >>> 0;
  return `${stream}/${seq}`;
}

/**
 * A vCPU's turn with the tracer on (both schedulers run it): its events go
 * on its domain's track, and a turn that worked joins its run span.
 */
export function tracedTurn(v: Vcpu, now: number): number {
  const t0 = tracer.now();
  tracer.track = v.uid ?? 0;
  const n = v.turn(now);
  tracer.track = 0;
  if (n > 0) tracer.busy(v.uid ?? 0, t0);
  return n;
}

/** A ring's producer index published (and whether the other end asked to be notified). */
export function traceRingPush(ring: string, prod: number, notify: boolean): void {
  tracer.instant(`ring push: ${ring}`, { prod, notify });
}

/** This thread's tracer. */
export const tracer = new Tracer();

/** The trace ops a thread answers (abi/sched-ops.ts's TRACE_OPS: pCPU workers on their sched channel; the main thread directly). */
export function traceHandlers(clock: Clock): OpHandlers<TraceOps> {
  return {
    trace_start: (a) => {
      tracer.start({
        clock,
        startNs: a.startNs,
        limit: a.limit !== undefined && a.limit > 0 ? a.limit : undefined,
        sample: a.sample !== undefined && a.sample > 0 ? a.sample : undefined,
      });
      return { tracing: true };
    },
    trace_drain: () => tracer.drain(),
    trace_stop: () => tracer.stop(),
  };
}

/** One trace op on this thread, its arguments checked (the main thread's share of a runtime's trace()). */
export function traceOp<K extends TraceOp>(op: K, args: OpArgs<TraceOps, K>, clock: Clock): OpReply<TraceOps, K> {
  return new RpcOpServer('trace', TRACE_OPS, traceHandlers(clock)).call(op, args) as OpReply<TraceOps, K>;
}
