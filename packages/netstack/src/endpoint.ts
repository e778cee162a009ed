/**
 * A network endpoint inside a domain: the tiny IP stack on one interface plus
 * the traffic apps (sequenced UDP stream with credits, ping as ICMP echo, and
 * a UDP echo service on port 7, RFC 862, for outside tools), driven
 * by toolstack control requests. Used by guests (over netfront) and by dom0
 * (over its bridge port), so both ends of every benchmark run the same code.
 */
import { DEFERRED, realClock, type Clock, type EndpointOps, type OpArgs, type OpHandlers, type RpcReply } from '@xsim/hypervisor';
import { GuestStack, formatIp, parseIp, parseMac, type StackOffloads, type StackTransport } from './net/index.ts';
import { PingClient, PingServer, STREAM_FIRST_FRAME_MS, StreamReceiver, StreamSender, parsePattern } from './traffic/index.ts';
import { TcpJobs } from './endpoint-tcp.ts';
import { ENDPOINT_COUNTERS, type EndpointOptions, type EndpointState, type FrameTransport, type PingJob, type RecvJob, type SendJob } from './endpoint-jobs.ts';

export { ENDPOINT_COUNTERS, type EndpointOptions, type EndpointState, type FrameTransport } from './endpoint-jobs.ts';

/** How often the apps look at their timers while they have jobs (ARP retries, idle receivers, lingering ports). */
const TICK_MS = 10;

type Reply = RpcReply;

const ECHO_PORT = 7;
const TX_BURST = 64;

export class NetEndpoint {
  readonly stack: GuestStack;
  private readonly t: FrameTransport;
  private readonly sends: SendJob[] = [];
  private readonly recvs = new Map<number, RecvJob>();
  private readonly pings: PingJob[] = [];
  private readonly arpWaits: { ip: number; reply: Reply; deadline: number }[] = [];
  private nextPort = 40000;
  private lastTick = 0;
  /** The time stamped on this batch of arrivals (read at its first frame, cleared at the end of each poll), or -1. */
  private arrivalStamp = -1;
  /** Credit ports kept open after a stream ends, so late credits are not rxNoSocket drops (cf. TIME_WAIT). */
  private readonly lingering: { port: number; until: number }[] = [];
  /** lateCredits, creditsDeferred: stored where declared (ENDPOINT_COUNTERS). */
  readonly c = ENDPOINT_COUNTERS.zero();

  private readonly clock: Clock;
  /** TCP apps (netperf-like streams and request/response). */
  private readonly tcpJobs: TcpJobs;

  constructor(private readonly o: EndpointOptions) {
    this.clock = o.clock ?? realClock;
    this.t = o.transport;
    const transport: StackTransport = {
      reserve: (len) => {
        const off = this.t.txReserve(len);
        return off < 0 ? null : { buf: this.t.ram, off };
      },
      commit: (len, csumPartial, gsoSize) => this.t.txCommit(len, csumPartial, gsoSize),
    };
    this.stack = new GuestStack({ mac: parseMac(o.mac), ip: parseIp(o.ip), transport, mtu: o.mtu, now: () => this.clock.now() });
    // The kernel polls its drivers, then us (poll: TCP's due timers): an ACK owed for a batch of segments goes once, after it.
    this.stack.tcp.stretchAcks = true;
    this.tcpJobs = new TcpJobs(this.stack, this.clock);
    const server = new PingServer();
    this.stack.bind(ECHO_PORT, (buf, off, len, srcIp, srcPort) => {
      // A probe larger than we may send back (a peer with a larger MTU) is not answered.
      if (GuestStack.udpFrameLen(len) > this.stack.maxFrame) return;
      server.handle();
      this.stack.sendUdp(srcIp, ECHO_PORT, srcPort, len, (out, at) => copyInto(out, at, buf, off, len));
    });
  }

