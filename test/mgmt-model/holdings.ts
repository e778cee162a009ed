/**
 * Everything a guest, a vif or a plugin can hold that must come back when it
 * goes (as test/lifecycle.test.ts counts it): xenstore nodes, watches and
 * transactions, event-channel ports, dom0's grant mappings, VIs and filters
 * on the NICs, bridge ports and pinned MACs, live vifs, plugin channels, dom0's
 * free skbs; and xenstore's view of which domains exist, against the toolstack's.
 */
import { vifHandles, type Simulation } from '@xsim/toolstack';

export type Holdings = Record<string, unknown>;

/** Nodes under a running guest's device/vif/N for an N it has no vif of (see config.ts, defect probeNodes). */
function strayFrontendNodes(sim: Simulation, h: Simulation['hosts'][number]): number {
  const count = (p: string): number => 1 + (h.xenstore.directory(0, p) ?? []).reduce((n, c) => n + count(`${p}/${c}`), 0);
  let n = 0;
  for (const d of sim.domains.filter((x) => x.host === h.spec.name && x.domid !== 0)) {
    const live = new Set(vifHandles(h, d.domid).map(String));
    for (const c of h.xenstore.directory(0, `/local/domain/${d.domid}/device/vif`) ?? [])
      if (!live.has(c)) n += count(`/local/domain/${d.domid}/device/vif/${c}`);
  }
  return n;
}

/** `strays`: count what a refused dev add may leave under the guest's device/vif (false: defect probeNodes left out). */
export async function holdings(sim: Simulation, strays = true): Promise<Holdings> {
  const fabric = await sim.fabricStats();
  const out: Holdings = {};
  for (const h of sim.hosts) {
    const d0 = await sim.dom0Stats(h.spec.name);
    const nic = fabric.nics[h.index];
    const xs = h.xenstore.usage();
    out[h.spec.name] = {
      xenstore: strays ? xs : { ...xs, nodes: xs.nodes - strayFrontendNodes(sim, h) },
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

/** Every node of each host's xenstore, by path (to name what a leak left). */
export function xenstorePaths(sim: Simulation): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const h of sim.hosts) {
    const paths = new Set<string>();
    const walk = (p: string) => {
      paths.add(p);
      for (const c of h.xenstore.directory(0, p) ?? []) walk(p === '/' ? `/${c}` : `${p}/${c}`);
    };
    walk('/');
    out.set(h.spec.name, paths);
  }
  return out;
}

/** Nodes one snapshot of xenstorePaths has and the other not, with a domain's id shown as <domid> (guests come back under new ids). */
export function xenstoreDiff(before: Map<string, Set<string>>, after: Map<string, Set<string>>): string[] {
  const norm = (p: string) => p.replace(/^\/local\/domain\/\d+/, '/local/domain/<domid>').replace(/backend\/vif\/\d+/, 'backend/vif/<domid>');
  const out: string[] = [];
  for (const [host, a] of after) {
    const b = new Map<string, number>();
    for (const p of before.get(host) ?? []) b.set(norm(p), (b.get(norm(p)) ?? 0) + 1);
    const c = new Map<string, number>();
    for (const p of a) c.set(norm(p), (c.get(norm(p)) ?? 0) + 1);
    for (const [p, n] of c) if (n > (b.get(p) ?? 0)) out.push(`${host}: +${n - (b.get(p) ?? 0)} ${p}`);
    for (const [p, n] of b) if (n > (c.get(p) ?? 0)) out.push(`${host}: -${n - (c.get(p) ?? 0)} ${p}`);
  }
  return out;
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
