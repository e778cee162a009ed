/**
 * The TCP section (`xsim bench --tcp`): tcp-stream goodput and tcp-rr
 * transactions and latency on the paths unaccel, vnic and dom0 (dom0 to
 * dom0, as the matrix's), at MTU 1500, across hosts and on one host, with
 * the vifs' offloads on and off, and a udp-stream (runStream, as the matrix
 * measures) on the same ends just before each TCP stream, so TCP / UDP is
 * paired too.
 *
 * One simulation: host-a and host-b with four domUs each (pairs.ts's
 * topology), a1, a2, b1, b2 as booted (offloads on) and a3, a4, b3, b4 with
 * `"offloads": {"csum": false, "gso": false}` on their vif. On: a1 -> b1
 * (cross), a1 -> a2 (same); off: a3 -> b3, a3 -> a4. So offloads on and off
 * run in the same simulation, on the same threads, and every repetition
 * visits every cell in turn (unaccel, dom0, then vnic with its plugin
 * loaded), as the matrix does: the ratios are paired per repetition.
 *
 * dom0's stack has no vif: netback's composeDom0 sets its offloads once
 * (txCsum on: every port behind the bridge completes what it cannot pass on
 * partial), so no topology switch reaches it and dom0 is measured with
 * offloads on only (its on/off ratio is listed as not measurable).
 *
 * A repetition is ok when the TCP stream completed (every octet sent and
 * received, no timeout), no octet was corrupt (the sink verifies the stream
 * pattern unless --no-tcp-verify), every transaction completed and the
 * udp-stream conserved its frames; a cell with a repetition that is not ok
 * is INVALID, as is a vnic cell whose sender took under 99 % of its TCP
 * frames on the fast path, and every ratio it would enter is null.
 */
import type { LogLevel } from '@xsim/hypervisor';
import { Simulation, TCP_WRITE_SIZE, runStream, runTcpRr, runTcpStream, streamAccount, validateTopology, type StatsTree, type Topology } from '@xsim/toolstack';
import { MIN_FAST_PATH_SHARE, fastPathTaken } from './counts.ts';
import { windowFrames } from './matrix.ts';
import { pairsTopology } from './pairs.ts';
import { median } from './ratios.ts';
import type { Placement } from './schema.ts';
import { tcpNotes, tcpRatios } from './tcp-ratios.ts';
import type { OffloadMode, TcpCell, TcpPath, TcpRep, TcpSection } from './tcp-schema.ts';

export interface TcpBenchOptions {
  paths: TcpPath[];
  placements: Placement[];
  offloads: OffloadMode[];
  reps: number;
  /** Octets per tcp-stream repetition; 0: sized per cell from the warm-up to last repSeconds. */
  bytes: number;
  /** Transactions per tcp-rr repetition; 0: sized from the warm-up. */
  rrCount: number;
  /** Frames per udp-stream repetition; 0: sized from the warm-up. */
  frames: number;
  repSeconds: number;
  /** The sink checks every octet against the stream pattern (what makes a corrupt octet visible). */
  verify: boolean;
  reqSize?: number;
  rspSize?: number;
  writeSize?: number;
  pcpus?: number;
  wireGbps?: number;
  logLevel?: LogLevel;
  progress?: (what: string) => void;
}

export const TCP_SIZE = 1500;
const OFF = { csum: false, gso: false };
const UDP_PORT = 42000;
type End = { host: string; domain: string };
type Key = { path: TcpPath; placement: Placement; offloads: OffloadMode };

/** pairs.ts's topology (a1..a4, b1..b4 at MTU 1500) with the offloads off on a3, a4, b3 and b4. */
export function tcpTopology(gbps?: number): Topology {
  type Raw = { hosts: { domUs: { name: string; vifs: Record<string, unknown>[] }[] }[] };
  const t = structuredClone(pairsTopology(TCP_SIZE, gbps)) as unknown as Raw;
  for (const h of t.hosts) for (const d of h.domUs) if (/[34]$/.test(d.name)) for (const v of d.vifs) v.offloads = { ...OFF };
  return validateTopology(t);
}

