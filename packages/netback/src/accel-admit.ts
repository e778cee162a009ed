/**
 * What a plugin must be before the accelerator manager binds it to the NIC:
 * a module that exports createBackend, a well-formed manifest that names the
 * plugin asked for, arguments its own schema accepts, a NIC alias it matches,
 * and at most one vif accelerator per host. Each refusal says which.
 */
import { Value } from '@sinclair/typebox/value';
import type { BackendModule, PluginManifest } from './accel-api.ts';
import { manifestProblems } from './plugin-protocol.ts';

export function admitPlugin(
  name: string,
  backendUrl: string,
  mod: BackendModule,
  args: Record<string, unknown>,
  alias: string,
  loaded: readonly { manifest: PluginManifest }[],
): PluginManifest {
  const m = mod.manifest;
  if (typeof mod.createBackend !== 'function') throw new Error(`${backendUrl} is not a plugin backend: it exports no createBackend function`);
  const problems = manifestProblems(m);
  if (problems.length) throw new Error(`plugin ${name}: bad manifest: ${problems.join('; ')}`);
  if (m.name !== name) throw new Error(`module ${backendUrl} is plugin "${m.name}", not "${name}"`);
  if (m.args) {
    const e = Value.Errors(m.args, args).First();
    if (e) throw new Error(`plugin ${name}: bad arguments: ${e.path || '(args)'}: ${e.message}`);
  }
  if (!m.matches.includes('*') && !m.matches.includes(alias)) {
    throw new Error(`plugin ${name} ${m.version} drives ${m.matches.join(', ')}; this host's NIC is ${alias}`);
  }
  const vifAccels = loaded.filter((p) => p.manifest.features.includes('vif'));
  if (m.features.includes('vif') && vifAccels.length > 0) {
    throw new Error(`another vif accelerator is loaded (${vifAccels.map((p) => p.manifest.name).join(', ')}): unload it first`);
  }
  return m;
}
