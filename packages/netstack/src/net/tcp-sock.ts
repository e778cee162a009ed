/**
 * TCP sockets on top of the TCB (../tcp): the connection table (demux by
 * local port, remote address and port), listeners that accept, active opens
 * from an ephemeral port, the answer to a segment nobody owns (an RST, RFC
 * 9293 §3.10.7.1), every TCB's timers on the kernel's clock, and a bounded
 * interface queue (Linux's qdisc, txqueuelen) for segments the interface
 * could not take at once (ring full, neighbour unresolved).
 *
 * The API is the event-driven one a kernel offers its in-kernel users (as
 * Linux's sk_data_ready/sk_write_space): handlers instead of blocking calls,
 * since every domain runs cooperative turns.
 */
import { declareCounters, type Counters } from '@xsim/hypervisor';
import { TCP_COUNTERS, type TcpCounters } from '../tcp/counters.ts';
import { IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_HLEN, TCP_RST, TCP_SYN, emptySegment, parseTcp, writeTcp, type TcpHeaderFields } from '../tcp/segment.ts';
import { seqAdd, seqDiff } from '../tcp/seq.ts';
import type { TcpState } from '../tcp/states.ts';
import { Tcb } from '../tcp/tcb.ts';
import { TcpSocket, type SocketOwner, type TcpCloseReason, type TcpSocketOptions } from './tcp-socket.ts';

export { TcpSocket, type TcpCloseReason, type TcpSocketOptions };

/** How a send to the interface went: sent, or why not (nothing was sent then). */
export type IpSendResult = 'sent' | 'arp' | 'busy' | 'tooBig';
export type IpRefusal = Exclude<IpSendResult, 'sent'>;

/** What the sockets need of the IP layer below them. */
export interface TcpIpLayer {
  readonly ip: number;
  /** The largest TCP segment one frame carries (MTU - IP and TCP headers' 40 octets). */
  mss(): number;
  /** Send a TCP segment (valid during the call) to `dstIp`; `csumPartial`: its checksum is for the driver to complete. */
  sendIp(dstIp: number, proto: number, seg: Uint8Array, len: number, csumPartial: boolean, gsoSize: number): IpSendResult;
  /** A frame for a segment of `len` octets to build in place (stack.ts openIp), or why it cannot go now. */
  openIp(dstIp: number, proto: number, len: number, gsoSize: number): { buf: Uint8Array; off: number } | IpRefusal;
  /** Send the frame openIp opened. */
  commitIp(csumPartial: boolean): void;
  /** May segments leave with a partial checksum (the interface offloads it)? */
  txCsumOffload(): boolean;
  /** The largest TCP frame the interface segments itself (TSO), 0: none. */
  tsoMax(): number;
}

export const TCP_SOCK_COUNTERS = declareCounters('tcp sockets', {
  tcpRxNoSocket: { kind: 'drop', help: 'TCP segments for no connection and no listener (answered RST unless an RST, RFC 9293 §3.10.7.1)' },
  tcpRxMalformed: { kind: 'drop', help: 'TCP segments nobody owns that were too short, malformed or had a bad checksum (not answered)' },
  tcpListenOverflow: { kind: 'drop', help: "SYNs to a listener whose accept backlog was full (not answered: the peer's SYN goes again)" },
  tcpActiveOpens: { kind: 'event', help: 'connections opened by connect()' },
  tcpPassiveOpens: { kind: 'event', help: 'connections accepted by a listener' },
  tcpConnsClosed: { kind: 'event', help: 'connections that reached CLOSED and left the table' },
  tcpTxQueued: { kind: 'event', help: 'segments held in the interface queue (ring full or neighbour unresolved) and sent later' },
  tcpTxQueueDrops: { kind: 'drop', help: 'segments dropped: the interface queue was full (TCP sends them again)' },
  tcpTxTooBig: { kind: 'drop', help: "segments over the interface's MTU (cut after the connection began) dropped (TCP sends them again)" },
});
export type TcpSockCounters = Counters<typeof TCP_SOCK_COUNTERS.decls>;

