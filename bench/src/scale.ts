/**
 * How the simulation scales with the number of domains: for each point, a
 * generated rack (hosts under top-of-rack switches under a spine) is booted
 * in a fresh process, and that process reports
 *
 *   - boot: wall time from Simulation.start() to every vif Connected;
 *   - RSS: the process's peak resident set (every thread: pCPUs, NIC, main);
 *   - idle CPU: process CPU time (user + system, all threads) over an idle
 *     window after boot, divided by the window: cores used doing nothing;
 *   - a stream between the first guest of the first host and the last guest
 *     of the last host (across the spine when there is one), conserved,
 *     after an unmeasured one of up to 5000 frames.
 *
 * A fresh process per point, so one point's heap and JIT do not weigh on the
 * next. Schema "xsim-scale/1" (ScaleJson below).
 */
import { runMeta, type RunMeta } from '@xsim/toolstack';
import type { LogLevel } from '@xsim/hypervisor';
import { spawn } from 'node:child_process';
import { availableParallelism, cpus } from 'node:os';
import { Simulation } from '@xsim/toolstack';
import { runStream } from '@xsim/toolstack';
import { streamAccount } from '@xsim/toolstack';
import { rackTopology } from '@xsim/toolstack';

export const SCALE_SCHEMA = 'xsim-scale/1';

export interface ScalePoint {
  domUs: number;
  hosts: number;
  domains: number;
  switches: number;
  pcpus: number;
  bootMs: number;
  maxRssMb: number;
  idleCores: number;
  idleSeconds: number;
  stream: { from: string; to: string; frames: number; delivered: number; conserved: boolean; pps: number; gbps: number } | null;
  shutdownMs: number;
}

export interface ScaleJson {
  schema: typeof SCALE_SCHEMA;
  date: string;
  /** What produced it: xsim version, git commit, command line, Node, CPU, pCPUs. */
  meta: RunMeta;
  machine: { cores: number; node: string; cpu: string };
  points: ScalePoint[];
}

export interface ScaleOptions {
  domUs: number[];
  idleSeconds: number;
  streamFrames: number;
  pcpus?: number;
  progress?: (line: string) => void;
  /** The simulations' log level (default warn: their warnings and errors, not their chatter). */
  logLevel?: LogLevel;
}

/** The rack a point is measured on: 16 domUs per host (fewer with fewer than 32 domUs), at least 2 hosts. */
export function scaleShape(domUs: number): { hosts: number; domUsPerHost: number } {
  const hosts = Math.min(64, Math.max(2, Math.round(domUs / 16)));
  const per = Math.ceil(domUs / hosts);
  if (per > 200) throw new RangeError(`${domUs} domUs need more than 200 per host on 64 hosts`);
  return { hosts, domUsPerHost: per };
}

/** Measure one point in this process (what the child of runScale does). */
export async function measurePoint(domUs: number, o: Omit<ScaleOptions, 'domUs' | 'progress'>): Promise<ScalePoint> {
  const shape = scaleShape(domUs);
  const topo = rackTopology({ name: `scale-${domUs}`, ...shape });
  const t0 = performance.now();
  const sim = await Simulation.start(topo, { pcpus: o.pcpus, connectTimeoutMs: 120_000, logLevel: o.logLevel ?? 'warn' });
  const bootMs = performance.now() - t0;
  let stream: ScalePoint['stream'] = null;
  let idleCores = 0;
  let shutdownMs = 0;
  try {
    // Let the last handshakes' stragglers settle, then measure doing nothing.
    await sim.sleep(1000);
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    await sim.sleep(o.idleSeconds * 1000);
    const c1 = process.cpuUsage(c0);
    idleCores = (c1.user + c1.system) / 1000 / (performance.now() - w0);
    if (o.streamFrames > 0) {
      const first = topo.hosts[0];
      const last = topo.hosts[topo.hosts.length - 1];
      const from = { host: first.name, domain: first.domUs[0].name };
      const to = { host: last.name, domain: last.domUs[last.domUs.length - 1].name };
      // One unmeasured stream first: the figure is the path's, not the JIT's first compile.
      await runStream(sim, { from, to, count: Math.min(5000, o.streamFrames), frameSize: 1500, window: 256 });
      const before = await sim.stats();
      const r = await runStream(sim, { from, to, count: o.streamFrames, frameSize: 1500, window: 256 });
      const after = await sim.stats();
      stream = {
        from: r.from,
        to: r.to,
        frames: r.count,
        delivered: r.delivered,
        conserved: streamAccount(before, after, r).conserved,
        pps: r.pps,
        gbps: r.gbps,
      };
    }
  } finally {
    const s0 = performance.now();
    await sim.shutdown();
    shutdownMs = performance.now() - s0;
  }
  return {
    domUs: shape.hosts * shape.domUsPerHost,
    hosts: shape.hosts,
    domains: shape.hosts * (shape.domUsPerHost + 1),
    switches: topo.switches.length,
    pcpus: sim.runtime.pcpus,
    bootMs,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    idleCores,
    idleSeconds: o.idleSeconds,
    stream,
    shutdownMs,
  };
}

/** Every point, each in a child process running `xsim scale --point N`. */
export async function runScale(o: ScaleOptions): Promise<ScaleJson> {
  const points: ScalePoint[] = [];
  for (const n of o.domUs) {
    o.progress?.(`scale: ${n} domUs (${scaleShape(n).hosts} hosts) ...`);
    const args = [
      ...process.execArgv,
      process.argv[1],
      'scale',
      '--point',
      String(n),
      '--idle-seconds',
      String(o.idleSeconds),
      '--stream-frames',
      String(o.streamFrames),
    ];
    if (o.pcpus) args.push('--pcpus', String(o.pcpus));
    points.push(JSON.parse(await child(process.execPath, args)) as ScalePoint);
  }
  return {
    schema: SCALE_SCHEMA,
    date: new Date().toISOString(),
    meta: runMeta(o.pcpus ?? availableParallelism()),
    machine: { cores: availableParallelism(), node: process.version, cpu: cpus()[0]?.model ?? 'unknown' },
    points,
  };
}

function child(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0
        ? resolve(out.trim().split('\n').pop() ?? '')
        : reject(new Error(`scale point failed (exit ${code}): ${err.trim().split('\n').slice(-3).join(' | ')}`)),
    );
  });
}
