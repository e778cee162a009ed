/**
 * The stats tree, typed end to end: what Simulation.stats() returns (and
 * `xsim run -j` prints as `stats`, schemas/xsim-run-1.schema.json), keyed
 * "host/domain" plus `fabric`, and accessors that give one kernel's counters
 * with its type. The kernels' own types come from the code that builds them
 * (@xsim/netback's Dom0Stats, @xsim/netfront's GuestStats, @xsim/nic's
 * FabricStats), so a renamed counter breaks its readers at build time.
 */
import type { Dom0Stats } from '@xsim/netback';
import type { GuestStats } from '@xsim/netfront';
import type { FabricStats } from '@xsim/nic';
import type { DomainRef } from './domain-ref.ts';

export type { Dom0Stats, GuestStats, FabricStats };

/** What stands in a domain's place when it gave no counters: it crashed, hung, or its answer failed. */
export type DomainFailure = { crashed: string; pcpu: number } | { hung: string; pcpu: number } | { error: string };

/** One "host/domain" entry: a dom0's counters, a guest's, or why there are none. */
export type DomainStatsEntry = Dom0Stats | GuestStats | DomainFailure;

/** Every domain's counters and the NIC hardware's (a fabric that did not answer is `{ error }`). */
export type StatsTree = {
  [key: `${string}/${string}`]: DomainStatsEntry;
  fabric: FabricStats | { error: string };
};

function failure(e: DomainStatsEntry | undefined): string | undefined {
  if (e === undefined) return 'it is not in the stats (no such domain)';
  if ('crashed' in e) return `it crashed: ${e.crashed}`;
  if ('hung' in e) return `it is hung: ${e.hung}`;
  if ('error' in e) return `its stats failed: ${e.error}`;
  return undefined;
}

function entry(tree: StatsTree, key: `${string}/${string}`): Dom0Stats | GuestStats {
  const e = tree[key];
  const why = failure(e);
  if (why !== undefined) throw new Error(`no counters for ${key}: ${why}`);
  return e as Dom0Stats | GuestStats;
}

/** `host`'s dom0 counters, or undefined if it crashed, hung or failed to answer (for views that carry on without them). */
export function dom0StatsIfAny(tree: StatsTree, host: string): Dom0Stats | undefined {
  const e = tree[`${host}/dom0`];
  return e !== undefined && failure(e) === undefined && 'bridge' in e ? e : undefined;
}

/** A guest's counters, or undefined if it crashed, hung or failed to answer. */
export function guestStatsIfAny(tree: StatsTree, ref: DomainRef): GuestStats | undefined {
  const e = tree[`${ref.host}/${ref.domain}`];
  return e !== undefined && failure(e) === undefined && !('bridge' in e) ? (e as GuestStats) : undefined;
}

/** `host`'s dom0 counters in a stats tree; throws naming the domain if it crashed, hung or failed to answer. */
export function dom0Stats(tree: StatsTree, host: string): Dom0Stats {
  const e = entry(tree, `${host}/dom0`);
  if (!('bridge' in e)) throw new Error(`no counters for ${host}/dom0: its entry is not a dom0's`);
  return e;
}

/** A guest's counters in a stats tree; throws naming the domain if it crashed, hung or failed to answer. */
export function guestStats(tree: StatsTree, ref: DomainRef): GuestStats {
  const key = `${ref.host}/${ref.domain}` as const;
  const e = entry(tree, key);
  if ('bridge' in e) throw new Error(`no guest counters for ${key}: it is a dom0`);
  return e;
}

/** The NIC hardware's counters in a stats tree; throws if the fabric did not answer. */
export function fabricStats(tree: StatsTree): FabricStats {
  const f = tree.fabric;
  if ('error' in f) throw new Error(`no counters for the NIC hardware: its stats failed: ${f.error}`);
  return f;
}
