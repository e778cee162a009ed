// A throwaway worker that imports a plugin's modules before any domain does:
// if a module's top-level code never settles or never stops, the toolstack
// terminates this worker and refuses the plugin, and no domain ever runs it.
// Workers do not inherit the TypeScript loader, so register tsx first.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { backend, frontend } = workerData;
const out = { backend: null, frontend: null };
try {
  const { manifestProblems } = await import('@xsim/netback');
  const b = await import(backend);
  out.backend = {
    createBackend: typeof b.createBackend === 'function',
    problems: manifestProblems(b.manifest),
    name: typeof b.manifest?.name === 'string' ? b.manifest.name : null,
    features: Array.isArray(b.manifest?.features) ? b.manifest.features.filter((f) => typeof f === 'string') : [],
  };
  if (frontend) {
    const f = await import(frontend);
    out.frontend = { createFrontend: typeof f.createFrontend === 'function' };
  }
  parentPort.postMessage({ ok: true, out });
} catch (e) {
  parentPort.postMessage({ ok: false, error: e instanceof Error ? e.message : String(e) });
}
