/**
 * `xsim bench`: the domU-to-domU throughput matrix (paths x frame sizes x
 * placements), microbenchmarks, a readable table, ratios measured within the
 * run, and a JSON file (schema in bench/schema.ts) that a later run can be
 * compared against with --compare.
 */
import { writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DEFAULT_BENCH, QUICK_BENCH, runBench, type BenchOptions } from '@xsim/bench';
import { MAX_PAIRS, runCaptureCost, runPairBench, runQueueBench } from '@xsim/bench';
import { OFFLOAD_MODES, TCP_PATHS, runTcpBench, type TcpBenchOptions } from '@xsim/bench';
import { benchCharts } from '@xsim/bench';
import { runMicro } from '@xsim/bench';
import { PATHS, validateBenchJson, type BenchPath, type Placement } from '@xsim/bench';
import { LOG_BOOLEANS, intFlag, logLevelFlag, numFlag, parseArgs, progressLines, simulationLogLevel } from '../args.ts';
import { compareResults, compareText, loadComparable, report, saveJson } from '@xsim/bench';

function list<T extends string | number>(v: string | true | undefined, parse: (s: string) => T, allowed?: readonly T[]): T[] | undefined {
  if (typeof v !== 'string') return undefined;
  const out = v.split(',').map((s) => parse(s.trim()));
  if (allowed) for (const x of out) if (!allowed.includes(x)) throw new Error(`"${x}" is not one of ${allowed.join(', ')}`);
  return out;
}

function progressBar(done: number, total: number, what: string): void {
  if (!process.stderr.isTTY) {
    process.stderr.write(`[${done}/${total}] ${what}\n`);
    return;
  }
  const w = 30;
  const fill = Math.round((done / Math.max(total, 1)) * w);
  process.stderr.write(`\r[${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${done}/${total} ${what.padEnd(28)}`);
  if (done === total) process.stderr.write('\n');
}

/** A --pairs entry: how many guest pairs stream at once (host-a and host-b have four domUs each in that topology). */
function pairCount(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAIRS) throw new Error(`pair count "${s}" must be 1..${MAX_PAIRS}`);
  return n;
}

/** A --queues entry: how many queues a1's and b1's vifs ask for. */
function queueCount(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`queue count "${s}" must be 1..64`);
  return n;
}

/** The bench's options from its flags (--quick's defaults, or the full matrix's). */
function benchOptions(p: ReturnType<typeof parseArgs>, level: ReturnType<typeof logLevelFlag>): BenchOptions {
  const base = p.flags.has('quick') ? QUICK_BENCH : DEFAULT_BENCH;
  return {
    ...base,
    sizes:
      list(p.flags.get('sizes'), (s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 64 || n > 9014) throw new Error(`frame size "${s}" must be 64..9014`);
        return n;
      }) ?? base.sizes,
    paths: list(p.flags.get('paths'), (s) => s as BenchPath, PATHS) ?? base.paths,
    placements: list(p.flags.get('placements'), (s) => s as Placement, ['cross', 'same'] as const) ?? base.placements,
    reps: intFlag(p, 'reps', base.reps, 1, 50),
    runs: intFlag(p, 'runs', 1, 1, 20),
    pairs: list(p.flags.get('pairs'), pairCount) ?? base.pairs,
    frames: p.flags.has('frames') ? intFlag(p, 'frames', base.frames, 100, 10_000_000) : base.frames,
    repSeconds: numFlag(p, 'seconds', base.repSeconds, 0.05, 60),
    pcpus: p.flags.has('pcpus') ? intFlag(p, 'pcpus', 2, 1, 256) : undefined,
    // A line rate on the bench's wires, as a topology's "gbps" (the same bounds).
    wireGbps: p.flags.has('wire-gbps') ? numFlag(p, 'wire-gbps', 10, 0.001, 400) : undefined,
    progress: level === 'warn' ? undefined : progressBar,
    logLevel: simulationLogLevel(level),
  };
}

/**
 * The TCP section's options, or undefined when it is not measured: on in a
 * full bench (--no-tcp leaves it out), off with --quick unless --tcp.
 */
function tcpOptions(p: ReturnType<typeof parseArgs>, o: BenchOptions): TcpBenchOptions | undefined {
  if (p.flags.has('no-tcp') || (o.quick && !p.flags.has('tcp'))) return undefined;
  return {
    paths: list(p.flags.get('tcp-paths'), (s) => s as (typeof TCP_PATHS)[number], TCP_PATHS) ?? [...TCP_PATHS],
    placements: o.placements,
    offloads: list(p.flags.get('tcp-offloads'), (s) => s as (typeof OFFLOAD_MODES)[number], OFFLOAD_MODES) ?? [...OFFLOAD_MODES],
    reps: o.reps,
    // --quick: fixed, small; otherwise sized per cell from the warm-up, as the matrix's frames.
    bytes: intFlag(p, 'tcp-bytes', o.quick ? 1_000_000 : 0, 1_000, 4_000_000_000),
    rrCount: intFlag(p, 'tcp-rr-count', o.quick ? 200 : 0, 10, 10_000_000),
    frames: o.frames,
    repSeconds: o.repSeconds,
    verify: !p.flags.has('no-tcp-verify'),
    pcpus: o.pcpus,
    wireGbps: o.wireGbps,
    logLevel: o.logLevel,
  };
}

