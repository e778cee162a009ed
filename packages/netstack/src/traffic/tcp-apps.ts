/**
 * The TCP workloads, after netperf and iperf3: a bulk stream (TCP_STREAM,
 * iperf3 -n/-P) into a sink that counts (and, when asked, checks) every
 * octet, and request/response (TCP_RR): one connection, a request of
 * reqSize octets answered by rspSize octets, one transaction in flight,
 * each timed on the client's clock. They run on the stack's TCP sockets; each
 * app says when it is done and answers with what it measured.
 */
import type { TcpCloseReason, TcpSocket, TcpSockets } from '../net/tcp-sock.ts';
import { LatencyStats, type LatencySummary } from './pingpong.ts';

/** The pattern's period: octet i of a stream is octet i mod 64 KiB of it. */
const PATTERN_PERIOD = 65536;

/** Octet `i` of every stream (what a verifying sink expects): shifts of an octet or of 256 octets both show. */
export function streamOctet(i: number): number {
  const j = i & (PATTERN_PERIOD - 1);
  return (j * 7 + (j >>> 8)) & 0xff;
}

/** The writers' source: one period of the pattern and enough after it for any write to start anywhere in it. */
let pattern: Uint8Array | null = null;
function patternChunk(): Uint8Array {
  if (pattern) return pattern;
  pattern = new Uint8Array(2 * PATTERN_PERIOD);
  for (let i = 0; i < pattern.length; i++) pattern[i] = streamOctet(i);
  return pattern;
}

/**
 * Octets of b[off, off+len) that differ from the stream's pattern at
 * position `pos`: compared a period's piece at a time by the runtime's
 * memcmp (Buffer.equals on views, no copy), octet by octet only where a piece differs.
 */
function differing(b: Uint8Array, off: number, len: number, pos: number): number {
  const pat = patternChunk();
  let bad = 0;
  while (len > 0) {
    const p = pos & (PATTERN_PERIOD - 1);
    const n = Math.min(len, PATTERN_PERIOD);
    const got = Buffer.from(b.buffer, b.byteOffset + off, n);
    if (!got.equals(Buffer.from(pat.buffer, pat.byteOffset + p, n))) for (let i = 0; i < n; i++) if (got[i] !== pat[p + i]) bad++;
    off += n;
    pos += n;
    len -= n;
  }
  return bad;
}

export interface TcpStreamResult {
  flows: number;
  /** Octets the app handed to its sockets and that were acknowledged (all of them, for a stream that completed). */
  bytes: number;
  elapsedMs: number;
  /** Flows that ended otherwise than by an orderly close, by reason. */
  failed: Partial<Record<TcpCloseReason, number>>;
}

/**
 * The sending side of a stream: `flows` connections to dst:port, each writing
 * its share of `bytes` in `writeSize` octets at most per send (netperf's send
 * size), then closing. Done when every flow has closed (its FIN acknowledged).
 */
export class TcpStreamClient {
  private readonly flows: { sock: TcpSocket; sent: number; total: number; done: boolean; closing: boolean; acked: number }[] = [];
  private readonly src = patternChunk();
  private readonly writeSize: number;
  private readonly started: number;
  private ended = -1;
  private readonly failed: Partial<Record<TcpCloseReason, number>> = {};

  constructor(
    tcp: TcpSockets,
    o: { dstIp: number; dstPort: number; bytes: number; flows: number; writeSize: number },
    private readonly now: () => number,
  ) {
    this.started = now();
    if (!(o.writeSize >= 1 && o.writeSize <= PATTERN_PERIOD)) throw new Error(`TCP write size must be 1..${PATTERN_PERIOD} octets, got ${o.writeSize}`);
    this.writeSize = o.writeSize;
    const base = Math.floor(o.bytes / o.flows);
    for (let f = 0; f < o.flows; f++) {
      const total = base + (f < o.bytes - base * o.flows ? 1 : 0);
      const sock = tcp.connect(o.dstIp, o.dstPort);
      const flow = { sock, sent: 0, total, done: false, closing: false, acked: 0 };
      sock.onClosed = (why) => {
        flow.done = true;
        // An orderly close means our FIN, after every octet, was acknowledged.
        flow.acked = why === 'closed' ? flow.sent : flow.sent - sock.unacked;
        if (why !== 'closed') this.failed[why] = (this.failed[why] ?? 0) + 1;
        if (this.flows.every((x) => x.done)) this.ended = this.now();
      };
      this.flows.push(flow);
    }
  }

