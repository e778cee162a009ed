/**
 * The conformance runner: start a deterministic simulation (or use the
 * caller's), vet the plugin to learn its features, then take it through every
 * check in order, a row each: PASS, FAIL with what went wrong and where, or
 * SKIP with why. Between checks it watches the plugin's health (a hook that
 * threw, a vif it failed: the check that saw it fails, naming the hook). It
 * leaves no plugin loaded, and shuts down a simulation it started.
 */
import { pluginModules } from '@xsim/accel-plugins';
import { nicAlias } from '@xsim/nic';
import { vetPlugin } from '../plugins/vet.ts';
import { Simulation } from '../simulation.ts';
import { NIC_MODELS, defaultTopology, type NicModelName } from '../topo/index.ts';
import type { DomainRef } from '../domain-ref.ts';
import { attachCheck } from './checks/attach.ts';
import { handshakeCheck } from './checks/handshake.ts';
import { interceptCheck } from './checks/intercept.ts';
import { linkCheck } from './checks/link.ts';
import { loadCheck } from './checks/load.ts';
import { migrateCheck } from './checks/migrate.ts';
import { mtuCheck } from './checks/mtu.ts';
import { resetCheck } from './checks/reset.ts';
import { swapCheck } from './checks/swap.ts';
import { trafficCheck } from './checks/traffic.ts';
import { unloadCheck } from './checks/unload.ts';
import { throwsCheck } from './checks/throws.ts';
import { quotaCheck } from './checks/quota.ts';
import { detachCheck } from './checks/detach.ts';
import { health, newTrouble, unloadEverywhere } from './plugin-state.ts';
import { resources } from './resources.ts';
import {
  fail,
  skip,
  type Check,
  type CheckContext,
  type CheckResult,
  type ConformanceOptions,
  type ConformanceReport,
  type PluginUnderTest,
  type Verdict,
} from './types.ts';

/** Every check, in the order the suite runs them. */
export const CHECKS: readonly Check[] = [
  loadCheck,
  handshakeCheck,
  attachCheck,
  trafficCheck,
  interceptCheck,
  unloadCheck,
  swapCheck,
  resetCheck,
  linkCheck,
  mtuCheck,
  migrateCheck,
  quotaCheck,
  throwsCheck,
  detachCheck,
];

export const CHECK_IDS: readonly string[] = CHECKS.map((c) => c.id);

/** One check, timed, its verdict amended by any trouble the plugin caused meanwhile. */
async function runOne(check: Check, ctx: CheckContext): Promise<Verdict> {
  const before = health(ctx, await ctx.sim.stats());
  let v: Verdict;
  try {
    v = await check.run(ctx);
  } catch (e) {
    v = { status: 'fail', reason: e instanceof Error ? e.message : String(e) };
  }
  const trouble = newTrouble(before, health(ctx, await ctx.sim.stats()));
  if (trouble.length === 0 || check.ownTrouble) return v;
  const t = trouble.join('; ');
  return { status: 'fail', reason: v.status === 'fail' ? `${t}; then: ${v.reason}` : t };
}

/** Where a check stands before it runs: skipped, with why, or undefined to run it. */
function skipReason(check: Check, ctx: CheckContext, o: ConformanceOptions, loadFailed: string | null): string | undefined {
  if (o.only && !o.only.includes(check.id)) return 'not asked for (--only)';
  if (ctx.wedged && !check.always) return `not run: ${ctx.wedged}`;
  if (loadFailed && check.id !== 'load') return 'not run: the plugin did not load';
  return check.skip?.(ctx);
}

/**
 * The checks' context for `plugin` on `sim`. The stream's ends are the
 * caller's, or by default the first guest (by name) of the first host and of
 * the second: by name, since a guest that migrated away and back is listed
 * last in its host's guests.
 */
function context(sim: Simulation, plugin: PluginUnderTest, o: ConformanceOptions): CheckContext {
  const first = (i: number): DomainRef => {
    const h = sim.topology.hosts[i];
    const name = h?.domUs.map((d) => d.name).sort()[0];
    if (!h || name === undefined)
      throw new Error(`the conformance suite needs two hosts with a guest each; host ${i + 1} of the topology has ${h ? 'no guest' : 'not been given'}`);
    return { host: h.name, domain: name };
  };
  const from = o.from ?? first(0);
  const to = o.to ?? first(1);
  for (const end of [from, to]) sim.domain(end);
  return {
    sim,
    plugin,
    partner: o.partner ?? (plugin.name === 'null' ? 'vnic' : 'null'),
    from,
    to,
    hosts: sim.topology.hosts.map((h) => h.name),
    frames: o.frames ?? 12_000,
    deadlineMs: o.deadlineMs ?? 10_000,
    loaded: false,
    accelerated: false,
    loadReplies: [],
    baseline: null,
    wedged: null,
  };
}

