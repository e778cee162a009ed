/**
 * Traffic between two domains, driven from the toolstack: resolve ARP first,
 * start the receiver, run the sender, and combine both ends' views. Goodput is
 * the receiver's (frames delivered between its first and last arrival).
 *
 * A stream always ends: its sender gives up when its credits stop coming back
 * or it cannot send (its reply's `sent` then falls short of `count`), its
 * receiver ends when idle (netstack's STREAM_GIVE_UP_MS and
 * STREAM_FIRST_FRAME_MS); and a caller can stop waiting for one at once
 * (`signal`).
 */
import type { LatencySummary } from '@xsim/netstack';
import type { DomainRef, Simulation } from './simulation.ts';
import { IntervalLoop, type Sample } from './interval-loop.ts';

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
  /** Every `ms` of the simulation's clock while the stream runs, how far the receiver has got (iperf3's interval lines). */
  interval?: { ms: number; each: (s: IntervalSample) => void };
  /**
   * Stop waiting when this aborts (a shutdown): runStream rejects at once with
   * the signal's reason; the ends' apps finish by themselves (or go with the
   * simulation).
   */
  signal?: AbortSignal;
}

/** One interval of a stream, as the receiver saw it. */
import type { IntervalSample, StreamResult } from './schema/run.ts';

export type { IntervalSample, StreamResult };

let nextStream = 1;

/** UDP frames `to`'s stack has received so far (what "mid-stream" is measured by). */
export async function rxUdp(sim: Simulation, to: DomainRef): Promise<number> {
  const s = await sim.domainStats(to, 120_000);
  return s.endpoint?.stack.rxUdp ?? 0;
}

