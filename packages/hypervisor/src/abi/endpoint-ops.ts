/**
 * The traffic apps' ops (netstack's NetEndpoint), answered by dom0 and by
 * every guest. A guest with several vifs runs one endpoint per vif: `vif`
 * names which (absent: its first); dom0 has one and ignores it.
 *
 *   op            args                                            reply
 *   arp_resolve   {ip: string          dotted quad to resolve      {resolved: true, mac: number}
 *                  timeoutMs?: number  (3000)}                     (error: no ARP reply in time)
 *   stream_recv   {port: number        UDP port to receive on      the receiver's counters and goodput, and
 *                  count: number       frames the sender sends     idle: true when it ended on silence (idleMs
 *                  streamId?, creditEvery? (64), idleMs? (500),     after the last frame, or 5 s with none at
 *                  timeoutMs? (60000)}                              all: every frame dropped, a sender gone)
 *   stream_send   {dstIp: string, dstPort: number, count: number   {sent, elapsedMs, stalls}: sent falls short
 *                  frameSize? (1500)   octets per frame, 50..MTU+14  of count when the sender gave up (no credit
 *                  streamId?, window? (0: credits only), srcPort?,   back, or its vif took no frame, for 2 s)
 *                  pattern?: string}
 *   ping          {dstIp: string, count? (100), size? (64, >= 16), timeoutMs? (10000)}
 *                 ICMP echo (RFC 792), one probe in flight; size:  {sent, ...latency summary}
 *                 data octets after the 8-octet ICMP header
 *   tcp_sink      {port, flows? (1), verify? (false),              TcpSinkReply: octets, flows, first to last
 *                  timeoutMs? (60000)}                              octet, corrupt octets (verify), failures
 *                 accept `flows` connections, count (check) every octet, close each when its peer does
 *   tcp_stream    {dstIp, dstPort, bytes, flows? (1),               TcpStreamReply: octets acknowledged, time
 *                  writeSize? (1448), timeoutMs? (60000)}           from the first connect to the last close
 *                 netperf TCP_STREAM / iperf3 -n -P: `flows` connections share `bytes`, written writeSize at a time
 *   tcp_rr_server {port, reqSize? (1), rspSize? (1), conns? (1),    {transactions}
 *                  timeoutMs? (60000)}
 *   tcp_rr        {dstIp, dstPort, count, reqSize? (1),             TcpRrReply: transactions, elapsed,
 *                  rspSize? (1), timeoutMs? (60000)}                latency summary per transaction
 *                 netperf TCP_RR: one connection, one transaction in flight
 *   A TCP app that times out answers with what it measured and timedOut: true; one a suspend interrupts, interrupted.
 */
import { Type } from '@sinclair/typebox';
import { op, replyOf } from './ops.ts';

const vif = Type.Optional(Type.Number());
const opt = () => Type.Optional(Type.Number());

/** Round trips' summary, in microseconds: what netstack's LatencyStats gives. */
export interface LatencySummary {
  count: number;
  lost: number;
  minUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  meanUs: number;
}

/** ping's answer: frames sent and the round trips' summary. */
export interface PingReply extends LatencySummary {
  sent: number;
  /** Set if the domain was suspended while it pinged. */
  interrupted?: string;
}

/** How TCP connections of an app ended otherwise than by an orderly close, by reason (reset, timeout, refused, aborted). */
export type TcpFailures = Partial<Record<'closed' | 'reset' | 'timeout' | 'refused' | 'aborted', number>>;

/** What ended a TCP app early: its time ran out, or a suspend interrupted it. */
interface TcpEnding {
  timedOut?: boolean;
  interrupted?: string;
}

export interface TcpSinkReply extends TcpEnding {
  flows: number;
  bytes: number;
  /** From the first octet to the last, across flows. */
  elapsedMs: number;
  corrupt: number;
  failed: TcpFailures;
}

export interface TcpStreamReply extends TcpEnding {
  flows: number;
  /** Octets written and acknowledged. */
  bytes: number;
  elapsedMs: number;
  failed: TcpFailures;
}

export interface TcpRrReply extends LatencySummary, TcpEnding {
  transactions: number;
  elapsedMs: number;
  failed: TcpFailures;
}

export const ENDPOINT_OPS = {
  arp_resolve: op(Type.Object({ ip: Type.String(), timeoutMs: opt(), vif }), replyOf<{ resolved: boolean; mac: number }>()),
  stream_recv: op(
    Type.Object({ port: Type.Number(), count: Type.Number(), streamId: opt(), creditEvery: opt(), idleMs: opt(), timeoutMs: opt(), vif }),
    replyOf<Record<string, number | boolean>>(),
  ),
  stream_send: op(
    Type.Object({
      dstIp: Type.String(),
      dstPort: Type.Number(),
      count: Type.Number(),
      frameSize: opt(),
      streamId: opt(),
      window: opt(),
      srcPort: opt(),
      pattern: Type.Optional(Type.String()),
      vif,
    }),
    replyOf<{ sent: number; elapsedMs: number; stalls: number }>(),
  ),
  ping: op(Type.Object({ dstIp: Type.String(), count: opt(), size: opt(), timeoutMs: opt(), vif }), replyOf<PingReply>()),
  tcp_sink: op(Type.Object({ port: Type.Number(), flows: opt(), verify: Type.Optional(Type.Boolean()), timeoutMs: opt(), vif }), replyOf<TcpSinkReply>()),
  tcp_stream: op(
    Type.Object({ dstIp: Type.String(), dstPort: Type.Number(), bytes: Type.Number(), flows: opt(), writeSize: opt(), timeoutMs: opt(), vif }),
    replyOf<TcpStreamReply>(),
  ),
  tcp_rr_server: op(
    Type.Object({ port: Type.Number(), reqSize: opt(), rspSize: opt(), conns: opt(), timeoutMs: opt(), vif }),
    replyOf<{ transactions: number } & TcpEnding>(),
  ),
  tcp_rr: op(
    Type.Object({ dstIp: Type.String(), dstPort: Type.Number(), count: Type.Number(), reqSize: opt(), rspSize: opt(), timeoutMs: opt(), vif }),
    replyOf<TcpRrReply>(),
  ),
} as const;
export type EndpointOps = typeof ENDPOINT_OPS;
