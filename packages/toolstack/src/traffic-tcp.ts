/**
 * TCP traffic between two domains, driven from the toolstack as netperf
 * drives its netserver: start the receiving app (a sink for a stream, the
 * responder for request/response), make sure it listens, run the sending
 * app, and combine both ends' answers with the TCP counters each end's stack
 * moved meanwhile (retransmissions, out-of-order segments, drops by reason).
 */
import type { TcpRrReply, TcpSinkReply, TcpStreamReply } from '@xsim/hypervisor';
import type { DomainRef, Simulation } from './simulation.ts';
import { untilAborted } from './traffic.ts';

/** The iperf3 port (5201) for streams; netperf's data ports are chosen per test, ours is the next one up. */
export const TCP_STREAM_PORT = 5201;
export const TCP_RR_PORT = 5202;

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
  /** Octets per send() (netperf -m); default one MSS at MTU 1500 with timestamps, 1448. */
  writeSize?: number;
  /** The sink checks every octet against the stream's pattern (costs the receiver a compare per octet). */
  verify?: boolean;
}

/** What moved in an end's TCP counters during a run (only those that did). */
export type TcpDelta = Record<string, number>;

export interface TcpStreamRun {
  from: string;
  to: string;
  flows: number;
  /** Octets the sink received, and the sender saw acknowledged. */
  bytes: number;
  sentBytes: number;
  /** From the sink's first octet to its last. */
  elapsedMs: number;
  gbps: number;
  corrupt: number;
  complete: boolean;
  failed: Record<string, number>;
  sender: TcpDelta;
  receiver: TcpDelta;
}

export interface TcpRrOptions extends TcpEnds {
  count: number;
  reqSize?: number;
  rspSize?: number;
}

export interface TcpRrRun {
  from: string;
  to: string;
  transactions: number;
  elapsedMs: number;
  tps: number;
  p50Us: number;
  p99Us: number;
  minUs: number;
  maxUs: number;
  meanUs: number;
  complete: boolean;
  failed: Record<string, number>;
  sender: TcpDelta;
  receiver: TcpDelta;
}

const name = (r: DomainRef) => `${r.host}/${r.domain}`;

async function tcpCounters(sim: Simulation, d: DomainRef): Promise<Record<string, number>> {
  const s = await sim.domainStats(d, 120_000);
  return (s.endpoint?.tcp ?? {}) as Record<string, number>;
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
async function prepare(sim: Simulation, o: TcpEnds): Promise<{ dstIp: string; srcIp: string }> {
  const dstIp = sim.domain(o.to).ip;
  const srcIp = sim.domain(o.from).ip;
  await untilAborted(sim.request(o.from, 'arp_resolve', { ip: dstIp }), o.signal);
  return { dstIp, srcIp };
}

function merged(a: Record<string, number> | undefined, b: Record<string, number> | undefined): Record<string, number> {
  const out: Record<string, number> = { ...(a ?? {}) };
  for (const [k, v] of Object.entries(b ?? {})) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** netperf TCP_STREAM / iperf3 -n N -P F from `from` to `to`. */
export async function runTcpStream(sim: Simulation, o: TcpStreamOptions): Promise<TcpStreamRun> {
  const wait = <T>(p: Promise<T>) => untilAborted(p, o.signal);
  o.signal?.throwIfAborted();
  const port = o.port ?? TCP_STREAM_PORT;
  const timeoutMs = o.timeoutMs ?? 120_000;
  const flows = o.flows ?? 1;
  const { dstIp, srcIp } = await prepare(sim, o);
  const [sb, rb] = await wait(Promise.all([tcpCounters(sim, o.from), tcpCounters(sim, o.to)]));
  const sink = sim.request(o.to, 'tcp_sink', { port, flows, verify: o.verify === true, timeoutMs }, timeoutMs + 5000) as Promise<TcpSinkReply>;
  sink.catch(() => {});
  await wait(sim.request(o.to, 'arp_resolve', { ip: srcIp }));
  const send = (await wait(
    sim.request(o.from, 'tcp_stream', { dstIp, dstPort: port, bytes: o.bytes, flows, writeSize: o.writeSize ?? 1448, timeoutMs }, timeoutMs + 5000),
  )) as TcpStreamReply;
  const r = await wait(sink);
  const [sa, ra] = await wait(Promise.all([tcpCounters(sim, o.from), tcpCounters(sim, o.to)]));
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
export async function runTcpRr(sim: Simulation, o: TcpRrOptions): Promise<TcpRrRun> {
  const wait = <T>(p: Promise<T>) => untilAborted(p, o.signal);
  o.signal?.throwIfAborted();
  const port = o.port ?? TCP_RR_PORT;
  const timeoutMs = o.timeoutMs ?? 120_000;
  const reqSize = o.reqSize ?? 1;
  const rspSize = o.rspSize ?? 1;
  const { dstIp, srcIp } = await prepare(sim, o);
  const [sb, rb] = await wait(Promise.all([tcpCounters(sim, o.from), tcpCounters(sim, o.to)]));
  const server = sim.request(o.to, 'tcp_rr_server', { port, reqSize, rspSize, conns: 1, timeoutMs }, timeoutMs + 5000) as Promise<{ transactions: number }>;
  server.catch(() => {});
  await wait(sim.request(o.to, 'arp_resolve', { ip: srcIp }));
  const r = (await wait(sim.request(o.from, 'tcp_rr', { dstIp, dstPort: port, count: o.count, reqSize, rspSize, timeoutMs }, timeoutMs + 5000))) as TcpRrReply;
  await wait(server);
  const [sa, ra] = await wait(Promise.all([tcpCounters(sim, o.from), tcpCounters(sim, o.to)]));
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
