/**
 * `xsim run [topology.json]`: bring the topology up, stream UDP between two
 * domUs on different hosts (the slow path: netfront → netback → bridge → NIC →
 * wire → NIC → bridge → netback → netfront), and print what every layer counted.
 */
import { RUN_SCHEMA, type RunJson } from '@xsim/toolstack';
import { runMeta } from '@xsim/toolstack';
import { defaultTopology, loadTopology, type Topology } from '@xsim/toolstack';
import { Simulation, type DomainRef } from '@xsim/toolstack';
import { runPing, runStream, type IntervalSample } from '@xsim/toolstack';
import { LOG_BOOLEANS, RUNTIME_BOOLEANS, RUNTIME_VALUED, intFlag, logLevelFlag, numFlag, parseArgs, runtimeFlags } from '../args.ts';
import { table } from '@xsim/toolstack';
import { dropCounters, streamAccount } from '@xsim/toolstack';
import { defaultSocketPath, serveControl } from '@xsim/toolstack';
import { serveXenstores } from '@xsim/toolstack';

function ref(s: string): DomainRef {
  const [host, domain] = s.split('/');
  if (!host || !domain) throw new Error(`expected HOST/DOMAIN, got "${s}"`);
  return { host, domain };
}

function defaultEnds(t: Topology): { from: DomainRef; to: DomainRef } {
  const a = t.hosts[0];
  const b = t.hosts.find((h, i) => i > 0 && h.domUs.length > 0) ?? a;
  const fromD = a.domUs[0];
  const toD = b === a ? a.domUs[1] : b.domUs[0];
  if (!fromD || !toD) throw new Error('the topology needs two domUs to stream between');
  return { from: { host: a.name, domain: fromD.name }, to: { host: b.name, domain: toD.name } };
}

export async function runCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, ['count', 'size', 'from', 'to', 'window', 'plugin', 'socket', 'interval', 'capture', 'capture-file', 'snaplen', 'trace', 'trace-sample', ...RUNTIME_VALUED], ['j', 'json', 'p', 'pretty', 'serve', 'idle', ...RUNTIME_BOOLEANS, ...LOG_BOOLEANS]);
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
  if (!capture && (p.flags.has('capture-file') || p.flags.has('snaplen'))) throw new Error('--capture-file and --snaplen go with --capture SPEC[,SPEC...] (which tap points to capture at)');
  const captureFile = typeof p.flags.get('capture-file') === 'string' ? String(p.flags.get('capture-file')) : 'xsim.pcapng';
  const snaplen = intFlag(p, 'snaplen', 262_144, 14, 262_144);
  // Chrome / Perfetto trace events of every thread, and every Nth frame's journey.
  const traceFile = typeof p.flags.get('trace') === 'string' ? String(p.flags.get('trace')) : undefined;
  if (!traceFile && p.flags.has('trace-sample')) throw new Error('--trace-sample goes with --trace FILE');
  const traceSample = intFlag(p, 'trace-sample', 1024, 1, 1 << 30);
  const ends = defaultEnds(topo);
  const from = p.flags.has('from') ? ref(String(p.flags.get('from'))) : ends.from;
  const to = p.flags.has('to') ? ref(String(p.flags.get('to'))) : ends.to;
  if (from.host === to.host && from.domain === to.domain) throw new Error(`--from and --to are both ${from.host}/${from.domain}: a stream needs two different domains`);
  for (const end of [from, to]) {
    const host = topo.hosts.find((h) => h.name === end.host);
    if (!host) throw new Error(`no host "${end.host}" in topology "${topo.name}" (hosts: ${topo.hosts.map((h) => h.name).join(', ')})`);
    if (end.domain !== 'dom0' && !host.domUs.some((d) => d.name === end.domain)) throw new Error(`no domain "${end.domain}" on ${end.host} (domUs: ${host.domUs.map((d) => d.name).join(', ')})`);
    // Checked before anything starts: a frame the path cannot carry would only fail at the sender.
    if (size > host.nic.mtu + 14) throw new Error(`--size ${size} exceeds ${end.host}'s MTU ${host.nic.mtu} + 14-byte Ethernet header`);
  }
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
    const ping = await runPing(sim, from, to, 200);
    note(`xsim: ping ${from.host}/${from.domain} -> ${to.host}/${to.domain}: p50 ${ping.p50Us.toFixed(0)} us, p99 ${ping.p99Us.toFixed(0)} us (${ping.count} probes, ${ping.lost} lost)`);
    note(`xsim: streaming ${count} frames of ${size} bytes ${from.host}/${from.domain} -> ${to.host}/${to.domain} ...`);
    const intervals: IntervalSample[] = [];
    if (interval !== undefined) say(intervalHeader());
    const r = await runStream(sim, {
      from,
      to,
      count,
      frameSize: size,
      window,
      ...(interval !== undefined
        ? {
            interval: {
              ms: interval * 1000,
              each: (x: IntervalSample) => {
                intervals.push(x);
                say(intervalLine(x));
              },
            },
          }
        : {}),
    });
    const stats = await sim.stats();
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
        stats: stats as Record<string, unknown>,
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
    say('');
    say(domainTable(stats));
    say('');
    say(vifTable(stats));
    say('');
    say(nicTable(stats));
    const sw = switchTable(stats);
    if (sw) {
      say('');
      say(sw);
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
      say(table(['tap point', 'frames', 'of them drops', 'not kept (buffer full)'], captured.interfaces.map((f) => [f.name, f.packets, f.drops, f.lost])));
    }
    if (traced) {
      say('');
      say(`trace ${traced.file}: ${traced.events} events, ${traced.frames} frame journeys (${traced.hops} hops)${traced.dropped ? `, ${traced.dropped} events not kept` : ''}; open it in the Perfetto UI (ui.perfetto.dev, "Open trace file")`);
    }
    return 0;
  } finally {
    await sim.shutdown();
  }
}

