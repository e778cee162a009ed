/**
 * The UDP stream app. Payload: seq u32, stream id u32 (big-endian), then
 * filler: a repeated pattern if one was given (as `ping -p`: a marker to find
 * the bytes again, e.g. to prove they never reached a domain they were not
 * sent to), else whatever the buffer held (the sender's own memory). The sender may run a credit window: at most `window` frames beyond
 * the highest sequence the receiver has reported, which keeps a fast sender
 * from burying a slower receiver on a 2-core machine (every dropped frame
 * still costs CPU). Credits travel back as ordinary UDP frames.
 *
 * Neither end waits forever: a sender that makes no progress for
 * STREAM_GIVE_UP_MS (no credit back for a windowed sender, no frame out for
 * an unpaced one: its peer is gone, its vif closed, every frame dropped) gives
 * up and answers with what it sent; a receiver ends once idle (see the
 * endpoint), so a stream whose frames are all lost still ends and says so.
 */
import { SeqTracker, type SeqStats, type SeqTrackerState } from './seqtrack.ts';

/** A sender as plain data; times are on the saving domain's clock. */
export interface StreamSenderState {
  count: number;
  streamId: number;
  window: number;
  sent: number;
  stalls: number;
  credited: number;
  lastProgress: number;
  /** Last credit (windowed) or frame sent (unpaced); absent in an image saved before senders gave up. */
  lastUseful?: number;
  gaveUp?: boolean;
  pattern: Uint8Array | null;
}

/** A receiver as plain data; times are on the saving domain's clock (-1: no frame yet). */
export interface StreamReceiverState {
  streamId: number;
  creditEvery: number;
  foreign: number;
  first: number;
  last: number;
  bytes: number;
  sinceCredit: number;
  tracker: SeqTrackerState;
}

const STALL_MS = 50;

/**
 * A sender with no progress for this long gives up (its reply says how many
 * it sent): forty stalls in a row for a windowed one. Four times a receiver's
 * default idle time, so a sender gives up only on a stream its receiver has
 * already given up on.
 */
export const STREAM_GIVE_UP_MS = 2000;

/**
 * A receiver that has had no frame of its stream at all ends after this long
 * (one that has had some ends after its idle time): longer than a sender takes
 * to give up, and ample for a first frame to arrive on a loaded machine.
 */
export const STREAM_FIRST_FRAME_MS = 5000;

function readU32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}
function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** A payload pattern from hex ("c0ffee…", 1 to 32 bytes), or a clear error. */
export function parsePattern(hex: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2}){1,32}$/.test(hex)) throw new Error(`pattern "${hex}" must be 1 to 32 bytes of hex (an even number of hex digits)`);
  return Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));
}

export class StreamSender {
  readonly count: number;
  readonly streamId: number;
  readonly window: number;
  sent = 0;
  /** Times the window ran dry with no credit for STALL_MS: the sender presumes the tail lost and moves on. */
  stalls = 0;
  /** No progress for STREAM_GIVE_UP_MS: the sender stopped short of `count` (done() is true, sent says how far it got). */
  gaveUp = false;
  private credited = 0;
  private lastProgress: number;
  /** When the stream last moved: a credit came back (windowed), a frame went out (unpaced). */
  private lastUseful: number;
  private readonly now: () => number;

  /** Filler repeated after the 8-byte header, or null. */
  private readonly pattern: Uint8Array | null;

  constructor(o: { count: number; streamId: number; window?: number; now?: () => number; pattern?: Uint8Array }) {
    this.now = o.now ?? (() => performance.now());
    this.lastProgress = this.now();
    this.lastUseful = this.lastProgress;
    if (!(Number.isInteger(o.count) && o.count > 0)) throw new Error(`stream count must be a positive integer, got ${o.count}`);
    this.count = o.count;
    this.streamId = o.streamId >>> 0;
    this.window = o.window ?? 0;
    this.pattern = o.pattern && o.pattern.length > 0 ? o.pattern : null;
  }

  save(): StreamSenderState {
    return {
      count: this.count,
      streamId: this.streamId,
      window: this.window,
      sent: this.sent,
      stalls: this.stalls,
      credited: this.credited,
      lastProgress: this.lastProgress,
      lastUseful: this.lastUseful,
      gaveUp: this.gaveUp,
      pattern: this.pattern,
    };
  }

  /** A saved sender, its times moved by `shift` ms onto the restoring domain's clock. */
  static restore(st: StreamSenderState, shift: number, now: () => number): StreamSender {
    const s = new StreamSender({ count: st.count, streamId: st.streamId, window: st.window, now, ...(st.pattern ? { pattern: st.pattern } : {}) });
    s.sent = st.sent;
    s.stalls = st.stalls;
    s.credited = st.credited;
    s.lastProgress = st.lastProgress + shift;
    s.lastUseful = (st.lastUseful ?? st.lastProgress) + shift;
    s.gaveUp = st.gaveUp ?? false;
    return s;
  }