/** The ends of a cell: dom0 to dom0 (cross only); on a1 -> b1 / a2, off a3 -> b3 / a4. */
export function tcpEnds(k: Key): { from: End; to: End } {
  if (k.path === 'dom0') return { from: { host: 'host-a', domain: 'dom0' }, to: { host: 'host-b', domain: 'dom0' } };
  const i = k.offloads === 'on' ? 1 : 3;
  return {
    from: { host: 'host-a', domain: `a${i}` },
    to: k.placement === 'cross' ? { host: 'host-b', domain: `b${i}` } : { host: 'host-a', domain: `a${i + 1}` },
  };
}

export const cellName = (k: Key) => `${k.path} ${k.placement} offloads ${k.offloads}`;

/** Every cell asked for, in the order a repetition visits them (dom0: across hosts, offloads on only). */
export function tcpPlan(o: Pick<TcpBenchOptions, 'paths' | 'placements' | 'offloads'>): Key[] {
  const out: Key[] = [];
  for (const path of ['unaccel', 'dom0', 'vnic'] as const) {
    if (!o.paths.includes(path)) continue;
    for (const offloads of o.offloads)
      for (const placement of o.placements) {
        if (path === 'dom0' && (placement === 'same' || offloads === 'off')) continue;
        out.push({ path, placement, offloads });
      }
  }
  return out;
}

/** The sender's vif 0: frames taken on the fast path, queued on the TX ring, and handed down with a partial checksum. */
function senderTx(tree: StatsTree, from: End): { taken: number; slow: number; partial: number } | null {
  const e = (tree as Record<string, { vifs?: { txPackets?: number; txCsumPartial?: number }[] } | undefined>)[`${from.host}/${from.domain}`];
  const v = e?.vifs?.[0];
  if (!v) return null;
  return { taken: fastPathTaken(tree, from), slow: v.txPackets ?? 0, partial: v.txCsumPartial ?? 0 };
}

interface Sizes {
  bytes: number;
  rr: number;
  udp: number;
}

/** One repetition of one cell: a udp-stream, then the tcp-stream, then tcp-rr, on the same ends. */
async function measureCell(sim: Simulation, k: Key, n: Sizes, o: TcpBenchOptions): Promise<TcpRep> {
  const { from, to } = tcpEnds(k);
  const why: string[] = [];
  const s0 = await sim.stats();
  const u = await runStream(sim, { from, to, count: n.udp, frameSize: TCP_SIZE, window: windowFrames(TCP_SIZE), srcPort: UDP_PORT });
  const s1 = await sim.stats();
  const account = streamAccount(s0, s1, u);
  const udp = { sent: u.sent, delivered: u.delivered, conserved: account.conserved, gbps: u.gbps };
  const stream: TcpRep['stream'] = { bytes: 0, elapsedMs: 0, gbps: 0, complete: false, corrupt: 0, retransmits: 0, failed: {}, sender: {}, receiver: {} };
  try {
    const s = await runTcpStream(sim, { from, to, bytes: n.bytes, verify: o.verify, writeSize: o.writeSize, timeoutMs: 60_000 });
    Object.assign(stream, {
      bytes: s.bytes,
      elapsedMs: s.elapsedMs,
      gbps: s.gbps,
      complete: s.complete,
      corrupt: s.corrupt,
      retransmits: s.sender.tcpTxRetransmits ?? 0,
      failed: s.failed,
      sender: s.sender,
      receiver: s.receiver,
    });
  } catch (e) {
    why.push(`tcp-stream failed: ${(e as Error).message}`);
  }
  const s2 = await sim.stats();
  const [a, b] = [senderTx(s1, from), senderTx(s2, from)];
  const sent = a && b ? b.taken - a.taken + (b.slow - a.slow) : 0;
  // The other way: the receiver's ACKs (vnic learns a filter per port, so each connection's new port anew).
  const [ra, rb] = [senderTx(s1, to), senderTx(s2, to)];
  const acks = ra && rb ? rb.taken - ra.taken + (rb.slow - ra.slow) : 0;
  const rr: TcpRep['rr'] = { transactions: 0, tps: 0, p50Us: 0, p99Us: 0, complete: false, failed: {} };
  try {
    const r = await runTcpRr(sim, { from, to, count: n.rr, reqSize: o.reqSize, rspSize: o.rspSize, timeoutMs: 60_000 });
    Object.assign(rr, { transactions: r.transactions, tps: r.tps, p50Us: r.p50Us, p99Us: r.p99Us, complete: r.complete, failed: r.failed });
  } catch (e) {
    why.push(`tcp-rr failed: ${(e as Error).message}`);
  }
  why.push(...repFaults({ udp, stream, rr }, n, account.dropped));
  return {
    udp,
    stream,
    rr,
    fastPathShare: a && b && sent > 0 ? (b.taken - a.taken) / sent : 0,
    csumPartialShare: a && b && sent > 0 ? (b.partial - a.partial) / sent : null,
    ackFastPathShare: ra && rb && acks > 0 ? (rb.taken - ra.taken) / acks : 0,
    ok: why.length === 0,
    ...(why.length ? { why: why.join('; ') } : {}),
  };
}