/** A connection as `ss -ti` would show it. */
export interface TcpConnInfo {
  state: TcpState;
  localPort: number;
  remoteIp: number;
  remotePort: number;
  cwnd: number;
  ssthresh: number;
  /** The peer's window (scaled), and ours as we announce it. */
  sndWnd: number;
  rcvWnd: number;
  /** Octets sent and not acknowledged; octets queued and not sent. */
  inFlight: number;
  unsent: number;
  srttMs: number;
  rtoMs: number;
  sendMss: number;
}

/** Segments the interface queue holds at most (Linux's default txqueuelen is 1000 frames). */
export const TCP_TXQUEUE_LEN = 1000;
const EPHEMERAL_LO = 32768;
const EPHEMERAL_HI = 60999;

interface Listener {
  port: number;
  backlog: number;
  /** Accepted connections not yet established count against the backlog. */
  pending: number;
  opts: TcpSocketOptions;
  onAccept: (s: TcpSocket) => void;
}

interface Queued {
  dstIp: number;
  seg: Uint8Array;
  csumPartial: boolean;
  gsoSize: number;
}

export class TcpSockets implements SocketOwner {
  readonly counters: TcpSockCounters = TCP_SOCK_COUNTERS.zero();
  /** The counters of connections that left the table (the live ones' are added in totals()). */
  private readonly gone: TcpCounters = TCP_COUNTERS.zero();
  /** localPort -> (remoteIp * 65536 + remotePort) -> socket */
  private readonly conns = new Map<number, Map<number, TcpSocket>>();
  private readonly listeners = new Map<number, Listener>();
  private readonly queue: Queued[] = [];
  /** Why the interface refused the frame openFrame asked for (the segment then comes to output written aside). */
  private refused: IpRefusal | null = null;
  private nextEphemeral = EPHEMERAL_LO;
  private issCounter = 0;
  private readonly seg = emptySegment();
  private readonly rst = new Uint8Array(TCP_HLEN);
  private readonly rstHdr: TcpHeaderFields = { srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, window: 0, mss: 0 };

  /** New connections ACK once per receive batch (TcbOptions.stretchAcks): set by a kernel whose apps poll after its drivers. */
  stretchAcks = false;

  constructor(
    private readonly ip: TcpIpLayer,
    readonly now: () => number,
    /** Mixed into initial sequence numbers (RFC 6528's secret): a guest's MAC, so seeded runs repeat. */
    private readonly secret: number,
  ) {}

  /** Accept connections on `port`; `onAccept` gets each once established. */
  listen(port: number, onAccept: (s: TcpSocket) => void, o: { backlog?: number; opts?: TcpSocketOptions } = {}): void {
    checkPort(port);
    if (this.listeners.has(port)) throw new Error(`TCP port ${port} is already listening`);
    this.listeners.set(port, { port, backlog: o.backlog ?? 128, pending: 0, opts: o.opts ?? {}, onAccept });
  }

  /** Stop listening (connections already accepted go on). */
  unlisten(port: number): void {
    this.listeners.delete(port);
  }

  /** Open a connection to dstIp:dstPort from an ephemeral port (or `srcPort`). */
  connect(dstIp: number, dstPort: number, o: { srcPort?: number; opts?: TcpSocketOptions } = {}): TcpSocket {
    checkPort(dstPort);
    const srcPort = o.srcPort ?? this.ephemeral(dstIp, dstPort);
    checkPort(srcPort);
    if (this.lookup(srcPort, dstIp, dstPort)) throw new Error(`TCP ${srcPort} -> ${dstPort}: that connection already exists`);
    const sock = this.open(srcPort, dstIp, dstPort, o.opts ?? {});
    this.counters.tcpActiveOpens++;
    sock.tcb.connect(this.now());
    sock.sync();
    return sock;
  }

