/**
 * Putting the plugin on and off the hosts for the checks, each step with a
 * deadline and, when it runs out, the reason from both ends of every vif; and
 * the plugin's health between checks (a hook that threw, a vif it failed).
 */
import { dom0Stats, guestStatsIfAny, type StatsTree } from '../stats.ts';
import type { CheckContext } from './types.ts';
import { attachProblems, detachProblems, loadedOn, vifViews } from './vifs.ts';
import { DeadlineError, until, within } from './waits.ts';

const vifPlugin = (ctx: CheckContext) => ctx.plugin.features.includes('vif');

/** Wait until every vif on `hosts` is attached to the plugin with a ready frontend (vif plugins; others at once). */
export async function waitAttached(ctx: CheckContext, hosts = ctx.hosts): Promise<void> {
  if (!vifPlugin(ctx)) return;
  let problems: string[] = [];
  await until(
    ctx.sim,
    ctx.deadlineMs,
    async () => (problems = attachProblems(ctx, await ctx.sim.stats(), hosts)).length === 0,
    async () => `not every vif attached: ${problems.join('; ')}`,
  );
}

/** Load the plugin on every host (its load arguments), then (unless told not to) wait for its vifs. */
export async function loadEverywhere(ctx: CheckContext, o: { attach?: boolean } = {}): Promise<unknown[]> {
  const { sim, plugin } = ctx;
  const replies = await within(sim, sim.loadPlugin(plugin.target, { args: plugin.args }), ctx.deadlineMs, `loading ${plugin.name}`);
  ctx.loaded = true;
  if (o.attach !== false) await waitAttached(ctx);
  return replies;
}

/**
 * The plugin loaded and attached everywhere before a check starts: a check
 * before may have unloaded it, a failure taken it off a host or a vif (a vif
 * whose frontend broke stays on the slow path until the plugin is loaded
 * again), or a check that failed half-way left the partner in its place.
 */
export async function ensureLoaded(ctx: CheckContext): Promise<void> {
  const s = await ctx.sim.stats();
  if (ctx.partner !== ctx.plugin.name) for (const h of loadedOn(s, ctx.hosts, ctx.partner)) await unloadFrom(ctx, ctx.partner, h.host);
  const on = loadedOn(s, ctx.hosts, ctx.plugin.name);
  if (on.length === ctx.hosts.length) {
    ctx.loaded = true;
    // Attachments still settling (after a reset, a migration) get a moment; vifs it lost, a reload.
    const settled = await waitAttached({ ...ctx, deadlineMs: Math.min(1000, ctx.deadlineMs) }).then(
      () => true,
      () => false,
    );
    if (settled) return;
  }
  for (const h of on) await unloadFrom(ctx, ctx.plugin.name, h.host);
  await loadEverywhere(ctx);
}

/**
 * `p`, an operation on `host` that detaches the plugin's vifs there (an
 * unload, a NIC reset, a migration), within the deadline. If it does not
 * finish, the error names each vif still held and what it waits for (the
 * backend's ctx.detached, or the frontend's drain), and the suite is marked
 * wedged: the host cannot be brought back for the checks after.
 */
export async function detaching<T>(ctx: CheckContext, host: string, p: Promise<T>, what: string): Promise<T> {
  try {
    return await within(ctx.sim, p, ctx.deadlineMs, what);
  } catch (e) {
    if (!(e instanceof DeadlineError)) throw e;
    const views = vifViews(ctx.sim, await ctx.sim.stats()).filter((v) => v.host === host);
    const held = [...detachProblems(ctx.plugin.name, views), ...(ctx.partner === ctx.plugin.name ? [] : detachProblems(ctx.partner, views))];
    ctx.wedged = `${what} never finished`;
    throw new DeadlineError(`${what} did not finish within ${ctx.deadlineMs} ms: ${held.length ? held.join('; ') : 'no vif is held by the plugin'}`);
  }
}

/** Unload `name` from `host`, within the deadline (see detaching()). */
export async function unloadFrom(ctx: CheckContext, name: string, host: string): Promise<void> {
  await detaching(ctx, host, ctx.sim.unloadPlugin(name, { host }), `unloading ${name} from ${host}`);
}

/** Unload `name` from every host it is on, then check that every vif is back on the slow path at both ends. */
export async function unloadEverywhere(ctx: CheckContext, name = ctx.plugin.name): Promise<void> {
  const s = await ctx.sim.stats();
  for (const h of loadedOn(s, ctx.hosts, name)) await unloadFrom(ctx, name, h.host);
  if (name === ctx.plugin.name) ctx.loaded = false;
  let left: string[] = [];
  await until(
    ctx.sim,
    ctx.deadlineMs,
    async () => (left = detachProblems(name, vifViews(ctx.sim, await ctx.sim.stats()))).length === 0,
    async () => `after unloading ${name}, not every vif is back on the slow path: ${left.join('; ')}`,
  );
}

/** What the plugin has done wrong so far, as counted by the framework: hooks that threw, vifs it failed. */
export interface Health {
  failures: string[];
  vifFailures: string[];
  frontendErrors: Map<string, { n: number; last: string | null }>;
}

export function health(ctx: CheckContext, s: StatsTree): Health {
  const name = ctx.plugin.name;
  const h: Health = { failures: [], vifFailures: [], frontendErrors: new Map() };
  for (const host of ctx.hosts) {
    const a = dom0Stats(s, host).accel;
    for (const f of a.failures) if (f.plugin === name) h.failures.push(`${host}: the plugin was failed in ${f.hook}: ${f.error}`);
    for (const f of a.vifFailureLog) if (f.plugin === name) h.vifFailures.push(`${host} ${f.vif}: ${f.reason}`);
  }
  for (const d of ctx.sim.domains) {
    if (d.domid === 0) continue;
    for (const v of guestStatsIfAny(s, { host: d.host, domain: d.name })?.vifs ?? [])
      if (v.accel) h.frontendErrors.set(`${d.name} vif${v.handle}`, { n: v.accel.pluginErrors, last: v.accel.lastError });
  }
  return h;
}

/** What went wrong between two health readings, each naming the hook (empty: nothing). */
export function newTrouble(before: Health, after: Health): string[] {
  const fresh = (a: string[], b: string[]) => {
    // Both lists are the newest 50: what `after` has beyond the longest overlap with the end of `before`.
    const seen = new Map<string, number>();
    for (const x of b) seen.set(x, (seen.get(x) ?? 0) + 1);
    return a.filter((x) => {
      const n = seen.get(x) ?? 0;
      if (n > 0) seen.set(x, n - 1);
      return n === 0;
    });
  };
  const out = [...fresh(after.failures, before.failures), ...fresh(after.vifFailures, before.vifFailures).map((x) => `a vif failed: ${x}`)];
  for (const [k, a] of after.frontendErrors) {
    const n = a.n - (before.frontendErrors.get(k)?.n ?? 0);
    if (n > 0) out.push(`the frontend at ${k} threw ${n} time(s)${a.last ? `, last in ${a.last}` : ''}`);
  }
  return out;
}
