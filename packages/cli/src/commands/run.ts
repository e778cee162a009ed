/**
 * `xsim run [topology.json]`: bring the topology up, ping and stream UDP
 * between two domUs (by default on different hosts: the slow path netfront →
 * netback → bridge → NIC → wire → NIC → bridge → netback → netfront), and
 * print what every layer counted; or, with --serve, keep it up behind its
 * control socket. Parses, calls the toolstack, prints.
 */
import {
  RUN_SCHEMA,
  Simulation,
  checkEnds,
  defaultEnds,
  defaultSocketPath,
  loadTopology,
  defaultTopology,
  parseDomainRef,
  runMeta,
  runScenario,
  serveControl,
  serveXenstores,
  pingAcross,
  streamRounds,
  table,
  type DomainRef,
  type IntervalSample,
  type Round,
  type CaptureSummary,
  type RunJson,
  type ScenarioResult,
  type StreamResult,
  type TcpIntervalSample,
  type PartitionNet,
  type Topology,
  type TraceSummary,
} from '@xsim/toolstack';
import type { LogLevel } from '@xsim/hypervisor';
import { LOG_BOOLEANS, RUNTIME_BOOLEANS, RUNTIME_VALUED, intFlag, logLevelFlag, numFlag, parseArgs, runtimeFlags } from '../args.ts';
import { domainTable, dropLines, intervalHeader, intervalLine, nicTable, switchTable, vifTable } from './run-tables.ts';
import {
  DEFAULT_COUNT,
  WORKLOAD_VALUED,
  tcpIntervalHeader,
  tcpIntervalLine,
  workloadComplete,
  workloadFlags,
  workloadLine,
  workloadText,
  type WorkloadOptions,
} from './run-workload.ts';
import { PARTITION_BOOLEANS, PARTITION_REPEATABLE, PARTITION_VALUED, partitionFlags, partitionRemote, partitionTopo } from './run-partition.ts';
import { partitionsCommand, wantsPartitions } from './run-partitions.ts';
import { nicsFlag, pluginArgs, ports } from './run-flags.ts';

const VALUED = [
  'count',
  'size',
  'from',
  'to',
  'window',
  'plugin',
  'plugin-args',
  'nics',
  'port',
  'src-port',
  'socket',
  'interval',
  'capture',
  'capture-file',
  'snaplen',
  'trace',
  'trace-sample',
  ...WORKLOAD_VALUED,
  ...RUNTIME_VALUED,
  ...PARTITION_VALUED,
];
const BOOLEANS = ['j', 'json', 'p', 'pretty', 'serve', 'idle', ...RUNTIME_BOOLEANS, ...LOG_BOOLEANS, ...PARTITION_BOOLEANS];

interface RunOptions {
  topo: Topology;
  /** What runs after the ping (--workload and its flags). */
  wl: WorkloadOptions;
  from: DomainRef;
  to: DomainRef;
  count: number;
  size: number;
  window: number;
  interval: number | undefined;
  capture: string[] | undefined;
  captureFile: string;
  snaplen: number;
  traceFile: string | undefined;
  traceSample: number;
  json: boolean;
  pretty: boolean;
  serve: { socket: string; idle: boolean } | undefined;
  plugin: string | undefined;
  /** The plugin's load arguments (--plugin-args JSON): checked against its manifest's args schema at load. */
  pluginArgs: Record<string, unknown> | undefined;
  /** The stream's UDP ports (--port, --src-port); absent: the scenario's defaults. */
  ports: { port?: number; srcPort?: number };
  logLevel: LogLevel;
  where: ReturnType<typeof runtimeFlags>;
  /** --partition with a receiver in another partition: its IP (a ping crosses to it). */
  remoteTo?: string;
  /** --partition: where its tunnels are. */
  partitionLine?: string;
  /** --partition: where it takes migrations, and the other partitions' hosts. */
  partitionNet?: PartitionNet;
}

