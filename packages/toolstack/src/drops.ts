/**
 * Drop accounting, derived from the counter declarations (see
 * @xsim/hypervisor metrics.ts): every domain and the NIC fabric ship the
 * kinds of the counters their code declared with their stats (`kinds`), so
 * the toolstack knows which leaves of the stats tree are drops and which are
 * copies without a list of names of its own, a third-party plugin's included.
 *
 * Conservation over an interval with one stream running:
 *   sent <= delivered + (growth of every drop counter) <= sent + (growth of every copy counter),
 * exact when nothing was flooded, and no frame delivered twice.
 */
import { counterKinds, mergeCounterKinds, type CounterKind } from '@xsim/hypervisor';
// The toolstack's own registry knows every built-in layer's counters.
import '@xsim/netback';
import '@xsim/netfront';
import '@xsim/netstack';
import '@xsim/nic';

/** Kinds known here plus every `kinds` snapshot found in a stats tree. */
function kindsOf(stats: unknown): Map<string, CounterKind> {
  const kinds = new Map(Object.entries(counterKinds()));
  const walk = (o: unknown, path: string) => {
    if (o === null || typeof o !== 'object') return;
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      if (k === 'kinds' && v !== null && typeof v === 'object') mergeCounterKinds(kinds, v as Record<string, unknown>, path || 'stats');
      else if (typeof v === 'object') walk(v, path ? `${path}.${k}` : k);
    }
  };
  walk(stats, '');
  return kinds;
}

/** Flat "path = value" map of every counter of `kind` in a stats tree. */
function counters(stats: unknown, kind: CounterKind, kinds = kindsOf(stats)): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (o: unknown, path: string) => {
    if (o === null || typeof o !== 'object') return;
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      const p = path ? `${path}.${k}` : k;
      if (typeof v === 'number') {
        if (kinds.get(k) === kind) out.set(p, v);
      } else if (typeof v === 'object' && k !== 'current' && k !== 'kinds' && k !== 'queues') {
        // A "current" subtree, or a vif's "queues" (each queue's own counters), is a live view of counters
        // also kept in totals: count them once.
        walk(v, p);
      }
    }
  };
  walk(stats, '');
  return out;
}

/** Flat "path = value" map of every drop counter in a stats tree. */
export function dropCounters(stats: unknown): Map<string, number> {
  return counters(stats, 'drop');
}

function delta(before: unknown, after: unknown, kind: CounterKind): Map<string, number> {
  const kinds = kindsOf(after);
  mergeCounterKinds(kinds, Object.fromEntries(kindsOf(before)), 'before');
  const a = counters(before, kind, kinds);
  const out = new Map<string, number>();
  for (const [k, v] of counters(after, kind, kinds)) {
    const d = v - (a.get(k) ?? 0);
    if (d !== 0) out.set(k, d);
  }
  return out;
}

/** Drop counters that grew between two snapshots, with how much. */
export function dropDelta(before: unknown, after: unknown): Map<string, number> {
  return delta(before, after, 'drop');
}

/** Frames the system made on its own between two snapshots (flood copies). */
export function copyDelta(before: unknown, after: unknown): number {
  let n = 0;
  for (const v of delta(before, after, 'copy').values()) n += v;
  return n;
}

export function totalDrops(stats: unknown): number {
  let n = 0;
  for (const v of dropCounters(stats).values()) n += v;
  return n;
}

/**
 * The accounting of one stream between two stats snapshots: the drop counters
 * that grew, their sum, the flood copies made meanwhile, and whether every
 * frame sent was delivered once or counted. A frame that arrived after the
 * receiver's window had moved past it (tooOld) did arrive: it is neither
 * delivered nor dropped, and it is not a violation.
 */
/**
 * A guest that moved (migrated, or saved and restored elsewhere) carries its
 * counters with it: in a stats snapshot taken before the move, file its
 * entry under the name it has now, so deltas compare like with like.
 */
export function movedStats(before: Record<string, unknown>, domain: string, fromHost: string, toHost: string): Record<string, unknown> {
  if (fromHost === toHost) return before;
  before[`${toHost}/${domain}`] = before[`${fromHost}/${domain}`];
  delete before[`${fromHost}/${domain}`];
  return before;
}

export function streamAccount(
  before: unknown,
  after: unknown,
  r: { sent: number; delivered: number; duplicated: number; tooOld?: number },
): { drops: Map<string, number>; dropped: number; copies: number; conserved: boolean; excess: number } {
  const drops = dropDelta(before, after);
  const dropped = [...drops.values()].reduce((a, b) => a + b, 0);
  const copies = copyDelta(before, after);
  const seen = r.delivered + dropped + (r.tooOld ?? 0);
  return { drops, dropped, copies, conserved: seen >= r.sent && seen <= r.sent + copies && r.duplicated === 0, excess: seen - r.sent };
}
