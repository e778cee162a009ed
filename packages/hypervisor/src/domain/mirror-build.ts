/**
 * How mirror.ts's mirror is compiled (esbuild): every package source file to
 * one output module of its own, at the same place under the mirror as under
 * packages/, so each module stays one instance, as under tsx. Bundling is on
 * only so that every import reaches the plugin below, which keeps each one
 * external and says where it points:
 *
 * - a package source file (by relative path or by package name, `@xsim/nic`):
 *   the relative path of its compiled copy;
 * - a builtin, or another package that Node finds from the mirror as from
 *   the sources (both are under the repository's node_modules): as it was;
 * - TypeBox (VENDORED): a bundle of it in the mirror, _vendor/<specifier>.mjs
 *   (its ESM build is some 200 modules, which every worker would otherwise
 *   resolve and load one by one; the bundle is code-split, so its entries
 *   share one TypeBox), listed in _vendor/map.json for mirror-hooks.mjs;
 * - anything else: its file's URL.
 *
 * `import.meta.url` in a compiled module is its source file's URL (declared
 * on its first line, so line numbers stay the source's), so every path made
 * from it (kernel URLs, other threads' boot files, plugins' directories) is
 * what it was. Source maps point stack traces at the sources, as tsx's do.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BuildOptions, PluginBuild } from 'esbuild';

/** The packages' directory (…/packages/), the repository's, and its node_modules. */
export const PACKAGES = fileURLToPath(new URL('../../../', import.meta.url));
export const ROOT = dirname(PACKAGES);
export const MODULES = join(ROOT, 'node_modules');
/** Packages bundled whole into the mirror. */
export const VENDORED = ['@sinclair/typebox'];
const VENDOR = '_vendor';
/** What a compiled module's import.meta.url becomes: its source's URL, declared at its top. */
const SRC_URL = '__xsimSourceUrl';
const SKIP = Symbol('resolve-as-esbuild-would');

/** As tsx compiles (its target and keepNames), with maps to the sources. */
const COMMON: BuildOptions = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: `node${process.versions.node}`,
  keepNames: true,
  sourcemap: 'linked',
  sourcesContent: false,
  outExtension: { '.js': '.mjs' },
  logLevel: 'silent',
};

/** Compile `files` (package sources, absolute) into `out`, as the header says. */
export async function compile(files: string[], out: string): Promise<void> {
  const esbuild = await import('esbuild');
  const inMirror = new Set(files);
  /** Vendored specifiers the sources import, to the file each resolves to. */
  const vendored = new Map<string, string>();
  await esbuild.build({
    ...COMMON,
    entryPoints: files,
    outbase: PACKAGES,
    outdir: out,
    treeShaking: false,
    define: { 'import.meta.url': SRC_URL },
    plugins: [
      {
        name: 'xsim-mirror',
        setup(b) {
          b.onResolve({ filter: /.*/ }, async (a) => {
            if (a.kind === 'entry-point' || a.pluginData === SKIP) return undefined;
            return { path: await rewrite(b, a.path, a.importer, a.resolveDir, inMirror, vendored), external: true };
          });
          b.onLoad({ filter: /\.ts$/ }, async (a) => ({ contents: withSourceUrl(a.path, await readFile(a.path, 'utf8')), loader: 'ts' }));
        },
      },
    ],
  });
  if (vendored.size) await vendor(vendored, out);
}

/** The vendored packages' bundle (one entry per specifier imported, code-split) and its map for mirror-hooks.mjs. */
async function vendor(vendored: Map<string, string>, out: string): Promise<void> {
  const esbuild = await import('esbuild');
  await esbuild.build({
    ...COMMON,
    entryPoints: Object.fromEntries([...vendored].map(([spec, file]) => [`${VENDOR}/${spec}`, file])),
    outdir: out,
    splitting: true,
    chunkNames: `${VENDOR}/chunk-[hash]`,
    plugins: [
      {
        name: 'xsim-vendor',
        setup(b) {
          // Only the vendored packages go in; whatever else they import stays outside.
          b.onResolve({ filter: /^[^./]/ }, (a) => (vendoredName(a.path) ? undefined : { external: true }));
        },
      },
    ],
  });
  mkdirSync(join(out, VENDOR), { recursive: true });
  const map = Object.fromEntries([...vendored].map(([spec, file]) => [pathToFileURL(file).href, `${VENDOR}/${spec}.mjs`]));
  writeFileSync(join(out, VENDOR, 'map.json'), JSON.stringify(map, null, 1));
}

function vendoredName(spec: string): string | undefined {
  return VENDORED.find((v) => spec === v || spec.startsWith(`${v}/`));
}

/** The source with its URL declared on its first line (after a #! line), so line numbers stay the source's. */
function withSourceUrl(path: string, text: string): string {
  const decl = `var ${SRC_URL} = ${JSON.stringify(pathToFileURL(path).href)}; `;
  const at = text.startsWith('#!') ? text.indexOf('\n') + 1 : 0;
  return at > 0 || !text.startsWith('#!') ? text.slice(0, at) + decl + text.slice(at) : `${text}\n${decl}`;
}

/** `to` (a path as if under packages/) relative to `importer`'s directory, as an import specifier. */
function relativeSpec(importer: string, to: string): string {
  const rel = relative(dirname(importer), to).split(sep).join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
}

/** What an import of `spec` in `importer` becomes in the mirror (the header's list). */
async function rewrite(
  b: PluginBuild,
  spec: string,
  importer: string,
  resolveDir: string,
  inMirror: Set<string>,
  vendored: Map<string, string>,
): Promise<string> {
  if (spec.startsWith('node:') || isBuiltin(spec)) return spec;
  const r = await b.resolve(spec, { kind: 'import-statement', resolveDir, pluginData: SKIP });
  // What esbuild cannot place, Node resolves its own way, as before.
  if (r.errors.length || !r.path || r.external) return spec;
  const target = r.path;
  if (inMirror.has(target)) return relativeSpec(importer, target).replace(/\.ts$/, '.mjs');
  const bare = !/^\.{0,2}\//.test(spec);
  if (bare && vendoredName(spec)) {
    vendored.set(spec, target);
    return relativeSpec(importer, join(PACKAGES, VENDOR, `${spec}.mjs`));
  }
  if (bare && target.startsWith(MODULES + sep)) return spec;
  // A worker imports the mirror with no hooks: TypeScript it does not hold could not be loaded.
  if (/\.[cm]?tsx?$/.test(target)) throw new Error(`${relative(ROOT, importer)} imports ${relative(ROOT, target)}, which is not compiled with it`);
  return pathToFileURL(target).href;
}
