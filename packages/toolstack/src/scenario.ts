/**
 * The scenario `xsim run` drives, as library calls: choose the two ends, ping
 * between them, stream between them (once, or in rounds while the simulation
 * serves its control socket), and collect every layer's counters. The command
 * line parses its options, calls these and prints; it runs no scenario itself.
 */
import type { Topology } from './topo/index.ts';
import type { DomainRef, Simulation } from './simulation.ts';
import { runPing, runStream, type IntervalSample, type PingResult, type StreamResult } from './traffic.ts';
import { streamAccount } from './drops.ts';
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

export interface ScenarioOptions extends StreamEnds {
  count: number;
  frameSize: number;
  window: number;
  /** Pings before the stream (default 200). */
  pings?: number;
  /** A sample every `ms` of the stream, handed to `each` as it is taken. */
  interval?: { ms: number; each: (x: IntervalSample) => void };
  /** Called between the ping and the stream (progress lines). */
  onPing?: (p: PingResult) => void;
}

export interface ScenarioResult {
  ping: PingResult;
  stream: StreamResult;
  intervals: IntervalSample[];
  stats: Record<string, unknown>;
}

/** Ping the receiver from the sender, stream `count` frames between them, then read every counter. */
export async function runScenario(sim: Simulation, o: ScenarioOptions): Promise<ScenarioResult> {
  const ping = await runPing(sim, o.from, o.to, o.pings ?? 200);
  o.onPing?.(ping);
  const intervals: IntervalSample[] = [];
  const each = o.interval?.each;
  const stream = await runStream(sim, {
    from: o.from,
    to: o.to,
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

export interface Round {
  round: number;
  /** Seconds since serving began, on the simulation's clock. */
  at: number;
  stream: StreamResult;
  /** Frames counted in drop counters during the round. */
  dropped: number;
  /** The sender's accelerator plugin during the round, or null on the slow path. */
  plugin: string | null;
}

/**
 * Stream in rounds of `count` frames until `stopping()` says so, reporting
 * each round, so a plugin loaded or unloaded meanwhile shows in the rates.
 * A round that fails ends the rounds and throws.
 */
export async function streamRounds(
  sim: Simulation,
  o: StreamEnds & { count: number; frameSize: number; window: number },
  stopping: () => boolean,
  each: (r: Round) => void,
): Promise<void> {
  const served = sim.clock.now();
  for (let round = 1; !stopping(); round++) {
    const before = await sim.stats();
    const r = await runStream(sim, { from: o.from, to: o.to, count: o.count, frameSize: o.frameSize, window: o.window, srcPort: 42000 });
    const after = await sim.stats();
    const { dropped } = streamAccount(before, after, r);
    each({ round, at: (sim.clock.now() - served) / 1000, stream: r, dropped, plugin: guestStatsIfAny(after, o.from)?.vifs[0]?.accel?.plugin ?? null });
  }
}
