/** The benchmarks' results as text tables, for `xsim bench`, `xsim scale` and `xsim migration`. */
import { fmtNum, table } from '@xsim/toolstack';
import { median } from './matrix.ts';
import { UNCOUNTED_COPIES } from './counts.ts';
import { compareResults, type Comparison } from './compare.ts';
import type { BenchJson, BenchPath, Comparable } from './schema.ts';
import type { MigrationJson } from './migration.ts';
import type { ScaleJson } from './scale.ts';
import { tcpLines } from './tcp-report.ts';

/** The matrix: one row per cell, then the paired ratios. */
function cellTables(r: BenchJson): string[] {
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
    c.wakesPerFrame !== undefined ? c.wakesPerFrame : '-',
    c.copiesPerFrame !== undefined ? c.copiesPerFrame : '-',
    c.reps.every((x) => x.conserved) ? 'yes' : 'NO',
    `${fastShare(c.fastPathShare)}${c.valid ? '' : ' INVALID'}`,
  ]);
  const invalid = r.cells.filter((c) => !c.valid);
  const left = r.ratios.flatMap((x) => (x.invalid ?? []).map((w) => `  ${x.size} B ${x.placement}: ${w}`));
  return [
    table(
      [
        'path',
        'placement',
        'bytes',
        'Mpps',
        'Gbit/s',
        'spread',
        'loss',
        'p50 us',
        'p99 us',
        'cpu us/frame',
        'wakes/frame',
        'copies/frame',
        'conserved',
        'fast path',
      ],
      rows,
    ),
    ...(invalid.length
      ? [
          '',
          `INVALID cells (not what their path says; their ratios are left out):`,
          ...invalid.map((c) => `  ${c.path} ${c.placement} ${c.size} B: ${c.invalid ?? ''}`),
        ]
      : []),
    '',
    ratioTable(r),
    ...(left.length ? ['', 'ratios left out ("-" above):', ...left] : []),
  ];
}

/** A fast-path share as a percentage ('-' for none at all: an unaccelerated path). */
function fastShare(x: number | undefined): string {
  if (x === undefined || x === 0) return '-';
  return `${(x * 100).toFixed(x >= 0.995 && x < 1 ? 2 : 1)}%`;
}

/**
 * The paired ratios; the vdpa columns only in a run that measured vdpa
 * (vdpa/unaccel: over the slow path of the VI NIC's hosts, as vnic/unaccel).
 */
function ratioTable(r: BenchJson): string {
  const vdpa = r.ratios.some((x) => typeof x.vdpaOverVnic === 'number' || typeof x.vdpaOverUnaccel === 'number' || x.overRaw.vdpa !== undefined);
  const raw3 = r.ratios.some((x) => x.overRaw3 !== undefined);
  const over = (ref: string) => ['unaccel', 'vnic', ...(vdpa ? ['vdpa'] : []), 'null', 'dom0'].map((p) => `${p}/${ref}`);
  const head = [
    'bytes',
    'placement',
    'vnic/unaccel',
    'vnic/dom0',
    ...(vdpa ? ['vdpa/vnic', 'vdpa/unaccel'] : []),
    ...over('raw'),
    ...(raw3 ? over('raw3') : []),
  ];
  type Over = Partial<Record<BenchPath, number>>;
  const cols = (o: Over | undefined) => ['unaccel', 'vnic', ...(vdpa ? ['vdpa'] : []), 'null', 'dom0'].map((p) => o?.[p as BenchPath] ?? '-');
  return table(
    head,
    r.ratios.map((x) => [
      x.size,
      x.placement,
      x.accelOverUnaccel ?? '-',
      x.accelOverDom0 ?? '-',
      ...(vdpa ? [x.vdpaOverVnic ?? '-', x.vdpaOverUnaccel ?? '-'] : []),
      ...cols(x.overRaw),
      ...(raw3 ? cols(x.overRaw3) : []),
    ]),
  );
}

/**
 * Where each cell copied its frames (per delivered frame, by site: counts.ts
 * COPY_SITES), and which copies no counter counts.
 */
function copyLines(r: BenchJson): string[] {
  const cells = r.cells.filter((c) => c.copies && Object.keys(c.copies).length > 0);
  if (!cells.length) return [];
  const parts = [
    '',
    "copies of a frame per delivered frame, by site (median over repetitions; wakes/frame: every thread's sleeps in Atomics.wait, pCPUs and NIC thread):",
  ];
  for (const c of cells)
    parts.push(
      `  ${`${c.path} ${c.placement} ${c.size}B`.padEnd(20)} ${Object.entries(c.copies!)
        .filter(([, v]) => v >= 0.005)
        .map(([k, v]) => `${k} ${fmtNum(v)}`)
        .join(', ')}`,
    );
  parts.push(`  not counted (no counter at the site): ${UNCOUNTED_COPIES.join('; ')}`);
  return parts;
}

