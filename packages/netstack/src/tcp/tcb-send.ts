/**
 * The sending half of a TCB: segment output (our SYN, data within both the
 * peer's window and the congestion window, the FIN after the data), the
 * retransmission timer (RFC 6298, go-back-N from SND.UNA with cwnd at the
 * loss window, a one-octet probe into a zero window), and loss recovery:
 * fast retransmit on the third duplicate ACK and NewReno fast recovery
 * (RFC 5681 §3.2, RFC 6582), limited transmit on the first two (RFC 3042).
 * The windows themselves are the congestion control's (cc.ts).
 */
import { initialWindow } from './cc.ts';
import { TCP_ACK, TCP_FIN, TCP_SYN } from './segment.ts';
import { seqAdd, seqDiff, seqGeq, seqGt, seqLt } from './seq.ts';
import { TcbCore } from './tcb-core.ts';

/** Segments sent per output call at most. */
const OUTPUT_BURST = 64;
/** Duplicate ACKs that mean a segment was lost (RFC 5681's DupThresh). */
export const DUPTHRESH = 3;

export abstract class TcbSender extends TcbCore {
  /** Duplicate ACKs in a row (RFC 5681 §2's definition). */
  protected dupAcks = 0;
  /** In fast recovery (RFC 6582) until SND.UNA reaches `recover`. */
  inRecovery = false;
  /** RFC 6582's recover: SND.MAX when recovery (or the last timeout) began; no new recovery for ACKs below it. */
  protected recover: number;
  /** When data last left (for the restart after idle, RFC 5681 §4.1). */
  private lastDataAt = -1;
  /** The segment being timed (Karn: never one sent twice): its end, and when it left. */
  private rttEnd = -1;
  private rttAt = 0;

  constructor(opts: ConstructorParameters<typeof TcbCore>[0]) {
    super(opts);
    this.recover = this.iss;
  }

  /** The congestion window (octets). */
  get cwnd(): number {
    return this.cc.cwnd;
  }

  /** The slow-start threshold (octets). */
  get ssthresh(): number {
    return this.cc.ssthresh;
  }

  /** RFC 6298 §5.4–5.6: resend from SND.UNA, back off, restart the timer; or probe a zero window. */
  protected onRtxTimeout(now: number): void {
    this.rtxAt = -1;
    const outstanding = this.sndUna !== this.sndMax;
    if (outstanding) {
      this.counters.tcpTimeouts++;
      const limit = this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED' ? (this.opts.synRetries ?? 6) : (this.opts.maxRetries ?? 15);
      if (++this.retries > limit) {
        this.counters.tcpGiveUps++;
        this.go('giveUp', now);
        return;
      }
      this.rto.backoff();
      this.rttEnd = -1;
      if (this.sndUna === this.iss) this.synRetransmitted = true;
      else this.cc.onTimeout(seqDiff(this.sndMax, this.sndUna), this.sendMss, this.retries === 1, now);
      // RFC 6582 §3.2 step 1 and 5: recovery ends, and none starts for what was sent before.
      this.inRecovery = false;
      this.recover = this.sndMax;
      this.dupAcks = 0;
      this.sndNxt = this.sndUna;
      this.output(now, 1, false);
    } else {
      this.rto.backoff();
      this.output(now, 1, true);
    }
    if (this.rtxAt < 0 && this.timed() && (this.sndUna !== this.sndMax || this.snd.len > 0)) this.rtxAt = now + this.rto.rto;
  }

  /** Does this state run the retransmission timer? */
  protected timed(): boolean {
    const s = this.state;
    return s !== 'CLOSED' && s !== 'LISTEN' && s !== 'TIME-WAIT';
  }

  /** May data (and FIN) go out: our SYN acknowledged, and the state one that sends? */
  protected sending(): boolean {
    const s = this.state;
    if (this.sndUna === this.iss) return false;
    return s === 'ESTABLISHED' || s === 'CLOSE-WAIT' || s === 'FIN-WAIT-1' || s === 'CLOSING' || s === 'LAST-ACK';
  }

