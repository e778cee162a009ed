/**
 * Tap points: where a frame can be captured. Each kernel (a domain, or the
 * NIC hardware) has one CaptureSink; its drivers register a Tap per point
 * (`host-a/vif1.0`, `host-a/a1/vif0`, `host-b/nic/vi3`…) and, on every frame,
 * test `tap.on` — the whole cost of capture when it is off. When on, the
 * frame (up to the snap length) is written into the sink's buffer as a
 * finished pcapng Enhanced Packet Block (pcapng.ts), timestamped in ns since
 * the epoch, its interface id the tap's index here; the toolstack drains the
 * buffer (capture_drain), sets each block's interface id to the file's and
 * merges the kernels' blocks by time: no record is encoded twice, and none is
 * built on the toolstack's thread.
 *
 * On threads the toolstack hands each sink two SharedArrayBuffers: the sink
 * fills one while the toolstack reads the other, and a drain answers only
 * which one and how far, so no record is copied between threads. (A drain is
 * asked for only after the previous one was written out, so the buffer the
 * sink turns back to is free.) A frame dropped where a tap sees it carries
 * the drop counter's full name as its comment.
 */
import { realClock, type Clock } from '../sched/clock.ts';
import { tracer } from '../trace/tracer.ts';
import { BT_EPB, EPB_TS_HIGH, EPB_TS_LOW, enhancedPacketLength, writeEnhancedPacket } from './pcapng.ts';
import type { OpHandlers } from '../rpc-server.ts';
import type { CaptureBatch, CaptureOps } from '../abi/kernel-ops.ts';

export type { CaptureBatch };

const utf8 = new TextEncoder();

/**
 * Timestamps in ns, as a double: the process-wide monotonic clock on real
 * threads (the same on every worker; exact below 2^53 ns, 104 days of
 * uptime), else the virtual clock. A double, not a BigInt: every record takes
 * one, and BigInt arithmetic allocates.
 */
export function captureClock(clock: Clock): () => number {
  if (clock !== realClock) return () => Math.round(clock.now() * 1e6);
  return () => {
    const h = process.hrtime();
    return h[0] * 1e9 + h[1];
  };
}

const TWO32 = 4294967296;