  /** Write what the sockets take; the work done (writes made). */
  poll(): number {
    let work = 0;
    for (const f of this.flows) {
      if (f.done || f.closing) continue;
      const st = f.sock.state;
      if (st !== 'ESTABLISHED' && st !== 'SYN-SENT' && st !== 'CLOSE-WAIT') continue;
      if (f.sent >= f.total) {
        if (st !== 'SYN-SENT' && !f.closing) {
          f.closing = true;
          f.sock.close();
        }
        continue;
      }
      // Bounded per poll: the sockets' send buffers hold what the window does not take yet.
      for (let i = 0; i < 64 && f.sent < f.total; i++) {
        const want = Math.min(this.writeSize, f.total - f.sent);
        const n = f.sock.send(this.src, f.sent & (PATTERN_PERIOD - 1), want);
        if (n === 0) break;
        f.sent += n;
        work++;
      }
      // A close before the handshake ends would delete the connection (RFC 9293 §3.10.4 in SYN-SENT): it waits for ESTABLISHED.
      if (f.sent >= f.total && f.sock.state !== 'SYN-SENT') {
        f.closing = true;
        f.sock.close();
      }
    }
    return work;
  }

  get done(): boolean {
    return this.ended >= 0;
  }

  /** Give up: reset every flow still open. */
  abort(): void {
    for (const f of this.flows) if (!f.done) f.sock.abort();
  }

  result(): TcpStreamResult {
    const end = this.ended >= 0 ? this.ended : this.now();
    const bytes = this.flows.reduce((a, f) => a + (f.done ? f.acked : f.sent - f.sock.unacked), 0);
    return { flows: this.flows.length, bytes, elapsedMs: end - this.started, failed: { ...this.failed } };
  }
}

export interface TcpSinkResult {
  flows: number;
  bytes: number;
  /** From the first octet to the last, across flows. */
  elapsedMs: number;
  /** Octets that differed from the stream's pattern (verify only). */
  corrupt: number;
  failed: Partial<Record<TcpCloseReason, number>>;
}

/**
 * The receiving side: accept on `port`, count every octet (and check it
 * against the pattern when `verify`), close each flow when its peer does.
 * Done when `flows` flows have ended.
 */
export class TcpSink {
  private bytes = 0;
  private corrupt = 0;
  private first = -1;
  private last = -1;
  private ended = 0;
  private accepted = 0;
  private readonly failed: Partial<Record<TcpCloseReason, number>> = {};

  constructor(
    private readonly tcp: TcpSockets,
    private readonly o: { port: number; flows: number; verify: boolean },
    private readonly now: () => number,
  ) {
    tcp.listen(o.port, (sock) => this.accept(sock));
  }

  private accept(sock: TcpSocket): void {
    this.accepted++;
    let pos = 0;
    sock.onData = (b, off, len) => {
      const t = this.now();
      if (this.first < 0) this.first = t;
      this.last = t;
      this.bytes += len;
      if (this.o.verify) this.corrupt += differing(b, off, len, pos);
      pos += len;
    };
    sock.onPeerClosed = () => sock.close();
    sock.onClosed = (why) => {
      this.ended++;
      if (why !== 'closed') this.failed[why] = (this.failed[why] ?? 0) + 1;
    };
  }

  get done(): boolean {
    return this.ended >= this.o.flows;
  }

  /** Stop accepting (the sockets accepted go on until they close). */
  stop(): void {
    this.tcp.unlisten(this.o.port);
  }

  /** When data last arrived (or -1). */
  get lastArrival(): number {
    return this.last;
  }

  result(): TcpSinkResult {
    return {
      flows: this.accepted,
      bytes: this.bytes,
      elapsedMs: this.first < 0 ? 0 : this.last - this.first,
      corrupt: this.corrupt,
      failed: { ...this.failed },
    };
  }
}

export interface TcpRrResult extends LatencySummary {
  transactions: number;
  elapsedMs: number;
  failed: Partial<Record<TcpCloseReason, number>>;
}