type Json = Record<string, unknown>;

/**
 * Keep the simulation up and serve its control socket (xsim mgmtdev|dev|plugin)
 * until Ctrl-C or `xsim shutdown`. Unless --idle, stream between the two ends
 * in rounds of `count` frames, one line per round, so a plugin loaded or
 * unloaded from another terminal shows in the rates as it happens.
 */
async function serve(sim: Simulation, socket: string, o: { from: DomainRef; to: DomainRef; count: number; size: number; window: number; idle: boolean }): Promise<number> {
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
    const served = sim.clock.now();
    if (o.idle) await stopped;
    for (let round = 1; !stopping; round++) {
      const before = await sim.stats();
      const r = await runStream(sim, { from: o.from, to: o.to, count: o.count, frameSize: o.size, window: o.window, srcPort: 42000 });
      const after = await sim.stats();
      const { dropped } = streamAccount(before, after, r);
      const fe = ((after[`${o.from.host}/${o.from.domain}`] as Json)?.vifs as Json[] | undefined)?.[0]?.accel as { plugin?: string | null } | undefined;
      process.stdout.write(
        `round ${round} [${((sim.clock.now() - served) / 1000).toFixed(2)} s]: ${r.sent} sent, ${r.delivered} delivered, ${r.lost} lost (${dropped} counted drops), ${(r.pps / 1e6).toFixed(3)} Mpps, ${r.gbps.toFixed(2)} Gbit/s, sender's accelerator: ${fe?.plugin ?? 'none'}\n`,
      );
    }
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

function intervalHeader(): string {
  return '[ interval s ]     frames   Gbit/s   lost';
}

/** One line per interval, as iperf3 prints them. */
function intervalLine(x: IntervalSample): string {
  const span = `${x.start.toFixed(2).padStart(6)}-${x.end.toFixed(2).padStart(6)}`;
  return `[${span} ] ${String(x.frames).padStart(10)} ${x.gbps.toFixed(3).padStart(8)} ${String(x.lost).padStart(6)}`;
}

/** Rows a big topology prints: the busy ones (and a line saying how many idle ones were left out). */
const QUIET_ABOVE = 16;
function busyRows(rows: (string | number)[][], busy: (r: (string | number)[]) => boolean): { rows: (string | number)[][]; note: string } {
  if (rows.length <= QUIET_ABOVE) return { rows, note: '' };
  const kept = rows.filter(busy);
  return { rows: kept, note: kept.length < rows.length ? `\n(${rows.length - kept.length} idle rows not shown; -j gives every counter)` : '' };
}

function domainTable(stats: Json): string {
  const rows: (string | number)[][] = [];
  for (const [key, v] of Object.entries(stats)) {
    if (key === 'fabric') continue;
    const s = v as Json;
    const st = ((s.endpoint as Json)?.stack ?? {}) as Json;
    const core = (s.core ?? {}) as Json;
    rows.push([key, Number(st.txFrames ?? 0), Number(st.rxFrames ?? 0), Number(st.rxUdp ?? 0), Number(st.rxArp ?? 0), core.pcpu === undefined ? '-' : Number(core.pcpu), Number(core.busyTurns ?? 0), Number(core.runMs ?? 0)]);
  }
  const b = busyRows(rows, (r) => Number(r[1]) > 1 || Number(r[2]) > 1);
  return table(['domain', 'stack tx', 'stack rx', 'rx udp', 'rx arp', 'pCPU', 'busy turns', 'vCPU ms'], b.rows) + b.note;
}

function vifTable(stats: Json): string {
  const rows: (string | number)[][] = [];
  for (const [key, v] of Object.entries(stats)) {
    if (!key.endsWith('/dom0')) continue;
    const s = v as Json;
    for (const [name, vs] of Object.entries((s.vifs ?? {}) as Json)) {
      const x = vs as Json;
      rows.push([`${key.split('/')[0]}/${name}`, Number(x.state), Number(x.txPackets), Number(x.rxPackets), Number(x.notifiesSent), Number(x.disconnects)]);
    }
    const b = s.bridge as Json;
    rows.push([`${key.split('/')[0]}/bridge`, '', Number(b.forwarded), Number(b.flooded), '', '']);
    const u = s.uplink as Json | null;
    if (u) rows.push([`${key.split('/')[0]}/uplink`, '', Number(u.txPackets), Number(u.rxPackets), '', '']);
  }
  const q = busyRows(rows, (r) => Number(r[2]) > 1 || Number(r[3]) > 1 || (r[1] !== '' && Number(r[1]) !== 4));
  return table(['dom0 port (netback)', 'state', 'from guest / fwd / tx', 'to guest / flood / rx', 'notifies', 'disconnects'], q.rows) + q.note;
}

function nicTable(stats: Json): string {
  const f = stats.fabric as { nics: Json[] };
  const rows = f.nics.map((n) => [String(n.name), Number(n.wireTx), Number(n.wireRx), Number(n.rxDefault), Number(n.filters)]);
  const q = busyRows(rows, (r) => Number(r[1]) > 1 || Number(r[2]) > 1);
  return table(['NIC', 'wire tx', 'wire rx', 'to VI 0', 'filters'], q.rows) + q.note;
}

function switchTable(stats: Json): string | null {
  const f = stats.fabric as { switches?: Json[] };
  if (!f.switches?.length) return null;
  const rows = f.switches.map((s) => [String(s.name), Number(s.swForwarded), Number(s.swFlooded), Number(s.macs), (s.ports as Json[]).filter((x) => x.wired).length]);
  return table(['switch', 'forwarded', 'flooded', 'MACs learnt', 'ports wired'], rows);
}

/** Non-zero drop counters; in a big topology, one line per counter name with its total and where. */
function dropLines(stats: Json): string[] {
  const nz = [...dropCounters(stats)].filter(([, v]) => v > 0);
  if (nz.length <= QUIET_ABOVE) return nz.map(([k, v]) => `${k} = ${v}`);
  const by = new Map<string, { total: number; where: string[] }>();
  for (const [k, v] of nz) {
    const [where, ...rest] = k.split('.');
    const name = rest.join('.');
    const e = by.get(name) ?? { total: 0, where: [] };
    e.total += v;
    e.where.push(where);
    by.set(name, e);
  }
  return [...by].map(([name, e]) => `${name} = ${e.total} over ${e.where.length} place${e.where.length === 1 ? '' : 's'}${e.where.length <= 3 ? ` (${e.where.join(', ')})` : ''}`);
}
