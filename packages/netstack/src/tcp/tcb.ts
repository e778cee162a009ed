/**
 * A TCP connection (RFC 9293): the user calls (listen, connect, send,
 * close, abort) and segment arrival as §3.10.7 orders it (with PAWS, RFC
 * 7323 §5, before the sequence check), on top of the receiving half
 * (tcb-recv.ts), the sending half (tcb-send.ts: congestion control, loss
 * recovery) and what both share (tcb-core.ts). A pure module: the caller hands in each
 * segment with its addresses and `now`, and gets segments back through the
 * emit callback and in-order data through onData, so tests drive it without
 * a network. Every segment handed in is accepted or counted under one drop
 * reason; none throws.
 */
import type { TcpCounters } from './counters.ts';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, emptySegment, parseTcp, type TcpParseError, type TcpSegment } from './segment.ts';
import { seqAdd, seqGt, seqInRange, seqLeq, seqLt } from './seq.ts';
import { TcbReceiver } from './tcb-recv.ts';

/** Why a segment was not taken: a drop counter's name. */
type Drop = { [K in keyof TcpCounters]: K extends `tcpRx${string}` ? K : never }[keyof TcpCounters];

const PARSE_DROP: Record<TcpParseError, Drop> = {
  short: 'tcpRxShort',
  badOffset: 'tcpRxBadOffset',
  badOption: 'tcpRxBadOption',
  badChecksum: 'tcpRxBadChecksum',
};

/** SEG.LEN: the octets of sequence space a segment occupies (data, SYN, FIN). */
function segLen(s: TcpSegment): number {
  return s.dataLen + (s.flags & TCP_SYN ? 1 : 0) + (s.flags & TCP_FIN ? 1 : 0);
}

export class Tcb extends TcbReceiver {
  private readonly seg = emptySegment();

  /** Passive open (RFC 9293 §3.10.1). */
  listen(now: number): void {
    this.enter();
    try {
      this.passive = true;
      this.go('listen', now);
    } finally {
      this.leave();
    }
  }

  /** Active open to the remote given in the options: send our SYN. */
  connect(now: number): void {
    this.enter();
    try {
      this.passive = false;
      this.go('connect', now);
      this.output(now);
    } finally {
      this.leave();
    }
  }

  /** Queue `len` octets at `off` for sending (copied); returns how many fitted. 0 once closing or closed. */
  send(b: Uint8Array, off: number, len: number, now: number): number {
    if (!this.canSend()) return 0;
    this.enter();
    try {
      const n = this.snd.write(b, off, len);
      this.output(now);
      return n;
    } finally {
      this.leave();
    }
  }

  /** Octets send() would take now. */
  get sendSpace(): number {
    return this.finQueued ? 0 : this.snd.free;
  }

  /** Close our direction (RFC 9293 §3.10.4): a FIN follows the queued data. */
  close(now: number): void {
    this.enter();
    try {
      const s = this.state;
      if (s === 'LISTEN' || s === 'SYN-SENT') this.go('close', now);
      else if (s === 'SYN-RECEIVED' || s === 'ESTABLISHED' || s === 'CLOSE-WAIT') {
        this.finQueued = true;
        this.go('close', now);
        this.output(now);
      }
    } finally {
      this.leave();
    }
  }

  /** Abort (RFC 9293 §3.10.5): an RST if synchronized, then CLOSED. */
  abort(now: number): void {
    const s = this.state;
    if (s === 'CLOSED') return;
    this.enter();
    try {
      if (s !== 'LISTEN' && s !== 'SYN-SENT' && s !== 'TIME-WAIT') this.sendRst(this.ackSeq(), 0, false, this.remoteIp, this.remotePort, now);
      this.go('abort', now);
    } finally {
      this.leave();
    }
  }

  /**
   * A segment of `len` octets at `off` in `b` (the IP payload) from `srcIp`
   * to `dstIp` arrives at `now`. `csumValidated`: the driver vouches for its
   * checksum (NETRXF_data_validated / csum_blank), which is then not checked.
   */
  input(b: Uint8Array, off: number, len: number, srcIp: number, dstIp: number, now: number, csumValidated = false): void {
    this.enter();
    try {
      this.counters.tcpRxSegments++;
      const err = parseTcp(b, off, len, srcIp, dstIp, this.seg, csumValidated);
      const drop = err ? PARSE_DROP[err] : this.arrive(this.seg, srcIp, dstIp, now);
      if (drop) this.counters[drop]++;
      else this.counters.tcpRxAccepted++;
    } finally {
      this.leave();
    }
  }

  private arrive(seg: TcpSegment, srcIp: number, dstIp: number, now: number): Drop | null {
    if (dstIp !== this.localIp || seg.dstPort !== this.localPort) return 'tcpRxNotOurs';
    const s = this.state;
    if (s === 'CLOSED') return this.closedInput(seg, srcIp, now);
    if (s === 'LISTEN') return this.listenInput(seg, srcIp, now);
    if (srcIp !== this.remoteIp || seg.srcPort !== this.remotePort) return 'tcpRxNotOurs';
    if (s === 'SYN-SENT') return this.synSentInput(seg, now);
    const txBefore = this.counters.tcpTxSegments;
    const r = this.synchronizedInput(seg, now);
    if (r === 'ack') {
      this.output(now);
      if (this.counters.tcpTxSegments === txBefore) this.sendAck(now);
      return null;
    }
    if (r === null || r === 'delack') this.output(now);
    return r === 'delack' ? null : r;
  }

