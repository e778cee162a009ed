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
  streamRounds,
  table,
  type DomainRef,
  type IntervalSample,
  type RunJson,
} from '@xsim/toolstack';
import { LOG_BOOLEANS, RUNTIME_BOOLEANS, RUNTIME_VALUED, intFlag, logLevelFlag, numFlag, parseArgs, runtimeFlags } from '../args.ts';
import { domainTable, dropLines, intervalHeader, intervalLine, nicTable, switchTable, vifTable } from './run-tables.ts';

const VALUED = [
  'count',
  'size',
  'from',
  'to',
  'window',
  'plugin',
  'socket',
  'interval',
  'capture',
  'capture-file',
  'snaplen',
  'trace',
  'trace-sample',
  ...RUNTIME_VALUED,
];
const BOOLEANS = ['j', 'json', 'p', 'pretty', 'serve', 'idle', ...RUNTIME_BOOLEANS, ...LOG_BOOLEANS];

export async function runCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, VALUED, BOOLEANS);
  const where = runtimeFlags(p);
  const logLevel = logLevelFlag(p);
  const topo = p.positional[0] ? await loadTopology(p.positional[0]) : defaultTopology();
  const count = intFlag(p, 'count', 200_000, 1, 100_000_000);
  const size = intFlag(p, 'size', 1500, 64, 9018);
  // Flow-controlled by default (a 256-frame credit window, as the benchmark runs): an unpaced
  // UDP blast (--window 0) mostly measures how fast the receiver's queues overflow.
  const window = intFlag(p, 'window', 256, 0, 1_000_000);
  // iperf3's -i: a line per interval while the stream runs (seconds, on the simulation's clock).
  const interval = p.flags.has('interval') ? numFlag(p, 'interval', 1, 0.01, 3600) : undefined;
  // tcpdump's -w and -s: capture at these tap points into one pcapng file.
  const capture = p.flags.has('capture') ? String(p.flags.get('capture')).split(',') : undefined;
  if (!capture && (p.flags.has('capture-file') || p.flags.has('snaplen')))
    throw new Error('--capture-file and --snaplen go with --capture SPEC[,SPEC...] (which tap points to capture at)');
  const captureFile = typeof p.flags.get('capture-file') === 'string' ? String(p.flags.get('capture-file')) : 'xsim.pcapng';
  const snaplen = intFlag(p, 'snaplen', 262_144, 14, 262_144);
  // Chrome / Perfetto trace events of every thread, and every Nth frame's journey.
  const traceFile = typeof p.flags.get('trace') === 'string' ? String(p.flags.get('trace')) : undefined;
  if (!traceFile && p.flags.has('trace-sample')) throw new Error('--trace-sample goes with --trace FILE');
  const traceSample = intFlag(p, 'trace-sample', 1024, 1, 1 << 30);
  const ends = defaultEnds(topo);
  const from = p.flags.has('from') ? parseDomainRef(String(p.flags.get('from'))) : ends.from;
  const to = p.flags.has('to') ? parseDomainRef(String(p.flags.get('to'))) : ends.to;
  // Checked before anything starts: a frame the path cannot carry would only fail at the sender.
  checkEnds(topo, { from, to }, size);
  const json = p.flags.has('j') || p.flags.has('json') || p.flags.has('p') || p.flags.has('pretty');
  const pretty = p.flags.has('p') || p.flags.has('pretty');
  const say = (s: string) => {
    if (!json) process.stdout.write(s + '\n');
  };
  // Progress lines ("xsim: ..."): left out with --quiet, which keeps the results.
  const note = (s: string) => {
    if (logLevel !== 'warn') say(s);
  };

  const domUs = topo.hosts.reduce((a, h) => a + h.domUs.length, 0);
  note(
    topo.hosts.length <= 4
      ? `xsim: topology "${topo.name}": ${topo.hosts.map((h) => `${h.name} (dom0 + ${h.domUs.map((d) => d.name).join(', ')})`).join(', ')}`
      : `xsim: topology "${topo.name}": ${topo.hosts.length} hosts (${topo.hosts[0].name} .. ${topo.hosts[topo.hosts.length - 1].name}), ${domUs} domUs, ${topo.switches.length} switches, ${topo.wires.length} wires`,
  );
  const t0 = performance.now();
  const sim = await Simulation.start(topo, { ...where, logLevel, ...(traceFile ? { trace: { file: traceFile, sample: traceSample } } : {}) });
  const th = sim.threads();
  // A deterministic run's output must not depend on the machine: no wall-clock figures in it.
  const det = sim.runtime.kind === 'deterministic';
  note(`xsim: ${sim.domains.length} domains + NIC fabric up, all vifs Connected${det ? '' : ` in ${(performance.now() - t0).toFixed(0)} ms`}`);
  note(`xsim: ${th.model}; ${th.placement}`);
  if (det) note('xsim: times and rates below are on the virtual clock (a fixed cost per busy round), not measurements');
  try {
    const plugin = p.flags.get('plugin');
    if (typeof plugin === 'string') {
      await sim.loadPlugin(plugin);
      note(`xsim: plugin ${plugin} loaded on every host`);
    }
    if (capture) {
      const c = await sim.captureStart(capture, { file: captureFile, snaplen });
      note(`xsim: capturing at ${c.interfaces.length} tap point(s) into ${c.file}: ${c.interfaces.join(', ')}`);
    }
    if (traceFile) note(`xsim: tracing every thread since boot into ${traceFile} (and the journey of every ${traceSample}th frame)`);
    if (p.flags.has('serve')) {
      const socket = typeof p.flags.get('socket') === 'string' ? String(p.flags.get('socket')) : defaultSocketPath();
      return await serve(sim, socket, { from, to, count, size, window, idle: p.flags.has('idle') });
    }
    if (interval !== undefined) say(intervalHeader());
    const res = await runScenario(sim, {
      from,
      to,
      count,
      frameSize: size,
      window,
      onPing: (ping) => {
        note(
          `xsim: ping ${from.host}/${from.domain} -> ${to.host}/${to.domain}: p50 ${ping.p50Us.toFixed(0)} us, p99 ${ping.p99Us.toFixed(0)} us (${ping.count} probes, ${ping.lost} lost)`,
        );
        note(`xsim: streaming ${count} frames of ${size} bytes ${from.host}/${from.domain} -> ${to.host}/${to.domain} ...`);
      },
      ...(interval !== undefined ? { interval: { ms: interval * 1000, each: (x: IntervalSample) => say(intervalLine(x)) } } : {}),
    });
    const { ping, stream: r, intervals, stats } = res;
    const captured = capture ? await sim.captureStop() : undefined;
    const traced = traceFile ? await sim.traceStop() : undefined;
    if (json) {
      const result: RunJson = {
        schema: RUN_SCHEMA,
        meta: runMeta(det ? null : sim.runtime.pcpus, { deterministic: det }),
        topology: topo.name,
        ping,
        stream: r,
        ...(interval !== undefined ? { intervals } : {}),
        ...(captured ? { capture: captured } : {}),
        ...(traced ? { trace: traced } : {}),
        stats,
      };
      process.stdout.write(JSON.stringify(result, null, pretty ? 2 : 0) + '\n');
      return r.delivered + r.lost === r.count ? 0 : 1;
    }
    say('');
    say(
      table(
        ['stream', 'sent', 'delivered', 'lost', 'dup', 'reord', 'Mpps', 'Gbit/s'],
        [[`${r.from} -> ${r.to} @${r.frameSize}B`, r.sent, r.delivered, r.lost, r.duplicated, r.reordered, r.pps / 1e6, r.gbps]],
      ),
    );
    for (const t of [domainTable(stats), vifTable(stats), nicTable(stats), switchTable(stats)]) {
      if (t === null) continue;
      say('');
      say(t);
    }
    const drops = dropLines(stats);
    if (drops.length) {
      say('');
      say('drop counters (non-zero):');
      for (const d of drops) say(`  ${d}`);
    }
    if (captured) {
      say('');
      say(`capture ${captured.file} (${captured.bytes} octets; read it with tshark -r or Wireshark):`);
      say(
        table(
          ['tap point', 'frames', 'of them drops', 'not kept (buffer full)'],
          captured.interfaces.map((f) => [f.name, f.packets, f.drops, f.lost]),
        ),
      );
    }
    if (traced) {
      say('');
      say(
        `trace ${traced.file}: ${traced.events} events, ${traced.frames} frame journeys (${traced.hops} hops)${traced.dropped ? `, ${traced.dropped} events not kept` : ''}; open it in the Perfetto UI (ui.perfetto.dev, "Open trace file")`,
      );
    }
    return 0;
  } finally {
    await sim.shutdown();
  }
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
  o: { from: DomainRef; to: DomainRef; count: number; size: number; window: number; idle: boolean },
): Promise<number> {
  let stop: () => void = () => {};
  const stopped = new Promise<void>((r) => (stop = r));
  let stopping = false;
  const requestStop = () => {
    stopping = true;
    stop();
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
    await streamRounds(
      sim,
      { from: o.from, to: o.to, count: o.count, frameSize: o.size, window: o.window },
      () => stopping,
      (x) => {
        const r = x.stream;
        process.stdout.write(
          `round ${x.round} [${x.at.toFixed(2)} s]: ${r.sent} sent, ${r.delivered} delivered, ${r.lost} lost (${x.dropped} counted drops), ${(r.pps / 1e6).toFixed(3)} Mpps, ${r.gbps.toFixed(2)} Gbit/s, sender's accelerator: ${x.plugin ?? 'none'}\n`,
        );
      },
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
