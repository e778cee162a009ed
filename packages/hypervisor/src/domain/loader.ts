/**
 * How a worker imports a module named by URL at run time (a kernel, a
 * plugin's part). A pCPU worker started with a mirror (mirror.ts: the
 * packages' sources compiled once to plain JavaScript) imports the mirror's
 * copy of a package source file, with no loader hooks; anything else (a
 * user's kernel or plugin, in TypeScript or not) is imported from where it
 * is, once tsx and a redirect hook are registered in this thread, so that
 * what it imports of the packages (`@xsim/nic`, a deep source path) is the
 * mirror's copy, the same module instances the worker already runs. Without
 * a mirror (XSIM_NO_BUNDLE=1, the main thread, a worker that registered tsx
 * itself) it is a plain import().
 */
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';

/** File URLs ending in '/': the packages' directory (sources) and the mirror of it (compiled). */
export interface Mirror {
  src: string;
  out: string;
}

let mirror: Mirror | null = null;
let fallback: Promise<void> | null = null;

/** This worker runs the mirror's code (boot.mjs says so before it imports the worker). */
export function useMirror(m: Mirror): void {
  mirror = m;
}

/** The mirror's copy of a package source file, or null (not a package source, or not in the mirror). */
export function mirrored(m: Mirror, url: string): string | null {
  if (!url.startsWith(m.src) || !url.endsWith('.ts')) return null;
  const out = `${m.out}${url.slice(m.src.length, -3)}.mjs`;
  return existsSync(fileURLToPath(out)) ? out : null;
}

/** import(url), from the mirror where it has the module, else through tsx (registered the first time it is needed). */
export function importModule(url: string): Promise<unknown> {
  const m = mirror;
  if (!m) return import(url);
  const copy = mirrored(m, url);
  if (copy) return import(copy);
  fallback ??= registerFallback(m);
  return fallback.then(() => import(url));
}

async function registerFallback(m: Mirror): Promise<void> {
  const tsx = await import('tsx/esm/api');
  tsx.register();
  // Registered after tsx, so it runs first: it asks tsx (then Node) and turns package sources into the mirror's copies.
  register(new URL('./mirror-hooks.mjs', import.meta.url), { data: m });
}
