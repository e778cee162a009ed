/**
 * Where each path spends its time, coarsely: every worker's DomainLoop counts
 * the time it spends blocked in Atomics.wait, so over an interval the rest is
 * time the worker was awake: on a core or waiting for one (its spin rounds
 * count as awake).
 */

/** Time asleep so far of every worker in a Simulation.stats() tree ("host-a/a1", "fabric", ...). */
export function sleepTimes(stats: Record<string, unknown>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [worker, s] of Object.entries(stats)) {
    const ms = (s as { loop?: { sleepMs?: unknown } } | null)?.loop?.sleepMs;
    if (typeof ms === 'number') out.set(worker, ms);
  }
  return out;
}

/**
 * Each worker's time awake between two sleepTimes() snapshots `wallMs` apart,
 * as a share of `activeMs` (the stream's own duration inside that interval: the
 * request round trips around it are spent asleep, so they add almost nothing).
 */
export function awakeShare(before: Map<string, number>, after: Map<string, number>, wallMs: number, activeMs = wallMs): Record<string, number> {
  const out: Record<string, number> = {};
  if (wallMs <= 0 || activeMs <= 0) return out;
  for (const [worker, ms] of after) {
    const awakeMs = wallMs - (ms - (before.get(worker) ?? 0));
    out[worker] = Math.min(1, Math.max(0, awakeMs / activeMs));
  }
  return out;
}
