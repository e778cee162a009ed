/**
 * Where each path spends its time, with domains as vCPUs on pCPUs:
 *
 * - a domain's CPU is the time its vCPU spent in its turns (DomainCore's
 *   `runMs`, from each domain's `core` stats), so two domains sharing a pCPU
 *   are told apart;
 * - a pCPU's (and the NIC thread's) awake time is the wall time it was not
 *   blocked in Atomics.wait: its domains' turns, its spin rounds, the bus. The
 *   sum over threads is what the machine spent.
 */

/** CPU time so far (ms in turns) of every domain in a Simulation.stats() tree ("host-a/a1", "fabric", ...). */
export function vcpuTimes(stats: Record<string, unknown>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [domain, s] of Object.entries(stats)) {
    const ms = (s as { core?: { runMs?: unknown } } | null)?.core?.runMs;
    if (typeof ms === 'number') out.set(domain, ms);
  }
  return out;
}

/** Time asleep so far of every pCPU thread (and the NIC's, the last) from Runtime.pcpuStats(). */
export function pcpuSleepTimes(stats: unknown[]): Map<string, number> {
  const out = new Map<string, number>();
  stats.forEach((s, i) => {
    const ms = (s as { sleepMs?: unknown } | null)?.sleepMs;
    if (typeof ms === 'number') out.set(i === stats.length - 1 ? 'nic' : `pcpu${i}`, ms);
  });
  return out;
}

/** Each domain's CPU between two vcpuTimes() snapshots, as a share of `activeMs`. */
export function busyShare(before: Map<string, number>, after: Map<string, number>, activeMs: number): Record<string, number> {
  const out: Record<string, number> = {};
  if (activeMs <= 0) return out;
  for (const [k, ms] of after) out[k] = Math.min(1, Math.max(0, (ms - (before.get(k) ?? 0)) / activeMs));
  return out;
}

/**
 * Each thread's time awake between two pcpuSleepTimes() snapshots `wallMs`
 * apart, as a share of `activeMs` (the stream's own duration inside that
 * interval: the request round trips around it are spent asleep, so they add
 * almost nothing).
 */
export function awakeShare(before: Map<string, number>, after: Map<string, number>, wallMs: number, activeMs = wallMs): Record<string, number> {
  const out: Record<string, number> = {};
  if (wallMs <= 0 || activeMs <= 0) return out;
  for (const [k, ms] of after) {
    const awakeMs = wallMs - (ms - (before.get(k) ?? 0));
    out[k] = Math.min(1, Math.max(0, awakeMs / activeMs));
  }
  return out;
}
