/**
 * What the SYNs negotiate beyond the MSS, and the per-segment state that
 * follows from it: Window Scale and Timestamps (RFC 7323), SACK-Permitted
 * (RFC 2018). Each is on only if our SYN offered it and the peer's SYN
 * carried it (the SYN,ACK carries one only if the SYN did).
 *
 *  - Window scaling (§2): our shift is the smallest that fits the receive
 *    window (at most 14); windows in SYNs are never scaled. The receive
 *    window may be up to 65535 << 14 octets with scaling, 256 KiB by default;
 *    without it 65535 at most (also when offered and refused).
 *  - Timestamps (§3, §4): TSval is the caller's clock in ms plus a
 *    per-connection offset (derived from the ISS: §7.1 asks for one, and
 *    nothing here draws random numbers); TS.Recent is taken from a segment
 *    at or before the last ACK we sent (§4.3); ACKs of new data give an RTT
 *    sample from TSecr.
 *  - PAWS (§5): a segment with a TSval before TS.Recent (modulo 2^32), not an
 *    RST, is an old duplicate: dropped and ACKed. TS.Recent older than 24
 *    days is no longer valid (§5.5).
 */
import { TS_ALIGNED_LEN, WS_MAX, type TcpOptionsIn, type TcpOptionsOut } from './options.ts';
import { seqDiff, seqGeq, seqLeq } from './seq.ts';

/** The largest receive window window scaling can offer (65535 << 14). */
export const RCV_WND_MAX = 65535 * 2 ** WS_MAX;
/** The receive window by default with window scaling (without: 65535). */
export const RCV_WND_DEFAULT = 256 * 1024;
/** §5.5: TS.Recent is invalid after this long without an update (ms). */
export const PAWS_IDLE_MS = 24 * 24 * 3600 * 1000;

export interface NegotiationOptions {
  /** Offer Window Scale (default true). */
  windowScaling?: boolean;
  /** Offer Timestamps (default true). */
  timestamps?: boolean;
  /** Offer SACK-Permitted (default true). */
  sack?: boolean;
  rcvWnd?: number;
  /** Added to the caller's clock for TSval; default derived from the ISS. */
  tsOffset?: number;
}

export class Negotiation {
  readonly offerWs: boolean;
  readonly offerTs: boolean;
  readonly offerSack: boolean;
  /** On for this connection (both SYNs carried it). */
  ws = false;
  ts = false;
  sack = false;
  /** Our window shift as offered, and in force (0 until scaling is on); the peer's. */
  readonly rcvShiftOffer: number;
  rcvShift = 0;
  sndShift = 0;
  /** The receive window in force (octets). */
  rcvWnd: number;
  private readonly rcvWndScaled: number;
  readonly tsOffset: number;
  tsRecent = 0;
  /** When TS.Recent was last set, or -1: none yet. */
  private tsRecentAt = -1;
  /** RCV.NXT as the last ACK we sent carried it (Last.ACK.sent of §4.3). */
  lastAckSent = 0;

  constructor(o: NegotiationOptions, iss: number) {
    this.offerWs = o.windowScaling !== false;
    this.offerTs = o.timestamps !== false;
    this.offerSack = o.sack !== false;
    const want = Math.max(0, Math.min(o.rcvWnd ?? (this.offerWs ? RCV_WND_DEFAULT : 65535), this.offerWs ? RCV_WND_MAX : 65535));
    let shift = 0;
    while (this.offerWs && want >>> shift > 65535 && shift < WS_MAX) shift++;
    this.rcvShiftOffer = shift;
    this.rcvWndScaled = (want >>> shift) << shift;
    this.rcvWnd = Math.min(want, 65535);
    this.tsOffset = o.tsOffset ?? Math.imul(iss ^ 0x5bd1e995, 0x9e3779b1) >>> 0;
  }

  /** The peer's SYN (or SYN,ACK) arrived at `now`: what is on. */
  onSyn(seg: TcpOptionsIn, now: number): void {
    this.ws = this.offerWs && seg.wscale >= 0;
    this.ts = this.offerTs && seg.hasTs;
    this.sack = this.offerSack && seg.sackOk;
    this.rcvShift = this.ws ? this.rcvShiftOffer : 0;
    this.sndShift = this.ws ? seg.wscale : 0;
    this.rcvWnd = this.ws ? this.rcvWndScaled : Math.min(this.rcvWndScaled, 65535);
    if (this.ts) {
      this.tsRecent = seg.tsVal;
      this.tsRecentAt = now;
    }
  }

  /** Back to before any SYN (a listener's SYN-RECEIVED undone). */
  reset(): void {
    this.ws = this.ts = this.sack = false;
    this.rcvShift = this.sndShift = 0;
    this.rcvWnd = Math.min(this.rcvWndScaled, 65535);
    this.tsRecentAt = -1;
  }

  /** Octets the timestamp option takes from each segment's payload (§4.2 of RFC 6691). */
  get optionOverhead(): number {
    return this.ts ? TS_ALIGNED_LEN : 0;
  }

  /** TSval at `now`. */
  tsVal(now: number): number {
    return (Math.floor(now) + this.tsOffset) >>> 0;
  }

  /** Fill a segment's Window Scale, SACK-Permitted and Timestamps fields: a SYN of ours offers, a SYN,ACK answers, others follow what is on. */
  fill(h: TcpOptionsOut, syn: boolean, ack: boolean, rst: boolean, now: number): void {
    const offering = syn && !ack;
    h.wscale = syn && (offering ? this.offerWs : this.ws) ? this.rcvShiftOffer : -1;
    h.sackOk = syn && (offering ? this.offerSack : this.sack);
    h.ts = !rst && (offering ? this.offerTs : this.ts);
    h.tsVal = this.tsVal(now);
    h.tsEcr = ack ? this.tsRecent : 0;
  }

  /** The window field for a segment (SYNs unscaled). */
  windowField(syn: boolean): number {
    return syn ? Math.min(this.rcvWnd, 65535) : this.rcvWnd >>> this.rcvShift;
  }

  /** §5.3 R1: is the segment an old duplicate by its timestamp? (Never an RST; the caller ACKs and drops it.) */
  pawsReject(seg: TcpOptionsIn, rst: boolean, now: number): boolean {
    if (!this.ts || !seg.hasTs || rst || this.tsRecentAt < 0) return false;
    if (now - this.tsRecentAt > PAWS_IDLE_MS) {
      this.tsRecent = seg.tsVal; // §5.5: TS.Recent was too old to judge by
      this.tsRecentAt = now;
      return false;
    }
    return seqDiff(seg.tsVal, this.tsRecent) < 0;
  }

  /** §4.3: an acceptable segment at or before Last.ACK.sent updates TS.Recent. */
  acceptable(seg: TcpOptionsIn & { seq: number }, now: number): void {
    if (this.ts && seg.hasTs && seqGeq(seg.tsVal, this.tsRecent) && seqLeq(seg.seq, this.lastAckSent)) {
      this.tsRecent = seg.tsVal;
      this.tsRecentAt = now;
    }
  }

  /** §4.1: the RTT (ms) an ACK of new data gives by its TSecr, or -1. */
  rttSample(seg: TcpOptionsIn, now: number): number {
    if (!this.ts || !seg.hasTs) return -1;
    const r = seqDiff(this.tsVal(now), seg.tsEcr);
    return r >= 0 && r < 3_600_000 ? r : -1;
  }
}
