/**
 * Traffic between two domains, driven from the toolstack: resolve ARP first,
 * start the receiver, run the sender, and combine both ends' views. Goodput is
 * the receiver's (frames delivered between its first and last arrival).
 */
import type { LatencySummary } from '@xsim/netfront';
import type { DomainRef, Simulation } from './simulation.ts';

export interface StreamOptions {
  from: DomainRef;
  to: DomainRef;
  count: number;
  /** Whole Ethernet frame length in bytes (headers included, FCS excluded). */
  frameSize: number;
  /** Credit window in frames (0 = send as fast as the rings allow). */
  window?: number;
  port?: number;
  /** Sender's UDP port (credits return to it); default: a fresh one per stream. */
  srcPort?: number;
  streamId?: number;
  timeoutMs?: number;
  /** Payload filler after the sequence header, hex (1 to 32 bytes), repeated. */
  pattern?: string;
  /** Send from / receive on this vif of the guest (default: its first). */
  fromVif?: number;
  toVif?: number;
}

export interface StreamResult {
  from: string;
  to: string;
  count: number;
  frameSize: number;
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  reordered: number;
  tooOld: number;
  elapsedMs: number;
  pps: number;
  gbps: number;
  senderMs: number;
  stalls: number;
  complete: boolean;
  reorderSamples: [number, number][];
}

let nextStream = 1;

export async function runStream(sim: Simulation, o: StreamOptions): Promise<StreamResult> {
  const src = sim.domain(o.from);
  const dst = sim.domain(o.to);
  const port = o.port ?? 5001;
  const streamId = o.streamId ?? nextStream++;
  const timeoutMs = o.timeoutMs ?? 120_000;
  const dstIp = o.toVif === undefined ? dst.ip : sim.vifAddress(o.to, o.toVif).ip;
  const on = (vif: number | undefined) => (vif === undefined ? {} : { vif });
  await sim.request(o.from, 'arp_resolve', { ip: dstIp, ...on(o.fromVif) });
  const creditEvery = o.window ? Math.max(1, Math.floor(o.window / 4)) : 0;
  const recv = sim.request(o.to, 'stream_recv', { port, count: o.count, streamId, timeoutMs, idleMs: 500, creditEvery, ...on(o.toVif) }, timeoutMs + 5000) as Promise<Record<string, number | boolean>>;
  // Marked handled now: the receiver may go away (destroyed) while we still wait for the sender;
  // awaiting it below still throws.
  recv.catch(() => {});
  let send: Record<string, number>;
  try {
    send = (await sim.request(o.from, 'stream_send', { ...on(o.fromVif), dstIp, dstPort: port, count: o.count, frameSize: o.frameSize, streamId, window: o.window ?? 0, srcPort: o.srcPort, pattern: o.pattern }, timeoutMs)) as Record<string, number>;
  } catch (e) {
    // The receiver is still waiting; its request fails when the simulation shuts down, and that is not news.
    recv.catch(() => {});
    throw e;
  }
  const r = await recv;
  return {
    from: `${src.host}/${src.name}`,
    to: `${dst.host}/${dst.name}`,
    count: o.count,
    frameSize: o.frameSize,
    sent: send.sent,
    delivered: Number(r.delivered),
    lost: Number(r.lost),
    duplicated: Number(r.duplicated),
    reordered: Number(r.reordered),
    tooOld: Number(r.tooOld),
    elapsedMs: Number(r.elapsedMs),
    pps: Number(r.pps),
    gbps: Number(r.gbps),
    senderMs: send.elapsedMs,
    stalls: send.stalls,
    complete: r.complete === true,
    reorderSamples: (r as unknown as { reorderSamples: [number, number][] }).reorderSamples ?? [],
  };
}

/** What a ping-pong run reports: the client's latency summary. */
export type PingResult = LatencySummary;

export async function runPing(sim: Simulation, from: DomainRef, to: DomainRef, count: number, size = 64): Promise<PingResult> {
  const dst = sim.domain(to);
  await sim.request(from, 'arp_resolve', { ip: dst.ip });
  return (await sim.request(from, 'ping', { dstIp: dst.ip, count, size })) as PingResult;
}