  /** The window congestion control allows, with limited transmit's two extra segments (RFC 3042). */
  private congestionWindow(): number {
    const extra = this.inRecovery ? 0 : Math.min(this.dupAcks, 2) * this.sendMss;
    return this.cc.cwnd + extra;
  }

  /**
   * Send what the state and the windows allow from SND.NXT: our SYN if it is
   * due, then data, then the FIN once the data is out; at most `limit`
   * segments. `probe`: one octet even into a zero window.
   */
  protected output(now: number, limit = OUTPUT_BURST, probe = false): void {
    if (this.sndNxt === this.iss && this.state !== 'CLOSED' && this.state !== 'LISTEN') {
      // Our SYN is due (first or again); SYN-RECEIVED may have moved on to FIN-WAIT-1 by a close.
      const flags = this.state === 'SYN-SENT' ? TCP_SYN : TCP_SYN | TCP_ACK;
      this.sendSeg(now, flags, this.iss, 0, 0);
      this.sndNxt = seqAdd(this.iss, 1);
    }
    if (this.sending()) this.restartAfterIdle(now);
    for (let i = 0; i < limit && this.sending(); i++) {
      const off = seqDiff(this.sndNxt, this.snd.seq);
      const avail = this.snd.len - off;
      const inFlight = seqDiff(this.sndNxt, this.sndUna);
      const cwndLeft = this.congestionWindow() - inFlight;
      let wndLeft = seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
      if (probe) wndLeft = Math.max(wndLeft, 1);
      const want = Math.min(avail, wndLeft, this.sendMss);
      // cwnd counts octets: do not cut a segment short for it while others are in flight.
      const n = cwndLeft >= want || inFlight === 0 ? want : 0;
      if (n > 0) {
        this.sendSeg(now, TCP_ACK, this.sndNxt, off, n);
        this.sndNxt = seqAdd(this.sndNxt, n);
      } else if (this.finQueued && avail === 0) {
        this.sendSeg(now, TCP_FIN | TCP_ACK, this.sndNxt, 0, 0);
        this.sndNxt = seqAdd(this.sndNxt, 1);
      } else break;
    }
    if (seqLt(this.sndMax, this.sndNxt)) this.sndMax = this.sndNxt;
    const waiting = this.sending() && this.snd.len > seqDiff(this.sndNxt, this.snd.seq);
    if (this.rtxAt < 0 && this.timed() && (this.sndUna !== this.sndMax || waiting)) this.rtxAt = now + this.rto.rto;
  }

  /** RFC 5681 §4.1: nothing sent for longer than the RTO and nothing outstanding: cwnd = min(cwnd, IW). */
  private restartAfterIdle(now: number): void {
    if (this.lastDataAt < 0 || this.sndUna !== this.sndMax || now - this.lastDataAt <= this.rto.rto) return;
    this.cc.init(Math.min(this.cc.cwnd, initialWindow(this.sendMss)), now);
    this.lastDataAt = now;
  }

  /** Send the segment at `seq` again (fast retransmit, a partial ACK): at most one SMSS, or the FIN. */
  protected retransmit(seq: number, now: number): void {
    const off = seqDiff(seq, this.snd.seq);
    const n = Math.min(this.snd.len - off, this.sendMss, seqDiff(this.sndMax, seq));
    if (n > 0) this.sendSeg(now, TCP_ACK, seq, off, n);
    else if (this.finQueued && seqLt(seq, this.sndMax)) this.sendSeg(now, TCP_FIN | TCP_ACK, seq, 0, 0);
    else return;
    this.counters.tcpTxFastRetransmits++;
  }

