/**
 * Management of a running simulation, in the style of iproute2's `vdpa` and
 * Xen's `xl`: management devices (the NICs), devices (the guests' vifs), their
 * features and counters, and accelerator plugins. Each operation reads or acts
 * on a Simulation and returns plain data; the control socket carries them and
 * `xsim mgmtdev|dev|plugin` print them.
 */
import { devSetOffloads, setsOffloads } from './manage-offloads.ts';
import type { Simulation } from './simulation.ts';
import { vifHandles } from './hotplug.ts';
import { rmTree } from './host.ts';
import { parseXlRate, rateNode } from './topo/rate.ts';
import { dom0StatsIfAny, guestStatsIfAny } from './stats.ts';
import type { MgmtDev, Dev, DevLimits, ManageProtocol, PluginView } from './manage-ops.ts';
import type { OpArgs, OpName, OpReply } from '@xsim/hypervisor';

export type { MgmtDev, Dev, PluginView };
import { VIF_KEY, vifBackendPath, vifFrontendPath } from '@xsim/hypervisor';

type Json = Record<string, unknown>;

function parseDev(sim: Simulation, dev: string): { host: string; domain: string; vif: number } {
  const parts = dev.split('/');
  const [host, domain, vif = 'vif0'] = parts;
  const m = /^vif(\d+)$/.exec(vif);
  const devices = () =>
    sim.domains
      .filter((d) => d.domid !== 0)
      .map((d) => `${d.host}/${d.name}`)
      .join(', ');
  if (parts.length > 3 || !host || !domain || !m) throw new Error(`device "${dev}" is not HOST/DOMU[/vifN] (guests: ${devices()})`);
  if (domain === 'dom0' || domain === 'Domain-0')
    throw new Error(`${host}/${domain} is dom0: it has no vif of its own (a device is a guest's vif, HOST/DOMU[/vifN]; guests: ${devices()})`);
  sim.domain({ host, domain }); // throws, naming what exists, if there is no such domain
  return { host, domain, vif: Number(m[1]) };
}

export async function mgmtdevList(sim: Simulation): Promise<MgmtDev[]> {
  const fabric = await sim.fabricStats();
  return sim.hosts.map((h, i) => {
    const hw = fabric.nics[i];
    const nic = h.spec.nic;
    return {
      name: hw?.name ?? `${h.spec.name}-nic`,
      host: h.spec.name,
      alias: `nic:${nic.vendor}-${nic.device}`,
      mac: nic.mac,
      // The hardware's MTU now (mgmtdev set changes it), the topology's before the NIC answered.
      mtu: hw?.mtu ?? nic.mtu,
      link: hw?.link ?? 'unknown',
      vis: nic.vis,
      visInUse: Object.values(hw?.vis ?? {}).filter((v) => v.running).length,
      vifs: h.spec.domUs.reduce((n, d) => n + d.vifs.length, 0),
      vifsFree: Math.max(0, nic.vis - 1 - h.spec.domUs.reduce((n, d) => n + d.vifs.length, 0)),
      filters: hw?.filters ?? 0,
    };
  });
}

/** A NIC by its management-device name or its host's name. */
async function mgmtdevHost(sim: Simulation, dev: string): Promise<MgmtDev> {
  const all = await mgmtdevList(sim);
  const m = all.find((x) => x.name === dev || x.host === dev);
  if (!m) throw new Error(`no management device "${dev}" (have: ${all.map((x) => `${x.name} (${x.host})`).join(', ')})`);
  return m;
}

/** mgmtdev set: the link, the MTU or a reset, through dom0's primary driver as `ip link` and `ethtool -r` would. */
export async function mgmtdevSet(sim: Simulation, a: OpArgs<ManageProtocol, 'mgmtdev.set'>): Promise<OpReply<ManageProtocol, 'mgmtdev.set'>> {
  const m = await mgmtdevHost(sim, a.dev);
  const given = (['link', 'mtu', 'reset'] as const).filter((k) => a[k] !== undefined);
  if (given.length !== 1) throw new Error(`mgmtdev.set takes exactly one of link, mtu, reset (got ${given.length ? given.join(', ') : 'none'})`);
  if (a.link !== undefined) return { mgmtdev: m.name, host: m.host, done: `link ${a.link}`, result: await sim.setLink(m.host, a.link === 'up') };
  if (a.mtu !== undefined) return { mgmtdev: m.name, host: m.host, done: `mtu ${a.mtu}`, result: await sim.setMtu(m.host, a.mtu) };
  return { mgmtdev: m.name, host: m.host, done: 'reset', result: await sim.nicReset(m.host) };
}