  /** Connections in the table (TIME-WAIT included). */
  get size(): number {
    let n = 0;
    for (const m of this.conns.values()) n += m.size;
    return n;
  }

  /** Every TCB's counters summed, those gone included. */
  totals(): TcpCounters {
    const t = { ...this.gone };
    for (const m of this.conns.values()) for (const s of m.values()) addInto(t, s.tcb.counters);
    return t;
  }

  private open(localPort: number, remoteIp: number, remotePort: number, opts: TcpSocketOptions): TcpSocket {
    let sock: TcpSocket | undefined = undefined;
    const tcb = new Tcb({
      ...opts,
      localIp: this.ip.ip,
      localPort,
      remoteIp,
      remotePort,
      iss: this.iss(localPort, remoteIp, remotePort),
      mss: this.ip.mss(),
      stretchAcks: this.stretchAcks,
      emit: (seg, len, _src, dst, gsoSize) => this.output(dst, seg, len, tcb.csumOffload, gsoSize),
      // Built in the frame itself while nothing waits in the interface queue (order is kept), else emitted.
      open: (dst, len, gsoSize) => this.openFrame(dst, len, gsoSize),
      commit: () => this.ip.commitIp(tcb.csumOffload),
      onData: (b, off, len) => sock?.deliver(b, off, len),
    });
    tcb.csumOffload = this.ip.txCsumOffload();
    tcb.tsoMax = this.tsoFor();
    sock = new TcpSocket(tcb, this, remoteKey(remoteIp, remotePort));
    let m = this.conns.get(localPort);
    if (!m) this.conns.set(localPort, (m = new Map()));
    m.set(sock.key, sock);
    return sock;
  }

  /** RFC 6528: a clock-driven counter (4 µs ticks) plus a hash of the connection and a secret. */
  private iss(localPort: number, remoteIp: number, remotePort: number): number {
    let h = (this.secret ^ Math.imul(remoteIp, 0x9e3779b1) ^ Math.imul((localPort << 16) | remotePort, 0x85ebca6b)) >>> 0;
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
    return (h + Math.floor(this.now() * 250) + this.issCounter++ * 64_000) >>> 0;
  }

  private ephemeral(dstIp: number, dstPort: number): number {
    for (let i = 0; i <= EPHEMERAL_HI - EPHEMERAL_LO; i++) {
      const p = this.nextEphemeral;
      this.nextEphemeral = p >= EPHEMERAL_HI ? EPHEMERAL_LO : p + 1;
      if (!this.listeners.has(p) && !this.lookup(p, dstIp, dstPort)) return p;
    }
    throw new Error(`TCP: every ephemeral port ${EPHEMERAL_LO}..${EPHEMERAL_HI} to that destination is in use`);
  }

  private lookup(localPort: number, remoteIp: number, remotePort: number): TcpSocket | undefined {
    return this.conns.get(localPort)?.get(remoteKey(remoteIp, remotePort));
  }

  /** A socket left CLOSED (or a half-open passive one went back to LISTEN): out of the table, its counters kept. */
  remove(sock: TcpSocket, why: TcpCloseReason): void {
    const m = this.conns.get(sock.localPort);
    if (m?.get(sock.key) !== sock) return;
    m.delete(sock.key);
    if (m.size === 0) this.conns.delete(sock.localPort);
    addInto(this.gone, sock.tcb.counters);
    this.counters.tcpConnsClosed++;
    sock.tell(why);
  }

