/**
 * The scenario `xsim run` drives, as library calls: choose the two ends, ping
 * between them, stream between them (once, or in rounds while the simulation
 * serves its control socket), and collect every layer's counters. The command
 * line parses its options, calls these and prints; it runs no scenario itself.
 */
import type { Topology } from './topo/index.ts';
import { STREAM_FIRST_FRAME_MS, STREAM_GIVE_UP_MS } from '@xsim/netstack';
import type { DomainRef, RunningDomain, Simulation } from './simulation.ts';
import { runPing, runStream, untilAborted, type IntervalSample, type PingResult, type StreamResult } from './traffic.ts';
import { movedStats, streamAccount } from './drops.ts';
import { TCP_MESSAGE, TCP_WRITE_SIZE, runTcpRr, runTcpStream, type TcpIntervalSample, type TcpRrRun, type TcpStreamRun } from './traffic-tcp.ts';
import { guestStatsIfAny } from './stats.ts';

export interface StreamEnds {
  from: DomainRef;
  to: DomainRef;
}

/** "HOST/DOMAIN" as a reference; anything else is refused, naming what was given. */
export function parseDomainRef(s: string): DomainRef {
  const [host, domain, ...extra] = s.split('/');
  if (!host || !domain || extra.length) throw new Error(`expected HOST/DOMAIN, got "${s}"`);
  return { host, domain };
}

/** The default ends: the first domU of the first host, and the first domU of another host (or the first host's second). */
export function defaultEnds(t: Topology): StreamEnds {
  const a = t.hosts[0];
  const b = t.hosts.find((h, i) => i > 0 && h.domUs.length > 0) ?? a;
  const fromD = a.domUs[0];
  const toD = b === a ? a.domUs[1] : b.domUs[0];
  if (!fromD || !toD) throw new Error('the topology needs two domUs to stream between');
  return { from: { host: a.name, domain: fromD.name }, to: { host: b.name, domain: toD.name } };
}

/**
 * Check, before anything starts, that both ends exist and that a frame of
 * `size` octets fits each end's MTU; throws naming what is wrong.
 */
export function checkEnds(t: Topology, ends: StreamEnds, size: number): void {
  const { from, to } = ends;
  if (from.host === to.host && from.domain === to.domain)
    throw new Error(`--from and --to are both ${from.host}/${from.domain}: a stream needs two different domains`);
  for (const end of [from, to]) {
    const host = t.hosts.find((h) => h.name === end.host);
    if (!host) throw new Error(`no host "${end.host}" in topology "${t.name}" (hosts: ${t.hosts.map((h) => h.name).join(', ')})`);
    if (end.domain !== 'dom0' && !host.domUs.some((d) => d.name === end.domain))
      throw new Error(`no domain "${end.domain}" on ${end.host} (domUs: ${host.domUs.map((d) => d.name).join(', ')})`);
    if (size > host.nic.mtu + 14) throw new Error(`--size ${size} exceeds ${end.host}'s MTU ${host.nic.mtu} + 14-byte Ethernet header`);
  }
}

/** The demo stream's UDP ports, as `xsim run --port N --src-port N` set them. */
export interface StreamPorts {
  /** The receiver's UDP port (default DEMO_PORT). */
  port?: number;
  /** The sender's UDP port, where credits return (default: a fresh one per stream; the rounds' one flow: ROUND_SRC_PORT). */
  srcPort?: number;
}

/** The demo stream's UDP destination port unless --port says otherwise (iperf's is 5201; this one predates it). */
export const DEMO_PORT = 5001;

/** What `xsim run --workload` runs between the two ends, after netperf's tests and iperf3. */
export const WORKLOADS = ['udp-stream', 'tcp-stream', 'tcp-rr', 'ping'] as const;
export type Workload = (typeof WORKLOADS)[number];

