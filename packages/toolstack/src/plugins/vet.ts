/**
 * Vet a plugin before any domain imports it: its modules are imported first
 * in a throwaway worker with a deadline. A module that throws, exports the
 * wrong things, carries a bad manifest (an unknown field, a missing name, a
 * plugin API this host does not speak), takes arguments its schema refuses,
 * lacks the part or the hooks its features need, or has a hook the framework
 * does not know (vet-checks.ts), or whose top-level code never settles (an
 * await that never resolves) or never stops (a loop) is refused with a clear
 * error, and the worker, not a domain, is what gets terminated.
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PluginModules } from '@xsim/accel-plugins';
import type { VetVerdict } from './vet-checks.ts';

const VET_WORKER = new URL('./vet-worker.mjs', import.meta.url);

export interface VetResult {
  name: string;
  features: string[];
  /** The NIC aliases it drives ('*': any): a load without --host goes to the hosts whose NIC it matches. */
  matches: string[];
}

interface Reply {
  ok: boolean;
  error?: string;
  verdict?: VetVerdict;
  /** The step the worker is at (a progress message, not the answer). */
  phase?: string;
}

/**
 * A plugin module larger than this is refused before it is read: a plugin's
 * code is kilobytes, and a module of tens of megabytes (a manifest with a
 * huge table in it) would take longer to compile than vetting allows, and be
 * refused for the wrong reason.
 */
export const MAX_PLUGIN_MODULE_BYTES = 4 << 20;

/**
 * Verdicts already reached, by the modules' identity (path, size, mtime): an
 * unchanged plugin is not vetted twice. Not by its arguments: they are the
 * user's, checked against the plugin's schema in dom0 (a loader in a domain is
 * the authority anyway); a worker per load would cost a second or more each.
 */
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

/** Vet `mod`; `args` (the load's) are what its factories are called with in the worker. */
export async function vetPlugin(mod: PluginModules, timeoutMs = 10_000, args: Record<string, unknown> = {}): Promise<VetResult> {
  checkSizes(mod);
  const id = identity(mod);
  const known = vetted.get(id);
  if (known) return known;
  const r = await vetOnce(mod, timeoutMs, args);
  vetted.set(id, r);
  return r;
}

/** What a worker that never answered was stuck in, from the last step it named. */
function stuck(name: string, phase: string, timeoutMs: number): string {
  return phase.startsWith('calling ')
    ? `plugin ${name}: its ${phase.slice(8)} did not return within ${timeoutMs} ms (a factory that never returns): refused, no domain has run it`
    : `plugin ${name}: its modules did not finish loading within ${timeoutMs} ms (top-level code that never settles or never stops): refused, no domain has run it`;
}

async function vetOnce(mod: PluginModules, timeoutMs: number, args: Record<string, unknown>): Promise<VetResult> {
  const w = new Worker(VET_WORKER, { workerData: { backend: mod.backend, frontend: mod.frontend, args } });
  let timer: NodeJS.Timeout | undefined;
  let phase = 'importing';
  try {
    const reply = await new Promise<Reply>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(stuck(mod.name, phase, timeoutMs))), timeoutMs);
      w.on('message', (m: Reply) => (m.phase !== undefined ? (phase = m.phase) : resolve(m)));
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
    const v = reply.verdict!;
    if (v.refusals.length) throw new Error(`plugin ${mod.name}: ${v.refusals.join('; ')}: refused, no domain has run it`);
    return { name: v.name ?? mod.name, features: v.features, matches: v.matches };
  } finally {
    clearTimeout(timer);
    await w.terminate();
  }
}