  /** A TCP segment for our address, `len` octets at `off` (the IP payload); `validated`: the driver vouched for its checksum. */
  input(b: Uint8Array, off: number, len: number, srcIp: number, dstIp: number, validated: boolean): void {
    const now = this.now();
    if (len < TCP_HLEN) return void this.counters.tcpRxMalformed++;
    const srcPort = (b[off] << 8) | b[off + 1];
    const dstPort = (b[off + 2] << 8) | b[off + 3];
    const sock = this.lookup(dstPort, srcIp, srcPort);
    if (sock) {
      sock.tcb.input(b, off, len, srcIp, dstIp, now, validated);
      sock.sync();
      return;
    }
    const l = this.listeners.get(dstPort);
    const flags = b[off + 13] & 0x3f;
    if (l && (flags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN) return this.accept(l, b, off, len, srcIp, dstIp, srcPort, validated, now);
    this.noSocket(b, off, len, srcIp, dstIp, validated);
  }

  /** A SYN for a listener: a new TCB in LISTEN takes it (and answers SYN,ACK); handed to the app once established. */
  private accept(l: Listener, b: Uint8Array, off: number, len: number, srcIp: number, dstIp: number, srcPort: number, validated: boolean, now: number): void {
    if (l.pending >= l.backlog) return void this.counters.tcpListenOverflow++;
    const sock = this.open(l.port, srcIp, srcPort, l.opts);
    sock.tcb.listen(now);
    l.pending++;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      l.pending--;
    };
    sock.onEstablished = () => {
      settle();
      this.counters.tcpPassiveOpens++;
      sock.onEstablished = undefined;
      l.onAccept(sock);
    };
    sock.onClosed = settle;
    sock.tcb.input(b, off, len, srcIp, dstIp, now, validated);
    sock.sync();
    // A SYN that did not open (bad checksum or option): counted by the TCB, and the TCB leaves the table.
    if (sock.state === 'LISTEN') {
      sock.tcb.close(now);
      sock.sync();
    }
  }

  /** Nobody owns the segment: an RST answers it (RFC 9293 §3.10.7.1), unless it is malformed or an RST itself. */
  private noSocket(b: Uint8Array, off: number, len: number, srcIp: number, dstIp: number, validated: boolean): void {
    const seg = this.seg;
    if (parseTcp(b, off, len, srcIp, dstIp, seg, validated) !== null) return void this.counters.tcpRxMalformed++;
    this.counters.tcpRxNoSocket++;
    if (seg.flags & TCP_RST) return;
    const h = this.rstHdr;
    h.srcPort = seg.dstPort;
    h.dstPort = seg.srcPort;
    if (seg.flags & TCP_ACK) {
      h.seq = seg.ack;
      h.ack = 0;
      h.flags = TCP_RST;
    } else {
      h.seq = 0;
      h.ack = seqAdd(seg.seq, seg.dataLen + (seg.flags & TCP_SYN ? 1 : 0) + (seg.flags & TCP_FIN ? 1 : 0));
      h.flags = TCP_RST | TCP_ACK;
    }
    const n = writeTcp(this.rst, 0, h, 0, this.ip.ip, srcIp);
    this.gone.tcpTxSegments++;
    this.gone.tcpTxRst++;
    this.output(srcIp, this.rst, n, false);
  }

  /**
   * A frame to build the next segment in, while nothing waits in the
   * interface queue (order is kept); else null, and the segment comes to
   * output() written aside, with the interface's refusal, if it was one.
   */
  private openFrame(dstIp: number, len: number, gsoSize: number): { buf: Uint8Array; off: number } | null {
    if (this.queue.length > 0) return null;
    const r = this.ip.openIp(dstIp, IPPROTO_TCP, len, gsoSize);
    if (typeof r !== 'string') return r;
    this.refused = r;
    return null;
  }

