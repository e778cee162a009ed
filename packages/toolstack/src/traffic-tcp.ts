/**
 * TCP traffic between two domains, driven from the toolstack as netperf
 * drives its netserver: start the receiving app (a sink for a stream, the
 * responder for request/response), make sure it listens, run the sending
 * app, and combine both ends' answers with the TCP counters each end's stack
 * moved meanwhile (retransmissions, out-of-order segments, drops by reason).
 */
import type { DomainOps, OpName, OpReply, OpRequestParams, TcpRrReply, TcpSinkReply, TcpStreamReply } from '@xsim/hypervisor';
import type { DomainRef, Simulation } from './simulation.ts';
import { untilAborted } from './traffic.ts';
import { IntervalLoop, type Sample } from './interval-loop.ts';
import type { TcpIntervalSample, TcpRrRun, TcpStreamRun } from './schema/run.ts';

export type { TcpIntervalSample, TcpRrRun, TcpStreamRun };
/** What moved in an end's TCP counters during a run (only those that did). */
export type TcpDelta = Record<string, number>;

/** The iperf3 port (5201) for streams; netperf's data ports are chosen per test, ours is the next one up. */
export const TCP_STREAM_PORT = 5201;
export const TCP_RR_PORT = 5202;
/** A tcp-stream's message as --count counts them: one MSS at MTU 1500 with timestamps. */
export const TCP_MESSAGE = 1448;
/**
 * Octets per send() by default: 64 KiB, as iperf3 writes 128 KiB and netperf
 * the socket buffer's size (its -m); a write of one MSS at a time leaves the
 * stack no run of data to put in a TSO frame.
 */
export const TCP_WRITE_SIZE = 65536;

interface TcpEnds {
  from: DomainRef;
  to: DomainRef;
  port?: number;
  timeoutMs?: number;
  /** Stop waiting when this aborts; the apps end by their own deadlines. */
  signal?: AbortSignal;
}

export interface TcpStreamOptions extends TcpEnds {
  /** Octets in all (iperf3 -n), shared by the flows. */
  bytes: number;
  /** Parallel connections (iperf3 -P). */
  flows?: number;
  /** Octets per send() (netperf -m); default TCP_WRITE_SIZE, 64 KiB. */
  writeSize?: number;
  /** The sink checks every octet against the stream's pattern (costs the receiver a compare per octet). */
  verify?: boolean;
  /** Every `ms` of the simulation's clock while the stream runs: octets received and segments resent (iperf3's interval lines). */
  interval?: { ms: number; each: (x: TcpIntervalSample) => void };
}

export interface TcpRrOptions extends TcpEnds {
  count: number;
  reqSize?: number;
  rspSize?: number;
}

const name = (r: DomainRef) => `${r.host}/${r.domain}`;

/**
 * Whoever drives the two ends: a Simulation, or the partitions of one
 * (partitions/traffic.ts), each end's requests going to the process that
 * holds it. The ops are the domains' own, typed as Simulation.request's.
 */
export interface TcpDriver {
  /** The address a domain's first vif has. */
  ip(ref: DomainRef): string;
  request<K extends OpName<DomainOps>>(ref: DomainRef, op: K, ...rest: OpRequestParams<DomainOps, K>): Promise<OpReply<DomainOps, K>>;
  /** The counters of a domain's TCP stack. */
  tcpCounters(ref: DomainRef): Promise<Record<string, number>>;
}

/** A Simulation as a TcpDriver. */
export function simTcpDriver(sim: Simulation): TcpDriver {
  return {
    ip: (ref) => sim.domain(ref).ip,
    request: (ref, op, ...rest) => sim.request(ref, op, ...rest),
    tcpCounters: async (ref) => ((await sim.domainStats(ref, 120_000)).endpoint?.tcp ?? {}) as Record<string, number>,
  };
}

