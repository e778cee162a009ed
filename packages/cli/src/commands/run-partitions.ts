/**
 * `xsim run topo.json --partitions local`: every partition of the topology in
 * a process of its own on this machine (the toolstack's partitions/local.ts
 * starts, drives and ends them), the workload between domains of different
 * partitions, the stream's accounting over every partition's counters.
 * Parses, calls the toolstack, prints.
 */
import {
  DEFAULT_VXLAN_BASE_PORT,
  checkEnds,
  loadTopology,
  parseDomainRef,
  partitionAddrs,
  partitionOf,
  runPartitionsLocal,
  table,
  type DomainRef,
  type PartitionsRunResult,
  type Topology,
} from '@xsim/toolstack';
import { LOG_BOOLEANS, intFlag, logLevelFlag, parseArgs, type Parsed } from '../args.ts';
import { dropLines, nicTable, switchTable } from './run-tables.ts';

const VALUED = ['partitions', 'vxlan-base-port', 'workload', 'count', 'size', 'window', 'from', 'to', 'port', 'src-port', 'pcpus'];
const BOOLEANS = ['j', 'json', ...LOG_BOOLEANS];

/** Is this `xsim run` one of --partitions (it takes its own, smaller set of options)? */
export function wantsPartitions(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--partitions' || a.startsWith('--partitions='));
}

/** The default ends: the first domU of the first partition, and the first domU of another partition. */
function defaultEnds(t: Topology): { from: DomainRef; to: DomainRef } {
  const guest = (hosts: string[]) => {
    const h = t.hosts.find((x) => hosts.includes(x.name) && x.domUs.length > 0);
    return h ? { host: h.name, domain: h.domUs[0].name } : undefined;
  };
  const [first, ...rest] = Object.values(t.partitions!);
  const from = guest(first.hosts);
  const to = rest.map((p) => guest(p.hosts)).find((x) => x !== undefined);
  if (!from || !to)
    throw new Error(`--partitions local streams between guests of two partitions: topology "${t.name}" needs a domU in its first partition and in another`);
  return { from, to };
}

interface PartitionsOptions {
  topo: Topology;
  workload: 'udp-stream' | 'ping';
  from: DomainRef;
  to: DomainRef;
  count: number;
  size: number;
  window: number;
  port?: number;
  srcPort?: number;
  basePort: number;
  pcpus?: number;
  json: boolean;
  p: Parsed;
}

async function options(argv: string[]): Promise<PartitionsOptions> {
  const p = parseArgs(argv, VALUED, BOOLEANS);
  const mode = String(p.flags.get('partitions'));
  if (mode !== 'local')
    throw new Error(
      `--partitions takes "local" (one process per partition on this machine), got ${JSON.stringify(mode)}; on several machines run --partition NAME on each`,
    );
  if (!p.positional[0]) throw new Error('--partitions local runs the partitions of a topology file: give the file (its "partitions" name them)');
  const topo = await loadTopology(p.positional[0]);
  const basePort = intFlag(p, 'vxlan-base-port', DEFAULT_VXLAN_BASE_PORT, 1, 65535);
  partitionAddrs(topo, { basePort }); // a topology without partitions, or ports past 65535, are refused here
  const w = String(p.flags.get('workload') ?? 'udp-stream');
  if (w !== 'udp-stream' && w !== 'ping')
    throw new Error(`--partitions local runs --workload udp-stream or ping, got ${JSON.stringify(w)} (TCP across partitions is not built yet)`);
  const ends = defaultEnds(topo);
  const o: PartitionsOptions = {
    topo,
    workload: w,
    from: p.flags.has('from') ? parseDomainRef(String(p.flags.get('from'))) : ends.from,
    to: p.flags.has('to') ? parseDomainRef(String(p.flags.get('to'))) : ends.to,
    count: intFlag(p, 'count', w === 'ping' ? 100 : 200_000, 1, 100_000_000),
    size: w === 'ping' ? intFlag(p, 'size', 56, 16, 9000) : intFlag(p, 'size', 1500, 64, 9018),
    window: intFlag(p, 'window', 256, 0, 1_000_000),
    ...(p.flags.has('port') ? { port: intFlag(p, 'port', 0, 1, 65535) } : {}),
    ...(p.flags.has('src-port') ? { srcPort: intFlag(p, 'src-port', 0, 1, 65535) } : {}),
    basePort,
    ...(p.flags.has('pcpus') ? { pcpus: intFlag(p, 'pcpus', 1, 1, 256) } : {}),
    json: p.flags.has('j') || p.flags.has('json'),
    p,
  };
  checkEnds(topo, o, w === 'ping' ? o.size + 42 : o.size);
  return o;
}