/**
 * Why a repetition is not ok (empty: it is): the udp-stream lost frames no
 * counter counted, the tcp-stream did not deliver every octet or delivered a
 * corrupt one, a transaction did not complete.
 */
export function repFaults(x: Pick<TcpRep, 'udp' | 'stream' | 'rr'>, n: { bytes: number; rr: number }, udpDropped = 0): string[] {
  const why: string[] = [];
  const { udp, stream, rr } = x;
  if (!udp.conserved) why.push(`udp-stream not conserved (${udp.sent} sent, ${udp.delivered} delivered, ${udpDropped} counted dropped)`);
  if (!stream.complete || stream.bytes !== n.bytes) why.push(`tcp-stream incomplete (${stream.bytes} of ${n.bytes} octets received${failures(stream.failed)})`);
  if (stream.corrupt > 0) why.push(`tcp-stream: ${stream.corrupt} corrupt octets`);
  if (!rr.complete || rr.transactions !== n.rr) why.push(`tcp-rr incomplete (${rr.transactions} of ${n.rr} transactions${failures(rr.failed)})`);
  return why;
}

const failures = (f: Record<string, number>) => {
  const e = Object.entries(f);
  return e.length ? `; ${e.map(([k, v]) => `${k} ${v}`).join(', ')}` : '';
};

/**
 * A cell from its repetitions: medians and spread, and whether it is what it
 * says (every repetition ok; vnic's sender at least 99 % on the fast path).
 */
export function tcpCell(k: Key, reps: TcpRep[], busy: string[]): TcpCell {
  const { from, to } = tcpEnds(k);
  const share = median(reps.map((r) => r.fastPathShare));
  const bad = reps.flatMap((r, i) => (r.ok ? [] : [`repetition ${i + 1}: ${r.why ?? 'not ok'}`]));
  if (k.path === 'vnic' && share < MIN_FAST_PATH_SHARE)
    bad.push(`vnic: the sender's frontend took ${(share * 100).toFixed(1)}% of its TCP frames on the fast path (median), under ${MIN_FAST_PATH_SHARE * 100}%`);
  const gbps = reps.map((r) => r.stream.gbps);
  const tps = reps.map((r) => r.rr.tps);
  return {
    ...k,
    size: TCP_SIZE,
    from: `${from.host}/${from.domain}`,
    to: `${to.host}/${to.domain}`,
    busy,
    reps,
    median: {
      gbps: median(gbps),
      udpGbps: median(reps.map((r) => r.udp.gbps)),
      tps: median(tps),
      p50Us: median(reps.map((r) => r.rr.p50Us)),
      p99Us: median(reps.map((r) => r.rr.p99Us)),
    },
    spread: { minGbps: Math.min(...gbps), maxGbps: Math.max(...gbps), minTps: Math.min(...tps), maxTps: Math.max(...tps) },
    fastPathShare: share,
    valid: bad.length === 0,
    ...(bad.length ? { invalid: bad.join('; ') } : {}),
  };
}