function delta(before: Record<string, number>, after: Record<string, number>): TcpDelta {
  const out: TcpDelta = {};
  for (const [k, v] of Object.entries(after)) {
    if (k === 'conns' || k === 'queued') continue;
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/**
 * ARP both ways, then the receiving app's request, then a round trip to the
 * receiver (requests to one domain are served in order, so once it answers,
 * the app listens and the sender's SYN cannot find the port closed).
 */
async function prepare(d: TcpDriver, o: TcpEnds): Promise<{ dstIp: string; srcIp: string }> {
  const dstIp = d.ip(o.to);
  const srcIp = d.ip(o.from);
  await untilAborted(d.request(o.from, 'arp_resolve', { ip: dstIp }), o.signal);
  return { dstIp, srcIp };
}

function merged(a: Record<string, number> | undefined, b: Record<string, number> | undefined): Record<string, number> {
  const out: Record<string, number> = { ...(a ?? {}) };
  for (const [k, v] of Object.entries(b ?? {})) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** netperf TCP_STREAM / iperf3 -n N -P F from `from` to `to`. */
export function runTcpStream(sim: Simulation, o: TcpStreamOptions): Promise<TcpStreamRun> {
  return tcpStreamVia(simTcpDriver(sim), o, o.interval ? (port) => new TcpSampler(sim, o, port, o.interval!) : null);
}

/** A TCP stream driven through `d` (no interval lines: they sample on a Simulation's clock). */
export function runTcpStreamVia(d: TcpDriver, o: Omit<TcpStreamOptions, 'interval'>): Promise<TcpStreamRun> {
  return tcpStreamVia(d, o, null);
}

async function tcpStreamVia(d: TcpDriver, o: TcpStreamOptions, sampling: ((port: number) => TcpSampler) | null): Promise<TcpStreamRun> {
  const wait = <T>(p: Promise<T>) => untilAborted(p, o.signal);
  o.signal?.throwIfAborted();
  const port = o.port ?? TCP_STREAM_PORT;
  const timeoutMs = o.timeoutMs ?? 120_000;
  const flows = o.flows ?? 1;
  const { dstIp, srcIp } = await prepare(d, o);
  const [sb, rb] = await wait(Promise.all([d.tcpCounters(o.from), d.tcpCounters(o.to)]));
  const sink = d.request(o.to, 'tcp_sink', { port, flows, verify: o.verify === true, timeoutMs }, timeoutMs + 5000) as Promise<TcpSinkReply>;
  sink.catch(() => {});
  await wait(d.request(o.to, 'arp_resolve', { ip: srcIp }));
  const sampler = sampling?.(port) ?? null;
  let send: TcpStreamReply;
  let r: TcpSinkReply;
  try {
    send = (await wait(
      d.request(o.from, 'tcp_stream', { dstIp, dstPort: port, bytes: o.bytes, flows, writeSize: o.writeSize ?? TCP_WRITE_SIZE, timeoutMs }, timeoutMs + 5000),
    )) as TcpStreamReply;
    r = await wait(sink);
  } catch (e) {
    await sampler?.finish(null);
    throw e;
  }
  await sampler?.finish(r.bytes);
  const [sa, ra] = await wait(Promise.all([d.tcpCounters(o.from), d.tcpCounters(o.to)]));
  const secs = r.elapsedMs / 1000;
  return {
    from: name(o.from),
    to: name(o.to),
    flows: r.flows,
    bytes: r.bytes,
    sentBytes: send.bytes,
    elapsedMs: r.elapsedMs,
    gbps: secs > 0 ? (r.bytes * 8) / secs / 1e9 : 0,
    corrupt: r.corrupt,
    complete: r.bytes === o.bytes && send.bytes === o.bytes && !send.timedOut && !r.timedOut,
    failed: merged(send.failed as Record<string, number>, r.failed as Record<string, number>),
    sender: delta(sb, sa),
    receiver: delta(rb, ra),
  };
}

/** netperf TCP_RR from `from` (the client) to `to` (the responder). */
export function runTcpRr(sim: Simulation, o: TcpRrOptions): Promise<TcpRrRun> {
  return runTcpRrVia(simTcpDriver(sim), o);
}

/** TCP_RR driven through `d`. */
export async function runTcpRrVia(d: TcpDriver, o: TcpRrOptions): Promise<TcpRrRun> {
  const wait = <T>(p: Promise<T>) => untilAborted(p, o.signal);
  o.signal?.throwIfAborted();
  const port = o.port ?? TCP_RR_PORT;
  const timeoutMs = o.timeoutMs ?? 120_000;
  const reqSize = o.reqSize ?? 1;
  const rspSize = o.rspSize ?? 1;
  const { dstIp, srcIp } = await prepare(d, o);
  const [sb, rb] = await wait(Promise.all([d.tcpCounters(o.from), d.tcpCounters(o.to)]));
  const server = d.request(o.to, 'tcp_rr_server', { port, reqSize, rspSize, conns: 1, timeoutMs }, timeoutMs + 5000) as Promise<{ transactions: number }>;
  server.catch(() => {});
  await wait(d.request(o.to, 'arp_resolve', { ip: srcIp }));
  const r = (await wait(d.request(o.from, 'tcp_rr', { dstIp, dstPort: port, count: o.count, reqSize, rspSize, timeoutMs }, timeoutMs + 5000))) as TcpRrReply;
  await wait(server);
  const [sa, ra] = await wait(Promise.all([d.tcpCounters(o.from), d.tcpCounters(o.to)]));
  return {
    from: name(o.from),
    to: name(o.to),
    transactions: r.transactions,
    elapsedMs: r.elapsedMs,
    tps: r.elapsedMs > 0 ? (r.transactions * 1000) / r.elapsedMs : 0,
    p50Us: r.p50Us,
    p99Us: r.p99Us,
    minUs: r.minUs,
    maxUs: r.maxUs,
    meanUs: r.meanUs,
    complete: r.transactions === o.count && !r.timedOut,
    failed: { ...(r.failed as Record<string, number>) },
    sender: delta(sb, sa),
    receiver: delta(rb, ra),
  };
}

/** What the TCP sink has taken, and the sender's retransmissions so far. */
type TcpSample = Sample & { bytes: number; retr: number };

/** The TCP stream's interval lines: octets the sink took, and the sender's retransmissions. */
class TcpSampler {
  private readonly loop: IntervalLoop<TcpSample>;

  constructor(
    private readonly sim: Simulation,
    private readonly o: TcpEnds,
    private readonly port: number,
    private readonly interval: { ms: number; each: (x: TcpIntervalSample) => void },
  ) {
    // The first interval starts from the stream's start, the sender's retransmissions so far as its base.
    this.loop = new IntervalLoop(
      sim,
      interval.ms,
      { sample: () => this.sample(), report: (a, b, t0) => this.report(a, b, t0) },
      { from: (first, t) => ({ ...first, t, bytes: 0 }) },
    );
  }

  private async retransmits(): Promise<number | null> {
    const from = await this.sim.domainStats(this.o.from, 120_000).catch(() => null);
    return (from?.endpoint?.tcp as Record<string, number> | undefined)?.tcpTxRetransmits ?? (from ? 0 : null);
  }

  private async sample(): Promise<TcpSample | null> {
    const [to, retr] = await Promise.all([this.sim.domainStats(this.o.to, 120_000).catch(() => null), this.retransmits()]);
    const p = to?.endpoint?.tcpProgress?.[this.port];
    return p ? { t: this.sim.clock.now(), bytes: p.bytes, retr: retr ?? 0 } : null;
  }

  private report(a: TcpSample, b: TcpSample, t0: number): void {
    const secs = (b.t - a.t) / 1000;
    const bytes = b.bytes - a.bytes;
    this.interval.each({
      start: (a.t - t0) / 1000,
      end: (b.t - t0) / 1000,
      bytes,
      gbps: secs > 0 ? (bytes * 8) / secs / 1e9 : 0,
      retransmits: b.retr - a.retr,
    });
  }

  /** The stream is over with `bytes` received: stop sampling and report the last, partial interval (null: it failed, at once). */
  async finish(bytes: number | null): Promise<void> {
    await this.loop.finish(bytes === null);
    if (bytes === null) return;
    const last = this.loop.previous ?? { t: this.loop.t0, bytes: 0, retr: 0 };
    const retr = (await this.retransmits()) ?? last.retr;
    if (bytes > last.bytes) {
      // Nothing sampled before: the interval runs from the start.
      if (!this.loop.previous) this.loop.emit({ t: this.loop.t0, bytes: 0, retr });
      this.loop.emit({ t: this.sim.clock.now(), bytes, retr });
    }
  }
}