  /** A segment for the interface: straight out, or into the queue behind the ones waiting (order kept). */
  private output(dstIp: number, seg: Uint8Array, len: number, csumPartial: boolean, gsoSize = 0): void {
    // Refused just now by openFrame: not asked twice (its counters would count it twice).
    const refused = this.refused;
    this.refused = null;
    if (this.queue.length === 0) {
      const r = refused ?? this.ip.sendIp(dstIp, IPPROTO_TCP, seg, len, csumPartial, gsoSize);
      if (r === 'sent') return;
      if (r === 'tooBig') return void this.counters.tcpTxTooBig++;
    }
    if (this.queue.length >= TCP_TXQUEUE_LEN) return void this.counters.tcpTxQueueDrops++;
    this.counters.tcpTxQueued++;
    this.queue.push({ dstIp, seg: seg.slice(0, len), csumPartial, gsoSize });
  }

  /** Send what waits in the interface queue while the interface takes it; true if any went. */
  flush(): boolean {
    let i = 0;
    for (; i < this.queue.length; i++) {
      const q = this.queue[i];
      const r = this.ip.sendIp(q.dstIp, IPPROTO_TCP, q.seg, q.seg.length, q.csumPartial, q.gsoSize);
      if (r === 'arp' || r === 'busy') break;
      if (r === 'tooBig') this.counters.tcpTxTooBig++;
    }
    if (i > 0) this.queue.splice(0, i);
    return i > 0;
  }

  /** The connections as `ss -ti` shows them (at most `max`): state, addresses, windows, RTT, what is in flight. */
  connections(max = 16): TcpConnInfo[] {
    const out: TcpConnInfo[] = [];
    for (const m of this.conns.values())
      for (const s of m.values()) {
        if (out.length >= max) return out;
        const t = s.tcb;
        out.push({
          state: t.state,
          localPort: t.localPort,
          remoteIp: t.remoteIp,
          remotePort: t.remotePort,
          cwnd: t.cwnd,
          ssthresh: t.ssthresh,
          sndWnd: t.sndWnd,
          rcvWnd: t.rcvWnd,
          inFlight: seqDiff(t.sndMax, t.sndUna),
          unsent: t.unacked - seqDiff(t.sndMax, t.sndUna),
          srttMs: t.rto.srtt,
          rtoMs: t.rto.rto,
          sendMss: t.sendMss,
        });
      }
    return out;
  }

  /** Segments waiting in the interface queue. */
  get queued(): number {
    return this.queue.length;
  }

  /** The earliest time a TCB's timer is due, or Infinity. */
  nextTimer(): number {
    let t = Infinity;
    for (const m of this.conns.values())
      for (const s of m.values()) {
        const d = s.tcb.nextTimer();
        if (d >= 0 && d < t) t = d;
      }
    return t;
  }

  /** Run the timers due at `now` (a TCB may leave the table while this runs). */
  tick(now: number): void {
    const due: TcpSocket[] = [];
    for (const m of this.conns.values())
      for (const s of m.values()) {
        const d = s.tcb.nextTimer();
        if (d >= 0 && d <= now) due.push(s);
      }
    for (const s of due) {
      s.tcb.tick(now);
      s.sync();
    }
  }

  /** The interface's checksum offload was switched: connections from now on (and those open) hand partial checksums down or not. */
  offloadChanged(): void {
    const on = this.ip.txCsumOffload();
    const tso = this.tsoFor();
    for (const m of this.conns.values())
      for (const s of m.values()) {
        s.tcb.csumOffload = on;
        s.tcb.tsoMax = tso;
      }
  }

  /** The TCB's tsoMax: the driver's largest frame less the IP and TCP headers (and the timestamp option), or 0. */
  private tsoFor(): number {
    const max = this.ip.tsoMax();
    return max > 0 ? Math.max(0, Math.min(max, 65535) - 20 - 20 - 12) : 0;
  }
}

function remoteKey(ip: number, port: number): number {
  return (ip >>> 0) * 65536 + port;
}

function checkPort(p: number): void {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`TCP port must be an integer 1..65535, got ${String(p)}`);
}

function addInto(t: TcpCounters, c: TcpCounters): void {
  for (const k of Object.keys(c) as (keyof TcpCounters)[]) t[k] += c[k];
}
