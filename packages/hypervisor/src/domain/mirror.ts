/**
 * The pCPU workers' code, compiled once to plain JavaScript. A worker that
 * registers tsx pays for it on every start: each of its few hundred modules
 * is resolved and loaded through tsx's hooks thread (some 3 s of CPU per
 * worker, and as much again on the hooks thread). Instead, the first
 * Simulation of a process finds, or compiles, every worker-side package
 * source file (packages/*\/src/**\/*.ts but the toolstack's and the CLI's)
 * into node_modules/.cache/xsim/w-<hash of their contents> (mirror-build.ts
 * says how), and the workers import that with no hooks (boot.mjs, loader.ts).
 *
 * A build goes to a temporary directory renamed into place, so two processes
 * starting at once both end with a whole mirror; a source edit changes the
 * hash, so a stale mirror is never used (mirrors nobody used for a day are
 * removed). XSIM_NO_BUNDLE=1, or a failure (said once on stderr), leaves the
 * workers on tsx.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Mirror } from './loader.ts';
import { MODULES, PACKAGES, ROOT, VENDORED, compile } from './mirror-build.ts';

/** Packages whose code runs on the main thread only: not compiled (an edit to them leaves the mirror as it is). */
const MAIN_ONLY = new Set(['toolstack', 'cli']);
/** Bumped when what a build writes changes in a way the sources' hash cannot see. */
const BUILDER = 1;
const STALE_MS = 24 * 3600 * 1000;

let made: Promise<Mirror | null> | null = null;

/** The workers' mirror, built if needed (once per process); null: workers register tsx. Never rejects. */
export function workerMirror(): Promise<Mirror | null> {
  if (process.env.XSIM_NO_BUNDLE === '1') return Promise.resolve(null);
  made ??= makeMirror().catch((e: unknown) => {
    process.stderr.write(
      `xsim: pCPU workers load their code through tsx (slower): their compiled copy could not be made: ${e instanceof Error ? e.message : String(e)}\n`,
    );
    return null;
  });
  return made;
}

/** Find or build the mirror of the sources as they are now under `base` (a test gives its own). */
export async function makeMirror(base = join(MODULES, '.cache', 'xsim')): Promise<Mirror | null> {
  if (!existsSync(MODULES)) return null;
  const files = sourceFiles();
  const dir = join(base, `w-${hashOf(files)}`);
  const mirror = { src: pathToFileURL(PACKAGES).href, out: `${pathToFileURL(dir).href}/` };
  if (existsSync(dir)) {
    const now = new Date();
    utimesSync(dir, now, now);
    return mirror;
  }
  mkdirSync(base, { recursive: true });
  const tmp = join(base, `tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    await compile(files, tmp);
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    // Another process renamed its whole mirror into place first: use that.
    if (!existsSync(dir)) throw e;
  }
  prune(base, dir);
  return mirror;
}

/** Every package source file, sorted (absolute paths). */
function sourceFiles(): string[] {
  const files: string[] = [];
  for (const pkg of readdirSync(PACKAGES)) {
    if (MAIN_ONLY.has(pkg)) continue;
    const src = join(PACKAGES, pkg, 'src');
    if (!existsSync(src)) continue;
    for (const f of readdirSync(src, { recursive: true, encoding: 'utf8' })) if (f.endsWith('.ts') && !f.endsWith('.d.ts')) files.push(join(src, f));
  }
  return files.sort();
}

/** The mirror's name: the sources' contents, the packages' manifests (TypeBox's too), the compiler's options and version, this directory. */
export function hashOf(files: string[]): string {
  const h = createHash('sha256');
  const esbuild = createRequire(import.meta.url).resolve('esbuild/package.json');
  h.update(JSON.stringify([BUILDER, PACKAGES, process.versions.node, readFileSync(esbuild, 'utf8')]));
  const extra = [
    join(ROOT, 'tsconfig.json'),
    ...VENDORED.map((v) => join(MODULES, v, 'package.json')),
    ...readdirSync(PACKAGES)
      .filter((p) => !MAIN_ONLY.has(p))
      .map((p) => join(PACKAGES, p, 'package.json')),
  ].filter((f) => existsSync(f));
  for (const f of [...files, ...extra]) {
    h.update(`\0${relative(ROOT, f)}\0`);
    h.update(readFileSync(f));
  }
  return h.digest('hex').slice(0, 20);
}

/** Remove other mirrors nobody has used for a day (a process still running one keeps touching it at each start). */
function prune(base: string, keep: string): void {
  for (const name of readdirSync(base)) {
    const p = join(base, name);
    if (p === keep || !/^(w|tmp)-/.test(name)) continue;
    try {
      if (Date.now() - statSync(p).mtimeMs > STALE_MS) rmSync(p, { recursive: true, force: true });
    } catch {
      // Gone already (another process pruned it).
    }
  }
}