export interface ScenarioOptions extends StreamEnds, StreamPorts {
  /** Default udp-stream (the sequenced UDP stream with credits). */
  workload?: Workload;
  /** Messages: frames (udp-stream), MSS-sized messages of TCP_MESSAGE octets (tcp-stream, unless bytes), transactions (tcp-rr), probes (ping). */
  count: number;
  frameSize: number;
  window: number;
  /** tcp-stream: octets in all (iperf3 -n), instead of count writes. */
  bytes?: number;
  /** tcp-stream: parallel connections (iperf3 -P). */
  flows?: number;
  /** tcp-stream: octets per write (netperf -m); tcp-rr: request and response sizes (netperf -r). */
  writeSize?: number;
  reqSize?: number;
  rspSize?: number;
  /** tcp-stream's interval lines. */
  tcpInterval?: { ms: number; each: (x: TcpIntervalSample) => void };
  /** Pings before the stream (default 200). */
  pings?: number;
  /** A sample every `ms` of the stream, handed to `each` as it is taken. */
  interval?: { ms: number; each: (x: IntervalSample) => void };
  /** Called between the ping and the stream (progress lines). */
  onPing?: (p: PingResult) => void;
}

export interface ScenarioResult {
  ping: PingResult;
  /** The UDP stream (udp-stream). */
  stream?: StreamResult;
  tcpStream?: TcpStreamRun;
  tcpRr?: TcpRrRun;
  /** udp-stream's or tcp-stream's interval samples. */
  intervals: IntervalSample[] | TcpIntervalSample[];
  stats: Record<string, unknown>;
}

/** Ping the receiver from the sender, stream `count` frames between them, then read every counter. */
export async function runScenario(sim: Simulation, o: ScenarioOptions): Promise<ScenarioResult> {
  const workload = o.workload ?? 'udp-stream';
  const ping = await runPing(sim, o.from, o.to, workload === 'ping' ? o.count : (o.pings ?? 200), workload === 'ping' ? o.frameSize : 64);
  o.onPing?.(ping);
  if (workload === 'ping') return { ping, intervals: [], stats: await sim.stats() };
  if (workload === 'tcp-stream') {
    const writeSize = o.writeSize ?? TCP_WRITE_SIZE;
    const samples: TcpIntervalSample[] = [];
    const tcpEach = o.tcpInterval?.each;
    const tcpStream = await runTcpStream(sim, {
      from: o.from,
      to: o.to,
      bytes: o.bytes ?? o.count * TCP_MESSAGE,
      flows: o.flows ?? 1,
      writeSize,
      ...(o.port !== undefined ? { port: o.port } : {}),
      ...(o.tcpInterval
        ? {
            interval: {
              ms: o.tcpInterval.ms,
              each: (x: TcpIntervalSample) => {
                samples.push(x);
                tcpEach?.(x);
              },
            },
          }
        : {}),
    });
    return { ping, tcpStream, intervals: samples, stats: await sim.stats() };
  }
  if (workload === 'tcp-rr') {
    const tcpRr = await runTcpRr(sim, {
      from: o.from,
      to: o.to,
      count: o.count,
      reqSize: o.reqSize ?? 1,
      rspSize: o.rspSize ?? 1,
      ...(o.port !== undefined ? { port: o.port } : {}),
    });
    return { ping, tcpRr, intervals: [], stats: await sim.stats() };
  }
  const intervals: IntervalSample[] = [];
  const each = o.interval?.each;
  const stream = await runStream(sim, {
    from: o.from,
    to: o.to,
    port: o.port ?? DEMO_PORT,
    ...(o.srcPort !== undefined ? { srcPort: o.srcPort } : {}),
    count: o.count,
    frameSize: o.frameSize,
    window: o.window,
    ...(o.interval
      ? {
          interval: {
            ms: o.interval.ms,
            each: (x: IntervalSample) => {
              intervals.push(x);
              each?.(x);
            },
          },
        }
      : {}),
  });
  return { ping, stream, intervals, stats: await sim.stats() };
}

/** A stream that ran (whole, or ended early: `shortfall` says how). */
export interface StreamRound {
  kind: 'round';
  round: number;
  /** Seconds since serving began, on the simulation's clock. */
  at: number;
  stream: StreamResult;
  /** Frames counted in drop counters during the round. */
  dropped: number;
  /** The sender's accelerator plugin during the round, or null on the slow path. */
  plugin: string | null;
  /** Frames the sender never sent: it gave up (its credits stopped coming back, or it could not send). */
  unsent: number;
  /** Why the stream ended short of its count, or null if every frame was sent. */
  shortfall: string | null;
}

