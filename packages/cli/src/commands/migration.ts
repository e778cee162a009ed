/**
 * `xsim migration`: the figures of the three live-migration cases over
 * repetitions (bench/migration.ts), a table and a JSON file.
 */
import { LOG_BOOLEANS, intFlag, logLevelFlag, parseArgs, progressLines, simulationLogLevel } from '../args.ts';
import { migrationReport, saveJson } from '@xsim/bench';
import { MIGRATION_CASES, runMigrationBench, type MigrationCase } from '@xsim/bench';

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
