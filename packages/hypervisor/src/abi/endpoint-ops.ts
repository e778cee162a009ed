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
} as const;
export type EndpointOps = typeof ENDPOINT_OPS;