/** Where the time went: each thread's and each busy vCPU's awake share, and the threads each path ran on. */
function threadLines(r: BenchJson): string[] {
  const parts: string[] = [];
  const awake = r.cells.filter((c) => c.awake && Object.keys(c.awake).length > 0);
  if (awake.length) {
    parts.push(
      '',
      `awake share of each thread during the stream (not blocked in Atomics.wait; sum against ${r.machine.cores} cores), and of each busy domain's vCPU (in its turns):`,
    );
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
  for (const [path, t] of Object.entries(r.threads))
    parts.push(`  ${path}: ${t.busy.join(', ')} — ${t.threads} threads (${t.pcpus} pCPUs${t.threads > t.pcpus ? ' + NIC' : ''}); ${t.note}`);
  return parts;
}

/** Capture's cost, paired per repetition. */
function captureTable(capture: NonNullable<BenchJson['capture']>): string {
  return table(
    ['path', 'bytes', 'frames/stream', 'captured at', 'tap points', 'snap length', 'off Gbit/s', 'on Gbit/s', 'on/off', 'spread', 'records/stream', 'not kept'],
    capture.map((c) => [
      c.path,
      c.size,
      c.frames ?? '-',
      c.spec,
      c.taps,
      c.snaplen >= 65_535 ? 'whole' : c.snaplen,
      median(c.reps.map((x) => x.offGbps)),
      median(c.reps.map((x) => x.onGbps)),
      c.ratio,
      `${fmtNum(c.spread.min)}..${fmtNum(c.spread.max)}`,
      Math.round(median(c.reps.map((x) => x.records))),
      c.reps.reduce((n, x) => n + x.lost, 0),
    ]),
  );
}

/** Multi-queue vifs: N flows over N queues, each queue's share of the frames at both ends. */
function queueTable(cells: NonNullable<BenchJson['queues']>): string {
  const share = (xs: number[]) => {
    const all = xs.reduce((a, b) => a + b, 0) || 1;
    return xs.map((x) => `${Math.round((x * 100) / all)}%`).join(' ');
  };
  return table(
    ['queues', 'flows', 'bytes', 'Mpps', 'Gbit/s', 'spread', 'loss', 'cpu us/frame', 'a1 TX per queue', 'b1 RX per queue', 'conserved'],
    cells.map((c) => [
      c.queues,
      c.flows,
      c.size,
      c.median.pps / 1e6,
      c.median.gbps,
      `${fmtNum(c.spread.minGbps)}..${fmtNum(c.spread.maxGbps)}`,
      `${(c.lossRate * 100).toFixed(2)}%`,
      median(c.reps.map((x) => x.cpuUsPerFrame ?? 0)),
      share(c.perQueue.tx),
      share(c.perQueue.rx),
      c.reps.every((x) => x.conserved) ? 'yes' : 'NO',
    ]),
  );
}

/** The machine, and its futex wake round trip when measured. */
function machineLine(r: BenchJson): string[] {
  const m = r.machine;
  if (!m || !m.cpu) return [];
  const f = m.futexRoundTripUs;
  return [
    `machine: ${m.cores} cores (${m.cpu}), Node ${m.node}${f ? `; futex wake round trip (two worker threads, Atomics.notify/wait) median ${fmtNum(f.median)} us, p99 ${fmtNum(f.p99)} us over ${f.roundTrips} round trips` : ''}`,
    '',
  ];
}

/** --runs N: each ratio's median across runs and its spread (the tables above are the first run's). */
function acrossRunsLines(r: BenchJson): string[] {
  if (!r.acrossRuns?.length) return [];
  const runs = r.runs?.length ?? r.options.runs ?? 0;
  return [
    '',
    `across ${runs} runs of the whole matrix (each with fresh simulations; the tables above are run 1's): each ratio's median across runs and its min..max`,
    table(
      ['bytes', 'placement', 'ratio', 'median', 'min..max', 'runs', 'per run'],
      r.acrossRuns.map((x) => [
        x.size,
        x.placement,
        x.ratio,
        x.median,
        `${fmtNum(x.min)}..${fmtNum(x.max)}`,
        x.runs,
        x.values.map((v) => fmtNum(v.value)).join(' '),
      ]),
    ),
  ];
}

/** Concurrent pairs: each N's aggregate goodput per path, every pair's loss, and vnic / unaccel per N. */
function pairLines(pairs: NonNullable<BenchJson['pairs']>): string[] {
  const rows = pairs.cells.map((c) => [
    c.pairs,
    c.path,
    c.size,
    c.median.aggregateGbps,
    `${fmtNum(c.spread.min)}..${fmtNum(c.spread.max)}`,
    `${(c.lossRate * 100).toFixed(2)}%`,
    c.reps[0].perPair.map((_, i) => c.reps.reduce((n, x) => n + (x.perPair[i]?.lost ?? 0), 0)).join(' '),
    c.reps.every((x) => x.conserved) ? 'yes' : 'NO',
    `${fastShare(c.fastPathShare)}${c.valid ? '' : ' INVALID'}`,
  ]);
  return [
    '',
    `concurrent guest pairs (a_i -> b_i at once, host-a and host-b with four domUs each; ${pairs.cells[0]?.note.split('; ').slice(1).join('; ') ?? ''}):`,
    table(['pairs', 'path', 'bytes', 'aggregate Gbit/s', 'spread', 'loss', 'lost per pair', 'conserved', 'fast path (least pair)'], rows),
    '',
    table(
      ['pairs', 'bytes', 'vnic/unaccel aggregate', 'min..max'],
      pairs.ratios.map((x) => [x.pairs, x.size, x.vnicOverUnaccel ?? '-', x.min !== null && x.max !== null ? `${fmtNum(x.min)}..${fmtNum(x.max)}` : '-']),
    ),
    ...pairs.ratios.flatMap((x) => (x.invalid ?? []).map((w) => `  left out: ${w}`)),
  ];
}

export function report(r: BenchJson): string {
  const parts = [...machineLine(r), ...cellTables(r), ...acrossRunsLines(r), ...copyLines(r), ...threadLines(r)];
  if (r.capture?.length) {
    parts.push('', `packet capture's cost (goodput with capture on / off, paired per repetition; ${r.capture[0].note}):`, captureTable(r.capture));
  }
  if (r.queues?.length) {
    parts.push(
      '',
      'multi-queue vifs (a1 -> b1 unaccelerated across hosts, one flow per TX queue; each domain is one vCPU, so its queues take turns):',
      queueTable(r.queues),
    );
  }
  if (r.pairs?.cells.length) parts.push(...pairLines(r.pairs));
  if (r.tcp?.cells.length) parts.push(...tcpLines(r.tcp));
  if (r.micro) {
    parts.push(
      '',
      table(
        ['microbenchmark', 'ops/s', '±%'],
        r.micro.map((m) => [m.name, Math.round(m.opsPerSec), m.margin]),
      ),
    );
  }
  return parts.join('\n');
}

export function compareText(cmp: Comparison): string {
  const span = (x: { min: number; max: number }) => `${fmtNum(x.min)}..${fmtNum(x.max)}`;
  const rows = cmp.rows.map((r) => [
    r.path,
    r.placement,
    r.size,
    r.old.gbps,
    span(r.old),
    r.now.gbps,
    span(r.now),
    `${r.changePct >= 0 ? '+' : ''}${r.changePct.toFixed(1)}%`,
    r.outside ? 'OUTSIDE' : 'within',
  ]);
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

const ms = (x: number | null): string => (x === null ? '-' : x.toFixed(1));
const span = (s: [number, number] | null): string => (s === null ? '-' : `${s[0].toFixed(1)}..${s[1].toFixed(1)}`);

export function migrationReport(r: MigrationJson): string {
  const rows = r.cases.map((c) => {
    const drops = new Map<string, number>();
    for (const x of c.reps) for (const [k, v] of Object.entries(x.drops)) drops.set(k, (drops.get(k) ?? 0) + v);
    return [
      c.case,
      c.median.rounds,
      `${c.median.pagesSent} (${c.spread.pagesSent[0]}..${c.spread.pagesSent[1]})`,
      `${ms(c.median.blackoutMs)} (${span(c.spread.blackoutMs)})`,
      `${ms(c.median.downtimeMs)} (${span(c.spread.downtimeMs)})`,
      c.median.lost,
      c.reps.reduce((n, x) => n + x.uncounted, 0),
      ms(c.median.fastPathBackMs),
      [...drops].map(([k, v]) => `${k} ${v}`).join(', ') || '-',
    ];
  });
  const run = r.run;
  return [
    `xsim migration: ${run.reps} repetition(s) per case, ${run.mode}${run.mode === 'threads' ? `, ${run.pcpus ?? r.machine.cores} pCPUs + NIC thread` : ' (one thread, virtual clock: ms are virtual)'}, on ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}`,
    `receiver host-b/b1 moved live to host-a after ${run.migrateAfter} of ${run.frames} frames of ${run.frameSize} B (window ${run.window}); medians (min..max)`,
    table(['case', 'rounds', 'pages', 'blackout ms', 'downtime ms', 'lost', 'uncounted', 'fast path back ms', 'drop counters (all reps)'], rows),
  ].join('\n');
}

export function scaleReport(r: ScaleJson): string {
  const rows = r.points.map((x) => [
    x.domUs,
    x.domains,
    x.hosts,
    x.switches,
    x.bootMs / 1000,
    Math.round(x.maxRssMb),
    x.idleCores,
    x.stream ? `${x.stream.from} -> ${x.stream.to}` : '-',
    x.stream ? x.stream.pps / 1e6 : '-',
    x.stream ? (x.stream.conserved ? 'yes' : 'NO') : '-',
    x.shutdownMs / 1000,
  ]);
  return [
    `xsim scale on ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, ${r.points[0]?.pcpus ?? '?'} pCPUs + NIC thread + main thread; idle measured over ${r.points[0]?.idleSeconds ?? '?'} s`,
    table(['domUs', 'domains', 'hosts', 'switches', 'boot s', 'peak RSS MB', 'idle cores', 'stream (1500 B)', 'Mpps', 'conserved', 'shutdown s'], rows),
  ].join('\n');
}