  /** A frame for the stack; `rxFlags`: the driver's NETRXF bits (data_validated, csum_blank). */
  receive(ram: Uint8Array, off: number, len: number, rxFlags = 0): void {
    this.stack.receive(ram, off, len, rxFlags);
  }

  /** The driver's offloads (after negotiating with its backend or device, or switched at run time). */
  setOffloads(o: StackOffloads): void {
    this.stack.setOffloads(o);
  }

  /** The driver cut the MTU (netfront without scatter-gather): the stack and the apps build no larger frame. */
  setMtu(mtu: number): void {
    this.stack.setMtu(mtu);
  }

  stats() {
    // Streams being received, by port: how far each has got (the toolstack's per-interval rates read this).
    const progress = Object.fromEntries(
      [...this.recvs].map(([port, j]) => [
        port,
        { delivered: j.receiver.tracker.delivered, highest: j.receiver.tracker.highestSeq, duplicated: j.receiver.tracker.duplicated },
      ]),
    );
    return {
      ip: this.o.ip,
      mac: this.o.mac,
      stack: { ...this.stack.counters },
      tcp: { ...this.stack.tcp.counters, ...this.stack.tcp.totals(), conns: this.stack.tcp.size, queued: this.stack.tcp.queued },
      tcpProgress: this.tcpJobs.progress(),
      tcpConns: this.stack.tcp.connections(),
      sending: this.sends.length,
      receiving: this.recvs.size,
      progress,
      lateCredits: this.c.lateCredits,
      creditsDeferred: this.c.creditsDeferred,
    };
  }

  /** Toolstack requests for the apps (@xsim/hypervisor's ENDPOINT_OPS: each op's arguments come checked). */
  handlers(): OpHandlers<EndpointOps> {
    return {
      ...this.tcpJobs.handlers(),
      arp_resolve: (a, { later }) => {
        const now = this.clock.now();
        const ip = parseIp(a.ip);
        this.stack.resolve(ip, now);
        this.arpWaits.push({ ip, reply: later(), deadline: now + (a.timeoutMs ?? 3000) });
        return DEFERRED;
      },
      stream_recv: (a, { later }) => {
        const now = this.clock.now();
        const port = a.port;
        if (this.recvs.has(port)) throw new Error(`a stream is already being received on port ${port}`);
        const receiver = new StreamReceiver({ streamId: a.streamId ?? 0, creditEvery: a.creditEvery ?? 64 });
        this.addRecv({
          receiver,
          port,
          count: a.count,
          idleMs: a.idleMs ?? 500,
          deadline: now + (a.timeoutMs ?? 60_000),
          reply: later(),
          lastArrival: now,
          credit: null,
        });
        return DEFERRED;
      },
      stream_send: (a, { later }) => this.streamSend(a, later),
      ping: (a, { later }) => {
        const now = this.clock.now();
        const size = a.size ?? 64;
        if (!Number.isInteger(size) || size < 16) throw new Error(`ping size must be an integer of at least 16 bytes (seq + timestamp), got ${String(a.size)}`);
        const frame = GuestStack.udpFrameLen(size);
        if (frame > this.stack.maxFrame)
          throw new Error(`ping of ${size} bytes makes a ${frame}-byte frame: over ${this.o.name}'s MTU ${this.stack.maxFrame - 14} (+14-byte header)`);
        const srcPort = this.nextPort++;
        const client = new PingClient(() => this.clock.now());
        const job: PingJob = {
          client,
          dstIp: parseIp(a.dstIp),
          count: a.count ?? 100,
          size,
          sent: 0,
          reply: later(),
          deadline: now + (a.timeoutMs ?? 10_000),
          srcPort,
        };
        // ICMP echo (a raw socket's identifier: the port the job holds, so two pings never share one).
        this.stack.bindEcho(srcPort, (buf, off, len) => client.onReply(buf, off, len, this.clock.now()));
        this.pings.push(job);
        return DEFERRED;
      },
    };
  }