/**
 * Every guest's vifs, as xl network-list shows them, from what dom0 knows: the
 * toolstack's own records (handles, MAC, IP), the backend's directory it made
 * (never the guest-writable `backend` key: a guest could point its row at
 * another vif's backend), dom0's view of which plugin accelerates each vif,
 * and, for what only the guest publishes (its state, event channel and ring
 * refs), its own frontend keys, read as the guest's claims.
 */
export async function devList(sim: Simulation): Promise<Dev[]> {
  const out: Dev[] = [];
  for (const host of sim.hostNames()) {
    const h = sim.host(host);
    const accel = await sim
      .request({ host, domain: 'dom0' }, 'plugin_list', {}, 5000)
      .then((r) => (r as { vifs?: Record<string, string | null> }).vifs ?? {})
      .catch(() => ({}) as Record<string, string | null>);
    for (const d of sim.domains) {
      if (d.domid === 0 || d.host !== host) continue;
      const spec = h.spec.domUs.find((u) => u.name === d.name);
      vifHandles(h, d.domid).forEach((handle, at) => {
        const fe = vifFrontendPath(d.domid, handle);
        const be = vifBackendPath(0, d.domid, handle);
        const num = (path: string): number | null => {
          const x = h.xenstore.read(0, path);
          return x !== undefined && /^\d+$/.test(x) ? Number(x) : null;
        };
        out.push({
          dev: `${d.host}/${d.name}/vif${handle}`,
          domid: d.domid,
          handle,
          backendId: 0,
          mac: spec?.vifs[at]?.mac ?? '',
          ip: spec?.vifs[at]?.ip ?? '',
          state: num(`${fe}/${VIF_KEY.state}`) ?? 0,
          backendState: num(`${be}/${VIF_KEY.state}`) ?? 0,
          evtchn: num(`${fe}/${VIF_KEY.eventChannel}`) ?? num(`${fe}/${VIF_KEY.eventChannelTx}`),
          evtchnRx: num(`${fe}/${VIF_KEY.eventChannelRx}`),
          txRingRef: num(`${fe}/${VIF_KEY.txRingRef}`),
          rxRingRef: num(`${fe}/${VIF_KEY.rxRingRef}`),
          backendPath: be,
          accel: accel[`${d.domid}/${handle}`] ?? null,
        });
      });
    }
  }
  return out;
}

/**
 * Counters of one vif from both ends: the guest's netfront and dom0's
 * netback; with `qidx`, queue qidx's own at each end (vdpa dev vstats
 * show DEV qidx N), refused when the vif has no such queue.
 */
export async function devStats(sim: Simulation, dev: string, qidx?: number): Promise<{ dev: string; frontend: Json; backend: Json }> {
  const { host, domain, vif } = parseDev(sim, dev);
  const d = sim.domain({ host, domain });
  const stats = await sim.stats();
  const fe = (guestStatsIfAny(stats, { host, domain })?.vifs ?? []).find((v) => v.handle === vif);
  if (!fe) throw new Error(`${host}/${domain} has no vif${vif}`);
  const be = dom0StatsIfAny(stats, host)?.vifs[`vif${d.domid}.${vif}`];
  const name = `${host}/${domain}/vif${vif}`;
  if (qidx === undefined) return { dev: name, frontend: fe, backend: be ?? {} };
  const n = fe.queues.length;
  if (qidx >= n)
    throw new Error(`${name} has ${n === 0 ? 'no queues (not connected)' : `${n} queue${n === 1 ? '' : 's'} (qidx 0${n > 1 ? `..${n - 1}` : ''})`}`);
  return { dev: name, frontend: fe.queues[qidx], backend: be?.queues[qidx] ?? {} };
}

