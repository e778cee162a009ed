/**
 * The sending half of a TCB: segment output (our SYN, data within both the
 * peer's window and the congestion window, as one TSO segment of several
 * MSS when tsoMax allows, the FIN after the data and within the window), the
 * retransmission timer (RFC 6298, go-back-N from SND.UNA with cwnd at the
 * loss window, skipping what the peer SACKed, a one-octet probe into a zero
 * window), and what an ACK of new data does to the buffer, the RTT and the
 * timer. Loss recovery (fast retransmit, NewReno, SACK) is recovery.ts's,
 * the windows themselves the congestion control's (cc.ts).
 */
import { initialWindow } from './cc.ts';
import { TCP_ACK, TCP_FIN, TCP_HLEN, TCP_SYN } from './segment.ts';
import { seqAdd, seqDiff, seqGeq, seqGt, seqLt } from './seq.ts';
import { Scoreboard } from './sack.ts';
import { TcbCore } from './tcb-core.ts';

/** An IPv4 datagram's largest size, and its header without options (what a TSO segment must fit in). */
const IP_MAXPACKET = 65535;
const IP_HLEN = 20;
/** Segments sent per output call at most. */
export const OUTPUT_BURST = 64;
export abstract class TcbSender extends TcbCore {
  /** Duplicate ACKs in a row (RFC 5681 §2's definition). */
  protected dupAcks = 0;
  /** In fast recovery (RFC 6582) until SND.UNA reaches `recover`. */
  inRecovery = false;
  /** RFC 6582's recover: SND.MAX when recovery (or the last timeout) began; no new recovery for ACKs below it. */
  protected recover: number;
  /** What the peer SACKed above SND.UNA (sack.ts). */
  protected readonly sb = new Scoreboard();
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
      // Go back to SND.UNA, skipping what is SACKed; a second timeout in a row forgets the SACKs (the peer may have reneged, RFC 2018 §8).
      if (this.retries > 1) this.sb.clear();
      this.sndNxt = this.sndUna;
      this.output(now, 1, this.sndWnd === 0); // into a window closed since: as a probe (the FIN too)
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
    if (this.sending() && this.recoveryOutput(now, limit)) {
      this.armRtx(now);
      return;
    }
    for (let i = 0; i < limit && this.sending(); i++) {
      if (this.skipSacked()) continue;
      const off = seqDiff(this.sndNxt, this.snd.seq);
      const avail = this.snd.len - off;
      let wndLeft = seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
      if (probe) wndLeft = Math.max(wndLeft, 1);
      const n = this.cwndCut(Math.min(avail, wndLeft, this.segRoom(this.sndNxt, true)));
      if (n > 0) {
        const gso = n > this.sendMss ? this.sendMss : 0;
        if (gso) this.counters.tcpTxTsoSegments++;
        this.sendSeg(now, TCP_ACK, this.sndNxt, off, n, gso);
        this.sndNxt = seqAdd(this.sndNxt, n);
      } else if (this.finQueued && avail === 0 && wndLeft > 0) {
        this.sendSeg(now, TCP_FIN | TCP_ACK, this.sndNxt, 0, 0);
        this.sndNxt = seqAdd(this.sndNxt, 1);
      } else break;
    }
    this.armRtx(now);
  }

  /** SND.MAX follows SND.NXT; the retransmission timer runs while data is outstanding or waits to go. */
  private armRtx(now: number): void {
    if (seqLt(this.sndMax, this.sndNxt)) this.sndMax = this.sndNxt;
    const waiting = this.sending() && this.snd.len > seqDiff(this.sndNxt, this.snd.seq);
    if (this.rtxAt < 0 && this.timed() && (this.sndUna !== this.sndMax || waiting)) this.rtxAt = now + this.rto.rto;
  }

  /** Going back over sent data: jump SND.NXT past a SACKed range it is in. True if it moved. */
  private skipSacked(): boolean {
    if (!seqLt(this.sndNxt, this.sndMax)) return false;
    const end = this.sb.sackedEnd(this.sndNxt);
    if (end < 0) return false;
    this.sndNxt = seqLt(end, this.sndMax) ? end : this.sndMax;
    return true;
  }

  /**
   * `n` octets cut to what the congestion window allows: whole segments of
   * it (cwnd counts octets: a segment is not cut short for it while others
   * are in flight), or one segment when nothing is in flight.
   */
  private cwndCut(n: number): number {
    const inFlight = seqDiff(this.sndNxt, this.sndUna);
    const cwndLeft = this.congestionWindow() - inFlight;
    if (n <= cwndLeft) return n;
    const mss = this.sendMss;
    const whole = Math.floor(Math.max(cwndLeft, 0) / mss) * mss;
    if (whole > 0) return Math.min(n, whole);
    return inFlight === 0 ? Math.min(n, mss) : 0;
  }

  /**
   * The most payload a segment at `seq` may carry: one SMSS less the SACK
   * blocks riding on it; a retransmission (below SND.MAX) stops at SND.MAX
   * and at the next SACKed range. With `tso`, new data without SACK blocks
   * may go as one segment of up to floor(tsoMax / SMSS) * SMSS octets, and
   * never one whose IP datagram would pass 65535 octets.
   */
  protected segRoom(seq: number, tso = false): number {
    const sackLen = this.sackOptionLen();
    const tsoMax = this.tsoMax;
    if (tso && tsoMax > 0 && sackLen === 0 && !seqLt(seq, this.sndMax)) {
      const hlen = TCP_HLEN + this.nego.optionOverhead;
      return Math.max(this.sendMss, Math.min(Math.floor(tsoMax / this.sendMss) * this.sendMss, IP_MAXPACKET - IP_HLEN - hlen));
    }
    let n = this.sendMss - sackLen;
    if (seqLt(seq, this.sndMax)) {
      n = Math.min(n, seqDiff(this.sndMax, seq));
      const next = this.sb.nextSacked(seq);
      if (next >= 0) n = Math.min(n, seqDiff(next, seq));
    }
    return Math.max(n, 1);
  }

  /** RFC 5681 §4.1: nothing sent for longer than the RTO and nothing outstanding: cwnd = min(cwnd, IW). */
  private restartAfterIdle(now: number): void {
    if (this.lastDataAt < 0 || this.sndUna !== this.sndMax || now - this.lastDataAt <= this.rto.rto) return;
    this.cc.init(Math.min(this.cc.cwnd, initialWindow(this.sendMss)), now);
    this.lastDataAt = now;
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
    this.sb.ackTo(ack);
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

  /** `bytes` new octets ACKed with `inFlight` outstanding before: the recovery's step, or the window grows (recovery.ts). */
  protected abstract newAck(ack: number, bytes: number, inFlight: number, now: number): void;

  /** In SACK recovery, send what RFC 6675's NextSeg() picks and return true; else false (recovery.ts). */
  protected abstract recoveryOutput(now: number, limit: number): boolean;

  /** Is our FIN sent and acknowledged? */
  protected finAcked(): boolean {
    return this.finQueued && seqGeq(this.sndUna, seqAdd(this.snd.seq, this.snd.len + 1)) && this.sndUna === this.sndMax;
  }
}