  private streamSend(a: OpArgs<EndpointOps, 'stream_send'>, later: () => RpcReply): typeof DEFERRED {
    const now = this.clock.now();
    const frameSize = a.frameSize ?? 1500;
    const payloadLen = frameSize - 42;
    if (!(payloadLen >= 8) || frameSize > this.stack.maxFrame) throw new Error(`frame size ${frameSize} outside 50..${this.stack.maxFrame}`);
    const pattern = a.pattern !== undefined ? parsePattern(a.pattern) : undefined;
    const sender = new StreamSender({ count: a.count, streamId: a.streamId ?? 0, window: a.window ?? 0, now: () => this.clock.now(), pattern });
    // A caller may pin the source port (credits come back to it), e.g. to keep one learnt flow across streams.
    const creditPort = a.srcPort !== undefined ? a.srcPort : this.nextPort++;
    const linger = this.lingering.findIndex((l) => l.port === creditPort);
    if (linger >= 0) {
      this.lingering.splice(linger, 1);
      this.stack.unbind(creditPort);
    }
    this.addSend({ sender, dstIp: parseIp(a.dstIp), srcPort: creditPort, dstPort: a.dstPort, payloadLen, reply: later(), started: now, creditPort });
    return DEFERRED;
  }

  private addRecv(job: RecvJob): void {
    this.recvs.set(job.port, job);
    this.stack.bind(job.port, (buf, off, len, srcIp, srcPort) => {
      // One clock read per batch of arrivals: every frame of it is stamped with the first's time (poll starts the next batch).
      if (this.arrivalStamp < 0) this.arrivalStamp = this.clock.now();
      const t = this.arrivalStamp;
      job.lastArrival = t;
      const credit = job.receiver.onPayload(buf, off, len, t);
      if (credit >= 0) {
        job.credit = { to: srcIp, toPort: srcPort, value: credit };
        this.sendCredit(job);
      }
    });
  }

  private addSend(job: SendJob): void {
    // One filler for the job's life, not a closure per frame: it writes the frame the sender is at (peekSeq).
    job.fill = (buf, off) => job.sender.fill(buf, off, job.sender.peekSeq(), job.payloadLen);
    this.stack.bind(job.creditPort, (buf, off, len) => {
      if (len >= 8) job.sender.onCredit(readCredit(buf, off));
    });
    this.sends.push(job);
  }

  private linger(port: number, until: number): void {
    this.stack.bind(port, () => this.c.lateCredits++);
    this.lingering.push({ port, until });
  }

  /**
   * The endpoint as plain data, for a suspend. Pings in flight cannot wait
   * out a migration (their RTTs would measure it): they are answered now, with
   * what they measured and `interrupted`.
   */
  save(): EndpointState {
    const now = this.clock.now();
    this.tcpJobs.interrupt('the domain was suspended');
    for (const job of this.pings.splice(0)) {
      this.stack.unbindEcho(job.srcPort);
      job.reply({ sent: job.sent, ...job.client.stats.summary(), interrupted: 'the domain was suspended' });
    }
    return {
      now,
      counters: { ...this.stack.counters },
      arp: this.stack.arp.save(),
      nextPort: this.nextPort,
      lateCredits: this.c.lateCredits,
      creditsDeferred: this.c.creditsDeferred,
      sends: this.sends.map((j) => ({
        replyId: j.reply.id,
        sender: j.sender.save(),
        dstIp: j.dstIp,
        srcPort: j.srcPort,
        dstPort: j.dstPort,
        payloadLen: j.payloadLen,
        started: j.started,
      })),
      recvs: [...this.recvs.values()].map((j) => ({
        replyId: j.reply.id,
        port: j.port,
        count: j.count,
        idleMs: j.idleMs,
        deadline: j.deadline,
        lastArrival: j.lastArrival,
        credit: j.credit,
        receiver: j.receiver.save(),
      })),
      arpWaits: this.arpWaits.map((w) => ({ replyId: w.reply.id, ip: w.ip, deadline: w.deadline })),
      lingering: this.lingering.map((l) => ({ ...l })),
    };
  }