/** The plugin as found from `target` (its name is its directory's, as the loader names it), or why it cannot be found. */
function locate(target: string, args: Record<string, unknown>): PluginUnderTest | string {
  try {
    const mods = pluginModules(target);
    return { target, name: mods.name, backend: mods.backend, frontend: mods.frontend, version: null, features: [], args };
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Every check in order on `ctx`, a row each (told to `onResult` as it comes). */
async function runChecks(ctx: CheckContext, o: ConformanceOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  let loadFailed: string | null = null;
  for (const check of CHECKS) {
    const c0 = Date.now();
    const why = skipReason(check, ctx, o, loadFailed);
    const verdict: Verdict = why !== undefined ? { status: 'skip', reason: why } : await runOne(check, ctx);
    if (check.id === 'load' && verdict.status === 'fail') loadFailed = verdict.reason;
    const r: CheckResult = { id: check.id, title: check.title, ...verdict, ms: Date.now() - c0 };
    results.push(r);
    o.onResult?.(r);
  }
  return results;
}

/** The report of a plugin that could not even be found: its load fails with why, nothing else runs. */
function notFound(target: string, why: string, o: ConformanceOptions): CheckResult[] {
  return CHECKS.map((c) => {
    const r: CheckResult = { id: c.id, title: c.title, ...(c.id === 'load' ? fail(why) : skip('not run: the plugin did not load')), ms: 0 };
    o.onResult?.(r);
    return r;
  });
}

/** Take the plugin `target` (a bundled name or a plugin directory) through the conformance suite. */
export async function runConformance(target: string, o: ConformanceOptions = {}): Promise<ConformanceReport> {
  const t0 = Date.now();
  const found = locate(target, o.args ?? {});
  const own = o.sim === undefined;
  const seed = own ? (o.seed ?? 1) : null;
  const report = (plugin: { name: string; version: string | null; features: readonly string[] }, results: CheckResult[]): ConformanceReport => ({
    target,
    plugin: plugin.name,
    version: plugin.version,
    features: [...plugin.features],
    seed,
    results,
    passed: results.every((r) => r.status !== 'fail'),
    ms: Date.now() - t0,
  });
  if (typeof found === 'string') return report({ name: target, version: null, features: [] }, notFound(target, found, o));
  const sim = o.sim ?? (await Simulation.start(defaultTopology({ nics: await nicsFor(found) }), { deterministic: { seed: seed ?? 1 }, log: () => {} }));
  try {
    const ctx = context(sim, found, o);
    ctx.baseline = resources(sim, await sim.stats());
    const results = await runChecks(ctx, o);
    if (!ctx.wedged) await cleanUp(ctx);
    found.version ??= versionOf(ctx.loadReplies);
    return report(found, results);
  } finally {
    if (own) await sim.shutdown();
  }
}

/**
 * The NIC model of both hosts of the suite's own simulation: the first model
 * (the VI NIC first) whose alias the plugin's manifest matches. A plugin that
 * cannot be vetted gets the default; the load check says why it fails.
 */
async function nicsFor(p: PluginUnderTest): Promise<[NicModelName, NicModelName]> {
  try {
    const { matches } = await vetPlugin({ name: p.name, backend: p.backend, frontend: p.frontend }, 10_000, p.args);
    const fits = (m: NicModelName) => matches.includes('*') || matches.includes(nicAlias(NIC_MODELS[m].vendor, NIC_MODELS[m].device));
    const model = (Object.keys(NIC_MODELS) as NicModelName[]).find(fits) ?? 'vi';
    return [model, model];
  } catch {
    return ['vi', 'vi'];
  }
}

/** The version the hosts answered the load with. */
function versionOf(replies: unknown[]): string | null {
  const v = (replies[0] as { version?: unknown } | undefined)?.version;
  return typeof v === 'string' ? v : null;
}

/** No plugin of the suite's left loaded (on a caller's simulation it must be as it was given). */
async function cleanUp(ctx: CheckContext): Promise<void> {
  for (const name of new Set([ctx.plugin.name, ctx.partner])) await unloadEverywhere(ctx, name).catch(() => {});
}
