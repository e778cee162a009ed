/**
 * `xsim run topo.json --partitions local`: every partition of the topology in
 * a process of its own on this machine (the toolstack's partitions/local.ts
 * starts, drives and ends them), the workload between domains of different
 * partitions, the stream's accounting over every partition's counters; or,
 * with --serve --idle, one control socket here for every partition's
 * domains. A partition that dies is reported with the wires the others set
 * down; the exit status is then 3. Parses, calls the toolstack, prints.
 */
import {
  DEFAULT_VXLAN_BASE_PORT,
  TCP_MESSAGE,
  checkEnds,
  defaultSocketPath,
  loadTopology,
  parseDomainRef,
  parsePartitionAddresses,
  partitionAddrs,
  resolvePartitionAddresses,
  withPartitionAddresses,
  partitionOf,
  runPartitionsLocal,
  servePartitionsLocal,
  table,
  type DomainRef,
  type PartitionDeath,
  type PartitionsRunResult,
  type Topology,
} from '@xsim/toolstack';
import { LOG_BOOLEANS, intFlag, logLevelFlag, parseArgs, type Parsed } from '../args.ts';
import { dropLines, nicTable, switchTable } from './run-tables.ts';
import { pluginArgs } from './run-flags.ts';
import { DEFAULT_COUNT, workloadComplete, workloadText } from './run-workload.ts';

const VALUED = [
  'partitions',
  'vxlan-base-port',
  'partition-address',
  'workload',
  'count',
  'size',
  'window',
  'from',
  'to',
  'port',
  'src-port',
  'pcpus',
  'socket',
  'plugin',
  'plugin-args',
  'bytes',
];
const BOOLEANS = ['j', 'json', 'serve', 'idle', ...LOG_BOOLEANS];

/** The exit status of a run during which a partition died (1: the workload fell short; an error: 1 too). */
export const EXIT_PARTITION_DIED = 3;

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

type PartitionsWorkload = 'udp-stream' | 'ping' | 'tcp-stream' | 'tcp-rr';
const PARTITIONS_WORKLOADS: readonly PartitionsWorkload[] = ['udp-stream', 'ping', 'tcp-stream', 'tcp-rr'];

interface PartitionsOptions {
  topo: Topology;
  workload: PartitionsWorkload;
  /** tcp-stream: octets in all (iperf3 -n). */
  bytes?: number;
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
  /** --serve --idle: the control socket's path. */
  serve?: string;
  /** --plugin a,b [--plugin-args JSON]: loaded in every partition once all are up. */
  plugins?: { name: string; args?: Record<string, unknown> }[];
  p: Parsed;
}

async function options(argv: string[]): Promise<PartitionsOptions> {
  const p = parseArgs(argv, VALUED, BOOLEANS, ['partition-address']);
  const mode = String(p.flags.get('partitions'));
  if (mode !== 'local')
    throw new Error(
      `--partitions takes "local" (one process per partition on this machine), got ${JSON.stringify(mode)}; on several machines run --partition NAME on each`,
    );
  if (!p.positional[0]) throw new Error('--partitions local runs the partitions of a topology file: give the file (its "partitions" name them)');
  const file = await loadTopology(p.positional[0]);
  const basePort = intFlag(p, 'vxlan-base-port', DEFAULT_VXLAN_BASE_PORT, 1, 65535);
  partitionAddrs(file, { basePort }); // a topology without partitions, or ports past 65535, are refused here
  // --partition-address over the file's, DNS names resolved here: each partition cuts the topology it is given.
  const topo = await resolvePartitionAddresses(withPartitionAddresses(file, parsePartitionAddresses(file, p.lists?.get('partition-address') ?? []), basePort));
  const w = String(p.flags.get('workload') ?? 'udp-stream') as PartitionsWorkload;
  if (!PARTITIONS_WORKLOADS.includes(w)) throw new Error(`--partitions local runs --workload ${PARTITIONS_WORKLOADS.join(', ')}, got ${JSON.stringify(w)}`);
  if (p.flags.has('bytes') && w !== 'tcp-stream') throw new Error(`--bytes goes with --workload tcp-stream, not ${w}`);
  if (p.flags.has('bytes') && p.flags.has('count')) throw new Error('--bytes and --count both size the stream: give one (iperf3 -n N, or N writes)');
  if (p.flags.has('idle') && !p.flags.has('serve')) throw new Error('--idle goes with --serve');
  if (p.flags.has('socket') && !p.flags.has('serve')) throw new Error('--socket goes with --serve');
  if (p.flags.has('serve') && !p.flags.has('idle'))
    throw new Error('--partitions local --serve serves idle only: add --idle (rounds of streams across partitions are not built yet)');
  const serve = p.flags.has('serve') ? String(p.flags.get('socket') ?? defaultSocketPath()) : undefined;
  // Serving, no stream runs: the ends are whatever the topology has (none needed).
  const ends = serve ? { from: { host: topo.hosts[0].name, domain: 'dom0' }, to: { host: topo.hosts[0].name, domain: 'dom0' } } : defaultEnds(topo);
  const o: PartitionsOptions = {
    topo,
    workload: w,
    from: p.flags.has('from') ? parseDomainRef(String(p.flags.get('from'))) : ends.from,
    to: p.flags.has('to') ? parseDomainRef(String(p.flags.get('to'))) : ends.to,
    count: intFlag(p, 'count', DEFAULT_COUNT[w], 1, 100_000_000),
    ...(p.flags.has('bytes') ? { bytes: intFlag(p, 'bytes', 0, 1, 2 ** 40) } : {}),
    size: w === 'ping' ? intFlag(p, 'size', 56, 16, 9000) : intFlag(p, 'size', 1500, 64, 9018),
    window: intFlag(p, 'window', 256, 0, 1_000_000),
    ...(p.flags.has('port') ? { port: intFlag(p, 'port', 0, 1, 65535) } : {}),
    ...(p.flags.has('src-port') ? { srcPort: intFlag(p, 'src-port', 0, 1, 65535) } : {}),
    basePort,
    ...(p.flags.has('pcpus') ? { pcpus: intFlag(p, 'pcpus', 1, 1, 256) } : {}),
    json: p.flags.has('j') || p.flags.has('json'),
    ...(serve !== undefined ? { serve } : {}),
    p,
  };
  if (p.flags.has('plugin')) {
    if (serve) throw new Error('--plugin goes with a workload; serving, load it with xsim plugin load NAME --socket PATH');
    const args = pluginArgs(p);
    o.plugins = String(p.flags.get('plugin'))
      .split(',')
      .map((name) => ({ name, ...(args ? { args } : {}) }));
  } else pluginArgs(p); // --plugin-args alone is refused there
  if (!serve) checkEnds(topo, o, w === 'ping' ? o.size + 42 : o.size);
  return o;
}