function report(r: PartitionsRunResult): string {
  const parts: string[] = [];
  const p = r.ping;
  parts.push(table(['ping', 'probes', 'lost', 'min us', 'p50 us', 'p99 us', 'max us'], [['ICMP echo', p.count, p.lost, p.minUs, p.p50Us, p.p99Us, p.maxUs]]));
  const s = r.stream;
  if (s)
    parts.push(
      table(
        ['stream', 'sent', 'delivered', 'lost', 'dup', 'reord', 'Mpps', 'Gbit/s'],
        [[`${s.from} -> ${s.to} @${s.frameSize}B`, s.sent, s.delivered, s.lost, s.duplicated, s.reordered, s.pps / 1e6, s.gbps]],
      ),
    );
  const a = r.account;
  if (a)
    parts.push(
      `conservation across ${r.partitions.length} partitions: sent ${a.sent} = delivered ${a.delivered} + counted drops ${a.dropped} + in UDP between partitions ${a.inUdp}` +
        `${a.copies ? ` (flood copies ${a.copies})` : ''}: ${a.conserved ? 'conserved' : 'NOT conserved'}`,
    );
  parts.push(nicTable(r.stats));
  const sw = switchTable(r.stats);
  if (sw !== null) parts.push(sw);
  const drops = dropLines(r.stats);
  if (drops.length) parts.push(['drop counters (non-zero):', ...drops.map((d) => `  ${d}`)].join('\n'));
  return parts.join('\n\n');
}

/** The run's exit status: 0 when the workload all happened (and the stream was conserved across the partitions). */
function ok(o: PartitionsOptions, r: PartitionsRunResult): boolean {
  if (o.workload === 'ping') return r.ping.count + r.ping.lost === o.count && r.ping.lost === 0;
  return r.account?.conserved === true && r.stream?.sent === o.count;
}

export async function partitionsCommand(argv: string[]): Promise<number> {
  const o = await options(argv);
  const level = logLevelFlag(o.p);
  const note = (s: string) => {
    if (!o.json && level !== 'warn') process.stdout.write(s + '\n');
  };
  const ends = `${o.from.host}/${o.from.domain} (${partitionOf(o.topo, o.from.host)}) -> ${o.to.host}/${o.to.domain} (${partitionOf(o.topo, o.to.host)})`;
  note(`xsim: topology "${o.topo.name}": ${Object.keys(o.topo.partitions!).length} partitions, one process each; tunnels on 127.0.0.1:${o.basePort}+`);
  const abort = new AbortController();
  const stop = () => abort.abort(new Error('interrupted: every partition shut down'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const r = await runPartitionsLocal(o.topo, {
      ...o,
      logLevel: level === 'debug' ? 'debug' : 'warn',
      signal: abort.signal,
      onLine: (name, line) => process.stderr.write(`[${name}] ${line}\n`),
      onSpawn: (name, pid) => note(`xsim: partition ${name} starting (pid ${pid})`),
      onUp: (up) => {
        for (const u of up) note(`xsim: partition ${u.name} up (pid ${u.pid}): ${u.domains} domains, all vifs Connected in ${u.ms.toFixed(0)} ms`);
        note(`xsim: ${o.workload === 'ping' ? `${o.count} ICMP echo probes` : `ping, then ${o.count} frames of ${o.size} bytes`} ${ends} ...`);
      },
    });
    if (o.json) process.stdout.write(JSON.stringify({ topology: o.topo.name, workload: o.workload, ...r }) + '\n');
    else process.stdout.write('\n' + report(r) + '\n');
    return ok(o, r) ? 0 : 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
