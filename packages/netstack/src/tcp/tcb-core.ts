/**
 * What both halves of a TCB share: the RFC 9293 §3.3.1 variables, the state
 * and its recorded transitions, the notifications to the owner (told when
 * the outermost public call returns), writing a segment out (its options as
 * the SYNs agreed, nego.ts; a partial checksum for offload), and the timers'
 * schedule (retransmission, delayed ACK, TIME-WAIT). The layers on top, each
 * a class extending the one before:
 *
 *   tcb-send.ts   output within rwnd and cwnd, TSO, the retransmission timer
 *   recovery.ts   fast retransmit, NewReno and SACK recovery (sack.ts)
 *   tcb-recv.ts   the peer's SYN, in-order delivery, SACK blocks, the FIN
 *   tcb.ts        user calls and segment arrival (RFC 9293 §3.10), PAWS
 *
 * with congestion control behind cc.ts's interface (NewReno, cubic.ts).
 * Time is always the caller's `now` (ms); nothing here reads a clock.
 */
import { NewReno, initialWindow, type CcName, type CongestionControl } from './cc.ts';
import { TCP_COUNTERS, type TcpCounters } from './counters.ts';
import { Cubic } from './cubic.ts';
import { DELACK_MS, DelayedAck, STRETCH_ACK_MAX } from './delack.ts';
import { Reassembly } from './reasm.ts';
import { RtoEstimator } from './rto.ts';
import { Negotiation } from './nego.ts';
import { TCP_ACK, TCP_MAX_HLEN, TCP_RST, TCP_SYN, tcpHeaderLen, writeTcp, type TcpHeaderFields } from './segment.ts';
import { SendBuffer } from './sendbuf.ts';
import { seqAdd, seqLt } from './seq.ts';
import { nextState, type TcpEvent, type TcpState, type Transition } from './states.ts';

/**
 * Where a TCB's segments go: the TCP segment (valid during the call only),
 * its IPv4 addresses, and `gsoSize`: the MSS to cut it into when it carries
 * more than one (TSO, see TcbOptions.tsoMax), else 0.
 */
export type TcpEmit = (seg: Uint8Array, len: number, srcIp: number, dstIp: number, gsoSize: number) => void;
/** In-order application data (valid during the call only). */
export type TcpDeliver = (buf: Uint8Array, off: number, len: number) => void;

export interface TcbOptions {
  localIp: number;
  localPort: number;
  /** The peer; a listener learns it from the SYN. */
  remoteIp?: number;
  remotePort?: number;
  /** The initial send sequence number (the caller picks it, RFC 9293 §3.4.1). */
  iss: number;
  emit: TcpEmit;
  /**
   * Optional, a copy saved: a place in the outgoing frame to write a
   * segment of `len` octets for `dstIp` in (valid until commit), or null
   * when it cannot go now (the segment is then written aside and emitted).
   */
  open?: (dstIp: number, len: number, gsoSize: number) => { buf: Uint8Array; off: number } | null;
  /** Send the segment written where open() said. */
  commit?: () => void;
  onData?: TcpDeliver;
  /** Our MSS (what we announce and the most we send), default 1460. */
  mss?: number;
  /**
   * Receive window (octets): with window scaling up to 65535 << 14 (about
   * 1 GiB), default 256 KiB, the shift chosen to fit; without it (not offered
   * or refused) at most 65535, default 65535.
   */
  rcvWnd?: number;
  /** Offer Window Scale, Timestamps (RFC 7323) and SACK-Permitted (RFC 2018) on the SYN; each default true, as Linux. */
  windowScaling?: boolean;
  timestamps?: boolean;
  sack?: boolean;
  /** Added to the caller's clock (ms) for the timestamps' TSval; default derived from the ISS. */
  tsOffset?: number;
  /** Send buffer octets, default 256 KiB. */
  sndBuf?: number;
  /**
   * TCP segmentation offload (octets, default 0: off): new data may leave as
   * one segment of up to floor(tsoMax / SMSS) * SMSS octets (within the
   * windows, its IP datagram at most 65535), emitted with gsoSize = SMSS for
   * the NIC or the backend to cut; retransmissions stay one SMSS.
   */
  tsoMax?: number;
  /** Delayed-ACK timeout (ms), default 40 (Linux's minimum); 0 ACKs every segment at once. */
  delAckMs?: number;
  /** Stretch ACKs (delack.ts): the ACK for more than one full segment waits for the end of the receive batch, up to 64 KiB, as Linux's GRO. */
  stretchAcks?: boolean;
  /** Congestion control (cc.ts), default 'cubic' as Linux. */
  cc?: CcName;
  /** Maximum segment lifetime (ms); TIME-WAIT lasts 2*MSL. Default 30 s (Linux's 60 s TIME-WAIT). */
  msl?: number;
  /** Retransmissions before giving up (Linux tcp_retries2 15, tcp_syn_retries 6). */
  maxRetries?: number;
  synRetries?: number;
  /**
   * After each move of the state (from, to, the event). Like onSendSpace it
   * is called once the public call that made the move (input, tick, a user
   * call) is about to return, in order, so it may call back into the TCB.
   */
  onState?: (from: TcpState, to: TcpState, event: TcpEvent) => void;
  /** An ACK freed send-buffer space and send() takes data: the application may write more. */
  onSendSpace?: () => void;
}

