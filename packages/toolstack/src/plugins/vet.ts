/**
 * Vet a plugin before any domain imports it: its modules are imported first
 * in a throwaway worker with a deadline. A module that throws, exports the
 * wrong things, carries a bad manifest, or whose top-level code never settles
 * (an await that never resolves) or never stops (a loop) is refused with a
 * clear error, and the worker, not a domain, is what gets terminated.
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PluginModules } from '@xsim/accel-plugins';

const VET_WORKER = new URL('./vet-worker.mjs', import.meta.url);

export interface VetResult {
  name: string;
  features: string[];
}

interface Reply {
  ok: boolean;
  error?: string;
  out?: {
    backend: { createBackend: boolean; problems: string[]; name: string | null; features: string[] } | null;
    frontend: { createFrontend: boolean } | null;
  };
}

/**
 * A plugin module larger than this is refused before it is read: a plugin's
 * code is kilobytes, and a module of tens of megabytes (a manifest with a
 * huge table in it) would take longer to compile than vetting allows, and be
 * refused for the wrong reason.
 */
export const MAX_PLUGIN_MODULE_BYTES = 4 << 20;

/** Verdicts already reached, by the modules' identity (path, size, mtime): an unchanged plugin is not vetted twice. */
const vetted = new Map<string, VetResult>();

function identity(mod: PluginModules): string {
  return [mod.backend, mod.frontend ?? '']
    .filter(Boolean)
    .map((u) => {
      const st = statSync(fileURLToPath(u));
      return `${u}:${st.size}:${st.mtimeMs}`;
    })
    .join('|');
}

/** Each module's size checked first (MAX_PLUGIN_MODULE_BYTES), naming the file. */
function checkSizes(mod: PluginModules): void {
  for (const [part, url] of [
    ['backend', mod.backend],
    ['frontend', mod.frontend],
  ] as const) {
    if (!url) continue;
    const bytes = statSync(fileURLToPath(url)).size;
    if (bytes > MAX_PLUGIN_MODULE_BYTES)
      throw new Error(
        `plugin ${mod.name}: its ${part} module ${fileURLToPath(url)} is ${(bytes / 2 ** 20).toFixed(1)} MiB; a plugin module may be at most ${MAX_PLUGIN_MODULE_BYTES / 2 ** 20} MiB: refused, no domain has run it`,
      );
  }
}

export async function vetPlugin(mod: PluginModules, timeoutMs = 10_000): Promise<VetResult> {
  checkSizes(mod);
  const id = identity(mod);
  const known = vetted.get(id);
  if (known) return known;
  const r = await vetOnce(mod, timeoutMs);
  vetted.set(id, r);
  return r;
}

async function vetOnce(mod: PluginModules, timeoutMs: number): Promise<VetResult> {
  const w = new Worker(VET_WORKER, { workerData: { backend: mod.backend, frontend: mod.frontend } });
  let timer: NodeJS.Timeout | undefined;
  try {
    const reply = await new Promise<Reply>((resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `plugin ${mod.name}: its modules did not finish loading within ${timeoutMs} ms (top-level code that never settles or never stops): refused, no domain has run it`,
            ),
          ),
        timeoutMs,
      );
      w.once('message', (m: Reply) => resolve(m));
      w.once('error', (e) => reject(new Error(`plugin ${mod.name}: loading its modules failed: ${e.message}`)));
      // Exit code 13: Node ended the worker on a top-level await left with nothing that could settle it.
      w.once('exit', (code) =>
        reject(
          new Error(
            code === 13
              ? `plugin ${mod.name}: its modules' top-level code awaits something that never settles: refused, no domain has run it`
              : `plugin ${mod.name}: the worker vetting it exited (code ${code}) before answering: refused, no domain has run it`,
          ),
        ),
      );
    });
    if (!reply.ok) throw new Error(`plugin ${mod.name}: loading its modules failed: ${reply.error}`);
    const b = reply.out!.backend!;
    if (!b.createBackend) throw new Error(`plugin ${mod.name}: ${mod.backend} exports no createBackend function`);
    if (b.problems.length) throw new Error(`plugin ${mod.name}: bad manifest: ${b.problems.join('; ')}`);
    if (b.features.includes('vif') && mod.frontend && !reply.out!.frontend?.createFrontend)
      throw new Error(`plugin ${mod.name}: ${mod.frontend} exports no createFrontend function`);
    return { name: b.name ?? mod.name, features: b.features };
  } finally {
    clearTimeout(timer);
    await w.terminate();
  }
}
