/**
 * Traffic between domains of different partitions (`xsim run --partitions
 * local`), driven over the partitions' IPC channels with the same domain ops
 * the one-process scenario uses (traffic.ts): ARP, then a ping, or a UDP
 * stream whose receiver is listening before its sender starts. The stream is
 * accounted across the partitions: every frame sent is delivered, counted
 * in a drop counter of some partition, or still in a UDP datagram between
 * them (merge.ts's udpInFlight).
 */
import { streamAccount } from '../drops.ts';
import type { DomainRef } from '../domain-ref.ts';
import type { StatsTree } from '../stats.ts';
import type { Topology } from '../topo/types.ts';
import { streamResult, type PingResult, type StreamResult } from '../traffic.ts';
import { mergeStats, udpInFlight } from './merge.ts';
import type { LocalPartitions } from './procs.ts';
import type { TcpDriver } from '../traffic-tcp.ts';

/** A domain's IP in the topology (dom0's, or a guest's first vif's), or an error naming what exists. */
export function domainIp(t: Topology, ref: DomainRef): string {
  const h = t.hosts.find((x) => x.name === ref.host);
  if (!h) throw new Error(`no host "${ref.host}" in topology "${t.name}" (hosts: ${t.hosts.map((x) => x.name).join(', ')})`);
  if (ref.domain === 'dom0') return h.dom0.ip;
  const d = h.domUs.find((x) => x.name === ref.domain);
  if (!d) throw new Error(`no domain "${ref.domain}" on ${ref.host} (domUs: ${h.domUs.map((x) => x.name).join(', ')})`);
  return d.vifs[0].ip;
}

/** The partitions as a TcpDriver: each end's requests go to the process that holds it (TCP workloads across partitions). */
export function partitionsTcpDriver(run: LocalPartitions): TcpDriver {
  return {
    ip: (ref) => domainIp(run.topology, ref),
    // The op and its arguments are the domain's own (checked by the compiler at TcpDriver's callers); they cross the IPC channel as they are.
    request: ((ref: DomainRef, op: string, args: Record<string, unknown>, timeoutMs?: number) => run.request(ref, op, args, timeoutMs)) as TcpDriver['request'],
    tcpCounters: async (ref) => {
      const st = (await run.domainStats(ref, 120_000)) as { endpoint?: { tcp?: Record<string, number> } };
      return st.endpoint?.tcp ?? {};
    },
  };
}

export async function crossPing(run: LocalPartitions, from: DomainRef, to: DomainRef, count: number, size = 64): Promise<PingResult> {
  const ip = domainIp(run.topology, to);
  await run.request(from, 'arp_resolve', { ip });
  return (await run.request(from, 'ping', { dstIp: ip, count, size })) as PingResult;
}

export interface CrossStreamOptions {
  from: DomainRef;
  to: DomainRef;
  count: number;
  frameSize: number;
  window: number;
  port?: number;
  srcPort?: number;
}

