/**
 * `xsim run --workload`: which traffic runs between the two ends, after
 * netperf's tests and iperf3 (udp-stream, the default; tcp-stream; tcp-rr;
 * ping), its flags checked together, and how its result prints.
 */
import {
  TCP_MESSAGE,
  TCP_WRITE_SIZE,
  WORKLOADS,
  table,
  type ScenarioResult,
  type TcpIntervalSample,
  type TcpRrRun,
  type TcpStreamRun,
  type Workload,
} from '@xsim/toolstack';
import { intFlag, type Parsed } from '../args.ts';

export const WORKLOAD_VALUED = ['workload', 'bytes', 'flows', 'write-size', 'req-size', 'rsp-size'];

export interface WorkloadOptions {
  workload: Workload;
  /** tcp-stream: octets in all (iperf3 -n); absent: count writes of writeSize. */
  bytes: number | undefined;
  flows: number;
  writeSize: number;
  reqSize: number;
  rspSize: number;
}

/** Flags that belong to one workload only: given with another, they are refused (naming both). */
const ONLY: Record<string, Workload> = {
  bytes: 'tcp-stream',
  flows: 'tcp-stream',
  'write-size': 'tcp-stream',
  'req-size': 'tcp-rr',
  'rsp-size': 'tcp-rr',
  window: 'udp-stream',
  'src-port': 'udp-stream',
};

/** --count's default per workload: a run of a few seconds on the slow path. */
export const DEFAULT_COUNT: Record<Workload, number> = { 'udp-stream': 200_000, 'tcp-stream': 20_000, 'tcp-rr': 10_000, ping: 100 };

export function workloadFlags(p: Parsed): WorkloadOptions {
  const w = p.flags.get('workload');
  const workload = (w === undefined ? 'udp-stream' : String(w)) as Workload;
  if (!WORKLOADS.includes(workload)) throw new Error(`--workload must be one of ${WORKLOADS.join(', ')}, got ${JSON.stringify(String(w))}`);
  for (const [flag, only] of Object.entries(ONLY))
    if (p.flags.has(flag) && workload !== only) throw new Error(`--${flag} goes with --workload ${only}, not ${workload}`);
  if (p.flags.has('serve') && workload !== 'udp-stream') throw new Error(`--serve streams UDP in rounds; --workload ${workload} runs once, without --serve`);
  if (p.flags.has('bytes') && p.flags.has('count')) throw new Error('--bytes and --count both size the stream: give one (iperf3 -n N, or N writes)');
  return {
    workload,
    bytes: p.flags.has('bytes') ? intFlag(p, 'bytes', 0, 1, 2 ** 40) : undefined,
    flows: intFlag(p, 'flows', 1, 1, 128),
    writeSize: intFlag(p, 'write-size', TCP_WRITE_SIZE, 1, 65536),
    reqSize: intFlag(p, 'req-size', 1, 1, 65536),
    rspSize: intFlag(p, 'rsp-size', 1, 1, 65536),
  };
}

/** What the run does, in a progress line. */
export function workloadLine(w: WorkloadOptions, count: number, size: number, ends: string): string {
  switch (w.workload) {
    case 'udp-stream':
      return `xsim: streaming ${count} frames of ${size} bytes ${ends} ...`;
    case 'tcp-stream':
      return `xsim: TCP stream of ${w.bytes ?? count * TCP_MESSAGE} octets over ${w.flows} connection(s), ${w.writeSize}-octet writes, ${ends} ...`;
    case 'tcp-rr':
      return `xsim: ${count} TCP request/response transactions (${w.reqSize}/${w.rspSize} octets) ${ends} ...`;
    case 'ping':
      return `xsim: ${count} ICMP echo probes of ${size} data octets ${ends}`;
  }
}

export function tcpIntervalHeader(): string {
  return '[ interval s ]   MBytes   Gbit/s   Retr';
}

/** One line per interval, as iperf3 prints a TCP stream's. */
export function tcpIntervalLine(x: TcpIntervalSample): string {
  const span = `${x.start.toFixed(2).padStart(6)}-${x.end.toFixed(2).padStart(6)}`;
  return `[${span} ] ${(x.bytes / 1e6).toFixed(2).padStart(8)} ${x.gbps.toFixed(3).padStart(8)} ${String(x.retransmits).padStart(6)}`;
}

/** The TCP counters that say how a run went, for the table (moved ones only). */
function tcpNotes(d: Record<string, number>): string {
  const keys = ['tcpTxRetransmits', 'tcpTxFastRetransmits', 'tcpTimeouts', 'tcpRxOutOfOrder', 'tcpDelayedAcks'];
  return (
    keys
      .filter((k) => d[k])
      .map((k) => `${k.replace(/^tcp/, '')} ${d[k]}`)
      .join(', ') || '-'
  );
}

function streamText(r: TcpStreamRun): string {
  const failed = Object.entries(r.failed);
  const rows = [[`${r.from} -> ${r.to}`, r.flows, r.bytes, r.elapsedMs.toFixed(1), r.gbps.toFixed(3), tcpNotes(r.sender), r.corrupt]];
  const t = table(['tcp stream', 'flows', 'octets', 'ms', 'Gbit/s', 'sender', 'corrupt'], rows);
  return failed.length ? `${t}\nconnections that failed: ${failed.map(([k, v]) => `${v} ${k}`).join(', ')}` : t;
}

function rrText(r: TcpRrRun): string {
  const rows = [[`${r.from} -> ${r.to}`, r.transactions, r.tps.toFixed(0), r.p50Us.toFixed(1), r.p99Us.toFixed(1), r.maxUs.toFixed(1), tcpNotes(r.sender)]];
  return table(['tcp rr', 'transactions', 'per s', 'p50 us', 'p99 us', 'max us', 'client'], rows);
}

/** The workload's own table (udp-stream prints its own, with the frames' accounting). */
export function workloadText(res: Pick<ScenarioResult, 'ping' | 'stream' | 'tcpStream' | 'tcpRr'>): string | null {
  if (res.tcpStream) return streamText(res.tcpStream);
  if (res.tcpRr) return rrText(res.tcpRr);
  if (!res.stream) {
    const p = res.ping;
    return table(['ping', 'probes', 'lost', 'min us', 'p50 us', 'p99 us', 'max us'], [['ICMP echo', p.count, p.lost, p.minUs, p.p50Us, p.p99Us, p.maxUs]]);
  }
  return null;
}

/** Did the workload do all it was asked (the exit status)? */
export function workloadComplete(res: Pick<ScenarioResult, 'ping' | 'stream' | 'tcpStream' | 'tcpRr'>, count: number): boolean {
  if (res.stream) return res.stream.delivered + res.stream.lost === res.stream.count;
  if (res.tcpStream) return res.tcpStream.complete && res.tcpStream.corrupt === 0;
  if (res.tcpRr) return res.tcpRr.complete;
  return res.ping.count + res.ping.lost === count;
}