/** Every option checked before anything starts: a frame the path cannot carry would only fail at the sender. */
export async function runOptions(argv: string[]): Promise<RunOptions> {
  const p = parseArgs(argv, VALUED, BOOLEANS, PARTITION_REPEATABLE);
  const file = p.positional[0] ? await loadTopology(p.positional[0]) : defaultTopology({ nics: nicsFlag(p) });
  // --partition NAME: this process runs that partition of the file's topology (run-partition.ts).
  const part = partitionFlags(p, file);
  const cut = part ? await partitionTopo(part) : undefined;
  const topo = cut?.topo ?? file;
  const str = (k: string) => (typeof p.flags.get(k) === 'string' ? String(p.flags.get(k)) : undefined);
  // tcpdump's -w and -s: capture at these tap points into one pcapng file.
  const capture = p.flags.has('capture') ? String(p.flags.get('capture')).split(',') : undefined;
  if (!capture && (p.flags.has('capture-file') || p.flags.has('snaplen')))
    throw new Error('--capture-file and --snaplen go with --capture SPEC[,SPEC...] (which tap points to capture at)');
  // Chrome / Perfetto trace events of every thread, and every Nth frame's journey.
  const traceFile = str('trace');
  if (!traceFile && p.flags.has('trace-sample')) throw new Error('--trace-sample goes with --trace FILE');
  const ends = defaultEnds(topo);
  const wl = workloadFlags(p);
  const o: RunOptions = {
    topo,
    wl,
    from: p.flags.has('from') ? parseDomainRef(String(p.flags.get('from'))) : ends.from,
    to: p.flags.has('to') ? parseDomainRef(String(p.flags.get('to'))) : ends.to,
    count: intFlag(p, 'count', DEFAULT_COUNT[wl.workload], 1, 100_000_000),
    // ping's --size is its data octets (56 as Linux ping's -s); the others' a frame's whole length.
    size: wl.workload === 'ping' ? intFlag(p, 'size', 56, 16, 9000) : intFlag(p, 'size', 1500, 64, 9018),
    // Flow-controlled by default (a 256-frame credit window, as the benchmark runs): an unpaced
    // UDP blast (--window 0) mostly measures how fast the receiver's queues overflow.
    window: intFlag(p, 'window', 256, 0, 1_000_000),
    // iperf3's -i: a line per interval while the stream runs (seconds, on the simulation's clock).
    interval: p.flags.has('interval') ? numFlag(p, 'interval', 1, 0.01, 3600) : undefined,
    capture,
    captureFile: str('capture-file') ?? 'xsim.pcapng',
    snaplen: intFlag(p, 'snaplen', 262_144, 14, 262_144),
    traceFile,
    traceSample: intFlag(p, 'trace-sample', 1024, 1, 1 << 30),
    json: p.flags.has('j') || p.flags.has('json') || p.flags.has('p') || p.flags.has('pretty'),
    pretty: p.flags.has('p') || p.flags.has('pretty'),
    serve: p.flags.has('serve') ? { socket: str('socket') ?? defaultSocketPath(), idle: p.flags.has('idle') } : undefined,
    plugin: str('plugin'),
    pluginArgs: pluginArgs(p),
    ports: ports(p),
    logLevel: logLevelFlag(p),
    where: runtimeFlags(p),
  };
  o.remoteTo = part ? partitionRemote(part, { from: o.from, to: o.to }, wl.workload) : undefined;
  o.partitionLine = cut?.line;
  o.partitionNet = cut?.net;
  // A receiver in another partition is checked in the whole topology (both ends exist, the frame fits their MTUs).
  checkEnds(o.remoteTo ? file : topo, { from: o.from, to: o.to }, wl.workload === 'ping' ? o.size + 42 : o.size);
  return o;
}

function topologyLine(topo: Topology): string {
  const domUs = topo.hosts.reduce((a, h) => a + h.domUs.length, 0);
  return topo.hosts.length <= 4
    ? `xsim: topology "${topo.name}": ${topo.hosts.map((h) => `${h.name} (dom0 + ${h.domUs.map((d) => d.name).join(', ')})`).join(', ')}`
    : `xsim: topology "${topo.name}": ${topo.hosts.length} hosts (${topo.hosts[0].name} .. ${topo.hosts[topo.hosts.length - 1].name}), ${domUs} domUs, ${topo.switches.length} switches, ${topo.wires.length} wires`;
}

