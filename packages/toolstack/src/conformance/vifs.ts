/**
 * Where each guest vif stands with the plugin, from both ends: dom0's accel
 * manager (which plugin has the vif) and the guest's accel host (whether the
 * plugin's frontend got its offer, and whether it says it is ready). The
 * checks wait on these views and, when a wait runs out, report them.
 */
import { dom0Stats, guestStatsIfAny, type StatsTree } from '../stats.ts';
import type { Simulation } from '../simulation.ts';
import type { CheckContext } from './types.ts';

/** One guest vif as both ends see it. */
export interface VifView {
  /** host/domain vifN */
  label: string;
  host: string;
  /** dom0's key for it: domid/handle. */
  key: string;
  /** The plugin dom0 has the vif on, null for the slow path. */
  backend: string | null;
  /** The plugin whose frontend the guest runs on this vif now (it had its offer), null for none. */
  frontend: string | null;
  /** What the frontend's own stats say of `ready`, if it reports it. */
  ready: boolean | undefined;
  draining: boolean | undefined;
  lastError: string | null;
}

/** Every vif of every running guest. */
export function vifViews(sim: Simulation, s: StatsTree): VifView[] {
  const out: VifView[] = [];
  for (const d of sim.domains) {
    if (d.domid === 0 || d.crashed || d.hung) continue;
    const g = guestStatsIfAny(s, { host: d.host, domain: d.name });
    if (!g) continue;
    const dom0 = dom0Stats(s, d.host);
    for (const v of g.vifs) {
      const key = `${g.domid}/${v.handle}`;
      const cur = v.accel?.current as Record<string, unknown> | null | undefined;
      out.push({
        label: `${d.host}/${d.name} vif${v.handle}`,
        host: d.host,
        key,
        backend: dom0.accel.vifs[key] ?? null,
        frontend: v.accel?.plugin ?? null,
        ready: typeof cur?.ready === 'boolean' ? cur.ready : undefined,
        draining: typeof cur?.draining === 'boolean' ? cur.draining : undefined,
        lastError: v.accel?.lastError ?? null,
      });
    }
  }
  return out;
}

/** Why a vif is not attached to `name` and ready, or undefined if it is. */
function notAttached(v: VifView, name: string): string | undefined {
  const err = v.lastError ? `; its frontend's last error: ${v.lastError}` : '';
  if (v.backend !== name) return `${v.label}: dom0 has it on ${v.backend ?? 'the slow path'}, not ${name}${err}`;
  if (v.frontend !== name) return `${v.label}: dom0 attached it, but the guest's ${name} frontend never had its offer (newDevice)${err}`;
  if (v.ready === false) return `${v.label}: the ${name} frontend had its offer but says it is not ready${err}`;
  return undefined;
}

/** Vifs on `hosts` not attached to the plugin with a ready frontend, each with why. */
export function attachProblems(ctx: CheckContext, s: StatsTree, hosts = ctx.hosts): string[] {
  return vifViews(ctx.sim, s)
    .filter((v) => hosts.includes(v.host))
    .map((v) => notAttached(v, ctx.plugin.name))
    .filter((x): x is string => x !== undefined);
}

/**
 * Vifs the plugin still holds, each with what is missing: a vif whose
 * frontend drained (netfront took it off) but dom0 still counts is waiting for
 * the backend's ctx.detached(vif); one whose frontend is still on is waiting
 * for it to drain.
 */
export function detachProblems(name: string, views: readonly VifView[]): string[] {
  const out: string[] = [];
  for (const v of views) {
    if (v.backend === name && v.frontend !== name)
      out.push(`${v.label} (dom0 ${v.key}): its frontend drained, but the backend never called ctx.detached(vif) (in detachVif, or when 'drained' came)`);
    else if (v.backend === name)
      out.push(
        `${v.label} (dom0 ${v.key}): its frontend never drained (remove() did not return true${v.draining === false ? '; it never saw detach from its backend' : ''}), so the backend never finished detaching it`,
      );
    else if (v.frontend === name) out.push(`${v.label}: dom0 let go of it, but the guest still runs the ${name} frontend`);
  }
  return out;
}

/** `name` is loaded on these hosts, per dom0's stats (with whether it is stuck unloading). */
export function loadedOn(s: StatsTree, hosts: readonly string[], name: string): { host: string; unloading: boolean }[] {
  const out: { host: string; unloading: boolean }[] = [];
  for (const h of hosts) {
    const p = dom0Stats(s, h).accel.plugins[name];
    if (p) out.push({ host: h, unloading: p.unloading === true });
  }
  return out;
}
