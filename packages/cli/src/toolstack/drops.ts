/**
 * The named drop counters of every layer, pulled out of Simulation.stats().
 * Conservation: over an interval with only one stream running, frames sent =
 * frames delivered + the growth of these counters. Only counters that count
 * frames lost on the way are here (not refusals before sending, like txBusy),
 * and the names are matched exactly wherever they appear in the stats tree,
 * so a layer must not reuse one of these names for anything but a drop.
 */
const DROP_COUNTERS = new Set([
  // NIC hardware (fabric)
  'txNoLink',
  'linkDownDrops',
  'rxOversize',
  'rxViDown',
  'txSpoofDrops',
  'txOversize',
  'rxNoDesc',
  'txDiscardedAtFini',
  'rxUnreadAtFini',
  'vetoedRx',
  'vetoedTx',
  // dom0: netback, bridge, uplink, NIC driver
  'rxDropQueueFull',
  'rxDropNotConnected',
  'rxDropNoSkb',
  'txDropBacklogFull',
  'txDropNoSkb',
  'dropSamePort',
  'dropNoPort',
  'dropBadSource',
  'rxScatterDrops',
  // guests: accelerator frontends (vnic)
  'rxTooLong',
  'txLostOnFault',
  // guests: netfront and stack
  'rxErrors',
  'txErrors',
  'rxRunt',
  'rxNotForUs',
  'rxBadIp',
  'rxBadChecksum',
  'rxNotUdp',
  'rxBadUdp',
  'rxNoSocket',
  'rxUnknownEthertype',
]);

/** Flat "path = value" map of every drop counter in a stats tree. */
export function dropCounters(stats: unknown): Map<string, number> {
  return counters(stats, DROP_COUNTERS);
}

/**
 * Frames the system made on its own: a bridge flooding a broadcast or an
 * unknown unicast to n ports makes n - 1 copies, each of which is then
 * delivered or dropped somewhere (a guest counts one not for it in
 * rxNotForUs). Over an interval, sent <= delivered + drops <= sent + copies.
 */
export function copyDelta(before: unknown, after: unknown): number {
  const a = counters(before, COPY_COUNTERS);
  let n = 0;
  for (const [k, v] of counters(after, COPY_COUNTERS)) n += v - (a.get(k) ?? 0);
  return n;
}

const COPY_COUNTERS = new Set(['floodCopies']);

/**
 * The accounting of one stream between two stats snapshots: the drop counters
 * that grew, their sum, the flood copies made meanwhile, and whether every
 * frame sent was delivered once or counted (sent <= delivered + dropped <=
 * sent + copies, with no duplicates).
 */
export function streamAccount(before: unknown, after: unknown, r: { sent: number; delivered: number; duplicated: number }): { drops: Map<string, number>; dropped: number; copies: number; conserved: boolean } {
  const drops = dropDelta(before, after);
  const dropped = [...drops.values()].reduce((a, b) => a + b, 0);
  const copies = copyDelta(before, after);
  const seen = r.delivered + dropped;
  return { drops, dropped, copies, conserved: seen >= r.sent && seen <= r.sent + copies && r.duplicated === 0 };
}

function counters(stats: unknown, names: Set<string>): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (o: unknown, path: string) => {
    if (o === null || typeof o !== 'object') return;
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      const p = path ? `${path}.${k}` : k;
      if (typeof v === 'number' && names.has(k)) out.set(p, v);
      // A "current" subtree is a live view of counters also kept in totals: count them once.
      else if (typeof v === 'object' && k !== 'current') walk(v, p);
    }
  };
  walk(stats, '');
  return out;
}

export function totalDrops(stats: unknown): number {
  let n = 0;
  for (const v of dropCounters(stats).values()) n += v;
  return n;
}

/** Counters that grew between two snapshots, with how much. */
export function dropDelta(before: unknown, after: unknown): Map<string, number> {
  const a = dropCounters(before);
  const out = new Map<string, number>();
  for (const [k, v] of dropCounters(after)) {
    const d = v - (a.get(k) ?? 0);
    if (d !== 0) out.set(k, d);
  }
  return out;
}