/** The domains a cell keeps busy, with their pCPUs (from the simulation's placement), and the NIC thread. */
function busyOf(sim: Simulation, k: Key): string[] {
  const at = (e: End) => `${e.host}/${e.domain}@pCPU${sim.domain(e).pcpu}`;
  const { from, to } = tcpEnds(k);
  const dom0 = (host: string) => at({ host, domain: 'dom0' });
  if (k.path === 'dom0') return [at(from), 'NIC thread', at(to)];
  if (k.path === 'vnic') return [at(from), 'NIC thread', at(to)];
  return k.placement === 'cross' ? [at(from), dom0('host-a'), 'NIC thread', dom0('host-b'), at(to)] : [at(from), dom0('host-a'), at(to)];
}

const clamp = (x: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, Math.round(x)));

export async function runTcpBench(o: TcpBenchOptions): Promise<TcpSection> {
  const plan = tcpPlan(o);
  const sim = await Simulation.start(tcpTopology(o.wireGbps), { pcpus: o.pcpus, logLevel: o.logLevel ?? 'warn' });
  let vnic = false;
  const use = async (path: TcpPath) => {
    if ((path === 'vnic') === vnic) return;
    if (vnic) await sim.unloadPlugin('vnic');
    else await sim.loadPlugin('vnic');
    vnic = !vnic;
  };
  const sizes = new Map<string, Sizes>();
  const reps = new Map<string, TcpRep[]>(plan.map((k) => [cellName(k), []]));
  try {
    // Sized: two unmeasured rounds (JIT, vnic's filters; the second sizes the repetitions), fixed: one.
    const sized = o.bytes === 0 || o.rrCount === 0 || o.frames === 0;
    const fixed: Sizes = { bytes: o.bytes, rr: o.rrCount, udp: o.frames > 0 ? Math.max(200, o.frames) : 0 };
    const warm: Sizes = {
      bytes: o.bytes || 8_000_000,
      rr: o.rrCount ? Math.min(o.rrCount, 200) : 2_000,
      udp: fixed.udp ? Math.min(2_000, fixed.udp) : 20_000,
    };
    if (o.bytes) warm.bytes = Math.min(o.bytes, 4_000_000);
    for (let r = sized ? -2 : -1; r < o.reps; r++) {
      for (const k of plan) {
        const name = cellName(k);
        if (r === 0 || r === (sized ? -2 : -1)) o.progress?.(`${r < 0 ? 'warm-up' : 'measuring'} tcp ${name}`);
        await use(k.path);
        if (k.path === 'vnic') {
          // Its frontends attach after the load returns: the cell's ends up before a segment is measured.
          const { from, to } = tcpEnds(k);
          await sim.waitAccelerated([from, to], { plugin: 'vnic' });
        }
        if (r < 0) {
          const w = await measureCell(sim, k, warm, o);
          const secs = o.repSeconds;
          sizes.set(name, {
            bytes: fixed.bytes || clamp(((w.stream.gbps * 1e9) / 8) * secs, 1_000_000, 2_000_000_000),
            rr: fixed.rr || clamp(w.rr.tps * secs, 100, 1_000_000),
            udp: fixed.udp || clamp(((w.udp.gbps * 1e9) / (TCP_SIZE * 8)) * secs, 2_000, 5_000_000),
          });
          continue;
        }
        reps.get(name)!.push(await measureCell(sim, k, sizes.get(name)!, o));
      }
    }
    await use('unaccel');
    const cells = plan.map((k) => tcpCell(k, reps.get(cellName(k))!, busyOf(sim, k)));
    const per = (f: (s: Sizes) => number) => Object.fromEntries(plan.map((k) => [cellName(k), f(sizes.get(cellName(k))!)]));
    return {
      options: {
        size: TCP_SIZE,
        bytes: o.bytes,
        bytesPerCell: per((s) => s.bytes),
        rrCount: per((s) => s.rr),
        udpFrames: per((s) => s.udp),
        reqSize: o.reqSize ?? 1,
        rspSize: o.rspSize ?? 1,
        writeSize: o.writeSize ?? TCP_WRITE_SIZE,
        verify: o.verify,
        reps: o.reps,
        paths: o.paths,
        placements: o.placements,
        offloads: o.offloads,
      },
      cells,
      ratios: tcpRatios(cells, o),
      notes: tcpNotes(o, sim.threads().placement),
    };
  } finally {
    await sim.shutdown();
  }
}