/** RFC 9293 §3.7.1: the MSS assumed when the peer announces none. */
export const DEFAULT_PEER_MSS = 536;
/** Moves kept in a TCB's history. */
export const HISTORY_MAX = 256;
export abstract class TcbCore {
  readonly counters: TcpCounters = TCP_COUNTERS.zero();
  /**
   * Emit segments with a partial checksum (Linux's CHECKSUM_PARTIAL): the
   * field holds tcpPseudoSum of the pseudo-header only, for whoever sends
   * them (netfront, a NIC) to complete over the TCP header and data.
   */
  csumOffload = false;
  /** TCP segmentation offload (octets, 0: off): TcbOptions.tsoMax, changeable as the interface's offloads change. */
  tsoMax: number;
  /** The moves made, oldest first; the last HISTORY_MAX of them (a listener churned by SYNs and RSTs makes many). */
  readonly history: Transition[] = [];
  /** Moves shifted out of the history. */
  historyDropped = 0;
  state: TcpState = 'CLOSED';
  /** Opened by listen() (an RST or SYN in SYN-RECEIVED returns it to LISTEN). */
  protected passive = false;
  localIp: number;
  localPort: number;
  remoteIp: number;
  remotePort: number;

  readonly iss: number;
  irs = 0;
  sndUna: number;
  sndNxt: number;
  /** The highest SND.NXT reached (SND.NXT goes back to SND.UNA on a timeout). */
  sndMax: number;
  sndWnd = 0;
  /** The largest window the peer has offered (MAX.SND.WND, for the ACK check of RFC 9293 §3.10.7.4 / RFC 5961 §5). */
  protected maxSndWnd = 0;
  protected sndWl1 = 0;
  protected sndWl2 = 0;
  rcvNxt = 0;
  readonly mss: number;
  /** What we send at most per segment: min(our MSS, the peer's), less 12 octets with timestamps. */
  sendMss: number;
  /** Window scaling, timestamps and SACK as the SYNs agreed (nego.ts). */
  readonly nego: Negotiation;
  /** close() was called: a FIN follows the data. */
  protected finQueued = false;

  readonly rto = new RtoEstimator();
  protected readonly snd: SendBuffer;
  protected readonly reasm = new Reassembly();
  protected rtxAt = -1;
  protected timeWaitAt = -1;
  protected retries = 0;
  protected synRetransmitted = false;
  readonly cc: CongestionControl;
  protected readonly delack: DelayedAck;

  /** Public calls under way (the notifications wait until the outermost returns). */
  private depth = 0;
  private notifying = false;
  private readonly movesToTell: Transition[] = [];
  protected spaceFreed = false;

  /** Where segments are written (grown when tsoMax grows). */
  private tx: Uint8Array;
  protected readonly hdr: TcpHeaderFields = { srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, window: 0, mss: 0, sack: [0, 0, 0, 0, 0, 0, 0, 0] };

