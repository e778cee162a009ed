/** `xsim schema [--out DIR]`: write the published JSON Schema files (default: schemas/). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from '../args.ts';
import { PUBLISHED_SCHEMAS, schemaFileText } from '@xsim/bench';

export function schemaCommand(argv: string[]): number {
  const p = parseArgs(argv, ['out'], []);
  if (p.positional.length) throw new Error(`xsim schema takes no arguments (got ${p.positional.join(' ')}); --out DIR says where`);
  const dir = typeof p.flags.get('out') === 'string' ? String(p.flags.get('out')) : 'schemas';
  mkdirSync(dir, { recursive: true });
  for (const [name, s] of Object.entries(PUBLISHED_SCHEMAS)) {
    writeFileSync(join(dir, name), schemaFileText(s));
    process.stdout.write(`${join(dir, name)}\n`);
  }
  return 0;
}