/** TCP_RR's client: `count` transactions of reqSize out, rspSize back, one at a time, each timed. */
export class TcpRrClient {
  private readonly sock: TcpSocket;
  private readonly stats = new LatencyStats();
  private readonly req: Uint8Array;
  private done_ = 0;
  private sentAt = -1;
  private reqLeft = 0;
  private rspGot = 0;
  private started = -1;
  private ended = -1;
  private readonly failed: Partial<Record<TcpCloseReason, number>> = {};

  constructor(
    tcp: TcpSockets,
    private readonly o: { dstIp: number; dstPort: number; count: number; reqSize: number; rspSize: number },
    private readonly now: () => number,
  ) {
    this.req = new Uint8Array(o.reqSize).fill(0x52);
    this.sock = tcp.connect(o.dstIp, o.dstPort);
    this.sock.onData = (_b, _off, len) => {
      this.rspGot += len;
      while (this.sentAt >= 0 && this.rspGot >= this.o.rspSize) {
        this.rspGot -= this.o.rspSize;
        this.stats.add((this.now() - this.sentAt) * 1000);
        this.done_++;
        this.sentAt = -1;
      }
    };
    this.sock.onClosed = (why) => {
      this.ended = this.now();
      if (why !== 'closed') this.failed[why] = (this.failed[why] ?? 0) + 1;
    };
  }

  /** Start the next transaction when the last is answered; close after the last. */
  poll(): number {
    const s = this.sock;
    if (s.closedBy !== null || s.state !== 'ESTABLISHED') return 0;
    if (this.started < 0) this.started = this.now();
    let work = 0;
    if (this.sentAt < 0 && this.reqLeft === 0) {
      if (this.done_ >= this.o.count) {
        if (this.ended < 0) this.ended = this.now();
        s.close();
        return 1;
      }
      this.sentAt = this.now();
      this.reqLeft = this.o.reqSize;
    }
    if (this.reqLeft > 0) {
      const n = s.send(this.req, this.o.reqSize - this.reqLeft, this.reqLeft);
      this.reqLeft -= n;
      if (n > 0) work++;
    }
    return work;
  }

  /** All transactions answered (or the connection ended). */
  get done(): boolean {
    return this.ended >= 0;
  }

  abort(): void {
    if (this.sock.closedBy === null) this.sock.abort();
  }

  result(): TcpRrResult {
    const end = this.ended >= 0 ? this.ended : this.now();
    return {
      ...this.stats.summary(),
      transactions: this.done_,
      elapsedMs: this.started < 0 ? 0 : end - this.started,
      failed: { ...this.failed },
    };
  }
}

/** TCP_RR's server: on each connection, every reqSize octets in are answered with rspSize octets; done when `conns` connections ended. */
export class TcpRrServer {
  private readonly rsp: Uint8Array;
  private ended = 0;
  transactions = 0;
  /** Answers a full send buffer held back, sent again from poll(). */
  private readonly behind = new Set<() => boolean>();

  constructor(
    private readonly tcp: TcpSockets,
    private readonly o: { port: number; reqSize: number; rspSize: number; conns: number },
  ) {
    this.rsp = new Uint8Array(o.rspSize).fill(0x41);
    tcp.listen(o.port, (sock) => {
      let got = 0;
      let owed = 0;
      const answer = (): boolean => {
        while (owed > 0) {
          const part = owed % this.o.rspSize || this.o.rspSize;
          const n = sock.send(this.rsp, this.o.rspSize - part, part);
          if (n === 0) {
            this.behind.add(answer);
            return false;
          }
          owed -= n;
          if (owed % this.o.rspSize === 0) this.transactions++;
        }
        this.behind.delete(answer);
        return true;
      };
      sock.onData = (_b, _off, len) => {
        got += len;
        while (got >= this.o.reqSize) {
          got -= this.o.reqSize;
          owed += this.o.rspSize;
        }
        answer();
      };
      sock.onPeerClosed = () => sock.close();
      sock.onClosed = () => {
        this.ended++;
        this.behind.delete(answer);
      };
    });
  }

  /** Send the answers a full send buffer held back; the work done. */
  poll(): number {
    let work = 0;
    for (const answer of [...this.behind]) if (answer()) work++;
    return work;
  }

  get done(): boolean {
    return this.ended >= this.o.conns;
  }

  stop(): void {
    this.tcp.unlisten(this.o.port);
  }
}