export async function runCommand(argv: string[]): Promise<number> {
  // --partitions local: a process per partition, driven from here (run-partitions.ts).
  if (wantsPartitions(argv)) return partitionsCommand(argv);
  const o = await runOptions(argv);
  const say = (s: string) => {
    if (!o.json) process.stdout.write(s + '\n');
  };
  // Progress lines ("xsim: ..."): left out with --quiet, which keeps the results.
  const note = (s: string) => {
    if (o.logLevel !== 'warn') say(s);
  };
  note(topologyLine(o.topo));
  if (o.partitionLine) note(o.partitionLine);
  const t0 = performance.now();
  const sim = await Simulation.start(o.topo, {
    ...o.where,
    logLevel: o.logLevel,
    ...(o.partitionNet ? { partition: o.partitionNet } : {}),
    ...(o.traceFile ? { trace: { file: o.traceFile, sample: o.traceSample } } : {}),
  });
  const th = sim.threads();
  // A deterministic run's output must not depend on the machine: no wall-clock figures in it.
  const det = sim.runtime.kind === 'deterministic';
  note(`xsim: ${sim.domains.length} domains + NIC fabric up, all vifs Connected${det ? '' : ` in ${(performance.now() - t0).toFixed(0)} ms`}`);
  note(`xsim: ${th.model}; ${th.placement}`);
  if (det) note('xsim: times and rates below are on the virtual clock (a fixed cost per busy round), not measurements');
  try {
    // --plugin a,b: each on the hosts whose NIC it drives (a topology may mix NIC models).
    for (const name of o.plugin ? o.plugin.split(',') : []) {
      const on = await sim.loadPlugin(name, o.pluginArgs ? { args: o.pluginArgs } : {});
      const all = on.length === sim.topology.hosts.length;
      note(
        `xsim: plugin ${name} loaded on ${all ? 'every host' : `${on.length} of ${sim.topology.hosts.length} hosts (those whose NIC it drives)`}${o.pluginArgs ? ` with ${JSON.stringify(o.pluginArgs)}` : ''}`,
      );
    }
    if (o.capture) {
      const c = await sim.captureStart(o.capture, { file: o.captureFile, snaplen: o.snaplen });
      note(`xsim: capturing at ${c.interfaces.length} tap point(s) into ${c.file}: ${c.interfaces.join(', ')}`);
    }
    if (o.traceFile) note(`xsim: tracing every thread since boot into ${o.traceFile} (and the journey of every ${o.traceSample}th frame)`);
    if (o.serve)
      return await serve(sim, o.serve.socket, { from: o.from, to: o.to, count: o.count, size: o.size, window: o.window, idle: o.serve.idle, ...o.ports });
    return await scenario(sim, o, det, say, note);
  } finally {
    await sim.shutdown();
  }
}

