/**
 * Every partition's counters as one stats tree (`xsim run --partitions
 * local`): the domains side by side (their hosts are in one partition each),
 * and the partitions' NIC fabrics as one: arrays (NICs, switches, the
 * tunnels' sockets and tunnels) joined in partition order, counters summed,
 * anything else (a name, a flag) taken from the first. Drop accounting
 * (drops.ts) then sees every partition's drop counters at once.
 */
import type { StatsTree } from '../stats.ts';

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Two fabrics' stats as one (bounded by the trees' own depth). */
function mergeValue(a: unknown, b: unknown): unknown {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (Array.isArray(a) && Array.isArray(b)) return [...(a as unknown[]), ...(b as unknown[])];
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (isObj(a) && isObj(b)) {
    const out: Json = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = mergeValue(a[k], v);
    return out;
  }
  return a;
}

export function mergeStats(trees: readonly StatsTree[]): StatsTree {
  const out: Json = {};
  let fabric: unknown;
  for (const t of trees) {
    for (const [k, v] of Object.entries(t)) {
      if (k === 'fabric') fabric = mergeValue(fabric, v);
      else if (k in out) throw new Error(`${k} is in two partitions' stats`);
      else out[k] = v;
    }
  }
  out.fabric = fabric ?? { error: 'no partition answered' };
  return out as StatsTree;
}

/** The socket counters of datagrams that arrived and went nowhere (each counted once, by the receiving socket). */
const RX_DROPPED = ['vxlanRxRingFull', 'vxlanRxShort', 'vxlanRxBadHeader', 'vxlanRxRunt', 'vxlanRxUnknownVni', 'vxlanRxKernelDrops'];

/**
 * Frames in flight in UDP between the partitions of a merged tree: datagrams
 * the tunnels sent that no tunnel has yet passed on as a frame nor any socket
 * counted as dropped (with every partition's tunnels in one tree, each sent
 * datagram is received by one of them).
 */
export function udpInFlight(tree: StatsTree): number {
  const f = tree.fabric as { vxlan?: { tunnels: Json[]; sockets: Json[] } };
  if (!f.vxlan) return 0;
  const sum = (xs: Json[], ks: string[]) => xs.reduce((n, x) => n + ks.reduce((m, k) => m + Number(x[k] ?? 0), 0), 0);
  return sum(f.vxlan.tunnels, ['vxlanTxSent']) - sum(f.vxlan.tunnels, ['vxlanRxFrames']) - sum(f.vxlan.sockets, RX_DROPPED);
}