  constructor(protected readonly opts: TcbOptions) {
    this.localIp = opts.localIp;
    this.localPort = opts.localPort;
    this.remoteIp = opts.remoteIp ?? 0;
    this.remotePort = opts.remotePort ?? 0;
    this.iss = opts.iss >>> 0;
    this.sndUna = this.sndNxt = this.sndMax = this.iss;
    this.mss = opts.mss ?? 1460;
    this.sendMss = Math.min(this.mss, DEFAULT_PEER_MSS);
    this.nego = new Negotiation(opts, this.iss);
    this.snd = new SendBuffer(opts.sndBuf ?? 256 * 1024);
    this.snd.seq = seqAdd(this.iss, 1);
    this.tsoMax = opts.tsoMax ?? 0;
    this.tx = new Uint8Array(TCP_MAX_HLEN + Math.max(this.mss, Math.min(this.tsoMax, 65535)));
    this.delack = new DelayedAck(opts.delAckMs ?? DELACK_MS, this.mss, opts.stretchAcks ? STRETCH_ACK_MAX : 0);
    this.cc = opts.cc === 'newreno' ? new NewReno() : new Cubic();
    this.cc.init(initialWindow(this.sendMss), 0);
  }

  /** Move along the transition table, recording the move. */
  protected go(event: TcpEvent, now: number): void {
    const to = nextState(this.state, event);
    if (!to) throw new Error(`TCP: no transition from ${this.state} on ${event}`);
    if (this.history.length >= HISTORY_MAX) {
      this.history.shift();
      this.historyDropped++;
    }
    const move = { at: now, from: this.state, event, to };
    this.history.push(move);
    if (this.opts.onState) this.movesToTell.push(move);
    this.state = to;
    if (to === 'CLOSED' || to === 'LISTEN') {
      this.rtxAt = this.timeWaitAt = -1;
      this.delack.sent();
    }
    if (to === 'CLOSED') this.reasm.clear();
    if (to === 'TIME-WAIT') this.enterTimeWait(now);
    if (to === 'ESTABLISHED' && this.synRetransmitted) this.rto.afterSynLoss();
  }

  /** A public call begins (pair with leave() in a finally). */
  protected enter(): void {
    this.depth++;
  }

  /** A public call ends: the outermost one tells the moves made and freed send space. */
  protected leave(): void {
    if (--this.depth > 0 || this.notifying) return;
    this.notifying = true;
    try {
      for (;;) {
        const m = this.movesToTell.shift();
        if (m) this.opts.onState?.(m.from, m.to, m.event);
        else if (this.spaceFreed) {
          this.spaceFreed = false;
          if (this.canSend()) this.opts.onSendSpace?.();
        } else break;
      }
    } finally {
      this.notifying = false;
    }
  }

  /** Would send() take data in this state? */
  protected canSend(): boolean {
    const s = this.state;
    return !this.finQueued && this.snd.free > 0 && (s === 'SYN-SENT' || s === 'SYN-RECEIVED' || s === 'ESTABLISHED' || s === 'CLOSE-WAIT');
  }

  /** The receive window in force (octets; at most 65535 until window scaling is agreed). */
  get rcvWnd(): number {
    return this.nego.rcvWnd;
  }

  /** The receive window we offer now (octets). */
  get receiveWindow(): number {
    return this.nego.rcvWnd;
  }

  protected enterTimeWait(now: number): void {
    this.rtxAt = -1;
    this.timeWaitAt = now + 2 * (this.opts.msl ?? 30_000);
  }

  /** Take the peer's window from a segment (SND.WND, SND.WL1, SND.WL2). */
  protected setSndWnd(wnd: number, seq: number, ack: number): void {
    this.sndWnd = wnd;
    this.sndWl1 = seq;
    this.sndWl2 = ack;
    if (wnd > this.maxSndWnd) this.maxSndWnd = wnd;
  }

  /** Octets given to send() not yet acknowledged. */
  get unacked(): number {
    return this.snd.len;
  }

  /** The earliest time tick() has something to do, or -1. */
  nextTimer(): number {
    return earliest(earliest(this.rtxAt, this.timeWaitAt), this.delack.at);
  }

  /** Run the timers due at `now`. */
  tick(now: number): void {
    this.enter();
    try {
      if (this.timeWaitAt >= 0 && now >= this.timeWaitAt) this.go('timeWaitDone', now);
      if (this.delack.at >= 0 && now >= this.delack.at) {
        if (this.delack.stretch) this.counters.tcpStretchAcks++;
        else this.counters.tcpDelayedAcks++;
        this.sendAck(now);
      }
      if (this.rtxAt >= 0 && now >= this.rtxAt) this.onRtxTimeout(now);
    } finally {
      this.leave();
    }
  }