function report(r: PartitionsRunResult): string {
  const parts: string[] = [];
  const p = r.ping;
  parts.push(table(['ping', 'probes', 'lost', 'min us', 'p50 us', 'p99 us', 'max us'], [['ICMP echo', p.count, p.lost, p.minUs, p.p50Us, p.p99Us, p.maxUs]]));
  if (r.tcpStream || r.tcpRr) parts.push(workloadText(r)!);
  const s = r.stream;
  if (s)
    parts.push(
      table(
        ['stream', 'sent', 'delivered', 'lost', 'dup', 'reord', 'Mpps', 'Gbit/s'],
        [[`${s.from} -> ${s.to} @${s.frameSize}B`, s.sent, s.delivered, s.lost, s.duplicated, s.reordered, s.pps / 1e6, s.gbps]],
      ),
    );
  const a = r.account;
  if (a && !a.dead?.length)
    parts.push(
      `conservation across ${r.partitions.length} partitions: sent ${a.sent} = delivered ${a.delivered} + counted drops ${a.dropped} + in UDP between partitions ${a.inUdp}` +
        `${a.copies ? ` (flood copies ${a.copies})` : ''}: ${a.conserved ? 'conserved' : 'NOT conserved'}`,
    );
  else if (a) {
    const dead = a.dead!.join(', ');
    parts.push(
      `conservation across the ${r.partitions.length - a.dead!.length} partitions still running (${dead} died: its counters are missing): ` +
        `sent ${a.sent} = delivered ${a.delivered} + counted drops ${a.dropped} + in UDP between partitions ${a.inUdp}` +
        ` + sent into ${dead} and not come back (at most) ${a.intoDead ?? 0}${a.copies ? ` (flood copies ${a.copies})` : ''}: ${a.conserved ? 'conserved' : 'NOT conserved'}`,
    );
  }
  parts.push(nicTable(r.stats));
  const sw = switchTable(r.stats);
  if (sw !== null) parts.push(sw);
  const drops = dropLines(r.stats);
  if (drops.length) parts.push(['drop counters (non-zero):', ...drops.map((d) => `  ${d}`)].join('\n'));
  return parts.join('\n\n');
}

/** A partition's death, and the wires each other partition set down for it. */
function deathLine(d: PartitionDeath): string {
  const sides = Object.entries(d.wiresDown)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([p, w]) =>
      'error' in w ? `${p} could not: ${w.error}` : w.length ? `on ${p} ${w.map((x) => `${x.path} (VNI ${x.vni})`).join(', ')}` : `${p} had no wire to it`,
    );
  return `xsim: ${d.message}; its wires are down as a failed host's: ${sides.join('; ') || 'no partition left running'}`;
}

