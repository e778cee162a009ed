/**
 * Loss recovery: fast retransmit on the third duplicate ACK (RFC 5681
 * §3.2), limited transmit before it (RFC 3042, in tcb-send.ts's window),
 * then either
 *
 *  - NewReno fast recovery (RFC 6582) when SACK is off: cwnd inflated by
 *    each further duplicate ACK, a partial ACK retransmits the next hole at
 *    once and deflates cwnd, the full ACK (SND.UNA reaching `recover`) ends it;
 *  - or SACK-based recovery (RFC 6675, simplified) when both SYNs permitted
 *    SACK (RFC 2018): recovery also begins once more than (DupThresh - 1) *
 *    SMSS octets above SND.UNA are SACKed (IsLost), cwnd = ssthresh, and
 *    while cwnd - pipe >= 1 SMSS the sender retransmits the holes below the
 *    highest SACKed octet (each once, from HighRxt up), then new data. The
 *    pipe counts octets above the highest SACKed one and the retransmitted
 *    ones not SACKed since; the holes below it count as lost.
 *
 * SACK blocks are taken only between SEG.ACK and SND.MAX (older ones are
 * D-SACKs, RFC 2883, not used here).
 */
import { TCP_ACK, TCP_FIN, type TcpSegment } from './segment.ts';
import { seqAdd, seqDiff, seqGeq, seqLeq, seqLt, seqMax } from './seq.ts';
import { TcbSender } from './tcb-send.ts';

/** Duplicate ACKs that mean a segment was lost (RFC 5681's DupThresh). */
export const DUPTHRESH = 3;

export abstract class TcbRecovery extends TcbSender {
  /** RFC 6675's HighRxt: retransmissions in this recovery reached up to here. */
  private highRxt = 0;
  private readonly holeBuf: [number, number] = [0, 0];

  /** Take a segment's SACK blocks into the scoreboard; true if they SACKed octets not SACKed before. */
  protected takeSack(seg: TcpSegment): boolean {
    if (!this.nego.sack || seg.sackCount === 0) return false;
    this.counters.tcpRxSackBlocks += seg.sackCount;
    let grew = false;
    for (let i = 0; i < seg.sackCount; i++) {
      const l = seg.sack[2 * i];
      const r = seg.sack[2 * i + 1];
      if (seqLt(l, r) && seqGeq(l, seg.ack) && seqLt(seg.ack, r) && seqLeq(r, this.sndMax) && this.sb.add(l, r)) grew = true;
    }
    return grew;
  }

  /** Is SACK recovery under way? */
  private sackRecovery(): boolean {
    return this.inRecovery && this.nego.sack;
  }

  protected newAck(ack: number, bytes: number, inFlight: number, now: number): void {
    const smss = this.sendMss;
    const cc = this.cc;
    if (this.inRecovery) {
      if (seqGeq(ack, this.recover)) {
        // RFC 6582 §3.2 step 3, full ACK: cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
        this.inRecovery = false;
        cc.cwnd = Math.min(cc.ssthresh, Math.max(seqDiff(this.sndMax, this.sndUna), smss) + smss);
        cc.onRecoveryEnd(now);
      } else if (this.nego.sack) {
        this.highRxt = seqMax(this.highRxt, this.sndUna);
      } else {
        // Partial ACK: the next hole goes at once; deflate by what was ACKed, plus one SMSS if that was a segment's worth.
        if (this.retransmit(this.sndUna, now)) this.counters.tcpTxFastRetransmits++;
        cc.cwnd = Math.max(cc.cwnd - bytes + (bytes >= smss ? smss : 0), smss);
      }
      return;
    }
    const limited = cc.cwnd < cc.ssthresh ? 2 * inFlight >= cc.cwnd : inFlight + smss >= cc.cwnd;
    cc.onAck(bytes, smss, limited, now, this.rto.srtt);
  }

  /**
   * A duplicate ACK (RFC 5681 §2; with SACK, RFC 6675 §2: one SACKing new
   * data): count it; the third (or, with SACK, IsLost(SND.UNA)) starts fast
   * retransmit; in NewReno recovery each inflates cwnd.
   */
  protected dupAck(now: number): void {
    this.dupAcks++;
    const smss = this.sendMss;
    if (this.inRecovery) {
      if (!this.nego.sack) this.cc.cwnd += smss;
      return;
    }
    // RFC 6582 §3.2 step 2: not for an ACK below `recover` (data sent before the last timeout or recovery).
    if (seqLt(this.sndUna, this.recover)) return;
    const lost = this.nego.sack ? this.dupAcks >= DUPTHRESH || this.sb.sacked > (DUPTHRESH - 1) * smss : this.dupAcks === DUPTHRESH;
    if (!lost) return;
    this.cc.onLoss(seqDiff(this.sndMax, this.sndUna), smss, now);
    this.recover = this.sndMax;
    this.inRecovery = true;
    this.counters.tcpFastRecoveries++;
    this.highRxt = this.sndUna;
    if (this.retransmit(this.sndUna, now)) this.counters.tcpTxFastRetransmits++;
    this.cc.cwnd = this.nego.sack ? this.cc.ssthresh : this.cc.ssthresh + DUPTHRESH * smss;
  }

  /** Send the segment at `seq` again: at most one SMSS (short of a SACKed range), or the FIN. True if one went. */
  protected retransmit(seq: number, now: number): boolean {
    const off = seqDiff(seq, this.snd.seq);
    const n = Math.min(this.snd.len - off, this.segRoom(seq));
    if (n > 0) this.sendSeg(now, TCP_ACK, seq, off, n);
    else if (this.finQueued && seqLt(seq, this.sndMax)) this.sendSeg(now, TCP_FIN | TCP_ACK, seq, 0, 0);
    else return false;
    if (seqLt(this.highRxt, seqAdd(seq, Math.max(n, 1)))) this.highRxt = seqAdd(seq, Math.max(n, 1));
    return true;
  }

  /** RFC 6675's pipe: octets above the highest SACKed one, and those retransmitted below it not SACKed since. */
  private pipe(): number {
    const top = this.sb.highest(this.sndUna);
    return Math.max(0, seqDiff(this.sndMax, top)) + this.sb.unsackedIn(this.sndUna, seqLt(this.highRxt, top) ? this.highRxt : top);
  }

  protected recoveryOutput(now: number, limit: number): boolean {
    if (!this.sackRecovery()) return false;
    const hole = this.holeBuf;
    for (let i = 0; i < limit; i++) {
      if (this.cc.cwnd - this.pipe() < this.sendMss) break;
      // Rule 1: the first hole not yet retransmitted, below the highest SACKed octet.
      if (this.sb.hole(seqMax(this.highRxt, this.sndUna), hole)) {
        if (!this.retransmit(hole[0], now)) break;
        this.counters.tcpTxSackRetransmits++;
        continue;
      }
      // Rule 2: new data, within the peer's window; then the FIN.
      const off = seqDiff(this.sndMax, this.snd.seq);
      const avail = this.snd.len - off;
      const n = Math.min(avail, seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndMax), this.segRoom(this.sndMax));
      if (n > 0) {
        this.sendSeg(now, TCP_ACK, this.sndMax, off, n);
        this.sndMax = this.sndNxt = seqAdd(this.sndMax, n);
      } else if (this.finQueued && avail === 0 && seqLt(this.sndMax, seqAdd(this.sndUna, this.sndWnd))) {
        this.sendSeg(now, TCP_FIN | TCP_ACK, this.sndMax, 0, 0);
        this.sndMax = this.sndNxt = seqAdd(this.sndMax, 1);
      } else break;
    }
    return true;
  }
}
