/**
 * What the vetting worker judges of a plugin, in the worker (vet-worker.mjs
 * imports this once tsx is registered): everything about the plugin itself
 * that the loader in dom0 and the guest would refuse and that can be told
 * without a NIC or a guest, so that no domain ever imports a plugin it would
 * refuse. The loaders check it all again (they are the authority; this is the
 * early answer), and dom0 alone judges the load's arguments (the user's, not
 * the plugin's: the verdict is kept per plugin, whatever the arguments).
 *
 * The factories are called with a stub context whose every service throws:
 * a backend or frontend object that comes back is checked for its hooks; a
 * factory that needs its context to build the object throws, and its object
 * is left to the loader in dom0 (or the guest) to check.
 */
import { hookProblems } from '@xsim/hypervisor';
import { PLUGIN_API_VERSION, apiVersionProblem, backendProblems, manifestProblems, type PluginManifest } from '@xsim/netback';

export interface VetInput {
  backend: string;
  frontend?: string;
  /** The load's arguments: what createBackend is called with here (dom0 checks them against the plugin's schema). */
  args: Record<string, unknown>;
}

export interface VetVerdict {
  name: string | null;
  features: string[];
  /** The NIC aliases its manifest says it drives ('*': any). */
  matches: string[];
  /** Why the plugin is refused ([]: it may load), each naming the field, hook or version. */
  refusals: string[];
}

/** A context whose fields are `known` and whose every other member throws when called. */
function stubContext(what: string, known: Record<string, unknown>): object {
  return new Proxy(known, {
    get: (t, k) =>
      typeof k === 'symbol' || Object.hasOwn(t, k)
        ? (t as Record<string | symbol, unknown>)[k]
        : () => {
            throw new Error(`${what}.${k} is not available while the plugin is vetted`);
          },
  });
}

/** The object a factory makes with a stub context, or undefined if it cannot make one without a real context. */
function tryMake(make: () => unknown): unknown {
  try {
    return make();
  } catch {
    return undefined;
  }
}

export async function vetModules(w: VetInput, phase: (what: string) => void): Promise<VetVerdict> {
  phase('importing backend');
  const b = (await import(w.backend)) as { manifest?: unknown; createBackend?: unknown };
  const m = b.manifest as Partial<PluginManifest> | undefined;
  const verdict: VetVerdict = {
    name: typeof m?.name === 'string' ? m.name : null,
    features: Array.isArray(m?.features) ? m.features.filter((f) => typeof f === 'string') : [],
    matches: Array.isArray(m?.matches) ? m.matches.filter((f) => typeof f === 'string') : [],
    refusals: [],
  };
  const refuse = (why: string) => verdict.refusals.push(why);
  if (typeof b.createBackend !== 'function') refuse(`${w.backend} exports no createBackend function`);
  const problems = manifestProblems(m);
  if (problems.length) refuse(`bad manifest: ${problems.join('; ')}`);
  if (verdict.refusals.length) return verdict;
  const man = m as PluginManifest;
  const api = apiVersionProblem(man.api, PLUGIN_API_VERSION);
  if (api) refuse(api);
  const vif = man.features.includes('vif');
  if (vif && !w.frontend) refuse('a "vif" plugin needs a frontend part (frontend.ts beside backend.ts, exporting createFrontend); it has none');
  let f: { createFrontend?: unknown } | undefined;
  if (vif && w.frontend) {
    phase('importing frontend');
    f = (await import(w.frontend)) as { createFrontend?: unknown };
    if (typeof f.createFrontend !== 'function') refuse(`${w.frontend} exports no createFrontend function`);
  }
  if (verdict.refusals.length) return verdict;
  phase('calling createBackend');
  const createBackend = b.createBackend as (ctx: object, args: Record<string, unknown>) => unknown;
  const backend = tryMake(() => createBackend(stubContext('ctx', { apiVersion: PLUGIN_API_VERSION, dom0: 0 }), w.args));
  const bp = backend === undefined ? [] : backendProblems(man, backend);
  if (bp.length) refuse(`createBackend returned what the loader cannot use: ${bp.join('; ')}`);
  if (f) {
    phase('calling createFrontend');
    const createFrontend = f.createFrontend as (ctx: object) => unknown;
    const frontend = tryMake(() => createFrontend(stubContext('ctx', { apiVersion: PLUGIN_API_VERSION, domid: 1, backendDomid: 0, mac: 0, mtu: 1500 })));
    // netfront's table only when there is a frontend to judge: an intercept plugin's vet does not load the guest's package.
    const fp = frontend === undefined ? [] : hookProblems(frontend, (await import('@xsim/netfront')).ACCEL_FRONTEND_HOOKS, 'frontend');
    if (fp.length) refuse(`createFrontend returned what netfront cannot use: ${fp.join('; ')}`);
  }
  return verdict;
}
