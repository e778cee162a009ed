/**
 * Everything a guest, a vif or a plugin can hold that must come back when it
 * goes (as test/lifecycle.test.ts counts it): xenstore nodes, watches and
 * transactions, event-channel ports, dom0's grant mappings, VIs and filters
 * on the NICs, bridge ports and pinned MACs, live vifs, plugin channels, dom0's
 * free skbs; and xenstore's view of which domains exist, against the toolstack's.
 */
import type { Simulation } from '@xsim/toolstack';

export type Holdings = Record<string, unknown>;

export async function holdings(sim: Simulation): Promise<Holdings> {
  const fabric = await sim.fabricStats();
  const out: Holdings = {};
  for (const h of sim.hosts) {
    const d0 = await sim.dom0Stats(h.spec.name);
    const nic = fabric.nics[h.index];
    out[h.spec.name] = {
      xenstore: h.xenstore.usage(),
      evtchn: h.hv.usage(),
      grantMappings: d0.grantMappings,
      visRunning: Object.values(nic.vis).filter((v) => v.running).length,
      filters: nic.filters,
      bridgePorts: d0.bridge.ports,
      fdbStatic: d0.bridge.fdb.filter((e) => e.static).length,
      vifsLive: Object.values(d0.vifs).filter((v) => !('removed' in v)).length,
      accelChannels: Object.keys(d0.accel.vifs).length,
      skbsFree: d0.skbsFree,
    };
  }
  out.switchMacs = fabric.switches.map((s) => s.macs);
  return out;
}

/** Where two holdings differ, leaf by leaf. */
export function diffHoldings(before: unknown, after: unknown, path = ''): string[] {
  if (typeof before === 'object' && before !== null && typeof after === 'object' && after !== null) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys].flatMap((k) => diffHoldings((before as Record<string, unknown>)[k], (after as Record<string, unknown>)[k], path ? `${path}.${k}` : k));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [`${path}: ${JSON.stringify(before)} at the start, ${JSON.stringify(after)} now`];
}

/** xenstore names exactly the domains the toolstack runs: /local/domain/<domid> and dom0's vif backends. */
export function xenstoreDomains(sim: Simulation): string[] {
  const bad: string[] = [];
  for (const h of sim.hosts) {
    const host = h.spec.name;
    const live = sim.domains
      .filter((d) => d.host === host)
      .map((d) => String(d.domid))
      .sort();
    const nodes = [...(h.xenstore.directory(0, '/local/domain') ?? [])].sort();
    if (JSON.stringify(nodes) !== JSON.stringify(live)) bad.push(`${host}: /local/domain has ${nodes.join(',')}; running: ${live.join(',')}`);
    const backends = [...(h.xenstore.directory(0, '/local/domain/0/backend/vif') ?? [])].sort();
    const guests = live.filter((d) => d !== '0');
    if (JSON.stringify(backends) !== JSON.stringify(guests))
      bad.push(`${host}: dom0's vif backends are for ${backends.join(',')}; guests: ${guests.join(',')}`);
  }
  return bad;
}
