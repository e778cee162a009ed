/**
 * What a repetition did, counted where it happened rather than inferred from
 * its rate: the share of the stream the sender's frontend took on the fast
 * path, the wake-ups of every thread, and the copies of a frame. Each is the
 * difference between two snapshots (Simulation.stats() and
 * Runtime.pcpuStats()) taken just before and just after the stream, divided
 * by the frames sent or delivered. Pure functions of those snapshots, so the
 * tests feed them synthetic trees.
 */
import type { Dom0Stats, DomainStatsEntry, GuestStats, StatsTree } from '@xsim/toolstack';
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

/**
 * Times each thread blocked in Atomics.wait so far (the pCPU scheduler's
 * `sleeps` counter): every pCPU worker's and the NIC thread's (the last
 * entry of Runtime.pcpuStats(); it runs the same scheduler loop with the
 * fabric as its one domain). A thread that answered with an error counts 0.
 * Keyed "pcpu0", ..., "nic" as pcpuSleepTimes names them.
 */
export function threadSleeps(stats: unknown[]): Map<string, number> {
  const out = new Map<string, number>();
  stats.forEach((s, i) => {
    const n = (s as { sleeps?: unknown } | null)?.sleeps;
    if (typeof n === 'number') out.set(i === stats.length - 1 ? 'nic' : `pcpu${i}`, n);
  });
  return out;
}

/**
 * Wake-ups between two threadSleeps() snapshots, summed over every thread: a
 * sleep ends in a wake-up (a notify, or the bounded sleep's timeout), so the
 * sleeps begun in the interval are its wake-ups. Per thread and in total.
 */
export function wakeDelta(before: Map<string, number>, after: Map<string, number>): { total: number; perThread: Record<string, number> } {
  const perThread: Record<string, number> = {};
  let total = 0;
  for (const [k, n] of after) {
    const d = Math.max(0, n - (before.get(k) ?? 0));
    perThread[k] = d;
    total += d;
  }
  return { total, perThread };
}

/**
 * Where a frame is copied, and the counter that counts each such copy (one
 * copy of a whole frame per count). The inventory is of the code as of
 * issue 21 (grep for `.set(`, `copyWithin` and GNTTABOP_copy across
 * packages/): every memcpy of frame bytes on a data path, and whether a
 * counter counts it. A copy site that has no counter is listed in
 * UNCOUNTED_COPIES instead, so a reader knows what the figure leaves out.
 *
 *   site               where (code)                                          counter (stats tree)
 *   netback TX         netback/vif/tx.ts copyFromGuest: GNTTABOP_copy of the  dom0 vifs[*].txPackets
 *                      guest's granted TX page into a dom0 skb
 *   netback RX         netback/vif/rx.ts copyOne: GNTTABOP_copy of a dom0     dom0 vifs[*].rxPackets
 *                      frame into the guest's posted RX page
 *   netfront RX gather netfront/netfront/rx.ts: a frame spread over several  guest vifs[*].rxFragmented
 *                      pages gathered into a scratch buffer (one page: none)
 *   NIC TX DMA         nic/hw-nic.ts (VI NIC), nic/vq-nic.ts via iommu.read    fabric nics[*].vis[*].txFrames
 *                      (virtio NIC): the frame out of the driver's buffer into
 *                      the NIC's FIFO
 *   NIC RX DMA         nic/hw-nic.ts deliver, nic/vq-nic.ts via iommu.write:  fabric nics[*].vis[*].rxFrames
 *                      the frame into the receiver's posted buffer
 *   line FIFO          nic/line-rate.ts push: with a line rate on the wire    fabric nics[*].wireTx of NICs
 *                      (`gbps`) the frame waits in the port's FIFO, copied    whose port has a `line`
 *   vnic TX            accel-plugins/vnic/tx.ts startXmit: a taken            guest accel.totals.vnic.txCopied
 *                      frame the stack had not built in the TX slot txBuffer
 *                      lent (plugin API 1.3, 1fc4273) is copied into one
 *   vnic RX gather     vnic/frontend.ts: a frame over several RX buffers       guest accel.totals.vnic.rxGathered
 *   vdpa TX            accel-plugins/vdpa/frontend.ts startXmit: the same     guest accel.totals.vdpa.vdpaTxCopied
 *                      for a transmitq buffer (d509388)
 *   netfront declined  netfront/xenbus.ts: a frame built in the accelerator's guest vifs[*].txAccelDeclinedCopies
 *                      buffer that it then declined, copied once to netfront's
 *                      own TX buffer for the slow path
 *   vdpa RX            vdpa/frontend.ts takeRx: every received frame copied   guest accel.totals.vdpa.vdpaRxFrames
 *                      out of its receiveq buffer before delivery
 *
 * Not copies: the bridge and the switches forward a reference (flooding
 * hands the same bytes to each port, each then copied at its own site
 * above); a wire passes the sending NIC's FIFO to the receiving NIC; netfront
 * builds its TX frame in the granted page; a stack parses a received frame
 * where it lies; the raw rings copy by construction (RAW_COPIES).
 */
