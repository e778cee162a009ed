/**
 * What a plugin holds, counted from outside: each guest's free frames and
 * grant refs (a vif plugin's frontend takes DMA pages and grants them), and
 * each NIC's running VIs and filters (its backend takes them). Read before the
 * plugin is first loaded and again after it is unloaded: a plugin gone must
 * have given everything back.
 */
import { fabricStats, guestStatsIfAny, type StatsTree } from '../stats.ts';
import type { Simulation } from '../simulation.ts';

export interface Resources {
  guests: Map<string, { frames: number; grants: number }>;
  nics: Map<string, { vis: number; filters: number }>;
}

export function resources(sim: Simulation, s: StatsTree): Resources {
  const out: Resources = { guests: new Map(), nics: new Map() };
  for (const d of sim.domains) {
    if (d.domid === 0) continue;
    const g = guestStatsIfAny(s, { host: d.host, domain: d.name });
    if (g) out.guests.set(`${d.host}/${d.name}`, { frames: g.freeFrames, grants: g.freeGrants });
  }
  const f = fabricStats(s);
  for (const [i, h] of sim.hosts.entries()) {
    const n = f.nics[i];
    if (n) out.nics.set(h.spec.name, { vis: Object.values(n.vis).filter((v) => v.running).length, filters: n.filters });
  }
  return out;
}

/** What `now` holds beyond `base`, one line per guest or NIC (empty: nothing). */
export function leaks(base: Resources, now: Resources): string[] {
  const out: string[] = [];
  for (const [g, b] of base.guests) {
    const n = now.guests.get(g);
    if (!n) continue;
    const parts = [b.frames > n.frames ? `${b.frames - n.frames} frames` : '', b.grants > n.grants ? `${b.grants - n.grants} grant refs` : ''].filter(Boolean);
    if (parts.length)
      out.push(`${g} has ${parts.join(' and ')} fewer free than before the plugin was loaded (its frontend's release() did not give them back)`);
  }
  for (const [h, b] of base.nics) {
    const n = now.nics.get(h);
    if (!n) continue;
    if (n.vis > b.vis) out.push(`${h}'s NIC has ${n.vis - b.vis} more VIs running than before the plugin was loaded`);
    if (n.filters > b.filters) out.push(`${h}'s NIC has ${n.filters - b.filters} more filters than before the plugin was loaded`);
  }
  return out;
}
