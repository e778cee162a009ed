/**
 * `xsim run topo.json --partitions local` as one library call: start a
 * process per partition (procs.ts), wait until all are up, ping between the
 * two ends and run the workload (a UDP stream or the ping itself) across
 * the partitions, account for the stream over every partition's counters,
 * and end every process, whatever happened. A partition that dies, or an
 * abort (Ctrl-C), ends the run at once with an error naming why; the other
 * partitions are shut down all the same.
 */
import type { LogLevel } from '@xsim/hypervisor';
import type { DomainRef } from '../domain-ref.ts';
import type { StatsTree } from '../stats.ts';
import type { Topology } from '../topo/types.ts';
import type { PingResult, StreamResult } from '../traffic.ts';
import { LocalPartitions } from './procs.ts';
import { crossAccount, crossPing, crossStream, type CrossAccount } from './traffic.ts';

export interface PartitionsRunOptions {
  from: DomainRef;
  to: DomainRef;
  workload: 'udp-stream' | 'ping';
  /** Frames of the stream, or probes of the ping workload. */
  count: number;
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
  account?: CrossAccount;
  /** Every partition's counters, merged (merge.ts), after the workload. */
  stats: StatsTree;
}

function aborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise<never>((_, reject) => {
    const go = () => reject(signal!.reason instanceof Error ? signal!.reason : new Error('stopped'));
    if (signal?.aborted) go();
    else signal?.addEventListener('abort', go, { once: true });
  });
}

async function workload(run: LocalPartitions, o: PartitionsRunOptions, up: PartitionUp[]): Promise<PartitionsRunResult> {
  const ping = await crossPing(run, o.from, o.to, o.workload === 'ping' ? o.count : (o.pings ?? 20), o.workload === 'ping' ? o.size : 64);
  o.onPing?.(ping);
  if (o.workload === 'ping') return { partitions: up, ping, stats: await run.stats() };
  const before = await run.stats();
  const stream = await crossStream(run, { from: o.from, to: o.to, count: o.count, frameSize: o.size, window: o.window, port: o.port, srcPort: o.srcPort });
  const stats = await run.stats();
  return { partitions: up, ping, stream, account: crossAccount(before, stats, stream), stats };
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
  });
  const run = await Promise.race([started, stop]).catch(async (e: unknown) => {
    // Aborted while booting: the partitions that were starting are ended as soon as the start settles.
    await started.then((r) => r.shutdown()).catch(() => {});
    throw e;
  });
  try {
    const up = run.procs.map((p) => ({ name: p.name, pid: p.pid, ms: p.up!.ms, domains: p.up!.domains }));
    o.onUp?.(up);
    return await Promise.race([workload(run, o, up), run.died, stop]);
  } finally {
    await run.shutdown();
  }
}
