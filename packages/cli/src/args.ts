import { parseArgs as nodeParseArgs } from 'node:util';
import type { LogLevel } from '@xsim/hypervisor';

/**
 * Flags as Node's util.parseArgs reads them: `--name value`, `--name=value`,
 * `--flag`, `-j`, `-p` and `-jp`, options before or after positionals, `--`
 * ending options. Chosen over hand-written code because it ships with Node
 * (no dependency) and behaves as users of other CLIs expect. Unknown options
 * are errors that list the known ones.
 */
export interface Parsed {
  positional: string[];
  /** A repeatable option (`repeatable` of parseArgs) holds its last value here, and all of them in `lists`. */
  flags: Map<string, string | true>;
  lists?: Map<string, string[]>;
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

/** `repeatable`: valued options that may be given more than once (--partition-address p0=... --partition-address p1=...). */
export function parseArgs(argv: string[], valued: string[], booleans: string[], repeatable: readonly string[] = []): Parsed {
  const options: Record<string, OptionSpec> = {};
  for (const v of valued) options[v] = { type: 'string', ...(v.length === 1 ? { short: v } : {}), ...(repeatable.includes(v) ? { multiple: true } : {}) };
  for (const b of booleans) options[b] = { type: 'boolean', ...(b.length === 1 ? { short: b } : {}) };
  const known = () =>
    [...valued.map((v) => (v.length === 1 ? `-${v} V` : `--${v} V`)), ...booleans.map((b) => (b.length === 1 ? `-${b}` : `--${b}`))].join(', ');
  let parsed: ReturnType<typeof nodeParseArgs>;
  try {
    parsed = nodeParseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    const code = (e as { code?: string }).code;
    const msg = e instanceof Error ? e.message : String(e);
    const opt = /'(-{1,2}[^' ]+)/.exec(msg)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new Error(`unknown option ${opt} (options: ${known()})`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      if (/ambiguous/.test(msg)) throw new Error(`option ${opt} needs a value; to give one that starts with "-", write ${opt}=VALUE`);
      if (/argument missing/.test(msg)) throw new Error(`option ${opt} needs a value`);
      throw new Error(`option ${opt}: ${msg.split('\n')[0]}`);
    }
    throw new Error(msg.split('\n')[0]);
  }
  const flags = new Map<string, string | true>();
  const lists = new Map<string, string[]>();
  for (const [k, v] of Object.entries(parsed.values)) {
    if (v === true) flags.set(k, true);
    else if (typeof v === 'string') flags.set(k, v);
    else if (Array.isArray(v) && v.length) {
      const all = v.filter((x): x is string => typeof x === 'string');
      lists.set(k, all);
      flags.set(k, all[all.length - 1]);
    }
  }
  return { positional: parsed.positionals, flags, ...(lists.size ? { lists } : {}) };
}

export function numFlag(p: Parsed, name: string, dflt: number, min: number, max: number): number {
  const v = p.flags.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number from ${min} to ${max}, got "${String(v)}"`);
  return n;
}

export function intFlag(p: Parsed, name: string, dflt: number, min: number, max: number): number {
  const v = p.flags.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, got "${String(v)}"`);
  return n;
}

/** A flag whose value is a JSON object (a plugin's arguments), or undefined if it is absent; anything else is refused, naming the flag. */
export function jsonObjectFlag(p: Parsed, name: string): Record<string, unknown> | undefined {
  const a = p.flags.get(name);
  if (a === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(String(a));
  } catch (e) {
    throw new Error(`--${name} is not JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`--${name} must be a JSON object, got ${String(a)}`);
  return v as Record<string, unknown>;
}

/** The flags every command that starts a simulation takes: where its domains run, and how much it says. */
export const RUNTIME_VALUED = ['pcpus', 'seed'];
export const RUNTIME_BOOLEANS = ['deterministic'];
export const LOG_BOOLEANS = ['quiet', 'q', 'verbose', 'v'];

/**
 * -q/--quiet: warnings and errors only (no progress lines); -v/--verbose: debug
 * lines too (each xenbus transition of each vif, at both ends). `dflt` is the
 * level without either.
 */
export function logLevelFlag(p: Parsed, dflt: LogLevel = 'info'): LogLevel {
  const quiet = p.flags.has('quiet') || p.flags.has('q');
  const verbose = p.flags.has('verbose') || p.flags.has('v');
  if (quiet && verbose) throw new Error('--quiet and --verbose exclude each other');
  return quiet ? 'warn' : verbose ? 'debug' : dflt;
}

export function runtimeFlags(p: Parsed): { pcpus?: number; deterministic?: { seed: number } } {
  const det = p.flags.has('deterministic');
  if (p.flags.has('seed') && !det) throw new Error("--seed needs --deterministic (a threaded run has no seed: its interleavings are the machine's)");
  if (det && p.flags.has('pcpus'))
    throw new Error('--pcpus and --deterministic exclude each other: a deterministic run puts every domain and the NIC on one thread');
  if (det) return { deterministic: { seed: intFlag(p, 'seed', 1, 0, 2 ** 31 - 1) } };
  return p.flags.has('pcpus') ? { pcpus: intFlag(p, 'pcpus', 1, 1, 256) } : {};
}

/** The level a long command's simulations log at: their warnings and errors, everything with --verbose. */
export function simulationLogLevel(level: LogLevel): LogLevel {
  return level === 'debug' ? 'debug' : 'warn';
}

/** A long command's progress lines ("xsim <line>"): to stderr, none with --quiet. */
export function progressLines(level: LogLevel): (line: string) => void {
  return (line) => {
    if (level !== 'warn') process.stderr.write(`xsim ${line}\n`);
  };
}