  /** The retransmission timer expired (tcb-send.ts). */
  protected abstract onRtxTimeout(now: number): void;

  /** An ACK of what we have received: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>. */
  protected sendAck(now: number): void {
    this.emitSeg(TCP_ACK, this.ackSeq(), this.rcvNxt, 0, 0, this.remoteIp, this.remotePort, now);
  }

  /**
   * The sequence number for a segment without data: the highest sent (the
   * RFC's SND.NXT; ours goes back to SND.UNA while a timeout resends, and an
   * ACK below the peer's RCV.NXT would be unacceptable to it, its ACK lost),
   * but not past the right edge of the peer's window (Linux's
   * tcp_acceptable_seq).
   */
  protected ackSeq(): number {
    const edge = seqAdd(this.sndUna, this.sndWnd);
    return this.sndUna !== this.iss && seqLt(edge, this.sndMax) ? edge : this.sndMax;
  }

  /** An RST to whoever sent a segment: <SEQ=seq><CTL=RST>, or with <ACK=ack> when `withAck`. */
  protected sendRst(seq: number, ack: number, withAck: boolean, dstIp: number, dstPort: number, now: number): void {
    this.counters.tcpTxRst++;
    this.emitSeg(withAck ? TCP_RST | TCP_ACK : TCP_RST, seq, withAck ? ack : 0, 0, 0, dstIp, dstPort, now);
  }

  /** SACK blocks for an ACK into `out` (pairs of edges), at most `max`; how many (tcb-recv.ts). */
  protected abstract sackBlocks(out: number[], max: number): number;

  /** The octets of SACK option our next ACK would carry (tcb-recv.ts). */
  protected abstract sackOptionLen(): number;

  /**
   * Write and emit a segment: its header and options as the flags and the
   * negotiation say (our MSS and offers on a SYN, timestamps, SACK blocks on
   * an ACK), and `n` octets of payload from `off` in the send buffer.
   */
  protected emitSeg(flags: number, seq: number, ack: number, n: number, off: number, dstIp: number, dstPort: number, now: number, gso = 0): void {
    const h = this.hdr;
    const syn = (flags & TCP_SYN) !== 0;
    const rst = (flags & TCP_RST) !== 0;
    const hasAck = (flags & TCP_ACK) !== 0;
    h.srcPort = this.localPort;
    h.dstPort = dstPort;
    h.seq = seq;
    h.ack = ack;
    h.flags = flags;
    h.window = rst ? 0 : this.nego.windowField(syn);
    h.mss = syn ? this.mss : 0;
    this.nego.fill(h, syn, hasAck, rst, now);
    h.sackCount = hasAck && !syn && !rst ? this.sackBlocks(h.sack as number[], h.ts ? 3 : 4) : 0;
    const hlen = tcpHeaderLen(h);
    if (hasAck && !rst) {
      this.delack.sent();
      this.nego.lastAckSent = ack;
    }
    this.counters.tcpTxSegments++;
    // Straight into the frame when the layer below lends it (one copy: send buffer to frame), else aside and emitted.
    const place = this.opts.open?.(dstIp, hlen + n, gso) ?? null;
    if (place !== null) {
      if (n > 0) this.snd.copyOut(off, n, place.buf, place.off + hlen);
      writeTcp(place.buf, place.off, h, n, this.localIp, dstIp, this.csumOffload);
      this.opts.commit!();
      return;
    }
    if (hlen + n > this.tx.length) this.tx = new Uint8Array(hlen + n);
    if (n > 0) this.snd.copyOut(off, n, this.tx, hlen);
    const len = writeTcp(this.tx, 0, h, n, this.localIp, dstIp, this.csumOffload);
    this.opts.emit(this.tx, len, this.localIp, dstIp, gso);
  }
}

/** The earlier of two timer deadlines, -1 standing for none. */
function earliest(a: number, b: number): number {
  if (a < 0) return b;
  if (b < 0) return a;
  return Math.min(a, b);
}