/** Ping, run the workload, then print (or write as JSON) what every layer counted; 1 if it did not all happen. */
async function scenario(sim: Simulation, o: RunOptions, det: boolean, say: (s: string) => void, note: (s: string) => void): Promise<number> {
  const { from, to, count, size, wl } = o;
  const ends = `${from.host}/${from.domain} -> ${to.host}/${to.domain}`;
  const intervals = o.interval !== undefined;
  if (intervals && (wl.workload === 'udp-stream' || wl.workload === 'tcp-stream')) say(wl.workload === 'udp-stream' ? intervalHeader() : tcpIntervalHeader());
  const res: ScenarioResult = o.remoteTo
    ? await pingAcross(sim, from, o.remoteTo, count, size).then(async (ping) => ({ ping, intervals: [], stats: await sim.stats() }))
    : await runScenario(sim, {
        from,
        to,
        ...o.ports,
        workload: wl.workload,
        count,
        frameSize: size,
        window: o.window,
        ...(wl.bytes !== undefined ? { bytes: wl.bytes } : {}),
        flows: wl.flows,
        writeSize: wl.writeSize,
        reqSize: wl.reqSize,
        rspSize: wl.rspSize,
        onPing: (ping) => {
          if (wl.workload !== 'ping')
            note(`xsim: ping ${ends}: p50 ${ping.p50Us.toFixed(0)} us, p99 ${ping.p99Us.toFixed(0)} us (${ping.count} probes, ${ping.lost} lost)`);
          note(workloadLine(wl, count, size, ends));
        },
        ...(intervals ? { interval: { ms: o.interval! * 1000, each: (x: IntervalSample) => say(intervalLine(x)) } } : {}),
        ...(intervals ? { tcpInterval: { ms: o.interval! * 1000, each: (x: TcpIntervalSample) => say(tcpIntervalLine(x)) } } : {}),
      });
  const captured = o.capture ? await sim.captureStop() : undefined;
  const traced = o.traceFile ? await sim.traceStop() : undefined;
  const ok = workloadComplete(res, count);
  if (o.json) {
    const result: RunJson = {
      schema: RUN_SCHEMA,
      meta: runMeta(det ? null : sim.runtime.pcpus, { deterministic: det }),
      topology: o.topo.name,
      workload: wl.workload,
      ping: res.ping,
      ...(res.stream ? { stream: res.stream } : {}),
      ...(res.tcpStream ? { tcpStream: res.tcpStream } : {}),
      ...(res.tcpRr ? { tcpRr: res.tcpRr } : {}),
      ...(intervals ? { intervals: res.intervals } : {}),
      ...(captured ? { capture: captured } : {}),
      ...(traced ? { trace: traced } : {}),
      stats: res.stats,
    };
    process.stdout.write(JSON.stringify(result, null, o.pretty ? 2 : 0) + '\n');
    return ok ? 0 : 1;
  }
  say('');
  say(resultText(res.stats, res.stream ?? null, workloadText(res), captured, traced));
  // udp-stream's report says what was lost (its exit status, as ever, only with -j); the others fail when they did not all happen.
  return ok || wl.workload === 'udp-stream' ? 0 : 1;
}

/** The human report: the stream, every layer's table, the non-zero drop counters, the capture and trace files. */
function resultText(
  stats: Record<string, unknown>,
  r: StreamResult | null,
  other: string | null,
  captured: CaptureSummary | undefined,
  traced: TraceSummary | undefined,
): string {
  const parts: string[] = [];
  if (other !== null) parts.push(other);
  if (r) {
    parts.push(
      table(
        ['stream', 'sent', 'delivered', 'lost', 'dup', 'reord', 'Mpps', 'Gbit/s'],
        [[`${r.from} -> ${r.to} @${r.frameSize}B`, r.sent, r.delivered, r.lost, r.duplicated, r.reordered, r.pps / 1e6, r.gbps]],
      ),
    );
    // A sender whose stream stopped moving gives up (netstack's STREAM_GIVE_UP_MS): the rest was never sent.
    if (r.sent < r.count)
      parts.push(`the sender gave up after ${r.sent} of ${r.count} frames: its stream stopped moving (no credit back, or its vif took no frame)`);
  }
  for (const t of [domainTable(stats), vifTable(stats), nicTable(stats), switchTable(stats)]) if (t !== null) parts.push(t);
  const drops = dropLines(stats);
  if (drops.length) parts.push(['drop counters (non-zero):', ...drops.map((d) => `  ${d}`)].join('\n'));
  if (captured) {
    parts.push(
      `capture ${captured.file} (${captured.bytes} octets; read it with tshark -r or Wireshark):\n` +
        table(
          ['tap point', 'frames', 'of them drops', 'not kept (buffer full)'],
          captured.interfaces.map((f) => [f.name, f.packets, f.drops, f.lost]),
        ),
    );
  }
  if (traced) {
    parts.push(
      `trace ${traced.file}: ${traced.events} events, ${traced.frames} frame journeys (${traced.hops} hops)${traced.dropped ? `, ${traced.dropped} events not kept` : ''}; open it in the Perfetto UI (ui.perfetto.dev, "Open trace file")`,
    );
  }
  return parts.join('\n\n');
}

