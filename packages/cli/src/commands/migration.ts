/**
 * `xsim migration`: the figures of the three live-migration cases over
 * repetitions (bench/migration.ts), a table and a JSON file.
 */
import { LOG_BOOLEANS, intFlag, logLevelFlag, parseArgs, progressLines, simulationLogLevel } from '../args.ts';
import { saveJson } from '../save.ts';
import { MIGRATION_CASES, runMigrationBench, type MigrationCase, type MigrationJson } from '../bench/migration.ts';
import { table } from '../format.ts';

export async function migrationCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, ['cases', 'reps', 'frames', 'size', 'window', 'after', 'pcpus', 'seed', 'out'], ['j', 'json', ...LOG_BOOLEANS]);
  // Progress lines are info; the simulations say only their warnings unless --verbose.
  const level = logLevelFlag(p);
  const cases = String(p.flags.get('cases') ?? MIGRATION_CASES.join(','))
    .split(',')
    .map((s) => {
      const c = s.trim();
      if (!(MIGRATION_CASES as readonly string[]).includes(c)) throw new Error(`--cases: "${c}" is not a case (cases: ${MIGRATION_CASES.join(', ')})`);
      return c as MigrationCase;
    });
  const frames = intFlag(p, 'frames', 60_000, 1_000, 10_000_000);
  const r = await runMigrationBench({
    cases,
    reps: intFlag(p, 'reps', 5, 1, 100),
    frames,
    frameSize: intFlag(p, 'size', 1500, 64, 1514),
    window: intFlag(p, 'window', 64, 1, 256),
    migrateAfter: intFlag(p, 'after', Math.round(frames / 4), 1, frames - 1),
    pcpus: p.flags.has('pcpus') ? intFlag(p, 'pcpus', 2, 1, 256) : undefined,
    seed: p.flags.has('seed') ? intFlag(p, 'seed', 1, 0, 2 ** 31) : undefined,
    progress: progressLines(level),
    logLevel: simulationLogLevel(level),
  });
  const out = typeof p.flags.get('out') === 'string' ? String(p.flags.get('out')) : undefined;
  if (out) saveJson(out, r);
  if (p.flags.has('j') || p.flags.has('json')) process.stdout.write(JSON.stringify(r) + '\n');
  else process.stdout.write(migrationReport(r) + (out ? `\n\nsaved ${out}` : '') + '\n');
  return r.cases.every((c) => c.reps.every((x) => x.uncounted === 0 && x.duplicated === 0)) ? 0 : 1;
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
