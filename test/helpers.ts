/**
 * What the end-to-end tests share: exact conservation around a stream, the
 * seeds deterministic runs use (and how to replay a failing one), and the
 * runtimes a suite runs on.
 */
import { beforeEach, expect } from 'vitest';
import type { CounterDecls, CounterGroup, Counters } from '@xsim/hypervisor';
import {
  guestStats,
  runStream,
  rxUdp,
  streamAccount,
  type DomainRef,
  type Simulation,
  type SimulationOptions,
  type StatsTree,
  type StreamOptions,
  type StreamResult,
} from '@xsim/toolstack';

/**
 * The seeds every deterministic suite runs with (each seed a whole run of the
 * suite): XSIM_SEEDS=4,5 replays or explores others. A failing test's name
 * carries its seed, and the failure prints the command that replays it.
 */
export const SEEDS: number[] = (process.env.XSIM_SEEDS ?? '1,2,3').split(',').map((s) => {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n < 0) throw new Error(`XSIM_SEEDS: "${s}" is not a seed (a non-negative integer)`);
  return n;
});

export interface Mode {
  name: string;
  opts: SimulationOptions;
  seed?: number;
}

/** Deterministic runs, one per seed: every domain and the NIC on one thread, a virtual clock. */
export function seededModes(): Mode[] {
  return SEEDS.map((seed) => ({ name: `deterministic, seed ${seed}`, opts: { deterministic: { seed } }, seed }));
}

/** Real pCPU worker threads: integration on real parallelism (not reproducible). */
export const THREADS: Mode = { name: 'threads', opts: { pcpus: 2 } };

/** Inside a describe of a seeded mode: a failing test prints how to replay it. */
export function replayOnFailure(mode: Mode, testFile: string): void {
  if (mode.seed === undefined) return;
  const file = new URL(testFile).pathname.replace(/^.*?\/(test|packages)\//, '$1/');
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      console.error(`replay: XSIM_SEEDS=${mode.seed} npx vitest run ${file}`);
    });
  });
}

/** Parsed JSON of unknown shape (a CLI's output, a file): not for the stats tree, which is typed (StatsTree and its accessors). */
export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * A plugin's own counters (its stats are Record<string, unknown> to the
 * framework), read through the group the plugin declared them in: every
 * declared name must be there as a number, or this throws naming it.
 */
export function pluginCounters<D extends CounterDecls>(group: CounterGroup<D>, stats: Record<string, unknown> | null | undefined): Counters<D> {
  if (!stats) throw new Error(`no ${group.group} stats`);
  const out = group.zero();
  for (const k of Object.keys(group.decls) as (keyof D & string)[]) {
    const v = stats[k];
    if (typeof v !== 'number') throw new Error(`${group.group} stats have no counter ${k} (${JSON.stringify(stats)})`);
    out[k] = v;
  }
  return out;
}

/**
 * A stream with exact accounting: delivered + growth of named drop counters = sent, and no
 * duplicates. Frames a bridge flooded (an ARP broadcast, an unknown unicast) during the stream
 * are extra copies that end in a drop counter too, so they widen the bound by exactly their number.
 */
/** Credits `receiver` sent `sender` between two snapshots that `sender`'s stack never took (UDP is all either sends the other). */
function creditsLost(before: StatsTree, after: StatsTree, sender: DomainRef, receiver: DomainRef): number {
  const stack = (t: StatsTree, d: DomainRef) => guestStats(t, d).endpoint?.stack;
  const delta = (d: DomainRef, k: 'txUdp' | 'rxUdp') => (stack(after, d)?.[k] ?? 0) - (stack(before, d)?.[k] ?? 0);
  return Math.max(0, delta(receiver, 'txUdp') - delta(sender, 'rxUdp'));
}

export async function conservedStream(
  sim: Simulation,
  o: StreamOptions,
  during?: () => Promise<void>,
  /** Only drop counters whose path passes count (e.g. leave out an attacker's own counters). */
  keep: (path: string) => boolean = () => true,
  /**
   * Guest to guest: the receiver's credits that never reached the sender may
   * sit in drop counters too (a credit is a frame of the reverse path), so as
   * many drops above the stream's own are allowed, counted from both ends'
   * stacks (credits sent less credits heard).
   */
  reverse = false,
): Promise<{ r: StreamResult; before: StatsTree; after: StatsTree; drops: Map<string, number> }> {
  const ip = o.toVif === undefined ? sim.domain(o.to).ip : sim.vifAddress(o.to, o.toVif).ip;
  await sim.request(o.from, 'arp_resolve', { ip, ...(o.fromVif === undefined ? {} : { vif: o.fromVif }) });
  const before = await sim.stats();
  const p = runStream(sim, o);
  if (during) await during();
  const r = await p;
  const after = await sim.stats();
  const all = streamAccount(before, after, r);
  const drops = new Map([...all.drops].filter(([k]) => keep(k)));
  const dropped = [...drops.values()].reduce((a, b) => a + b, 0);
  const copies = all.copies;
  expect(r.duplicated, 'duplicates').toBe(0);
  const why = `sent ${r.sent}, delivered ${r.delivered}, too old ${r.tooOld}, drops: ${JSON.stringify([...drops])}, flood copies: ${copies}`;
  expect(r.delivered + r.tooOld + dropped, why).toBeGreaterThanOrEqual(r.sent);
  const lostCredits = reverse ? creditsLost(before, after, o.from, o.to) : 0;
  expect(r.delivered + r.tooOld + dropped, `${why}, credits lost ${lostCredits}`).toBeLessThanOrEqual(r.sent + copies + lostCredits);
  return { r, before, after, drops };
}

/**
 * Resolve once `to` has received `frames` more UDP frames than when called: how a test acts
 * "mid-stream" at a point of the stream's progress, not after a guessed delay.
 */
export async function afterFrames(sim: Simulation, to: DomainRef, frames: number, ms = 30_000): Promise<void> {
  const start = await rxUdp(sim, to);
  const deadline = sim.clock.now() + ms;
  while ((await rxUdp(sim, to)) < start + frames) {
    if (sim.clock.now() > deadline) throw new Error(`${to.host}/${to.domain} did not receive ${frames} frames within ${ms} ms`);
    await sim.sleep(1);
  }
}

export { rxUdp };

/** One vif in vnic's (and hostile-vnic's) backend stats: the plugin's own shape, checked where it is read. */
export interface VnicVif {
  vif: string;
  vi: number;
  stage: string;
  filters: number;
}

/** vnic's list of vifs in its entry of dom0's accel.plugins (it replaces the framework's count there). */
export function vnicVifs(entry: Record<string, unknown> | undefined): VnicVif[] {
  const list = entry?.vifs;
  const isVif = (x: unknown): x is VnicVif => {
    const o = x as Partial<Record<keyof VnicVif, unknown>> | null;
    return (
      typeof o === 'object' &&
      o !== null &&
      typeof o.vif === 'string' &&
      typeof o.vi === 'number' &&
      typeof o.stage === 'string' &&
      typeof o.filters === 'number'
    );
  };
  if (!Array.isArray(list) || !list.every(isVif)) throw new Error(`no vnic vif list in ${JSON.stringify(entry)}`);
  return list;
}