/**
 * Keep the simulation up and serve its control socket (xsim mgmtdev|dev|plugin)
 * until Ctrl-C or `xsim shutdown`. Unless --idle, stream between the two ends
 * in rounds of `count` frames, one line per round, so a plugin loaded or
 * unloaded from another terminal shows in the rates as it happens.
 */
async function serve(
  sim: Simulation,
  socket: string,
  o: { from: DomainRef; to: DomainRef; count: number; size: number; window: number; idle: boolean; port?: number; srcPort?: number },
): Promise<number> {
  let stop: () => void = () => {};
  const stopped = new Promise<void>((r) => (stop = r));
  let stopping = false;
  // Shutdown abandons the round in flight at once (a stalled stream is not waited for); the simulation's shutdown ends it.
  const abort = new AbortController();
  const requestStop = () => {
    stopping = true;
    stop();
    abort.abort(new Error('shutting down'));
  };
  const server = await serveControl(sim, socket, {
    shutdown: async () => {
      requestStop();
      return 'shutting down';
    },
  });
  // Each host's xenstore over Xen's wire protocol, for the real xenstore-utils.
  const xenstores = await serveXenstores(sim.hosts, `${socket}.xs`);
  process.once('SIGINT', requestStop);
  process.once('SIGTERM', requestStop);
  process.stdout.write(`xsim: serving on ${socket} (xsim domain|mgmtdev|dev|plugin ... --socket ${socket}); Ctrl-C or xsim shutdown to stop\n`);
  const first = Object.entries(xenstores.paths)[0];
  if (first) process.stdout.write(`xsim: xenstore of each host at ${socket}.xs/HOST (XENSTORED_PATH=${first[1]} xenstore-ls /local/domain)\n`);
  let failed = false;
  try {
    if (o.idle) await stopped;
    else
      await streamRounds(
        sim,
        { from: o.from, to: o.to, port: o.port, srcPort: o.srcPort, count: o.count, frameSize: o.size, window: o.window, signal: abort.signal },
        () => stopping,
        (x) => process.stdout.write(roundLine(x) + '\n'),
      );
  } catch (e) {
    failed = true;
    process.stderr.write(`xsim: traffic stopped: ${e instanceof Error ? e.message : String(e)}\n`);
  } finally {
    process.off('SIGINT', requestStop);
    process.off('SIGTERM', requestStop);
    await server.close();
    await xenstores.close();
  }
  return failed ? 1 : 0;
}

/** A line of the serve loop: a round (and how it fell short), a failed round, or an end that moved, went or came back. */
export function roundLine(x: Round): string {
  const whose = (end: 'from' | 'to') => (end === 'from' ? 'the sender' : 'the receiver');
  const t = `[${x.at.toFixed(2)} s]`;
  switch (x.kind) {
    case 'round': {
      const r = x.stream;
      const short = x.shortfall ? `; ${x.shortfall}` : '';
      return `round ${x.round} ${t}: ${r.sent} sent, ${r.delivered} delivered, ${r.lost} lost (${x.dropped} counted drops), ${(r.pps / 1e6).toFixed(3)} Mpps, ${r.gbps.toFixed(2)} Gbit/s, sender's accelerator: ${x.plugin ?? 'none'}${short}`;
    }
    case 'failed':
      return `round ${x.round} ${t}: failed: ${x.error}; next round in ${(x.retryMs / 1000).toFixed(2)} s`;
    case 'moved':
      return `xsim: ${t} ${whose(x.end)} ${x.was} is now ${x.now}; the rounds follow it`;
    case 'gone':
      return `xsim: ${t} ${whose(x.end)} ${x.was} is gone; no stream until it is back (the control socket still serves)`;
    case 'back':
      return `xsim: ${t} ${whose(x.end)} is back as ${x.now}; streaming again`;
  }
}
