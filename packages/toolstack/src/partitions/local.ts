/**
 * `xsim run topo.json --partitions local` as one library call: start a
 * process per partition (procs.ts), wait until all are up, ping between the
 * two ends and run the workload (a UDP stream or the ping itself) across
 * the partitions, account for the stream over every partition's counters,
 * and end every process, whatever happened. A partition that dies while
 * they boot, or an abort (Ctrl-C), ends the run at once with an error naming
 * why. One that dies later is a failed host: the others set their wires to
 * it down (procs.ts) and the workload goes on if both its ends are alive,
 * accounted over the survivors (the dead one's counters missing, and said
 * to be); if it held an end, the run ends with an error naming it. Every
 * partition is shut down all the same.
 */
import type { LogLevel } from '@xsim/hypervisor';
import type { DomainRef } from '../domain-ref.ts';
import type { StatsTree } from '../stats.ts';
import { mergeStats } from './merge.ts';
import type { Topology } from '../topo/types.ts';
import type { PingResult, StreamResult } from '../traffic.ts';
import { TCP_MESSAGE, runTcpRrVia, runTcpStreamVia, type TcpRrRun, type TcpStreamRun } from '../traffic-tcp.ts';
import { cutWires } from '../topo/partition-split.ts';
import { LocalPartitions, type PartitionDeath } from './procs.ts';
import { crossAccountBy, crossPing, crossStream, partitionsTcpDriver, type CrossAccount } from './traffic.ts';

export interface PartitionsRunOptions {
  from: DomainRef;
  to: DomainRef;
  workload: 'udp-stream' | 'ping' | 'tcp-stream' | 'tcp-rr';
  /** Frames of the stream, probes of the ping workload, MSS-sized messages of tcp-stream (unless `bytes`), transactions of tcp-rr. */
  count: number;
  /** tcp-stream: octets in all (iperf3 -n) instead of count messages. */
  bytes?: number;
  /** The stream's frame size; the ping workload's data octets. */
  size: number;
  window: number;
  /** Probes before the stream (default 20). */
  pings?: number;
  port?: number;
  srcPort?: number;
  basePort: number;
  pcpus?: number;
  logLevel?: LogLevel;
  bootMs?: number;
  /** A partition's log line (its stderr). */
  onLine?: (partition: string, line: string) => void;
  /** A partition's process was started. */
  onSpawn?: (partition: string, pid: number) => void;
  /** Every partition is up: their names, pids and boot times. */
  onUp?: (up: PartitionUp[]) => void;
  onPing?: (p: PingResult) => void;
  /** A partition died once all were up (and the others set their wires to it down). */
  onDeath?: (d: PartitionDeath) => void;
  /** Accelerator plugins loaded in every partition once all are up (each on the hosts whose NIC it drives), and waited for on both ends. */
  plugins?: { name: string; args?: Record<string, unknown> }[];
  /** A plugin was loaded: in which partitions, on how many hosts. */
  onPlugin?: (name: string, loaded: { partition: string; hosts: number }[]) => void;
  /** Abort the run (Ctrl-C): every partition is shut down and the run rejects. */
  signal?: AbortSignal;
}

export interface PartitionUp {
  name: string;
  pid: number;
  ms: number;
  domains: number;
}

export interface PartitionsRunResult {
  partitions: PartitionUp[];
  ping: PingResult;
  stream?: StreamResult;
  /** --workload tcp-stream: iperf3's figures, the sink having checked every octet. */
  tcpStream?: TcpStreamRun;
  /** --workload tcp-rr: transactions and their latency. */
  tcpRr?: TcpRrRun;
  account?: CrossAccount;
  /** The running partitions' counters, merged (merge.ts), after the workload. */
  stats: StatsTree;
  /** Partitions that died during the run (their counters are not in `stats` nor in the accounting). */
  dead: PartitionDeath[];
}

function aborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise<never>((_, reject) => {
    const go = () => reject(signal!.reason instanceof Error ? signal!.reason : new Error('stopped'));
    if (signal?.aborted) go();
    else signal?.addEventListener('abort', go, { once: true });
  });
}

/** The VNIs of the cut wires with an end in a partition of `dead`. */
function vnisOf(run: LocalPartitions, dead: readonly string[]): number[] {
  return cutWires(run.topology)
    .filter((c) => dead.includes(c.a.partition) || dead.includes(c.b.partition))
    .map((c) => c.vni);
}

