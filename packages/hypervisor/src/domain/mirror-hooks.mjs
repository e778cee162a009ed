// Module hooks of a pCPU worker that runs the mirror (mirror.ts) and has to
// import something the mirror does not hold (loader.ts registers them after
// tsx, so they run first): a package source file that the module asks for
// (`@xsim/nic`, a relative path into packages/*/src) becomes the mirror's
// copy, the instance the worker already runs; the mirror's files are read as
// they are, not handed to tsx. A package the mirror bundles (TypeBox:
// _vendor/map.json) becomes that bundle, for the same reason.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

let src = '';
let out = '';
/** Node's file URL of a vendored package's module → its bundle in the mirror. */
let vendored = {};

export function initialize(data) {
  src = data.src;
  out = data.out;
  const map = new URL('_vendor/map.json', out);
  if (existsSync(map)) vendored = JSON.parse(readFileSync(map, 'utf8'));
}

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  const bundled = vendored[r.url];
  if (bundled) return { url: `${out}${bundled}`, format: 'module', shortCircuit: true };
  if (r.url.startsWith(src) && r.url.endsWith('.ts')) {
    const copy = `${out}${r.url.slice(src.length, -3)}.mjs`;
    if (existsSync(fileURLToPath(copy))) return { url: copy, format: 'module', shortCircuit: true };
  }
  return r;
}

export async function load(url, context, next) {
  if (url.startsWith(out)) return { format: 'module', source: await readFile(fileURLToPath(url)), shortCircuit: true };
  return next(url, context);
}