/** Until `to` has a receiver on `port` (its endpoint's progress names it), polled, at most `ms`. */
async function listening(run: LocalPartitions, to: DomainRef, port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (let i = 0; Date.now() < until && i < 10_000; i++) {
    const st = (await run.domainStats(to)) as { endpoint?: { progress?: Record<string, unknown> } };
    if (st.endpoint?.progress && String(port) in st.endpoint.progress) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${to.host}/${to.domain} did not start receiving on UDP port ${port} within ${ms} ms`);
}

let nextStream = 1;

/** A sequenced UDP stream from `from` to `to` in another partition (or the same), as traffic.ts's runStream reports one. */
export async function crossStream(run: LocalPartitions, o: CrossStreamOptions): Promise<StreamResult> {
  const dstIp = domainIp(run.topology, o.to);
  const port = o.port ?? 5001;
  const streamId = nextStream++;
  const timeoutMs = 120_000;
  await run.request(o.from, 'arp_resolve', { ip: dstIp });
  const creditEvery = o.window ? Math.max(1, Math.floor(o.window / 4)) : 0;
  const recv = run.request(o.to, 'stream_recv', { port, count: o.count, streamId, timeoutMs, idleMs: 500, creditEvery }, timeoutMs + 5000) as Promise<
    Record<string, number | boolean>
  >;
  recv.catch(() => {});
  // The receiver is in another process: its socket must be open before the first frame arrives.
  await listening(run, o.to, port, 10_000);
  const sendArgs = { dstIp, dstPort: port, count: o.count, frameSize: o.frameSize, streamId, window: o.window, ...(o.srcPort ? { srcPort: o.srcPort } : {}) };
  const send = (await run.request(o.from, 'stream_send', sendArgs, timeoutMs)) as Record<string, number>;
  const r = await recv;
  return streamResult(`${o.from.host}/${o.from.domain}`, `${o.to.host}/${o.to.domain}`, o, send, r);
}

/** A stream's accounting across the partitions. */
export interface CrossAccount {
  sent: number;
  delivered: number;
  /** Frames counted in some partition's drop counters during the stream. */
  dropped: number;
  /** Datagrams between the partitions neither passed on nor counted dropped when the stream ended. */
  inUdp: number;
  /** Flood copies made meanwhile (they widen the bound by their number). */
  copies: number;
  drops: Record<string, number>;
  conserved: boolean;
  /**
   * When partitions died: their names (their counters are missing from the
   * accounting), and the datagrams the survivors sent into them during the
   * stream less those that came back out: frames that may have died with
   * them, uncounted (an upper bound: replies and credits count too).
   */
  dead?: string[];
  intoDead?: number;
}

/** sent <= delivered + dropped + tooOld + in UDP <= sent + copies, and nothing delivered twice. */
export function crossAccount(before: StatsTree, after: StatsTree, r: Pick<StreamResult, 'sent' | 'delivered' | 'duplicated' | 'tooOld'>): CrossAccount {
  const a = streamAccount(before, after, r);
  const inUdp = Math.max(0, udpInFlight(after) - udpInFlight(before));
  const seen = r.delivered + a.dropped + (r.tooOld ?? 0) + inUdp;
  return {
    sent: r.sent,
    delivered: r.delivered,
    dropped: a.dropped,
    inUdp,
    copies: a.copies,
    drops: Object.fromEntries(a.drops),
    conserved: seen >= r.sent && seen <= r.sent + a.copies && r.duplicated === 0,
  };
}

type Tunnel = { vni: number; vxlanTxSent?: number; vxlanRxFrames?: number };

/** Datagrams sent less frames received on the tunnels of `vnis` in a merged tree. */
function netInto(tree: StatsTree, vnis: ReadonlySet<number>): number {
  const ts = (tree.fabric as { vxlan?: { tunnels: Tunnel[] } }).vxlan?.tunnels ?? [];
  return ts.filter((t) => vnis.has(t.vni)).reduce((n, t) => n + Number(t.vxlanTxSent ?? 0) - Number(t.vxlanRxFrames ?? 0), 0);
}

/**
 * The stream's accounting over the partitions that are still running (every
 * partition's tree `before`, the survivors' `after`): the dead ones' counters
 * are missing, so what the survivors sent into them and did not see come back
 * (on the tunnels of `deadVnis`, the cut wires to them) is given apart, as
 * frames that may have died with them: the stream is conserved when
 * delivered + counted + in UDP between survivors <= sent + copies <= that + intoDead.
 */
export function crossAccountBy(
  before: Record<string, StatsTree>,
  after: Record<string, StatsTree>,
  r: Pick<StreamResult, 'sent' | 'delivered' | 'duplicated' | 'tooOld'>,
  dead: readonly string[] = [],
  deadVnis: readonly number[] = [],
): CrossAccount {
  const live = Object.keys(after).filter((n) => before[n] !== undefined);
  const b = mergeStats(live.map((n) => before[n]));
  const a = mergeStats(live.map((n) => after[n]));
  const all = crossAccount(b, a, r);
  if (dead.length === 0) return all;
  const vnis = new Set(deadVnis);
  const raw = netInto(a, vnis) - netInto(b, vnis);
  const intoDead = Math.max(0, raw);
  const inUdp = Math.max(0, udpInFlight(a) - udpInFlight(b) - raw);
  const counted = r.delivered + all.dropped + (r.tooOld ?? 0) + inUdp;
  return {
    ...all,
    inUdp,
    dead: [...dead],
    intoDead,
    conserved: counted <= r.sent + all.copies && counted + intoDead >= r.sent && r.duplicated === 0,
  };
}