/** Load each plugin in every partition, then wait until both ends' vifs have it (as a run in one process does). */
async function loadPlugins(run: LocalPartitions, o: PartitionsRunOptions): Promise<void> {
  for (const pl of o.plugins ?? []) {
    const args = { name: pl.name, ...(pl.args ? { args: pl.args } : {}) };
    const loaded = await Promise.all(
      run.alive.map(async (p) => ({
        partition: p.name,
        hosts: ((await run.call(p, { op: 'manage', name: 'plugin.load', args }, 60_000)) as unknown[]).length,
      })),
    );
    for (const p of run.alive) await run.call(p, { op: 'waitAccelerated', refs: [o.from, o.to], plugin: pl.name, timeoutMs: 30_000 }, 40_000);
    o.onPlugin?.(pl.name, loaded);
  }
}

async function workload(run: LocalPartitions, o: PartitionsRunOptions, up: PartitionUp[]): Promise<Omit<PartitionsRunResult, 'dead'>> {
  await loadPlugins(run, o);
  const ping = await crossPing(run, o.from, o.to, o.workload === 'ping' ? o.count : (o.pings ?? 20), o.workload === 'ping' ? o.size : 64);
  o.onPing?.(ping);
  if (o.workload === 'ping') return { partitions: up, ping, stats: await run.stats() };
  if (o.workload === 'tcp-stream') {
    const tcpStream = await runTcpStreamVia(partitionsTcpDriver(run), { from: o.from, to: o.to, bytes: o.bytes ?? o.count * TCP_MESSAGE, verify: true });
    return { partitions: up, ping, tcpStream, stats: await run.stats() };
  }
  if (o.workload === 'tcp-rr') {
    const tcpRr = await runTcpRrVia(partitionsTcpDriver(run), { from: o.from, to: o.to, count: o.count });
    return { partitions: up, ping, tcpRr, stats: await run.stats() };
  }
  const before = await run.statsBy();
  const stream = await crossStream(run, { from: o.from, to: o.to, count: o.count, frameSize: o.size, window: o.window, port: o.port, srcPort: o.srcPort });
  // A partition that died meanwhile has had its wires set down on the others before they are counted.
  await run.settled();
  const after = await run.statsBy();
  const dead = run.deaths.map((d) => d.name);
  const account = crossAccountBy(before, after, stream, dead, vnisOf(run, dead));
  return { partitions: up, ping, stream, account, stats: mergeStats(Object.values(after)) };
}

export async function runPartitionsLocal(full: Topology, o: PartitionsRunOptions): Promise<PartitionsRunResult> {
  const stop = aborted(o.signal);
  stop.catch(() => {});
  const started = LocalPartitions.start(full, {
    basePort: o.basePort,
    pcpus: o.pcpus,
    logLevel: o.logLevel,
    bootMs: o.bootMs,
    onLine: o.onLine,
    onSpawn: o.onSpawn,
    onDeath: o.onDeath,
  });
  const run = await Promise.race([started, stop]).catch(async (e: unknown) => {
    // Aborted while booting: the partitions that were starting are ended as soon as the start settles.
    await started.then((r) => r.shutdown()).catch(() => {});
    throw e;
  });
  try {
    const up = run.procs.map((p) => ({ name: p.name, pid: p.pid, ms: p.up!.ms, domains: p.up!.domains }));
    o.onUp?.(up);
    // The run ends at once if the partition of an end dies (the others' wires to it set down first).
    const endsDied = Promise.race([run.holderDied(o.from, 'the sender'), run.holderDied(o.to, 'the receiver')]);
    // A call to a partition that has just died fails before its death is recorded (the others' wires set down
    // first): if an end's partition is gone, the error is the death's, naming the end, not the call's.
    const work = workload(run, o, up).catch((e: unknown) => {
      if (!run.holder(o.from).exit && !run.holder(o.to).exit) throw e;
      return Promise.race([endsDied, new Promise<never>((_, reject) => setTimeout(() => reject(e), 30_000).unref())]);
    });
    const r = await Promise.race([work, endsDied, stop]);
    await run.settled();
    return { ...r, dead: [...run.deaths] };
  } finally {
    await run.shutdown();
  }
}