  /** CLOSED (§3.10.7.1): answer anything but an RST with an RST. */
  private closedInput(seg: TcpSegment, srcIp: number, now: number): Drop {
    if (seg.flags & TCP_RST) return 'tcpRxClosed';
    if (seg.flags & TCP_ACK) this.sendRst(seg.ack, 0, false, srcIp, seg.srcPort, now);
    else this.sendRst(0, seqAdd(seg.seq, segLen(seg)), true, srcIp, seg.srcPort, now);
    return 'tcpRxClosed';
  }

  /** LISTEN (§3.10.7.2): a SYN opens; an ACK is answered RST; the rest is dropped. */
  private listenInput(seg: TcpSegment, srcIp: number, now: number): Drop | null {
    if (seg.flags & TCP_RST) return 'tcpRxListenDrop';
    if (seg.flags & TCP_ACK) {
      this.sendRst(seg.ack, 0, false, srcIp, seg.srcPort, now);
      return 'tcpRxListenDrop';
    }
    if (!(seg.flags & TCP_SYN)) return 'tcpRxListenDrop';
    this.remoteIp = srcIp;
    this.remotePort = seg.srcPort;
    this.takeSyn(seg, now);
    this.setSndWnd(seg.window, seg.seq, this.iss);
    this.go('rcvSyn', now);
    this.output(now);
    return null;
  }

  /** SYN-SENT (§3.10.7.3). */
  private synSentInput(seg: TcpSegment, now: number): Drop | null {
    const hasAck = (seg.flags & TCP_ACK) !== 0;
    if (hasAck && (seqLeq(seg.ack, this.iss) || seqGt(seg.ack, this.sndMax))) {
      if (!(seg.flags & TCP_RST)) this.sendRst(seg.ack, 0, false, this.remoteIp, this.remotePort, now);
      return 'tcpRxBadAck';
    }
    if (seg.flags & TCP_RST) {
      if (!hasAck) return 'tcpRxOutOfWindow';
      this.counters.tcpRstReceived++;
      this.go('rcvRst', now);
      return null;
    }
    if (!(seg.flags & TCP_SYN)) return 'tcpRxNoSyn';
    this.takeSyn(seg, now);
    if (hasAck) this.acked(seg.ack, now, this.nego.rttSample(seg, now));
    this.setSndWnd(seg.window, seg.seq, seg.ack);
    if (seqGt(this.sndUna, this.iss)) {
      this.go('rcvSynAck', now);
      this.sendAck(now);
      this.output(now);
    } else {
      // Simultaneous open: answer SYN,ACK with our ISN again.
      this.go('rcvSyn', now);
      this.sndNxt = this.iss;
      this.output(now);
    }
    return null;
  }

  /** Does the segment fall in the receive window (§3.10.7.4 first check, the four cases)? */
  private acceptable(seg: TcpSegment): boolean {
    const len = segLen(seg);
    const right = seqAdd(this.rcvNxt, this.rcvWnd);
    if (this.rcvWnd === 0) return len === 0 && seg.seq === this.rcvNxt;
    if (seqInRange(seg.seq, this.rcvNxt, right)) return true;
    return len > 0 && seqInRange(seqAdd(seg.seq, len - 1), this.rcvNxt, right);
  }

  /**
   * The synchronized states (§3.10.7.4) in the RFC's order: sequence number,
   * RST, SYN, ACK, text, FIN. Returns a drop reason, null when taken, 'ack'
   * when taken and an acknowledgment is owed at once, 'delack' when one may
   * wait (the delayed-ACK timer runs).
   */
  private synchronizedInput(seg: TcpSegment, now: number): Drop | null | 'ack' | 'delack' {
    if (this.nego.pawsReject(seg, (seg.flags & TCP_RST) !== 0, now)) {
      this.sendAck(now); // RFC 7323 §5.3 R1: an old duplicate
      return 'tcpRxPaws';
    }
    if (!this.acceptable(seg)) return this.unacceptable(seg, now);
    this.nego.acceptable(seg, now);
    if (seg.flags & TCP_RST) return this.rstInput(seg, now);
    if (seg.flags & TCP_SYN) {
      if (this.state === 'SYN-RECEIVED' && this.passive) {
        this.backToListen(now, 'rcvSyn');
        return null;
      }
      this.sendAck(now); // challenge ACK (RFC 5961 §4)
      return 'tcpRxChallenged';
    }
    if (!(seg.flags & TCP_ACK)) return 'tcpRxNoAck';
    const ackDrop = this.ackInput(seg, now);
    if (ackDrop) return ackDrop;
    if (this.state === 'CLOSED') return null;
    const owed = this.textInput(seg, now);
    if (owed === 'full') {
      this.sendAck(now);
      return 'tcpRxReasmFull';
    }
    if (this.finInput(seg, now) || owed === 'now') return 'ack';
    return owed === 'later' ? 'delack' : null;
  }

