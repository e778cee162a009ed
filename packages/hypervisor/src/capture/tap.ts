/**
 * Tap points: where a frame can be captured. Each kernel (a domain, or the
 * NIC hardware) has one CaptureSink; its drivers register a Tap per point
 * (`host-a/vif1.0`, `host-a/a1/vif0`, `host-b/nic/vi3`…) and, on every frame,
 * test `tap.on` — the whole cost of capture when it is off. When on, the
 * frame (up to the snap length) is appended to the sink's private buffer with
 * a nanosecond timestamp; the toolstack drains the buffer (capture_drain) and
 * writes the pcapng file. A frame dropped where a tap sees it is recorded
 * with the drop counter's name, which becomes the packet's comment.
 *
 * A record in the buffer (little-endian), then the captured octets, padded
 * to 4:
 *
 *    0 timestamp, ns (u64)   8 tap index (u16)   10 direction (u8)
 *   12 original length (u32) 16 captured length (u32) 20 comment index (i32, -1: none)
 */
import { realClock, type Clock } from '../sched/clock.ts';

const REC = 24;

/** Timestamps in ns: the process-wide monotonic clock on real threads (the same on every worker), else the virtual clock. */
export function captureClock(clock: Clock): () => bigint {
  return clock === realClock ? () => process.hrtime.bigint() : () => BigInt(Math.round(clock.now() * 1e6));
}

/** What a drain hands the toolstack. */
export interface CaptureBatch {
  /** Every tap point of the sink, by index (records name them by index). */
  taps: string[];
  comments: string[];
  /** Records as laid out above. */
  data: Uint8Array;
  /** Per tap index: frames seen while capturing, and those not kept because the buffer was full. */
  seen: number[];
  lost: number[];
}

export class Tap {
  /** Capturing now: the one test a driver makes per frame. */
  on = false;
  seen = 0;
  lost = 0;
  released = false;

  constructor(
    readonly name: string,
    readonly index: number,
    private readonly sink: CaptureSink,
  ) {}

  /** This point is gone (its device removed): no longer listed. */
  release(): void {
    this.sink.release(this);
  }

  /** A frame passing this point (dir: DIR_INBOUND or DIR_OUTBOUND). */
  frame(u8: Uint8Array, off: number, len: number, dir: number): void {
    this.sink.record(this, u8, off, len, dir, -1);
  }

  /** A frame dropped at this point, counted in `counter` (its path in the kernel's stats). */
  drop(u8: Uint8Array, off: number, len: number, dir: number, counter: string): void {
    this.sink.record(this, u8, off, len, dir, this.sink.comment(counter));
  }
}

/**
 * What a capture spec selects: a tap point's name, a glob (`*` matches any
 * run of characters, `/` included), or a prefix ending at a `/` (a host name
 * selects all of that host's points).
 */