  canSend(): boolean {
    if (this.done()) return false;
    if (this.window === 0 || this.sent < this.credited + this.window) return true;
    const now = this.now();
    if (now - this.lastProgress > STALL_MS) {
      this.stalls++;
      this.credited = this.sent;
      this.lastProgress = now;
      return true;
    }
    return false;
  }

  peekSeq(): number {
    return this.sent;
  }

  fill(buf: Uint8Array, off: number, seq: number, len: number): void {
    writeU32(buf, off, seq);
    writeU32(buf, off + 4, this.streamId);
    const p = this.pattern;
    if (p) for (let i = 8, j = 0; i < len; i++, j = j + 1 === p.length ? 0 : j + 1) buf[off + i] = p[j];
  }

  commit(): void {
    this.sent++;
    if (this.window === 0) this.lastUseful = this.now();
  }

  onCredit(highestSeen: number): void {
    if (highestSeen + 1 > this.credited) {
      this.credited = highestSeen + 1;
      this.lastProgress = this.now();
      this.lastUseful = this.lastProgress;
    }
  }

  /**
   * Give up if the stream has not moved for STREAM_GIVE_UP_MS: true if it
   * has given up (now or before). The endpoint asks before each burst.
   */
  giveUpIfStuck(): boolean {
    if (!this.gaveUp && this.sent < this.count && this.now() - this.lastUseful > STREAM_GIVE_UP_MS) this.gaveUp = true;
    return this.gaveUp;
  }

  /** Every frame sent, or given up. */
  done(): boolean {
    return this.sent >= this.count || this.gaveUp;
  }

  /** When the sender next needs a turn for time alone: a window run dry presumed lost (a stall), or giving up. */
  deadline(): number {
    if (this.done()) return Infinity;
    const giveUp = this.lastUseful + STREAM_GIVE_UP_MS;
    if (this.window === 0 || this.sent < this.credited + this.window) return giveUp;
    return Math.min(giveUp, this.lastProgress + STALL_MS);
  }
}

export interface Goodput {
  elapsedMs: number;
  frames: number;
  bytes: number;
  pps: number;
  gbps: number;
}

export class StreamReceiver {
  readonly streamId: number;
  /** Frames between credits sent back to the sender; 0 = never (a sender without a window needs none). */
  readonly creditEvery: number;
  tracker = new SeqTracker();
  /** Frames of another stream arriving on our port: counted, not delivered. */
  foreign = 0;
  private first = -1;
  private last = -1;
  private bytes = 0;
  private sinceCredit = 0;

  constructor(o: { streamId: number; creditEvery?: number }) {
    this.streamId = o.streamId >>> 0;
    this.creditEvery = o.creditEvery ?? 64;
  }

  save(): StreamReceiverState {
    return {
      streamId: this.streamId,
      creditEvery: this.creditEvery,
      foreign: this.foreign,
      first: this.first,
      last: this.last,
      bytes: this.bytes,
      sinceCredit: this.sinceCredit,
      tracker: this.tracker.save(),
    };
  }

  /** A saved receiver, its times moved by `shift` ms onto the restoring domain's clock. */
  static restore(st: StreamReceiverState, shift: number): StreamReceiver {
    const r = new StreamReceiver({ streamId: st.streamId, creditEvery: st.creditEvery });
    r.foreign = st.foreign;
    r.first = st.first < 0 ? -1 : st.first + shift;
    r.last = st.last < 0 ? -1 : st.last + shift;
    r.bytes = st.bytes;
    r.sinceCredit = st.sinceCredit;
    r.tracker = SeqTracker.restore(st.tracker);
    return r;
  }

  /**
   * Record a payload of `len` bytes (the frame is len + 42 bytes, 60 at least).
   * Returns the sequence number to credit back, or -1 when no credit is due.
   */
  onPayload(buf: Uint8Array, off: number, len: number, now: number): number {
    if (len < 8 || readU32(buf, off + 4) !== this.streamId) {
      this.foreign++;
      return -1;
    }
    if (!this.tracker.add(readU32(buf, off))) return -1;
    if (this.first < 0) this.first = now;
    this.last = now;
    this.bytes += Math.max(len + 42, 60);
    if (this.creditEvery > 0 && ++this.sinceCredit >= this.creditEvery) {
      this.sinceCredit = 0;
      return this.tracker.highestSeq;
    }
    return -1;
  }

  stats(expected?: number): SeqStats & { foreign: number } {
    return { ...this.tracker.stats(expected), foreign: this.foreign };
  }

  /** Receiver goodput between the first and last delivered frame. */
  goodput(): Goodput {
    const frames = this.tracker.delivered;
    const elapsedMs = this.last - this.first;
    const secs = elapsedMs / 1000;
    // n frames arrive over n-1 inter-arrival gaps: count the first frame's bytes out.
    const perFrame = frames > 0 ? this.bytes / frames : 0;
    const pps = secs > 0 ? (frames - 1) / secs : 0;
    return { elapsedMs, frames, bytes: this.bytes, pps, gbps: (pps * perFrame * 8) / 1e9 };
  }
}