  /**
   * Take up a saved endpoint's work. Its times move onto this clock as if no
   * time had passed while the domain was suspended (guest time stands still
   * while a domain does not run, as Xen's default HVM timer mode has it), so a
   * blackout does not trip an idle receiver; the blackout is measured and
   * reported by the toolstack instead. `replier` answers the requests the
   * saved apps had accepted.
   */
  restore(st: EndpointState, replier: (id: number) => Reply): void {
    const shift = this.clock.now() - st.now;
    Object.assign(this.stack.counters, st.counters);
    for (const [ip, mac, updated] of st.arp) this.stack.arp.learn(ip, mac, updated + shift);
    this.nextPort = st.nextPort;
    this.c.lateCredits = st.lateCredits;
    this.c.creditsDeferred = st.creditsDeferred;
    const now = () => this.clock.now();
    for (const j of st.sends) {
      this.addSend({
        sender: StreamSender.restore(j.sender, shift, now),
        dstIp: j.dstIp,
        srcPort: j.srcPort,
        dstPort: j.dstPort,
        payloadLen: j.payloadLen,
        reply: replier(j.replyId),
        started: j.started + shift,
        creditPort: j.srcPort,
      });
    }
    for (const j of st.recvs) {
      this.addRecv({
        receiver: StreamReceiver.restore(j.receiver, shift),
        port: j.port,
        count: j.count,
        idleMs: j.idleMs,
        deadline: j.deadline + shift,
        reply: replier(j.replyId),
        lastArrival: j.lastArrival + shift,
        credit: j.credit,
      });
    }
    for (const w of st.arpWaits) this.arpWaits.push({ ip: w.ip, reply: replier(w.replyId), deadline: w.deadline + shift });
    for (const l of st.lingering) this.linger(l.port, l.until + shift);
  }

  /** Jobs that need the clock to move (an ARP wait, a receiver, a ping, a stalled sender, a lingering port). */
  private get timed(): boolean {
    return this.arpWaits.length + this.recvs.size + this.pings.length + this.lingering.length + this.sends.length + this.tcpJobs.size > 0;
  }

  /** When the apps next need a turn for their timers alone, or Infinity with nothing waiting on time. */
  nextDeadline(): number {
    // TCP's timers (retransmission, delayed ACK, TIME-WAIT) wake the domain themselves; segments queued for room retry each tick.
    const tcp = this.stack.tcp;
    let t = tcp.queued > 0 ? this.lastTick + TICK_MS : tcp.nextTimer();
    if (!this.timed) return t;
    t = Math.min(t, this.lastTick + TICK_MS, this.tcpJobs.nextDeadline());
    for (const s of this.sends) t = Math.min(t, s.sender.deadline());
    return t;
  }

  /** The apps' share of the domain loop. */
  poll(): number {
    const now = this.clock.now();
    let work = 0;
    if (now - this.lastTick >= TICK_MS) {
      this.lastTick = now;
      this.stack.tick(now);
      this.checkArp(now);
      this.checkReceivers(now);
      while (this.lingering.length > 0 && this.lingering[0].until < now) this.stack.unbind(this.lingering.shift()!.port);
    }
    const tcp = this.stack.tcp;
    if (tcp.queued > 0 && tcp.flush()) work++;
    if (tcp.nextTimer() <= now) tcp.tick(now);
    for (const job of this.recvs.values()) if (job.credit) work += this.sendCredit(job);
    for (let i = 0; i < this.sends.length; i++) work += this.pump(this.sends[i], now);
    for (let i = 0; i < this.pings.length; i++) work += this.pumpPing(this.pings[i], now);
    work += this.tcpJobs.poll(now);
    if (work > 0) this.t.flush();
    this.arrivalStamp = -1;
    return work;
  }