/** The sections measured after the matrix, each in simulations of its own: multi-queue vifs, concurrent pairs, TCP, capture's cost. */
async function sections(
  p: ReturnType<typeof parseArgs>,
  o: BenchOptions,
  result: Awaited<ReturnType<typeof runBench>>,
  x: { queues: number[] | undefined; tcp: TcpBenchOptions | undefined },
  info: (line: string) => void,
): Promise<void> {
  const { queues, tcp } = x;
  if (queues?.length) {
    info(`bench: multi-queue vifs (${queues.join(', ')} queues)...`);
    const { sizes, reps, frames, repSeconds, pcpus, logLevel } = o;
    result.queues = await runQueueBench({ sizes, queues, reps, frames, repSeconds, pcpus, logLevel, progress: (w) => info(`bench: ${w}`) });
  }
  if (o.pairs?.length) {
    info(`bench: concurrent guest pairs (${o.pairs.join(', ')})...`);
    const { pairs, reps, frames, repSeconds, pcpus, wireGbps, logLevel } = o;
    result.pairs = await runPairBench({ pairs, reps, frames, repSeconds, pcpus, wireGbps, logLevel, progress: (w) => info(`bench: ${w}`) });
  }
  if (tcp) {
    info(`bench: TCP (${tcp.paths.join(', ')}; offloads ${tcp.offloads.join(', ')})...`);
    result.tcp = await runTcpBench({ ...tcp, progress: (w) => info(`bench: ${w}`) });
  }
  if (!p.flags.has('no-capture')) {
    info('bench: capture cost (off and on, paired)...');
    const cap = await runCaptureCost({
      paths: o.paths,
      reps: o.reps,
      frames: o.frames,
      repSeconds: o.repSeconds,
      pcpus: o.pcpus,
      logLevel: o.logLevel,
      progress: (w) => info(`bench: ${w}`),
    });
    if (cap.length) result.capture = cap;
  }
}

export async function benchCommand(argv: string[]): Promise<number> {
  const p = parseArgs(
    argv,
    [
      'sizes',
      'paths',
      'placements',
      'reps',
      'frames',
      'seconds',
      'out',
      'compare',
      'pcpus',
      'queues',
      'wire-gbps',
      'runs',
      'pairs',
      'tcp-bytes',
      'tcp-rr-count',
      'tcp-paths',
      'tcp-offloads',
    ],
    ['quick', 'micro', 'no-micro', 'capture', 'no-capture', 'tcp', 'no-tcp', 'no-tcp-verify', 'j', 'json', ...LOG_BOOLEANS],
  );
  const level = logLevelFlag(p);
  const info = progressLines(level);
  const o = benchOptions(p, level);
  const json = p.flags.has('j') || p.flags.has('json');
  // The file to compare against is checked before minutes of measuring, not after.
  const cmpFile = typeof p.flags.get('compare') === 'string' ? String(p.flags.get('compare')) : undefined;
  const old = cmpFile ? loadComparable(cmpFile, o) : undefined;
  const out = typeof p.flags.get('out') === 'string' ? String(p.flags.get('out')) : o.quick ? undefined : 'bench/results/latest.json';

  const queues = list(p.flags.get('queues'), queueCount);
  const tcp = tcpOptions(p, o);
  info(
    `bench: sizes ${o.sizes.join(',')}, paths ${o.paths.join(',')}, ${o.placements.join('+')}, ${o.reps} rep(s)${(o.runs ?? 1) > 1 ? `, ${o.runs} runs` : ''}${o.wireGbps ? `, wires at ${o.wireGbps} Gbit/s` : ''}`,
  );
  const result = await runBench(o);
  await sections(p, o, result, { queues, tcp }, info);
  const wantMicro = p.flags.has('micro') || (!o.quick && !p.flags.has('no-micro'));
  if (wantMicro) {
    info('bench: microbenchmarks...');
    result.micro = await runMicro({ quick: o.quick, folder: out ? dirname(out) : undefined });
  }
  const problems = validateBenchJson(result);
  if (problems.length) throw new Error(`benchmark output does not match its schema: ${problems.join('; ')}`);
  if (out) saveJson(out, result);
  const cmp = old && cmpFile ? compareResults(old, result, cmpFile) : undefined;
  // Charts next to the JSON: latest.json -> latest-throughput.svg, latest-cpu.svg, ...
  const charts: string[] = [];
  if (out) {
    for (const [name, svg] of Object.entries(await benchCharts(result, cmp))) {
      const file = `${out.replace(/\.json$/, '')}-${name}.svg`;
      writeFileSync(file, svg);
      charts.push(file);
    }
  }
  if (json) {
    // Nothing but JSON on stdout: the comparison goes inside it.
    process.stdout.write(JSON.stringify(cmp ? { ...result, compare: cmp } : result) + '\n');
  } else {
    process.stdout.write(report(result) + '\n');
    if (out) process.stdout.write(`\nsaved ${out}${charts.length ? ` and its charts: ${charts.join(', ')}` : ''}\n`);
    if (cmp) process.stdout.write('\n' + compareText(cmp) + '\n');
  }
  const cells = [...(result.runs ?? [{ cells: result.cells }]).flatMap((x) => x.cells), ...(result.queues ?? []), ...(result.pairs?.cells ?? [])];
  // A TCP stream that did not complete (or had corrupt octets) fails the run as a frame not conserved does.
  const tcpOk = (result.tcp?.cells ?? []).every((c) => c.reps.every((r) => r.ok));
  return cells.every((c) => c.reps.every((r) => r.conserved)) && tcpOk ? 0 : 1;
}
