/**
 * `xsim bench`: the domU-to-domU throughput matrix (paths x frame sizes x
 * placements), microbenchmarks, a readable table, ratios measured within the
 * run, and a JSON file (schema in bench/schema.ts) that a later run can be
 * compared against with --compare.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DEFAULT_BENCH, QUICK_BENCH, median, runBench, type BenchOptions } from '../bench/matrix.ts';
import { runCaptureCost } from '../bench/capture-cost.ts';
import { benchCharts } from '../bench/charts.ts';
import { runMicro } from '../bench/micro.ts';
import { ComparableSchema, PATHS, READABLE_SCHEMAS, schemaProblems, validateBenchJson, type BenchJson, type BenchPath, type Comparable, type Placement } from '../bench/schema.ts';
import { LOG_BOOLEANS, intFlag, logLevelFlag, numFlag, parseArgs, progressLines, simulationLogLevel } from '../args.ts';
import { saveJson } from '../save.ts';
import { fmtNum, table } from '../format.ts';

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

export async function benchCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, ['sizes', 'paths', 'placements', 'reps', 'frames', 'seconds', 'out', 'compare', 'pcpus'], ['quick', 'micro', 'no-micro', 'capture', 'no-capture', 'j', 'json', ...LOG_BOOLEANS]);
  const level = logLevelFlag(p);
  const info = progressLines(level);
  const base = p.flags.has('quick') ? QUICK_BENCH : DEFAULT_BENCH;
  const o: BenchOptions = {
    ...base,
    sizes: list(p.flags.get('sizes'), (s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 64 || n > 9014) throw new Error(`frame size "${s}" must be 64..9014`);
      return n;
    }) ?? base.sizes,
    paths: list(p.flags.get('paths'), (s) => s as BenchPath, PATHS) ?? base.paths,
    placements: list(p.flags.get('placements'), (s) => s as Placement, ['cross', 'same'] as const) ?? base.placements,
    reps: intFlag(p, 'reps', base.reps, 1, 50),
    frames: p.flags.has('frames') ? intFlag(p, 'frames', base.frames, 100, 10_000_000) : base.frames,
    repSeconds: numFlag(p, 'seconds', base.repSeconds, 0.05, 60),
    pcpus: p.flags.has('pcpus') ? intFlag(p, 'pcpus', 2, 1, 256) : undefined,
    progress: level === 'warn' ? undefined : progressBar,
    logLevel: simulationLogLevel(level),
  };
  const json = p.flags.has('j') || p.flags.has('json');
  // The file to compare against is checked before minutes of measuring, not after.
  const cmpFile = typeof p.flags.get('compare') === 'string' ? String(p.flags.get('compare')) : undefined;
  const old = cmpFile ? loadComparable(cmpFile, o) : undefined;
  const out = typeof p.flags.get('out') === 'string' ? String(p.flags.get('out')) : o.quick ? undefined : 'bench/results/latest.json';

  info(`bench: sizes ${o.sizes.join(',')}, paths ${o.paths.join(',')}, ${o.placements.join('+')}, ${o.reps} rep(s)`);
  const result = await runBench(o);
  if (!p.flags.has('no-capture')) {
    info('bench: capture cost (off and on, paired)...');
    const cap = await runCaptureCost({ paths: o.paths, reps: o.reps, frames: o.frames, repSeconds: o.repSeconds, pcpus: o.pcpus, logLevel: o.logLevel, progress: (w) => info(`bench: ${w}`) });
    if (cap.length) result.capture = cap;
  }
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
  return result.cells.every((c) => c.reps.every((r) => r.conserved)) ? 0 : 1;
}

export function report(r: BenchJson): string {
  const rows = r.cells.map((c) => [
    c.path,
    c.placement,
    c.size,
    c.median.pps / 1e6,
    c.median.gbps,
    `${fmtNum(c.spread.minGbps)}..${fmtNum(c.spread.maxGbps)}`,
    `${(c.lossRate * 100).toFixed(2)}%`,
    c.rtt ? Math.round(c.rtt.p50Us) : '-',
    c.rtt ? Math.round(c.rtt.p99Us) : '-',
    c.cpuUsPerFrame !== undefined ? c.cpuUsPerFrame : '-',
    c.reps.every((x) => x.conserved) ? 'yes' : 'NO',
  ]);
  const parts = [table(['path', 'placement', 'bytes', 'Mpps', 'Gbit/s', 'spread', 'loss', 'p50 us', 'p99 us', 'cpu us/frame', 'conserved'], rows)];
  parts.push(
    '',
    table(
      ['bytes', 'placement', 'vnic/unaccel', 'vnic/dom0', 'unaccel/raw', 'vnic/raw', 'null/raw', 'dom0/raw'],
      r.ratios.map((x) => [x.size, x.placement, x.accelOverUnaccel ?? '-', x.accelOverDom0 ?? '-', x.overRaw.unaccel ?? '-', x.overRaw.vnic ?? '-', x.overRaw.null ?? '-', x.overRaw.dom0 ?? '-']),
    ),
  );
  const awake = r.cells.filter((c) => c.awake && Object.keys(c.awake).length > 0);
  if (awake.length) {
    parts.push('', `awake share of each thread during the stream (not blocked in Atomics.wait; sum against ${r.machine.cores} cores), and of each busy domain's vCPU (in its turns):`);
    const shares = (m: Record<string, number>) => {
      const w = Object.entries(m).sort((x, y) => y[1] - x[1]);
      return `sum ${w.reduce((a, [, v]) => a + v, 0).toFixed(2)}: ${w.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`;
    };
    for (const c of awake) {
      parts.push(`  ${`${c.path} ${c.placement} ${c.size}B`.padEnd(20)} threads ${shares(c.awake!)}`);
      if (c.vcpu && Object.keys(c.vcpu).length) parts.push(`  ${''.padEnd(20)} vCPUs   ${shares(c.vcpu)}`);
    }
  }
  parts.push('', `threads (${r.machine.cores} cores):`);
  for (const [path, t] of Object.entries(r.threads)) parts.push(`  ${path}: ${t.busy.join(', ')} — ${t.threads} threads (${t.pcpus} pCPUs${t.threads > t.pcpus ? ' + NIC' : ''}); ${t.note}`);
  if (r.capture?.length) {
    parts.push('', `packet capture's cost (goodput with capture on / off, paired per repetition; ${r.capture[0].note}):`);
    parts.push(
      table(
        ['path', 'bytes', 'frames/stream', 'captured at', 'tap points', 'snap length', 'off Gbit/s', 'on Gbit/s', 'on/off', 'spread', 'records/stream', 'not kept'],
        r.capture.map((c) => [c.path, c.size, c.frames ?? '-', c.spec, c.taps, c.snaplen >= 65_535 ? 'whole' : c.snaplen, median(c.reps.map((x) => x.offGbps)), median(c.reps.map((x) => x.onGbps)), c.ratio, `${fmtNum(c.spread.min)}..${fmtNum(c.spread.max)}`, Math.round(median(c.reps.map((x) => x.records))), c.reps.reduce((n, x) => n + x.lost, 0)]),
      ),
    );
  }
  if (r.micro) parts.push('', table(['microbenchmark', 'ops/s', '±%'], r.micro.map((m) => [m.name, Math.round(m.opsPerSec), m.margin])));
  return parts.join('\n');
}

export interface CompareRow {
  path: BenchPath;
  placement: Placement;
  size: number;
  old: { gbps: number; min: number; max: number };
  now: { gbps: number; min: number; max: number };
  /** (new - old) / old, percent. */
  changePct: number;
  /** The new median lies outside the old repetitions' min..max. */
  outside: boolean;
}