  /** Send the receiver's pending credit; 1 if it went out, else 0 (kept for the next poll). */
  private sendCredit(job: RecvJob): number {
    const c = job.credit!;
    if (!this.stack.sendUdp(c.to, job.port, c.toPort, 8, (out, at) => writeCredit(out, at, job.receiver.streamId, c.value))) {
      this.c.creditsDeferred++;
      return 0;
    }
    job.credit = null;
    return 1;
  }

  private pump(job: SendJob, now: number): number {
    const s = job.sender;
    let n = 0;
    // A sender whose stream has not moved for STREAM_GIVE_UP_MS stops here and answers with what it sent
    // (asked once a burst: the clock is not read per frame).
    if (!s.giveUpIfStuck())
      while (n < TX_BURST && s.canSend()) {
        if (!this.stack.sendUdp(job.dstIp, job.srcPort, job.dstPort, job.payloadLen, job.fill!)) break;
        s.commit();
        n++;
      }
    if (s.done()) {
      this.sends.splice(this.sends.indexOf(job), 1);
      this.stack.unbind(job.creditPort);
      this.linger(job.creditPort, now + 2000);
      this.t.flush();
      job.reply({ sent: s.sent, elapsedMs: now - job.started, stalls: s.stalls });
    }
    return n;
  }

  private pumpPing(job: PingJob, now: number): number {
    if (job.client.outstanding() === 0 && job.sent < job.count) {
      const seq = job.sent;
      // Counted sent only once it went (an ARP still out, or no room: tried again next poll).
      if (this.stack.sendEcho(job.dstIp, job.srcPort, seq, job.size, (buf, off) => job.client.fill(buf, off, seq, this.clock.now()))) job.sent++;
      return 1;
    }
    if ((job.sent >= job.count && job.client.outstanding() === 0) || now > job.deadline) {
      this.pings.splice(this.pings.indexOf(job), 1);
      this.stack.unbindEcho(job.srcPort);
      job.reply({ sent: job.sent, ...job.client.stats.summary() });
    }
    return 0;
  }

  private checkArp(now: number): void {
    for (let i = this.arpWaits.length - 1; i >= 0; i--) {
      const w = this.arpWaits[i];
      const mac = this.stack.arp.lookup(w.ip);
      if (mac !== undefined) {
        this.arpWaits.splice(i, 1);
        w.reply({ resolved: true, mac });
      } else if (now > w.deadline) {
        this.arpWaits.splice(i, 1);
        w.reply(undefined, `ARP: ${this.o.name} asked who has ${formatIp(w.ip)} and got no reply`);
      } else {
        // Ask again (the cache rate-limits it): one lost request or reply must not fail the wait.
        this.stack.resolve(w.ip, now);
      }
    }
  }

  private checkReceivers(now: number): void {
    for (const [port, job] of this.recvs) {
      const st = job.receiver.stats(job.count);
      const complete = st.delivered >= job.count;
      // Idle: nothing for idleMs since the last frame, or for STREAM_FIRST_FRAME_MS if none came at all
      // (every frame dropped, a sender that gave up or is gone): such a stream ends too, saying what it lost.
      const quiet = st.delivered > 0 ? job.idleMs : Math.max(job.idleMs, STREAM_FIRST_FRAME_MS);
      const idle = !complete && now - job.lastArrival > quiet;
      if (complete || idle || now > job.deadline) {
        this.recvs.delete(port);
        this.stack.unbind(port);
        job.reply({ ...st, ...job.receiver.goodput(), complete, idle, timedOut: !complete && !idle });
      }
    }
  }
}

function copyInto(out: Uint8Array, at: number, src: Uint8Array, off: number, len: number): void {
  out.set(src.subarray(off, off + len), at);
}

function writeCredit(buf: Uint8Array, off: number, streamId: number, seq: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset);
  dv.setUint32(off, streamId >>> 0);
  dv.setUint32(off + 4, seq >>> 0);
}

function readCredit(buf: Uint8Array, off: number): number {
  return new DataView(buf.buffer, buf.byteOffset).getUint32(off + 4);
}