  /** Send one segment of ours: `n` octets from `off` in the send buffer at `seq`. */
  protected sendSeg(now: number, flags: number, seq: number, off: number, n: number, gso = 0): void {
    const end = seqAdd(seq, n + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0));
    if (seqLt(seq, this.sndMax)) {
      this.counters.tcpTxRetransmits++;
      if (this.rttEnd >= 0 && seqGt(this.rttEnd, seq)) this.rttEnd = -1; // Karn: the timed segment went twice
    } else if (this.rttEnd < 0) {
      this.rttEnd = end;
      this.rttAt = now;
    }
    if (n > 0) this.lastDataAt = now;
    this.emitSeg(flags, seq, flags & TCP_ACK ? this.rcvNxt : 0, n, off, this.remoteIp, this.remotePort, now, gso);
  }

  /**
   * An acceptable ACK moved SND.UNA to `ack`: free the buffer, take the RTT
   * sample (from the timestamps' `tsRtt` when they are on, RFC 7323 §4, else
   * if the timed segment is covered), restart or stop the timer (RFC 6298
   * §5.2, §5.3), and grow the window or go on with the recovery.
   */
  protected acked(ack: number, now: number, tsRtt = -1): void {
    const prevUna = this.sndUna;
    const inFlight = seqDiff(this.sndNxt, prevUna);
    const freed = seqDiff(ack, this.snd.seq);
    if (freed > 0) {
      this.snd.ack(freed);
      this.spaceFreed = true;
    }
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    if (this.nego.ts) {
      // RFC 7323 Appendix G: about one sample per two segments, so each weighs less.
      if (tsRtt >= 0) this.rto.sample(tsRtt, Math.max(1, Math.ceil(inFlight / (2 * this.sendMss))));
    } else if (this.rttEnd >= 0 && seqGeq(ack, this.rttEnd)) {
      this.rto.sample(now - this.rttAt);
      this.rttEnd = -1;
    }
    this.retries = 0;
    this.rtxAt = this.sndUna === this.sndMax || !this.timed() ? -1 : now + this.rto.rto;
    this.dupAcks = 0;
    if (prevUna === this.iss) {
      // Our SYN is ACKed: the initial window, one segment if the SYN went again (RFC 5681 §3.1).
      this.cc.init(this.synRetransmitted ? this.sendMss : initialWindow(this.sendMss), now);
      return;
    }
    this.newAck(ack, seqDiff(ack, prevUna), inFlight, now);
  }

  /** `bytes` new octets ACKed with `inFlight` outstanding before: recovery's step, or the window grows. */
  private newAck(ack: number, bytes: number, inFlight: number, now: number): void {
    const smss = this.sendMss;
    const cc = this.cc;
    if (this.inRecovery) {
      if (seqGeq(ack, this.recover)) {
        // RFC 6582 §3.2 step 3, full ACK: cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
        this.inRecovery = false;
        cc.cwnd = Math.min(cc.ssthresh, Math.max(seqDiff(this.sndMax, this.sndUna), smss) + smss);
        cc.onRecoveryEnd(now);
      } else {
        // Partial ACK: the next hole goes at once; deflate by what was ACKed, plus one SMSS if that was a segment's worth.
        this.retransmit(this.sndUna, now);
        cc.cwnd = Math.max(cc.cwnd - bytes + (bytes >= smss ? smss : 0), smss);
      }
      return;
    }
    const limited = cc.cwnd < cc.ssthresh ? 2 * inFlight >= cc.cwnd : inFlight + smss >= cc.cwnd;
    cc.onAck(bytes, smss, limited, now, this.rto.srtt);
  }

  /** A duplicate ACK (RFC 5681 §2): count it; the third starts fast retransmit, later ones inflate cwnd. */
  protected dupAck(now: number): void {
    this.dupAcks++;
    const smss = this.sendMss;
    if (this.inRecovery) {
      this.cc.cwnd += smss;
      return;
    }
    // RFC 6582 §3.2 step 2: not for an ACK below `recover` (data sent before the last timeout or recovery).
    if (this.dupAcks !== DUPTHRESH || seqLt(this.sndUna, this.recover)) return;
    this.cc.onLoss(seqDiff(this.sndMax, this.sndUna), smss, now);
    this.recover = this.sndMax;
    this.inRecovery = true;
    this.counters.tcpFastRecoveries++;
    this.retransmit(this.sndUna, now);
    this.cc.cwnd = this.cc.ssthresh + DUPTHRESH * smss;
  }

  /** Is our FIN sent and acknowledged? */
  protected finAcked(): boolean {
    return this.finQueued && seqGeq(this.sndUna, seqAdd(this.snd.seq, this.snd.len + 1)) && this.sndUna === this.sndMax;
  }
}
