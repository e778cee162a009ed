/**
 * `xsim plugin test DIR|NAME`: take a plugin through the conformance suite
 * (@xsim/toolstack's runConformance) on a deterministic simulation of its own,
 * so no `xsim run --serve` is needed. A row per check, PASS/FAIL/SKIP with the
 * reason (-j: the report as JSON); exit status 1 if any check failed.
 */
import { CHECK_IDS, conformanceTable, parseDomainRef, runConformance, type CheckResult, type DomainRef } from '@xsim/toolstack';
import { LOG_BOOLEANS, intFlag, logLevelFlag, parseArgs, progressLines } from '../args.ts';

const USAGE = 'usage: xsim plugin test DIR|NAME [--args JSON] [--seed N] [--only ID,...] [--partner NAME] [--from HOST/DOM --to HOST/DOM] [--frames N] [-j|-p]';

function jsonArgs(v: string | true | undefined): Record<string, unknown> | undefined {
  if (typeof v !== 'string') return undefined;
  let args: unknown;
  try {
    args = JSON.parse(v);
  } catch (e) {
    throw new Error(`--args is not JSON: ${(e as Error).message}`);
  }
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new Error(`--args must be a JSON object, got ${v}`);
  return args as Record<string, unknown>;
}

function onlyFlag(v: string | true | undefined): string[] | undefined {
  if (typeof v !== 'string') return undefined;
  const ids = v.split(',').map((s) => s.trim());
  for (const id of ids) if (!CHECK_IDS.includes(id)) throw new Error(`--only: "${id}" is not a check (checks: ${CHECK_IDS.join(', ')})`);
  // The checks after load need the plugin loaded: load always runs.
  return ids.includes('load') ? ids : ['load', ...ids];
}

const refFlag = (v: string | true | undefined): DomainRef | undefined => (typeof v === 'string' ? parseDomainRef(v) : undefined);

export async function pluginTestCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, ['args', 'seed', 'only', 'partner', 'frames', 'from', 'to'], ['j', 'json', 'p', 'pretty', ...LOG_BOOLEANS]);
  if (p.positional.length !== 1) throw new Error(USAGE);
  const level = logLevelFlag(p);
  const json = p.flags.has('j') || p.flags.has('json') || p.flags.has('p') || p.flags.has('pretty');
  const progress = progressLines(level);
  const partner = p.flags.get('partner');
  const report = await runConformance(p.positional[0], {
    args: jsonArgs(p.flags.get('args')),
    seed: intFlag(p, 'seed', 1, 0, 2 ** 31 - 1),
    only: onlyFlag(p.flags.get('only')),
    partner: typeof partner === 'string' ? partner : undefined,
    from: refFlag(p.flags.get('from')),
    to: refFlag(p.flags.get('to')),
    frames: p.flags.has('frames') ? intFlag(p, 'frames', 12_000, 1000, 1_000_000) : undefined,
    onResult: (r: CheckResult) => progress(`plugin test: ${r.id} ${r.status.toUpperCase()} (${(r.ms / 1000).toFixed(1)} s)`),
  });
  const pretty = p.flags.has('p') || p.flags.has('pretty');
  process.stdout.write((json ? JSON.stringify(report, null, pretty ? 2 : 0) : conformanceTable(report)) + '\n');
  return report.passed ? 0 : 1;
}