/** The run's exit status: 0 when the workload all happened (and the stream was conserved across the partitions). */
function ok(o: PartitionsOptions, r: PartitionsRunResult): boolean {
  if (o.workload === 'ping') return r.ping.count + r.ping.lost === o.count && r.ping.lost === 0;
  if (o.workload === 'tcp-stream' || o.workload === 'tcp-rr') return workloadComplete(r, o.count);
  return r.account?.conserved === true && r.stream?.sent === o.count;
}

export async function partitionsCommand(argv: string[]): Promise<number> {
  const o = await options(argv);
  const level = logLevelFlag(o.p);
  // Progress lines: on stdout, or with -j on stderr (stdout is the JSON's; a script still learns the partitions' pids).
  const note = (s: string) => {
    if (level !== 'warn') (o.json ? process.stderr : process.stdout).write(s + '\n');
  };
  if (o.serve !== undefined) return serveCommand(o, o.serve, note);
  const ends = `${o.from.host}/${o.from.domain} (${partitionOf(o.topo, o.from.host)}) -> ${o.to.host}/${o.to.domain} (${partitionOf(o.topo, o.to.host)})`;
  const own = Object.values(o.topo.partitions!).some((s) => s.address !== undefined || s.port !== undefined);
  const where = own
    ? Object.entries(partitionAddrs(o.topo, { basePort: o.basePort }))
        .map(([n, a]) => `${n} ${a}`)
        .join(', ')
    : `127.0.0.1:${o.basePort}+`;
  note(`xsim: topology "${o.topo.name}": ${Object.keys(o.topo.partitions!).length} partitions, one process each; tunnels on ${where}`);
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
      onDeath: (d) => process.stderr.write(deathLine(d) + '\n'),
      onPlugin: (name, loaded) =>
        note(`xsim: plugin ${name} loaded in every partition (${loaded.map((l) => `${l.partition}: ${l.hosts} host(s)`).join(', ')}); both ends accelerated`),
      onPing: (ping) => {
        if (o.workload !== 'ping') note(`xsim: ping done (${ping.count} answered, ${ping.lost} lost, p50 ${ping.p50Us.toFixed(0)} us); streaming`);
      },
      onUp: (up) => {
        for (const u of up) note(`xsim: partition ${u.name} up (pid ${u.pid}): ${u.domains} domains, all vifs Connected in ${u.ms.toFixed(0)} ms`);
        const what = {
          ping: `${o.count} ICMP echo probes`,
          'udp-stream': `ping, then ${o.count} frames of ${o.size} bytes`,
          'tcp-stream': `ping, then a TCP stream of ${o.bytes ?? o.count * TCP_MESSAGE} octets`,
          'tcp-rr': `ping, then ${o.count} TCP request/response transactions`,
        }[o.workload];
        note(`xsim: ${what} ${ends} ...`);
      },
    });
    if (o.json) process.stdout.write(JSON.stringify({ topology: o.topo.name, workload: o.workload, ...r }) + '\n');
    else process.stdout.write('\n' + report(r) + '\n');
    if (r.dead.length) {
      process.stderr.write(`xsim: ${r.dead.map((d) => d.message).join('; ')} during the run (exit status ${EXIT_PARTITION_DIED})\n`);
      return EXIT_PARTITION_DIED;
    }
    return ok(o, r) ? 0 : 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** --partitions local --serve --idle: every partition up, one control socket here, until xsim shutdown or Ctrl-C. */
async function serveCommand(o: PartitionsOptions, socket: string, note: (s: string) => void): Promise<number> {
  const level = logLevelFlag(o.p);
  const abort = new AbortController();
  const stop = () => abort.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const r = await servePartitionsLocal(o.topo, {
      basePort: o.basePort,
      ...(o.pcpus !== undefined ? { pcpus: o.pcpus } : {}),
      logLevel: level === 'debug' ? 'debug' : 'warn',
      socket,
      signal: abort.signal,
      onLine: (name, line) => process.stderr.write(`[${name}] ${line}\n`),
      onSpawn: (name, pid) => note(`xsim: partition ${name} starting (pid ${pid})`),
      onDeath: (d) => process.stderr.write(deathLine(d) + '\n'),
      onUp: (run) => {
        for (const p of run.procs)
          note(`xsim: partition ${p.name} up (pid ${p.pid}): ${p.up!.domains} domains, all vifs Connected in ${p.up!.ms.toFixed(0)} ms`);
      },
      // Always said (as run --serve says it): a script waits for this line.
      onServing: (s) =>
        process.stdout.write(
          `xsim: serving on ${s.path} for every partition (xsim domain|mgmtdev|dev|plugin ... --socket ${s.path}, each op forwarded to the partition holding its host); Ctrl-C or xsim shutdown to stop\n`,
        ),
    });
    if (r.dead.length) {
      process.stderr.write(`xsim: ${r.dead.map((d) => d.message).join('; ')} while serving (exit status ${EXIT_PARTITION_DIED})\n`);
      return EXIT_PARTITION_DIED;
    }
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