export class Tap {
  /** Capturing or tracing now: the one test a driver makes per frame. */
  on = false;
  /** Selected by the running capture. */
  capturing = false;
  seen = 0;
  lost = 0;
  kept = 0;
  drops = 0;
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
    if (this.capturing) this.sink.record(this, u8, off, len, dir, null);
    if (tracer.on) tracer.hop(this.name, u8, off, len, dir);
  }

  /** A frame dropped at this point, counted in `counter` (its path in the kernel's stats). */
  drop(u8: Uint8Array, off: number, len: number, dir: number, counter: string): void {
    if (this.capturing) this.sink.record(this, u8, off, len, dir, this.sink.comment(counter));
    if (tracer.on) tracer.hop(`${this.name} (dropped: ${counter})`, u8, off, len, dir);
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
  /** Drop comments, encoded once per counter: "dropped: <kernel prefix><counter>". */
  private readonly comments = new Map<string, Uint8Array>();
  private prefix = '';
  /** Added to the clock's ns so timestamps count from the epoch (the toolstack's offset of the shared monotonic clock), in 32-bit halves. */
  private offHi = 0;
  private offLo = 0;
  private buf: Uint8Array = new Uint8Array(0);
  /** The toolstack's two buffers (threads), or none (in process: a private buffer that grows to the limit). */
  private shared: SharedArrayBuffer[] = [];
  private cur = 0;
  private dv: DataView = new DataView(this.buf.buffer);
  private used = 0;
  private snaplen = 262_144;
  private limit = 32 << 20;
  /** While capturing: what the capture asked for, so a point that appears later (a VI attached, a vif added) is captured too. */
  private patterns: RegExp[] = [];

  constructor(private readonly now: () => number) {
    tracer.listen(this);
  }

  /** Tracing started or stopped: every tap is on while either wants frames. */
  traceChanged(): void {
    for (const t of this.taps) t.on = t.capturing || tracer.on;
  }

  /** The tap named `name`, registered on first use (a vif that comes back gets its old tap again). */
  tap(name: string): Tap {
    const t = this.byName.get(name);
    if (t) {
      t.released = false;
      return t;
    }
    const n = new Tap(name, this.taps.length, this);
    n.capturing = this.patterns.some((p) => p.test(name));
    n.on = n.capturing || tracer.on;
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
  start(
    specs: readonly string[],
    snaplen: number,
    limit = 32 << 20,
    o: { prefix?: string; offsetNs?: bigint; shared?: readonly SharedArrayBuffer[] } = {},
  ): string[] {
    this.snaplen = snaplen;
    this.limit = limit;
    this.shared = o.shared?.length === 2 ? [...o.shared] : [];
    this.cur = 0;
    this.used = 0;
    if (this.shared.length) this.setBuffer(new Uint8Array(this.shared[0]));
    else if (this.buf.buffer instanceof SharedArrayBuffer) this.setBuffer(new Uint8Array(0));
    if (o.prefix !== undefined && o.prefix !== this.prefix) this.comments.clear();
    this.prefix = o.prefix ?? this.prefix;
    const off = o.offsetNs ?? 0n;
    if (off < 0n) throw new RangeError('capture: a negative timestamp offset');
    this.offHi = Number(off >> 32n);
    this.offLo = Number(off & 0xffffffffn);
    this.patterns = specs.map(tapPattern);
    const on: string[] = [];
    for (const t of this.taps) {
      t.capturing = this.patterns.some((p) => p.test(t.name));
      t.on = t.capturing || tracer.on;
      t.seen = t.lost = t.kept = t.drops = 0;
      if (t.capturing && !t.released) on.push(t.name);
    }
    return on;
  }

  /** What was recorded since the last drain; the buffer starts again. */
  drain(): CaptureBatch {
    const out: CaptureBatch = {
      taps: this.taps.map((t) => t.name),
      ...(this.shared.length ? { buffer: this.cur, used: this.used } : { data: this.buf.slice(0, this.used) }),
      seen: this.taps.map((t) => t.seen),
      lost: this.taps.map((t) => t.lost),
      kept: this.taps.map((t) => t.kept),
      drops: this.taps.map((t) => t.drops),
    };
    // kept and drops count this batch's blocks; seen and lost count the whole capture.
    for (const t of this.taps) t.kept = t.drops = 0;
    this.used = 0;
    if (this.shared.length) {
      this.cur ^= 1;
      this.setBuffer(new Uint8Array(this.shared[this.cur]));
    }
    return out;
  }

  /** Stop capturing everywhere; what was left is returned. */
  stop(): CaptureBatch {
    this.patterns = [];
    for (const t of this.taps) {
      t.capturing = false;
      t.on = tracer.on;
    }
    const b = this.drain();
    this.shared = [];
    if (this.buf.length > 1 << 20 || this.buf.buffer instanceof SharedArrayBuffer) this.setBuffer(new Uint8Array(0));
    return b;
  }

  comment(counter: string): Uint8Array {
    let c = this.comments.get(counter);
    if (c === undefined) {
      c = utf8.encode(`dropped: ${this.prefix}${counter}`);
      this.comments.set(counter, c);
    }
    return c;
  }

  record(t: Tap, u8: Uint8Array, off: number, len: number, dir: number, comment: Uint8Array | null): void {
    t.seen++;
    const cap = Math.min(len, this.snaplen);
    const need = enhancedPacketLength(cap, dir, comment);
    if (this.used + need > this.buf.length && !this.grow(this.used + need)) {
      t.lost++;
      return;
    }
    const ns = this.offLo + this.now();
    const carry = Math.floor(ns / TWO32);
    this.used += writeEnhancedPacket(this.dv, this.buf, this.used, t.index, this.offHi + carry, ns - carry * TWO32, u8, off, cap, len, dir, comment);
    t.kept++;
    if (comment) t.drops++;
  }

  private grow(need: number): boolean {
    if (need > this.limit || this.shared.length) return false;
    const next = new Uint8Array(Math.min(this.limit, Math.max(need, this.buf.length * 2, 1 << 16)));
    next.set(this.buf.subarray(0, this.used));
    this.setBuffer(next);
    return true;
  }

  private setBuffer(b: Uint8Array<ArrayBufferLike>): void {
    this.buf = b;
    this.dv = new DataView(b.buffer);
  }
}

/** A tap point that is never on: for drivers built without a capture sink (unit tests, tools). */
export function offTap(name = 'off'): Tap {
  return new CaptureSink(() => 0).tap(name);
}

/**
 * The blocks of a batch, for the toolstack: each block's offset and its
 * timestamp's two halves. A block that is not an EPB or does not fit what is
 * left is an error (the batch crossed a thread boundary; it is checked, not trusted).
 */
export function captureBlocks(data: Uint8Array): { at: Int32Array; hi: Uint32Array; lo: Uint32Array; n: number } {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let cap = 1024;
  let at = new Int32Array(cap);
  let hi = new Uint32Array(cap);
  let lo = new Uint32Array(cap);
  let n = 0;
  for (let o = 0; o < data.length;) {
    if (o + 32 > data.length) throw new Error(`capture batch: ${data.length - o} octets at ${o} are not a block`);
    const len = dv.getUint32(o + 4, true);
    if (dv.getUint32(o, true) !== BT_EPB || len < 32 || len % 4 !== 0 || o + len > data.length || dv.getUint32(o + len - 4, true) !== len)
      throw new Error(`capture batch: no Enhanced Packet Block at ${o}`);
    if (n === cap) {
      cap *= 2;
      const a2 = new Int32Array(cap);
      const h2 = new Uint32Array(cap);
      const l2 = new Uint32Array(cap);
      a2.set(at);
      h2.set(hi);
      l2.set(lo);
      [at, hi, lo] = [a2, h2, l2];
    }
    at[n] = o;
    hi[n] = dv.getUint32(o + EPB_TS_HIGH, true);
    lo[n] = dv.getUint32(o + EPB_TS_LOW, true);
    n++;
    o += len;
  }
  return { at, hi, lo, n };
}

/** A batch's blocks: its own copy, or the part of the shared buffer it names (checked: it crossed a thread boundary). */
export function batchData(b: CaptureBatch, shared: readonly SharedArrayBuffer[] = []): Uint8Array {
  if (b.data) return b.data;
  const buf = b.buffer === 0 || b.buffer === 1 ? shared[b.buffer] : undefined;
  if (!buf) throw new Error(`capture batch: names shared buffer ${String(b.buffer)}, of ${shared.length}`);
  const used = b.used ?? -1;
  if (!Number.isInteger(used) || used < 0 || used > buf.byteLength)
    throw new Error(`capture batch: ${String(b.used)} octets used of a ${buf.byteLength}-octet buffer`);
  return new Uint8Array(buf, 0, used);
}

/** The capture ops every kernel answers on its control channel (abi/kernel-ops.ts's CAPTURE_OPS_TABLE), served by `sink`. */
export function captureHandlers(sink: CaptureSink): OpHandlers<CaptureOps> {
  return {
    capture_taps: () => ({ taps: sink.names() }),
    capture_start: (a, { shared }) => {
      const snaplen = a.snaplen !== undefined && a.snaplen > 0 ? a.snaplen : 262_144;
      const limit = a.limit !== undefined && a.limit > 0 ? a.limit : undefined;
      // Carried as a decimal string: a ns offset from the epoch does not fit a double.
      const offsetNs = a.offsetNs !== undefined ? BigInt(a.offsetNs) : 0n;
      return { taps: sink.start(a.specs, snaplen, limit, { prefix: a.prefix, offsetNs, shared }) };
    },
    capture_drain: () => sink.drain(),
    capture_stop: () => sink.stop(),
  };
}
