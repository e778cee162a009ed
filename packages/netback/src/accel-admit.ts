/**
 * What a plugin must be before the accelerator manager binds it to the NIC:
 * a module that exports createBackend, a well-formed manifest that names the
 * plugin asked for and a plugin API this host speaks, arguments its own schema
 * accepts, a NIC alias it matches, a frontend part if it accelerates vifs, and
 * at most one vif accelerator per host; then a backend object with the hooks
 * its features need and no hook the framework does not know. Each refusal
 * says which field or hook.
 */
import { hookProblems } from '@xsim/hypervisor';
import { ACCEL_BACKEND_HOOKS, FEATURE_HOOKS, type AccelBackend, type BackendModule, type PluginManifest } from './accel-api.ts';
import { PLUGIN_API_VERSION, apiVersionProblem, manifestProblems, schemaProblem } from './plugin-protocol.ts';

/** Where a plugin's modules are and what it is loaded with. */
export interface PluginSource {
  name: string;
  backendUrl: string;
  frontendUrl: string | undefined;
  args: Record<string, unknown>;
}

export function admitPlugin(src: PluginSource, mod: BackendModule, alias: string, loaded: readonly { manifest: PluginManifest }[]): PluginManifest {
  const { name, backendUrl } = src;
  const m = mod.manifest;
  if (typeof mod.createBackend !== 'function') throw new Error(`${backendUrl} is not a plugin backend: it exports no createBackend function`);
  const problems = manifestProblems(m);
  if (problems.length) throw new Error(`plugin ${name}: bad manifest: ${problems.join('; ')}`);
  if (m.name !== name) throw new Error(`module ${backendUrl} is plugin "${m.name}", not "${name}"`);
  const api = apiVersionProblem(m.api, PLUGIN_API_VERSION);
  if (api) throw new Error(`plugin ${name}: ${api}: refused`);
  if (m.args !== undefined) {
    const bad = schemaProblem(m.args, src.args);
    if (bad) throw new Error(`plugin ${name}: bad arguments: ${bad.replace(/^\(value\)/, '(args)')}`);
  }
  if (!m.matches.includes('*') && !m.matches.includes(alias)) {
    throw new Error(`plugin ${name} ${m.version} drives ${m.matches.join(', ')}; this host's NIC is ${alias}`);
  }
  if (m.features.includes('vif') && !src.frontendUrl)
    throw new Error(`plugin ${name}: a "vif" plugin needs a frontend part (frontend.ts beside backend.ts, exporting createFrontend); it has none`);
  const vifAccels = loaded.filter((p) => p.manifest.features.includes('vif'));
  if (m.features.includes('vif') && vifAccels.length > 0) {
    throw new Error(`another vif accelerator is loaded (${vifAccels.map((p) => p.manifest.name).join(', ')}): unload it first`);
  }
  return m;
}

/**
 * Every problem with the object createBackend returned: hooks missing or
 * unknown (hookProblems), and the hooks its manifest's features need (an
 * intercept plugin's rxIntercept or txIntercept, a vif plugin's attachVif,
 * detachVif and onFrontendMessage).
 */
export function backendProblems(m: PluginManifest, backend: unknown): string[] {
  const out = hookProblems(backend, ACCEL_BACKEND_HOOKS, 'backend');
  if (out.length || backend === null || typeof backend !== 'object') return out;
  const has = (h: string) => typeof (backend as Record<string, unknown>)[h] === 'function';
  for (const f of m.features) {
    const need = FEATURE_HOOKS[f];
    if ('anyOf' in need && !need.anyOf.some(has)) out.push(`backend: an "${f}" plugin needs a ${need.anyOf.join(' or ')} hook; it has neither`);
    if ('allOf' in need) for (const h of need.allOf.filter((x) => !has(x))) out.push(`backend: a "${f}" plugin needs a ${h} hook; it has none`);
  }
  return out;
}

/** Refuse a backend object the framework cannot use, naming each hook. */
export function admitBackend(name: string, m: PluginManifest, backend: unknown): AccelBackend {
  const problems = backendProblems(m, backend);
  if (problems.length) throw new Error(`plugin ${name}: createBackend returned what the loader cannot use: ${problems.join('; ')}`);
  return backend as AccelBackend;
}