/** The feature-* keys each end published in xenstore (what the handshake negotiated). */
export function devFeatures(sim: Simulation, dev: string): { dev: string; frontend: Record<string, string>; backend: Record<string, string> } {
  const { host, domain, vif } = parseDev(sim, dev);
  const d = sim.domain({ host, domain });
  const xs = sim.hosts.find((h) => h.spec.name === host)!.xenstore;
  const features = (path: string) => {
    const out: Record<string, string> = {};
    for (const k of xs.directory(0, path) ?? []) if (k.startsWith('feature-')) out[k] = xs.read(0, `${path}/${k}`) ?? '';
    return out;
  };
  return {
    dev: `${host}/${domain}/vif${vif}`,
    frontend: features(vifFrontendPath(d.domid, vif)),
    backend: features(vifBackendPath(0, d.domid, vif)),
  };
}

/** A vif's limits/* keys as its backend directory has them now. */
function devLimits(sim: Simulation, host: string, be: string): DevLimits {
  const xs = sim.host(host).xenstore;
  const num = (key: string): number | undefined => {
    const v = xs.read(0, `${be}/${key}`);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const out: DevLimits = {};
  const f = num(VIF_KEY.maxFilters);
  const b = num(VIF_KEY.maxBufPages);
  if (f !== undefined) out.maxFilters = f;
  if (b !== undefined) out.maxBufPages = b;
  return out;
}

/** `dev set DEV rate unlimited`: the rate node removed, as a vif configured without rate= has none. */
export const RATE_UNLIMITED = 'unlimited';

/**
 * dev set: a vif's rate limit (xl's rate=, written as the backend's rate
 * node, which netback watches), and its accelerator limits, written where the 2007 accelerator
 * read them (limits/max-filters, limits/max-buf-pages in the vif's backend
 * directory, which dom0 owns); the plugin's backend watches them and applies
 * a change at once (vnic evicts down to a lowered max-filters). The
 * toolstack's record of the vif keeps them, so a migration writes them at the
 * destination too.
 */
export function devSet(sim: Simulation, a: OpArgs<ManageProtocol, 'dev.set'>): OpReply<ManageProtocol, 'dev.set'> {
  const { host, domain, vif } = parseDev(sim, a.dev);
  const d = sim.domain({ host, domain });
  const h = sim.host(host);
  const at = vifHandles(h, d.domid).indexOf(vif);
  if (at < 0) throw new Error(`${host}/${domain} has no vif${vif}`);
  if (a.maxFilters === undefined && a.maxBufPages === undefined && a.rate === undefined && !setsOffloads(a))
    throw new Error('dev.set: give max-filters, max-buf-pages, rate and/or csum');
  // Checked before anything is written: a bad rate changes nothing (xl's message: "invalid rate in `10Mbit'").
  const rate = a.rate === undefined || a.rate === RATE_UNLIMITED ? a.rate : rateNode(parseXlRate(a.rate));
  const be = vifBackendPath(0, d.domid, vif);
  if (h.xenstore.read(0, be) === undefined) throw new Error(`${host}/${domain}/vif${vif} has no backend directory (${be}): it is being removed`);
  const spec = h.spec.domUs.find((u) => u.name === domain)?.vifs[at];
  if (a.maxFilters !== undefined) h.xenstore.write(0, `${be}/${VIF_KEY.maxFilters}`, String(a.maxFilters));
  if (a.maxBufPages !== undefined) h.xenstore.write(0, `${be}/${VIF_KEY.maxBufPages}`, String(a.maxBufPages));
  // The rate node netback watches: a new limit applies at once (xen_net_rate_changed); none is unlimited.
  if (rate === RATE_UNLIMITED) rmTree(h.xenstore, `${be}/${VIF_KEY.rate}`);
  else if (rate !== undefined) h.xenstore.write(0, `${be}/${VIF_KEY.rate}`, rate);
  if (spec && (a.maxFilters !== undefined || a.maxBufPages !== undefined))
    spec.limits = {
      ...spec.limits,
      ...(a.maxFilters !== undefined ? { maxFilters: a.maxFilters } : {}),
      ...(a.maxBufPages !== undefined ? { maxBufPages: a.maxBufPages } : {}),
    };
  if (spec && a.rate !== undefined) {
    if (a.rate === RATE_UNLIMITED) delete spec.rate;
    else spec.rate = a.rate;
  }
  return { dev: `${host}/${domain}/vif${vif}`, backendPath: be, limits: devLimits(sim, host, be), rate: h.xenstore.read(0, `${be}/${VIF_KEY.rate}`) ?? null };
}

export async function pluginList(sim: Simulation): Promise<PluginView[]> {
  const stats = await sim.stats();
  const out: PluginView[] = [];
  for (const h of sim.hosts) {
    const accel = dom0StatsIfAny(stats, h.spec.name)?.accel;
    for (const [name, p] of Object.entries(accel?.plugins ?? {})) {
      // Which vifs a plugin holds is netback's view (the plugin's own stats may use the same names).
      const vifs = Object.values(accel?.vifs ?? {}).filter((x) => x === name).length;
      out.push({ host: h.spec.name, name, version: String(p.version), vifs, unloading: p.unloading === true });
    }
  }
  return out;
}

function guestRef(sim: Simulation, dev: string, withVif: boolean): { ref: { host: string; domain: string }; handle: number } {
  if (withVif) {
    const p = parseDev(sim, dev);
    if (!/\/vif\d+$/.test(dev)) throw new Error(`device "${dev}" is not HOST/DOMU/vifN: name the vif to delete`);
    return { ref: { host: p.host, domain: p.domain }, handle: p.vif };
  }
  const m = /^([^/]+)\/([^/]+)$/.exec(dev);
  if (!m) throw new Error(`"${dev}" is not HOST/DOMU (the guest to add a vif to)`);
  return { ref: { host: m[1], domain: m[2] }, handle: -1 };
}

/** Every op the control socket serves, by name. */
/** A handler per op of the control socket's protocol: its arguments already checked against the op's schema. */
export type ManageHandlers = {
  [K in Exclude<OpName<ManageProtocol>, 'shutdown'>]: (sim: Simulation, args: OpArgs<ManageProtocol, K>) => Promise<OpReply<ManageProtocol, K>>;
};

export const MANAGE_OPS: ManageHandlers = {
  'mgmtdev.list': (sim) => mgmtdevList(sim),
  'mgmtdev.set': (sim, a) => mgmtdevSet(sim, a),
  'dev.list': (sim) => devList(sim),
  'dev.stats': (sim, a) => devStats(sim, a.dev, a.qidx),
  'dev.features': async (sim, a) => devFeatures(sim, a.dev),
  'dev.set': async (sim, a) => {
    const offloads = setsOffloads(a);
    const r = devSet(sim, a);
    if (!offloads) return r;
    const { host, domain, vif } = parseDev(sim, a.dev);
    const at = vifHandles(sim.host(host), sim.domain({ host, domain }).domid).indexOf(vif);
    return { ...r, offloads: await devSetOffloads(sim, { host, domain, vif, at }, a) };
  },
  'dev.add': (sim, { dev, ...vif }) => sim.addVif(guestRef(sim, dev, false).ref, vif),
  'dev.del': (sim, a) => {
    const g = guestRef(sim, a.dev, true);
    return sim.delVif(g.ref, g.handle);
  },
  'domain.list': (sim) => sim.listDomains(),
  'domain.create': (sim, { host, name, ...o }) => sim.createDomain(host, name, o),
  'domain.shutdown': (sim, a) => sim.shutdownDomain(a),
  'domain.destroy': (sim, a) => sim.destroyDomain(a),
  'domain.save': (sim, a) => sim.saveDomain({ host: a.host, domain: a.domain }, a.file),
  'domain.restore': (sim, a) => sim.restoreDomain(a.file, a.host),
  'domain.migrate': (sim, a) => sim.migrateDomain({ host: a.host, domain: a.domain }, a.to, { live: a.live === true }),
  'capture.list': (sim) => sim.captureTaps(),
  'capture.start': (sim, a) => sim.captureStart(a.specs, { file: a.file, ...(a.snaplen !== undefined ? { snaplen: a.snaplen } : {}) }),
  'capture.stop': (sim) => sim.captureStop(),
  'trace.start': (sim, a) => sim.traceStart({ file: a.file, ...(a.sample !== undefined ? { sample: a.sample } : {}) }),
  'trace.stop': (sim) => sim.traceStop(),
  'plugin.list': (sim) => pluginList(sim),
  'plugin.load': (sim, a) => sim.loadPlugin(a.name, { host: a.host, args: a.args ?? {} }),
  'plugin.unload': (sim, a) => sim.unloadPlugin(a.name, { host: a.host }),
};
