/**
 * The receiving half of a TCB: the peer's SYN (its ISN, MSS, and what the
 * SYNs agree: nego.ts), in-order delivery with out-of-order segments held
 * until the hole before them fills (reasm.ts), the delayed ACK's decision
 * (delack.ts), and the peer's FIN, which waits for the data before it.
 */
import { DEFAULT_PEER_MSS } from './tcb-core.ts';
import { TCP_FIN, type TcpSegment } from './segment.ts';
import { seqAdd, seqDiff, seqLeq, seqLt } from './seq.ts';
import { TcbRecovery } from './recovery.ts';

/** The least we send per segment whatever MSS the peer names (Linux's TCP_MIN_SND_MSS). */
export const TCP_MIN_SND_MSS = 48;
/** Segments held out of order at most (each within the window; bounds the copies an attacker can make us keep). */
export const REASM_MAX_SEGMENTS = 256;

export abstract class TcbReceiver extends TcbRecovery {
  /** The sequence number of a FIN that arrived ahead of RCV.NXT, or -1. */
  protected finRcvSeq = -1;
  /** Octets delivered to the application. */
  delivered = 0;
  /** A sequence number in each of the last out-of-order segments held, most recent first (RFC 2018 §4's block order). */
  private readonly sackRecent: number[] = [];
  private readonly rangeBuf: number[] = [];

  /**
   * RFC 2018 §4: the SACK blocks to send while out-of-order data is held:
   * the block holding the most recent such segment first, then the blocks
   * of the segments before it, then any others; at most `max`.
   */
  protected sackBlocks(out: number[], max: number): number {
    if (!this.nego.sack || this.reasm.segments === 0) return 0;
    const r = this.rangeBuf;
    const total = this.reasm.ranges(r);
    let n = 0;
    const taken = (i: number) => {
      for (let k = 0; k < n; k++) if (out[2 * k] === r[2 * i]) return true;
      return false;
    };
    const take = (i: number) => {
      out[2 * n] = r[2 * i];
      out[2 * n + 1] = r[2 * i + 1];
      n++;
    };
    for (const s of this.sackRecent) {
      if (n >= max) break;
      for (let i = 0; i < total; i++) if (seqLeq(r[2 * i], s) && seqLt(s, r[2 * i + 1]) && !taken(i)) take(i);
    }
    for (let i = 0; i < total && n < max; i++) if (!taken(i)) take(i);
    // Held data sits above RCV.NXT (the FIN clears what is beyond it); a block at or below it would be nonsense.
    for (let k = 0; k < n; k++) if (!seqLt(this.rcvNxt, out[2 * k])) return 0;
    return n;
  }

  protected sackOptionLen(): number {
    if (!this.nego.sack || this.reasm.segments === 0) return 0;
    return 4 + 8 * Math.min(this.reasm.ranges(this.rangeBuf), this.nego.ts ? 3 : 4);
  }

  /**
   * The peer's SYN: its ISN, its MSS (RFC 9293 §3.7.1: 536 when it names
   * none), and the options both SYNs carried; the timestamp option's 12
   * octets come off what we send per segment (RFC 6691), but not below 48
   * (Linux's TCP_MIN_SND_MSS: a peer naming a tiny MSS would have us send
   * segments of a few octets, SACK blocks taking the rest, CVE-2019-11477)
   * unless our own MSS is smaller. Data and FIN on a SYN are not taken (not
   * acknowledged, so the peer sends them again).
   */
  protected takeSyn(seg: TcpSegment, now: number): void {
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.nego.onSyn(seg, now);
    const mss = Math.min(this.mss, seg.mss || DEFAULT_PEER_MSS) - this.nego.optionOverhead;
    this.sendMss = Math.max(1, Math.min(this.mss, Math.max(TCP_MIN_SND_MSS, mss)));
  }

  /**
   * The seventh step: in-window data delivered in order, or held until the
   * hole fills. Whether an ACK is owed: 'now' (out of order, filling a hole,
   * old data again, or the delayed ACK's limit reached), 'later' (in-order
   * data whose ACK may wait), false (no data); 'full' if the queue had no room.
   */
  protected textInput(seg: TcpSegment, now: number): 'now' | 'later' | false | 'full' {
    const s = this.state;
    if (seg.dataLen === 0 || !(s === 'ESTABLISHED' || s === 'FIN-WAIT-1' || s === 'FIN-WAIT-2')) return false;
    const skip = Math.max(0, seqDiff(this.rcvNxt, seg.seq));
    const end = Math.min(seg.dataLen, seqDiff(seqAdd(this.rcvNxt, this.rcvWnd), seg.seq));
    if (skip >= end) return 'now';
    if (skip > 0 || seg.seq === this.rcvNxt) {
      const holes = this.reasm.segments > 0;
      this.deliver(seg.buf, seg.dataOff + skip, end - skip);
      this.rcvNxt = this.reasm.drain(seqAdd(this.rcvNxt, end - skip), this.deliverFn);
      if (holes || skip > 0) return 'now';
      return this.delack.data(end, now) ? 'now' : 'later';
    }
    if (this.reasm.segments >= REASM_MAX_SEGMENTS) return 'full';
    this.reasm.insert(seg.seq, seg.buf, seg.dataOff, end);
    this.counters.tcpRxOutOfOrder++;
    this.sackRecent.unshift(seg.seq);
    if (this.sackRecent.length > 4) this.sackRecent.pop();
    return 'now';
  }

  private readonly deliverFn = (b: Uint8Array, off: number, len: number): void => this.deliver(b, off, len);

  private deliver(b: Uint8Array, off: number, len: number): void {
    this.delivered += len;
    this.opts.onData?.(b, off, len);
  }

  /** The eighth step: a FIN at RCV.NXT closes the peer's direction; one ahead of it waits for the data before it. */
  protected finInput(seg: TcpSegment, now: number): boolean {
    const s = this.state;
    if (
      s !== 'SYN-RECEIVED' &&
      s !== 'ESTABLISHED' &&
      s !== 'FIN-WAIT-1' &&
      s !== 'FIN-WAIT-2' &&
      s !== 'CLOSE-WAIT' &&
      s !== 'CLOSING' &&
      s !== 'LAST-ACK' &&
      s !== 'TIME-WAIT'
    )
      return false;
    if (seg.flags & TCP_FIN) {
      const finSeq = seqAdd(seg.seq, seg.dataLen);
      if (seqLt(finSeq, seqAdd(this.rcvNxt, this.rcvWnd)) && seqLeq(this.rcvNxt, finSeq)) this.finRcvSeq = finSeq;
    }
    if (this.finRcvSeq < 0 || this.finRcvSeq !== this.rcvNxt) return seg.flags & TCP_FIN ? true : false;
    if (s === 'CLOSE-WAIT' || s === 'CLOSING' || s === 'LAST-ACK') return true; // a FIN again
    this.finRcvSeq = -1;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.reasm.clear(); // nothing follows a FIN: what a peer sent beyond it is void
    if (s === 'TIME-WAIT') this.enterTimeWait(now);
    else this.go('rcvFin', now);
    return true;
  }
}