export interface CopySite {
  name: string;
  /** Whole-frame copies counted so far in a stats tree. */
  count: (tree: StatsTree) => number;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
const entries = (tree: StatsTree) =>
  Object.entries(tree as Record<string, DomainStatsEntry>).filter(([k, e]) => k !== 'fabric' && !('crashed' in e) && !('hung' in e) && !('error' in e));
const guests = (tree: StatsTree): GuestStats[] => entries(tree).flatMap(([, e]) => ('bridge' in e ? [] : [e as GuestStats]));
const dom0s = (tree: StatsTree): Dom0Stats[] => entries(tree).flatMap(([, e]) => ('bridge' in e ? [e as Dom0Stats] : []));
const nics = (tree: StatsTree) => ('nics' in tree.fabric ? tree.fabric.nics : []);
/** A counter of a plugin frontend's, over every guest vif (cumulative per plugin: accel.totals). */
const plugin = (tree: StatsTree, name: string, counter: string) =>
  guests(tree).reduce(
    (n, g) => n + g.vifs.reduce((m, v) => m + num((v.accel?.totals as Record<string, Record<string, unknown>> | undefined)?.[name]?.[counter]), 0),
    0,
  );

export const COPY_SITES: readonly CopySite[] = [
  { name: 'netback TX grant copy', count: (t) => dom0s(t).reduce((n, d) => n + Object.values(d.vifs).reduce((m, v) => m + v.txPackets, 0), 0) },
  { name: 'netback RX grant copy', count: (t) => dom0s(t).reduce((n, d) => n + Object.values(d.vifs).reduce((m, v) => m + v.rxPackets, 0), 0) },
  { name: 'netfront RX gather', count: (t) => guests(t).reduce((n, g) => n + g.vifs.reduce((m, v) => m + num(v.rxFragmented), 0), 0) },
  { name: 'NIC TX DMA', count: (t) => nics(t).reduce((n, c) => n + Object.values(c.vis).reduce((m, v) => m + num(v.txFrames), 0), 0) },
  { name: 'NIC RX DMA', count: (t) => nics(t).reduce((n, c) => n + Object.values(c.vis).reduce((m, v) => m + num(v.rxFrames), 0), 0) },
  { name: 'line FIFO', count: (t) => nics(t).reduce((n, c) => n + ((c as { line?: unknown }).line ? num(c.wireTx) : 0), 0) },
  { name: 'vnic TX copy into VI slot', count: (t) => plugin(t, 'vnic', 'txCopied') },
  { name: 'vnic RX gather', count: (t) => plugin(t, 'vnic', 'rxGathered') },
  { name: 'vdpa TX copy into transmitq buffer', count: (t) => plugin(t, 'vdpa', 'vdpaTxCopied') },
  {
    name: 'netfront copy of a declined in-place frame',
    count: (t) => guests(t).reduce((n, g) => n + g.vifs.reduce((m, v) => m + num((v as { txAccelDeclinedCopies?: unknown }).txAccelDeclinedCopies), 0), 0),
  },
  { name: 'vdpa RX out of receiveq buffer', count: (t) => plugin(t, 'vdpa', 'vdpaRxFrames') },
];

/**
 * Copy sites no counter counts (so not in the figures): named here so the
 * report can say what it leaves out.
 */
export const UNCOUNTED_COPIES: readonly string[] = [
  "dom0 skb clone (netback/skb.ts clone): a frame from the NIC's RX buffer kept for later, in the uplink's TX backlog or a vif's RX queue when the guest has no buffer posted",
];

/** The raw references copy by construction: in and out of one ring (raw), or of two with a forwarder between (raw3). */
export const RAW_COPIES: Readonly<Record<'raw' | 'raw3', Record<string, number>>> = {
  raw: { 'raw producer into ring': 1, 'raw consumer out of ring': 1 },
  raw3: { 'raw producer into the first ring': 1, 'raw forwarder from the first ring to the second': 1, 'raw consumer out of the second ring': 1 },
};

/** Copies per site between two stats trees (sites with none left out). */
export function copyDelta(before: StatsTree, after: StatsTree): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of COPY_SITES) {
    const d = s.count(after) - s.count(before);
    if (d > 0) out[s.name] = d;
  }
  return out;
}