export function tapPattern(spec: string): RegExp {
  const glob = spec
    .split('*')
    .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^(?:${glob})(?:/.*)?$`);
}

export class CaptureSink {
  private readonly taps: Tap[] = [];
  private readonly byName = new Map<string, Tap>();
  private comments: string[] = [];
  private readonly commentIds = new Map<string, number>();
  private buf: Uint8Array = new Uint8Array(0);
  private dv: DataView = new DataView(this.buf.buffer);
  private used = 0;
  private snaplen = 262_144;
  private limit = 32 << 20;
  /** While capturing: what the capture asked for, so a point that appears later (a VI attached, a vif added) is captured too. */
  private patterns: RegExp[] = [];

  constructor(private readonly now: () => bigint) {}

  /** The tap named `name`, registered on first use (a vif that comes back gets its old tap again). */
  tap(name: string): Tap {
    const t = this.byName.get(name);
    if (t) {
      t.released = false;
      return t;
    }
    const n = new Tap(name, this.taps.length, this);
    n.on = this.patterns.some((p) => p.test(name));
    this.taps.push(n);
    this.byName.set(name, n);
    return n;
  }

  /**
   * A point that is gone (a vif removed, a VI finalised): no longer listed.
   * It stays as it was otherwise, so a device that comes back under the same
   * name (a re-attached VI) is captured again by a capture still running.
   */
  release(t: Tap): void {
    t.released = true;
  }

  names(): string[] {
    return this.taps.filter((t) => !t.released).map((t) => t.name);
  }

  /**
   * Capture at the points these specs select (see tapPattern), now and any
   * that appear until stop(), each frame cut to `snaplen`; buffer at most
   * `limit` octets between drains. Returns the points on now.
   */
  start(specs: readonly string[], snaplen: number, limit = 32 << 20): string[] {
    this.snaplen = snaplen;
    this.limit = limit;
    this.patterns = specs.map(tapPattern);
    const on: string[] = [];
    for (const t of this.taps) {
      t.on = this.patterns.some((p) => p.test(t.name));
      t.seen = t.lost = 0;
      if (t.on && !t.released) on.push(t.name);
    }
    return on;
  }

  /** What was recorded since the last drain; the buffer starts again. */
  drain(): CaptureBatch {
    const out: CaptureBatch = {
      taps: this.taps.map((t) => t.name),
      comments: this.comments,
      data: this.buf.slice(0, this.used),
      seen: this.taps.map((t) => t.seen),
      lost: this.taps.map((t) => t.lost),
    };
    this.used = 0;
    return out;
  }

  /** Stop capturing everywhere; what was left is returned. */
  stop(): CaptureBatch {
    this.patterns = [];
    for (const t of this.taps) t.on = false;
    const b = this.drain();
    if (this.buf.length > 1 << 20) this.setBuffer(new Uint8Array(0));
    return b;
  }

  comment(text: string): number {
    let id = this.commentIds.get(text);
    if (id === undefined) {
      id = this.comments.length;
      this.comments.push(text);
      this.commentIds.set(text, id);
    }
    return id;
  }

  record(t: Tap, u8: Uint8Array, off: number, len: number, dir: number, comment: number): void {
    t.seen++;
    const cap = Math.min(len, this.snaplen);
    const need = REC + ((cap + 3) & ~3);
    if (this.used + need > this.buf.length && !this.grow(this.used + need)) {
      t.lost++;
      return;
    }
    const dv = this.dv;
    const at = this.used;
    dv.setBigUint64(at, this.now(), true);
    dv.setUint16(at + 8, t.index, true);
    dv.setUint8(at + 10, dir);
    dv.setUint32(at + 12, len, true);
    dv.setUint32(at + 16, cap, true);
    dv.setInt32(at + 20, comment, true);
    this.buf.set(u8.subarray(off, off + cap), at + REC);
    this.used += need;
  }

  private grow(need: number): boolean {
    if (need > this.limit) return false;
    const next = new Uint8Array(Math.min(this.limit, Math.max(need, this.buf.length * 2, 1 << 16)));
    next.set(this.buf.subarray(0, this.used));
    this.setBuffer(next);
    return true;
  }

  private setBuffer(b: Uint8Array<ArrayBuffer>): void {
    this.buf = b;
    this.dv = new DataView(b.buffer);
  }
}

/** A tap point that is never on: for drivers built without a capture sink (unit tests, tools). */
export function offTap(name = 'off'): Tap {
  return new CaptureSink(() => 0n).tap(name);
}

/** One record of a batch, decoded (the toolstack's side). */
export interface CaptureRecord {
  tsNs: bigint;
  tap: number;
  dir: number;
  origLen: number;
  data: Uint8Array;
  comment: number;
}

/** Walk a batch's records; a record that does not fit what is left is an error (the batch came from our own sink). */
export function* captureRecords(data: Uint8Array): Generator<CaptureRecord> {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  while (at + REC <= data.length) {
    const cap = dv.getUint32(at + 16, true);
    const end = at + REC + ((cap + 3) & ~3);
    if (end > data.length) throw new Error(`capture batch: record at ${at} of ${cap} octets runs past its ${data.length}`);
    yield { tsNs: dv.getBigUint64(at, true), tap: dv.getUint16(at + 8, true), dir: dv.getUint8(at + 10), origLen: dv.getUint32(at + 12, true), data: data.subarray(at + REC, at + REC + cap), comment: dv.getInt32(at + 20, true) };
    at = end;
  }
}

/** The capture ops every kernel answers on its control channel (undefined: not a capture op). */
export const CAPTURE_OPS = ['capture_taps', 'capture_start', 'capture_drain', 'capture_stop'] as const;

export function captureOp(sink: CaptureSink, op: string, args: Record<string, unknown>): { taps: string[] } | CaptureBatch | undefined {
  switch (op) {
    case 'capture_taps':
      return { taps: sink.names() };
    case 'capture_start': {
      const names = Array.isArray(args.specs) ? args.specs.filter((x): x is string => typeof x === 'string') : [];
      const snaplen = typeof args.snaplen === 'number' && args.snaplen > 0 ? args.snaplen : 262_144;
      const limit = typeof args.limit === 'number' && args.limit > 0 ? args.limit : undefined;
      return { taps: sink.start(names, snaplen, limit) };
    }
    case 'capture_drain':
      return sink.drain();
    case 'capture_stop':
      return sink.stop();
    default:
      return undefined;
  }
}
