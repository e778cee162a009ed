// A throwaway worker that imports a plugin's modules before any domain does:
// if a module's top-level code never settles or never stops, the toolstack
// terminates this worker and refuses the plugin, and no domain ever runs it.
// What it then judges of the plugin is vet-checks.ts's. It says which step it
// is at, so a step that never ends is named. Workers do not inherit the
// TypeScript loader, so register tsx first.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
try {
  const { vetModules } = await import('./vet-checks.ts');
  const verdict = await vetModules(workerData, (phase) => parentPort.postMessage({ phase }));
  parentPort.postMessage({ ok: true, verdict });
} catch (e) {
  parentPort.postMessage({ ok: false, error: e instanceof Error ? e.message : String(e) });
}