/** A round whose stream could not run or be heard to the end (a request failed); the next one starts after `retryMs`. */
export interface FailedRound {
  kind: 'failed';
  round: number;
  at: number;
  error: string;
  retryMs: number;
}

/** An end now lives elsewhere (migrated, or restored on another host): the rounds follow it. */
export interface EndMoved {
  kind: 'moved';
  at: number;
  end: 'from' | 'to';
  was: string;
  now: string;
}

/** An end is gone (destroyed, saved): no stream until it is back. */
export interface EndGone {
  kind: 'gone';
  at: number;
  end: 'from' | 'to';
  was: string;
}

/** A gone end is there again (restored, re-created): the rounds go on. */
export interface EndBack {
  kind: 'back';
  at: number;
  end: 'from' | 'to';
  now: string;
}

/** What the rounds report, one line each. */
export type Round = StreamRound | FailedRound | EndMoved | EndGone | EndBack;

/** The rounds' source port unless --src-port says otherwise: one flow throughout (an accelerator learns it once). */
export const ROUND_SRC_PORT = 42000;

/** The wait after a failed round (or while an end is gone) doubles from the first to the cap, on the simulation's clock. */
export const ROUND_BACKOFF = { firstMs: 250, maxMs: 8000 };

export interface RoundsOptions extends StreamEnds, StreamPorts {
  count: number;
  frameSize: number;
  window: number;
  /** Stop at once when this aborts (shutdown, SIGTERM): the round in flight is abandoned, not awaited. */
  signal?: AbortSignal;
}

/**
 * Stream in rounds of `count` frames until `stopping()` says so (or `signal`
 * aborts), reporting each round, so a plugin loaded or unloaded meanwhile shows
 * in the rates. Nothing a round meets ends the rounds: a stream that cannot
 * complete is reported with what it lost; a round that fails is reported and
 * the next starts after a backoff; the ends are followed wherever they move,
 * and while one is gone the rounds wait for it.
 */
export async function streamRounds(sim: Simulation, o: RoundsOptions, stopping: () => boolean, each: (r: Round) => void): Promise<void> {
  const served = sim.clock.now();
  const at = () => (sim.clock.now() - served) / 1000;
  // A simulation shut down under the rounds ends them too (every request would fail).
  const stop = () => stopping() || o.signal?.aborted === true || sim.ctx.stopped;
  const ends = { from: new EndTracker(sim, 'from', o.from), to: new EndTracker(sim, 'to', o.to) };
  const locate = () => {
    const from = ends.from.locate(at, each);
    const to = ends.to.locate(at, each);
    return from && to ? { from, to } : null;
  };
  let backoff = 0;
  const nextBackoff = () => (backoff = backoff === 0 ? ROUND_BACKOFF.firstMs : Math.min(2 * backoff, ROUND_BACKOFF.maxMs));
  for (let round = 1; !stop();) {
    const where = locate();
    if (!where) {
      await pauseFor(sim, nextBackoff(), stop, o.signal);
      continue;
    }
    try {
      const r = await oneRound(sim, { ...o, ...where }, locate);
      backoff = 0;
      each({ kind: 'round', round, at: at(), ...r });
    } catch (e) {
      if (stop()) return;
      const retryMs = nextBackoff();
      each({ kind: 'failed', round, at: at(), error: e instanceof Error ? e.message : String(e), retryMs });
      // A receiver whose sender failed is still on its port until it idles out: the next round waits for that too.
      await Promise.all([pauseFor(sim, retryMs, stop, o.signal), portFree(sim, where.to, o.port ?? DEMO_PORT, stop, o.signal)]);
    }
    round++;
  }
}