/** `p`, or a rejection with the signal's reason as soon as it aborts (`p` is then left to settle unheard). */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason instanceof Error ? signal.reason : new Error(`stopped: ${String(signal.reason)}`));
    if (signal.aborted) return abort();
    signal.addEventListener('abort', abort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

export async function runStream(sim: Simulation, o: StreamOptions): Promise<StreamResult> {
  const wait = <T>(p: Promise<T>) => untilAborted(p, o.signal);
  o.signal?.throwIfAborted();
  const src = sim.domain(o.from);
  const dst = sim.domain(o.to);
  const s: StreamParams = {
    port: o.port ?? 5001,
    streamId: o.streamId ?? nextStream++,
    timeoutMs: o.timeoutMs ?? 120_000,
    dstIp: o.toVif === undefined ? dst.ip : sim.vifAddress(o.to, o.toVif).ip,
  };
  await wait(sim.request(o.from, 'arp_resolve', { ip: s.dstIp, ...onVif(o.fromVif) }));
  const recv = receive(sim, o, s);
  const sampler = o.interval ? new IntervalSampler(sim, { ...o, interval: o.interval }, s.port) : null;
  let send: Record<string, number>;
  try {
    send = await wait(transmit(sim, o, s));
  } catch (e) {
    // The receiver ends by itself (idle, or no frame at all, netstack's STREAM_FIRST_FRAME_MS) and frees its port then;
    // its answer is not news.
    await sampler?.finish(null, o.signal?.aborted);
    throw e;
  }
  let r: Record<string, number | boolean>;
  try {
    r = await wait(recv);
  } catch (e) {
    await sampler?.finish(null, o.signal?.aborted);
    throw e;
  }
  const result = streamResult(`${src.host}/${src.name}`, `${dst.host}/${dst.name}`, o, send, r);
  await sampler?.finish({ delivered: result.delivered, lost: result.lost });
  return result;
}

interface StreamParams {
  port: number;
  streamId: number;
  timeoutMs: number;
  dstIp: string;
}

const onVif = (vif: number | undefined) => (vif === undefined ? {} : { vif });

/** Start the receiver: its answer, already marked handled (it may go away, destroyed, while the sender is awaited; awaiting it still throws). */
function receive(sim: Simulation, o: StreamOptions, s: StreamParams): Promise<Record<string, number | boolean>> {
  const creditEvery = o.window ? Math.max(1, Math.floor(o.window / 4)) : 0;
  const recv = sim.request(
    o.to,
    'stream_recv',
    { port: s.port, count: o.count, streamId: s.streamId, timeoutMs: s.timeoutMs, idleMs: 500, creditEvery, ...onVif(o.toVif) },
    s.timeoutMs + 5000,
  ) as Promise<Record<string, number | boolean>>;
  recv.catch(() => {});
  return recv;
}

/** Run the sender: it answers with what it sent (short of `count` if it gave up). */
function transmit(sim: Simulation, o: StreamOptions, s: StreamParams): Promise<Record<string, number>> {
  const args = {
    ...onVif(o.fromVif),
    dstIp: s.dstIp,
    dstPort: s.port,
    count: o.count,
    frameSize: o.frameSize,
    streamId: s.streamId,
    window: o.window ?? 0,
    srcPort: o.srcPort,
    pattern: o.pattern,
  };
  return sim.request(o.from, 'stream_send', args, s.timeoutMs) as Promise<Record<string, number>>;
}

/** What the UDP stream's receiver has taken, and the gaps in its sequence numbers (lost, or late). */
type UdpSample = Sample & { delivered: number; gaps: number };

/** The UDP stream's interval lines: frames the receiver took, lost ones by the gaps in its sequence numbers. */
class IntervalSampler {
  private readonly loop: IntervalLoop<UdpSample>;

  constructor(
    private readonly sim: Simulation,
    private readonly o: StreamOptions & { interval: NonNullable<StreamOptions['interval']> },
    private readonly port: number,
  ) {
    this.loop = new IntervalLoop(
      sim,
      o.interval.ms,
      { sample: () => this.sample(), report: (a, b, t0) => this.report(a, b, t0) },
      { at: (t) => ({ t, delivered: 0, gaps: 0 }) },
    );
  }

  private async sample(): Promise<UdpSample | null> {
    const { sim, o } = this;
    const st = await sim.domainStats(o.to, 120_000).catch(() => null);
    // A guest's second and later vifs have endpoints of their own (dom0 has one endpoint).
    const ep = o.toVif ? (st && 'endpoints' in st ? st.endpoints[`vif${o.toVif}`] : undefined) : st?.endpoint;
    const p = ep?.progress?.[String(this.port)];
    return p ? { t: sim.clock.now(), delivered: p.delivered, gaps: p.highest + 1 - p.delivered } : null;
  }

  private report(a: UdpSample, b: UdpSample, t0: number): void {
    const frames = b.delivered - a.delivered;
    const secs = (b.t - a.t) / 1000;
    this.o.interval.each({
      start: (a.t - t0) / 1000,
      end: (b.t - t0) / 1000,
      frames,
      gbps: secs > 0 ? (frames * this.o.frameSize * 8) / secs / 1e9 : 0,
      lost: Math.max(0, b.gaps - a.gaps),
    });
  }

  /** The stream is over: stop polling and report what the last interval got (`abandon`: at once, not waiting for a poll in flight). */
  async finish(r: { delivered: number; lost: number } | null, abandon = false): Promise<void> {
    await this.loop.finish(abandon);
    if (r && !abandon) this.loop.emit({ t: this.sim.clock.now(), delivered: r.delivered, gaps: r.lost });
  }
}

/** A stream's result from its sender's and receiver's answers (`from`, `to`: "host/domain"); the partitions' cross-process stream reports the same. */
export function streamResult(
  from: string,
  to: string,
  o: Pick<StreamOptions, 'count' | 'frameSize'>,
  send: Record<string, number>,
  r: Record<string, number | boolean>,
): StreamResult {
  return {
    from,
    to,
    count: o.count,
    frameSize: o.frameSize,
    sent: send.sent,
    delivered: Number(r.delivered),
    // Only a frame that was sent can be lost: a sender that gave up left the rest unsent (count - sent).
    lost: Math.max(0, send.sent - Number(r.delivered)),
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
