/**
 * What a repetition did, counted where it happened rather than inferred from
 * its rate: the share of the stream the sender's frontend took on the fast
 * path. It is the difference between two Simulation.stats() snapshots taken
 * just before and just after the stream, divided by the frames sent. Pure functions of those snapshots, so the
 * tests feed them synthetic trees.
 */
import type { DomainStatsEntry, GuestStats, StatsTree } from '@xsim/toolstack';
import type { BenchPath } from './schema.ts';

/** A guest's counters in a stats tree, or undefined (a dom0, or one that crashed, hung or failed to answer). */
function guestEntry(tree: StatsTree, key: string): GuestStats | undefined {
  const e = (tree as Record<string, DomainStatsEntry | undefined>)[key];
  if (e === undefined || 'bridge' in e || 'crashed' in e || 'hung' in e || 'error' in e) return undefined;
  return e;
}

/** The paths whose sender's frontend should take every frame of the stream on the fast path. */
export const ACCELERATED: readonly BenchPath[] = ['vnic', 'vdpa'];
/** Below this share of the stream's frames on the fast path an accelerated cell is not what it says it is. */
export const MIN_FAST_PATH_SHARE = 0.99;

/**
 * Frames the sender's frontend took on the fast path so far: netfront's accel
 * host counts every frame a plugin's startXmit answered true for (txTaken,
 * every plugin together, cumulative over re-attachments). 0 for a dom0 (it
 * has no netfront) or a guest with no accel host.
 */
export function fastPathTaken(tree: StatsTree, from: { host: string; domain: string }, vif = 0): number {
  const g = guestEntry(tree, `${from.host}/${from.domain}`);
  const v = g?.vifs.find((x) => x.handle === vif) ?? g?.vifs[vif];
  return v?.accel?.txTaken ?? 0;
}

/** The share of `sent` frames the sender's frontend took between two snapshots (0 with nothing sent). */
export function fastPathShare(before: StatsTree, after: StatsTree, from: { host: string; domain: string }, sent: number): number {
  if (sent <= 0) return 0;
  return Math.max(0, fastPathTaken(after, from) - fastPathTaken(before, from)) / sent;
}
