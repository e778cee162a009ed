/** A tiny flag parser: --name value, --flag, -j/-p, and positionals. Unknown flags are errors. */
export interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

export function parseArgs(argv: string[], valued: string[], booleans: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const name = a.replace(/^--?/, '');
    if (valued.includes(name)) {
      const v = argv[++i];
      if (v === undefined) throw new Error(`option ${a} needs a value`);
      flags.set(name, v);
    } else if (booleans.includes(name)) flags.set(name, true);
    else throw new Error(`unknown option ${a}`);
  }
  return { positional, flags };
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

/** The flags every command that starts a simulation takes: where its domains run. */
export const RUNTIME_VALUED = ['pcpus', 'seed'];
export const RUNTIME_BOOLEANS = ['deterministic'];

export function runtimeFlags(p: Parsed): { pcpus?: number; deterministic?: { seed: number } } {
  const det = p.flags.has('deterministic');
  if (p.flags.has('seed') && !det) throw new Error('--seed needs --deterministic (a threaded run has no seed: its interleavings are the machine\'s)');
  if (det && p.flags.has('pcpus')) throw new Error('--pcpus and --deterministic exclude each other: a deterministic run puts every domain and the NIC on one thread');
  if (det) return { deterministic: { seed: intFlag(p, 'seed', 1, 0, 2 ** 31 - 1) } };
  return p.flags.has('pcpus') ? { pcpus: intFlag(p, 'pcpus', 1, 1, 256) } : {};
}