/** One round's stream and what the counters saw of it; `locate` again after it, to follow an end that moved meanwhile. */
async function oneRound(sim: Simulation, o: RoundsOptions, locate: () => StreamEnds | null): Promise<Omit<StreamRound, 'kind' | 'round' | 'at'>> {
  const wait = <T>(p: Promise<T>) => untilAborted(p, o.signal);
  const before = await wait(sim.stats());
  const ports = { port: o.port ?? DEMO_PORT, srcPort: o.srcPort ?? ROUND_SRC_PORT };
  const r = await runStream(sim, { ...ports, from: o.from, to: o.to, count: o.count, frameSize: o.frameSize, window: o.window, signal: o.signal });
  const after = await wait(sim.stats());
  const now = locate() ?? { from: o.from, to: o.to };
  // An end that moved during the round: its counters are compared under its new name.
  for (const end of ['from', 'to'] as const) movedStats(before, o[end].domain, o[end].host, now[end].host);
  const { dropped } = streamAccount(before, after, r);
  const unsent = r.count - r.sent;
  return { stream: r, dropped, plugin: guestStatsIfAny(after, now.from)?.vifs[0]?.accel?.plugin ?? null, unsent, shortfall: shortfall(r, o.window) };
}

/** Why a stream ended short, in words, or null if it sent every frame. */
function shortfall(r: StreamResult, window: number): string | null {
  if (r.sent >= r.count) return null;
  const why = window > 0 ? 'no credit came back, or its vif took no frame' : 'its vif took no frame';
  return `the sender gave up after ${r.sent} of ${r.count} frames: nothing moved for ${STREAM_GIVE_UP_MS / 1000} s (${why})`;
}

/** Wait until `to` receives no stream on the rounds' port (bounded: a receiver with no frame ends within STREAM_FIRST_FRAME_MS). */
async function portFree(sim: Simulation, to: DomainRef, port: number, stop: () => boolean, signal: AbortSignal | undefined): Promise<void> {
  const until = sim.clock.now() + STREAM_FIRST_FRAME_MS + 1000;
  while (!stop() && sim.clock.now() < until) {
    // A receiver that is gone (or does not answer) holds no port of the next round's.
    const st = await untilAborted((async () => sim.domainStats(to, 5000))(), signal).catch(() => null);
    if (!st?.endpoint?.progress || !(String(port) in st.endpoint.progress)) return;
    await untilAborted(sim.sleep(50), signal).catch(() => {});
  }
}

/** Wait `ms` on the simulation's clock, in slices, so that a stop (or an abort) ends the wait at once. */
async function pauseFor(sim: Simulation, ms: number, stop: () => boolean, signal: AbortSignal | undefined): Promise<void> {
  const until = sim.clock.now() + ms;
  while (!stop() && sim.clock.now() < until) await untilAborted(sim.sleep(Math.min(100, until - sim.clock.now())), signal).catch(() => {});
}

/**
 * One end of the rounds, followed by domain: the same guest wherever it now
 * lives (a migration moves it, a restore brings it back under its name), and
 * said when it moved, went or came back.
 */
class EndTracker {
  private d: RunningDomain | undefined;
  private where: string;
  private gone = false;

  constructor(
    private readonly sim: Simulation,
    private readonly end: 'from' | 'to',
    ref: DomainRef,
  ) {
    this.d = sim.domain(ref);
    this.where = `${ref.host}/${ref.domain}`;
  }

  /** Where the end is now (reporting a change through `each`), or null while it is gone. */
  locate(at: () => number, each: (r: Round) => void): DomainRef | null {
    const d = this.find();
    if (!d) {
      if (!this.gone) each({ kind: 'gone', at: at(), end: this.end, was: this.where });
      this.gone = true;
      return null;
    }
    const ref = { host: d.host, domain: d.domid === 0 ? 'dom0' : d.name };
    const now = `${ref.host}/${ref.domain}`;
    if (this.gone) each({ kind: 'back', at: at(), end: this.end, now });
    else if (now !== this.where) each({ kind: 'moved', at: at(), end: this.end, was: this.where, now });
    this.gone = false;
    this.d = d;
    this.where = now;
    return ref;
  }

  /** The domain followed, if still there; else a guest of its name (restored), on its last host first. */
  private find(): RunningDomain | undefined {
    const live = this.sim.domains;
    if (this.d && live.includes(this.d)) return this.d;
    if (!this.d || this.d.domid === 0) return undefined;
    const name = this.d.name;
    const same = live.filter((x) => x.domid !== 0 && x.name === name && !x.crashed);
    return same.find((x) => x.host === this.d!.host) ?? (same.length === 1 ? same[0] : undefined);
  }
}