  /**
   * An unacceptable segment: ACK it unless it is an RST. Two the RFC's text
   * leaves to the implementation are taken as Linux takes them: the peer's
   * SYN again in SYN-RECEIVED (our SYN,ACK was lost, or a simultaneous open's
   * SYN,ACK), and the peer's FIN again in TIME-WAIT (our last ACK was lost:
   * ACK it and restart 2*MSL).
   */
  private unacceptable(seg: TcpSegment, now: number): Drop | null {
    if (seg.flags & TCP_RST) return 'tcpRxOutOfWindow';
    if (this.state === 'SYN-RECEIVED' && seg.flags & TCP_SYN && seg.seq === this.irs) {
      if (seg.flags & TCP_ACK && seqLt(this.sndUna, seg.ack) && seqLeq(seg.ack, this.sndMax)) {
        this.establish(seg, now);
        this.sendAck(now);
        this.output(now);
        return null;
      }
      this.sndNxt = this.iss;
      this.output(now, 1);
      return 'tcpRxOutOfWindow';
    }
    if (this.state === 'TIME-WAIT' && seg.flags & TCP_FIN && seqAdd(seg.seq, segLen(seg)) === this.rcvNxt) {
      this.sendAck(now);
      this.enterTimeWait(now);
      return null;
    }
    this.sendAck(now);
    return 'tcpRxOutOfWindow';
  }

  /** An in-window RST (§3.10.7.4 second check, RFC 5961 §3): reset only when it is exactly at RCV.NXT. */
  private rstInput(seg: TcpSegment, now: number): Drop | null {
    if (seg.seq !== this.rcvNxt) {
      this.sendAck(now);
      return 'tcpRxChallenged';
    }
    this.counters.tcpRstReceived++;
    if (this.state === 'SYN-RECEIVED' && this.passive) this.backToListen(now, 'rcvRstPassive');
    else this.go('rcvRst', now);
    return null;
  }

  private backToListen(now: number, event: 'rcvSyn' | 'rcvRstPassive'): void {
    this.go(event, now);
    this.sndUna = this.sndNxt = this.sndMax = this.iss;
    this.remoteIp = this.remotePort = 0;
    this.reasm.clear();
    this.finRcvSeq = -1;
    this.nego.reset();
  }

  /** SYN-RECEIVED → ESTABLISHED on the ACK of our SYN. */
  private establish(seg: TcpSegment, now: number): void {
    this.go('rcvAck', now);
    this.setSndWnd(this.wndOf(seg), seg.seq, seg.ack);
    this.acked(seg.ack, now, this.nego.rttSample(seg, now));
  }

  /** The fifth check: the ACK field, the send window, and the moves it makes. */
  private ackInput(seg: TcpSegment, now: number): Drop | null {
    if (this.state === 'SYN-RECEIVED') {
      if (!(seqLt(this.sndUna, seg.ack) && seqLeq(seg.ack, this.sndMax))) {
        this.sendRst(seg.ack, 0, false, this.remoteIp, this.remotePort, now);
        return 'tcpRxBadAck';
      }
      this.establish(seg, now);
    }
    // Acceptable: SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.NXT; anything else is answered ACK and dropped.
    if (seqGt(seg.ack, this.sndMax) || seqLt(seg.ack, seqAdd(this.sndUna, -this.maxSndWnd))) {
      this.sendAck(now);
      return 'tcpRxBadAck';
    }
    const sacked = this.takeSack(seg);
    if (seqLt(this.sndUna, seg.ack)) this.acked(seg.ack, now, this.nego.rttSample(seg, now));
    else if (seg.ack === this.sndUna && this.sndUna !== this.sndMax && (sacked || this.isDupAck(seg))) this.dupAck(now);
    if (seqLeq(this.sndUna, seg.ack) && (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLeq(this.sndWl2, seg.ack)))) {
      this.setSndWnd(this.wndOf(seg), seg.seq, seg.ack);
    }
    const s = this.state;
    if ((s === 'FIN-WAIT-1' || s === 'CLOSING' || s === 'LAST-ACK') && this.finAcked()) this.go('rcvAckOfFin', now);
    return null;
  }

  /** RFC 5681 §2: no data, no SYN or FIN, the same window, data outstanding (the ACK number checked by the caller). */
  private isDupAck(seg: TcpSegment): boolean {
    return seg.dataLen === 0 && !(seg.flags & (TCP_SYN | TCP_FIN)) && this.wndOf(seg) === this.sndWnd && this.sndUna !== this.sndMax;
  }

  /** The peer's window in octets: scaled by its shift except on a SYN (RFC 7323 §2.2). */
  private wndOf(seg: TcpSegment): number {
    return seg.flags & TCP_SYN ? seg.window : seg.window * 2 ** this.nego.sndShift;
  }
}