export interface Comparison {
  file: string;
  date: string;
  schema: string;
  rows: CompareRow[];
}

/**
 * Read and check a file to compare against, before any measuring: it must be
 * JSON, a bench result of a readable schema, and share at least one cell with
 * what this run will measure. Every failure names the file and what is wrong.
 */
export function loadComparable(file: string, plan?: { sizes: number[]; paths: readonly string[]; placements: readonly string[] }): Comparable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`--compare ${file}: cannot read it: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`--compare ${file}: not JSON: ${(e as Error).message}`);
  }
  const problems = schemaProblems(ComparableSchema, v, 5);
  if (problems.length) throw new Error(`--compare ${file}: not a bench result xsim can compare (schemas ${READABLE_SCHEMAS.join(', ')}): ${problems.join('; ')}`);
  const old = v as Comparable;
  if (plan) {
    const shared = old.cells.filter((c) => plan.sizes.includes(c.size) && plan.paths.includes(c.path) && plan.placements.includes(c.placement));
    if (shared.length === 0) {
      const has = (k: 'size' | 'path' | 'placement') => [...new Set(old.cells.map((c) => String(c[k])))].join(',');
      throw new Error(`--compare ${file}: no cell in common with this run (it has sizes ${has('size')}, paths ${has('path')}, placements ${has('placement')})`);
    }
  }
  return old;
}

const range = (reps: { gbps: number }[]) => ({ min: Math.min(...reps.map((r) => r.gbps)), max: Math.max(...reps.map((r) => r.gbps)) });

export function compareResults(old: Comparable, now: BenchJson, file = ''): Comparison {
  const rows: CompareRow[] = [];
  for (const c of now.cells) {
    const o = old.cells.find((x) => x.path === c.path && x.placement === c.placement && x.size === c.size);
    if (!o) continue;
    const or = range(o.reps);
    const changePct = o.median.gbps > 0 ? ((c.median.gbps - o.median.gbps) / o.median.gbps) * 100 : 0;
    rows.push({
      path: c.path,
      placement: c.placement,
      size: c.size,
      old: { gbps: o.median.gbps, ...or },
      now: { gbps: c.median.gbps, min: c.spread.minGbps, max: c.spread.maxGbps },
      changePct,
      outside: c.median.gbps < or.min || c.median.gbps > or.max,
    });
  }
  return { file, date: old.date, schema: old.schema, rows };
}

export function compareText(cmp: Comparison): string {
  const span = (x: { min: number; max: number }) => `${fmtNum(x.min)}..${fmtNum(x.max)}`;
  const rows = cmp.rows.map((r) => [r.path, r.placement, r.size, r.old.gbps, span(r.old), r.now.gbps, span(r.now), `${r.changePct >= 0 ? '+' : ''}${r.changePct.toFixed(1)}%`, r.outside ? 'OUTSIDE' : 'within']);
  const n = cmp.rows.filter((r) => r.outside).length;
  return (
    `compared with ${cmp.file ? `${cmp.file} ` : ''}(${cmp.schema}, ${cmp.date}); a change is OUTSIDE when the new median lies outside the old repetitions' min..max (${n} of ${cmp.rows.length}):\n` +
    table(['path', 'placement', 'bytes', 'old Gbit/s', 'old spread', 'new Gbit/s', 'new spread', 'change', 'vs old spread'], rows)
  );
}

/** The comparison as text (what the tests and `--compare` print). */
export function compare(old: Comparable, now: BenchJson): string {
  return compareText(compareResults(old, now));
}
