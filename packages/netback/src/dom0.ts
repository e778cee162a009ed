/**
 * dom0's kernel: the privileged domain of one host. It runs netback (a
 * VifBackend per guest vif), the software bridge, the NIC's primary driver
 * (VI 0) as the bridge's uplink, the accelerator plugin manager, and its own
 * small IP stack on the bridge so dom0 can be a traffic endpoint too (the
 * dom0-to-dom0 baseline).
 *
 * As the privileged domain it is handed its guests' RAM and grant tables,
 * and reaches them only through grant operations, which check the grant
 * table first.
 */
import {
  ADDR_FABRIC,
  CH,
  DEFERRED,
  FrameAllocator,
  GrantOps,
  GrantTable,
  GuestMemory,
  VIF_KEY,
  counterKinds,
  CaptureSink,
  captureClock,
  captureOp,
  vifBackendPath,
  type Addr,
  type DomainEnv,
  type DomainHandle,
  type RpcValue,
  parseLogLine,
} from '@xsim/hypervisor';
import { Driverlink, NetDriver, netDriverPages, nicAlias } from '@xsim/nic';
import { NetEndpoint } from '@xsim/netstack';
import { Bridge } from './bridge.ts';
import { DOM0_SLACK_PAGES, MIN_SKBS, SkbPool, skbPages } from './skb.ts';
import { UplinkPort } from './uplink.ts';
import { VifBackends } from './backends.ts';
import { AccelManager } from './accel.ts';
import { NicAdmin, NIC_ADMIN_OPS, type NicAdminOp } from './nic-admin.ts';
import { LocalPort } from './dom0/local-port.ts';
import { accelContext } from './dom0/accel-context.ts';
import type { AccelVif } from './accel-api.ts';
import type { VifPort } from './vif/common.ts';

/** The least RAM (pages) a dom0 runs in at an MTU: the NIC driver's RX ring, MIN_SKBS skbs, and slack. */
export function dom0MinPages(mtu: number): number {
  return netDriverPages(mtu) + MIN_SKBS * skbPages(mtu + 18) + DOM0_SLACK_PAGES;
}

/** A guest of this host, as dom0 is handed it. */
export interface Dom0Guest {
  domid: number;
  uid: Addr;
  mem: SharedArrayBuffer;
  gnttab: SharedArrayBuffer;
  /** Its vifs' handles: one plugin channel each. */
  vifs: number[];
}

export interface Dom0Config {
  mem: SharedArrayBuffer;
  gnttab: SharedArrayBuffer;
  guests: Dom0Guest[];
  mac: string;
  ip: string;
  mtu: number;
  /** This host's NIC: its PCI ids, VIs, and wake line; MCDI goes to the NIC hardware's bus address. */
  nic?: { nicWake: { sab: SharedArrayBuffer; offset: number }; mac: number; vendor: string; device: string; vis: number };
  skbs?: number;
}

export function boot(env: DomainEnv<Dom0Config>): void {
  const cfg = env.config;
  const { core, xs, evtchn, clock } = env;
  const domid = env.id.domid;
  const mem = new GuestMemory(cfg.mem);
  const frames = new FrameAllocator(mem);
  const gnttab = new GrantTable(cfg.gnttab);
  const guests = new Map<number, DomainHandle>();
  const ops = new GrantOps({ domid, mem, gnttab }, (d) => guests.get(d));
  const log: string[] = [];
  const say = (msg: string): void => {
    // The last 200 lines worth keeping (debug lines, such as each xenbus transition, only go out).
    const { level, text } = parseLogLine(msg);
    if (level !== 'debug') {
      log.push(level === 'info' ? text : `${level}: ${text}`);
      if (log.length > 200) log.shift();
    }
    env.log(msg);
  };

  const maxFrame = cfg.mtu + 18;
  // The NIC driver's RX ring comes first, then up to 2048 skbs from what is left (see dom0MinPages).
  const driverPages = cfg.nic ? netDriverPages(cfg.mtu) : 0;
  const skbCount = Math.min(cfg.skbs ?? 2048, Math.floor((frames.available - driverPages - DOM0_SLACK_PAGES) / skbPages(maxFrame)));
  if (skbCount < MIN_SKBS) throw new Error(`dom0 of ${env.id.host}: ${mem.pages} pages of RAM leave room for ${skbCount} skbs at MTU ${cfg.mtu} (at least ${MIN_SKBS}): give it at least ${dom0MinPages(cfg.mtu)} pages`);
  const skbs = new SkbPool(mem, frames, skbCount, maxFrame);
  const bridge = new Bridge(mem.u8);
  /** Capture points of this host's dom0: its vifs (backend side), the uplink (VI 0), bridge drops at their port. */
  const capture = new CaptureSink(captureClock(clock));
  const tapPoint = (name: string) => capture.tap(`${env.id.host}/${name}`);
  bridge.tap = tapPoint('bridge');
  const local = new LocalPort(skbs, bridge);
  local.portId = bridge.addPort(local);

  const nic = cfg.nic;
  let driver: NetDriver | undefined;
  let uplink: UplinkPort | undefined;
  const mcdi = nic ? env.channel(CH.mcdi, ADDR_FABRIC) : undefined;
  const driverlink = new Driverlink(() => ({
    alias: nic ? nicAlias(nic.vendor, nic.device) : 'nic:none',
    mac: nic?.mac ?? 0,
    mtu: driver?.mtu ?? cfg.mtu,
    vis: nic?.vis ?? 0,
    linkUp: driver?.linkUp ?? false,
  }));
  if (nic && mcdi) {
    driver = NetDriver.probe({ mcdi, nicWake: nic.nicWake, mem, frames, evtchn, mac: nic.mac, mtu: cfg.mtu, driverlink });
    uplink = new UplinkPort(driver, skbs, bridge, tapPoint('uplink'));
    uplink.attach();
  }

  const accel = new AccelManager({
    driverlink,
    defer: (p, then, fail) => core.defer(p, then, fail),
    writeAccelKey: (vif, plugin) => {
      const node = vifBackendPath(domid, vif.domid, vif.handle);
      const path = `${node}/${VIF_KEY.accel}`;
      // A vif whose node the toolstack removed (its domain is going) gets no key: that would re-create the node.
      if (plugin && xs.tryRead(node) !== undefined) xs.write(path, plugin);
      else if (xs.tryRead(path) !== undefined) xs.rm(path);
    },
    ctx: accelContext({ dom0: domid, driverlink, mcdi, vis: nic?.vis ?? 0, ops, evtchn, uplinkMacs: () => (uplink ? bridge.macsOn(uplink.portId) : []), log: say }),
  });
  bridge.onLearn = (mac, port) => {
    if (uplink && port === uplink.portId) accel.uplinkLearned(mac);
  };
  const accelVif = (v: VifPort): AccelVif => ({ key: v.key, domid: v.frontendDomid, handle: v.handle, mac: v.mac, ip: v.ip });

  /** A guest of this host: its memory for grant operations, a plugin channel per vif. */
  const guestUids = new Map<number, number>();
  const addChannel = (domid: number, handle: number): void => {
    accel.addChannel({ key: `${domid}/${handle}`, domid, handle, mac: 0, ip: 0 }, env.channel(CH.accel + handle, guestUids.get(domid)!));
  };
  const addGuest = (g: Dom0Guest): void => {
    guests.set(g.domid, { domid: g.domid, mem: new GuestMemory(g.mem), gnttab: GrantTable.hypervisorView(g.gnttab) });
    guestUids.set(g.domid, g.uid);
    for (const handle of g.vifs) addChannel(g.domid, handle);
  };
  /** A vif op's guest and handle, checked. */
  const vifArgs = (op: string, a: Record<string, unknown>): { domid: number; handle: number; key: string } => {
    const domid = Number(a.domid);
    const handle = Number(a.handle);
    if (!guests.has(domid)) throw new Error(`${op}: domain ${String(a.domid)} is not a guest of this host`);
    if (!Number.isInteger(handle) || handle < 0 || handle > 255) throw new Error(`${op}: handle ${String(a.handle)} is not a vif handle`);
    return { domid, handle, key: `${domid}/${handle}` };
  };
  for (const g of cfg.guests) addGuest(g);

  const backends = new VifBackends(
    {
      ops,
      evtchn,
      xs,
      skbs,
      bridge,
      maxFrame,
      log: say,
      onConnected: (v) => {
        accel.refreshVif(accelVif(v));
        accel.vifConnected(v.key);
      },
      onDisconnected: (v) => accel.vifDisconnected(v.key),
      onRxDelivered: (v, ram, addr, len) => accel.slowPathRx(v.key, ram, addr, len),
      tapPoint,
    },
    xs,
    domid,
  );
  const endpoint = new NetEndpoint({ name: `${env.id.host}/dom0`, mac: cfg.mac, ip: cfg.ip, transport: local, mtu: cfg.mtu, clock });
  local.onReceive = (ram, off, len) => endpoint.receive(ram, off, len);
  const nicAdmin = new NicAdmin(mcdi, driver, driverlink, accel);

  const stats = (): Record<string, unknown> => ({
    domid,
    name: env.id.name,
    host: env.id.host,
    bridge: { ...bridge.stats, ports: bridge.portCount, fdb: bridge.fdbEntries() },
    vifs: { ...Object.fromEntries(backends.removed), ...Object.fromEntries([...backends.vifs].map(([k, v]) => [v.name, { ...v.stats(), key: k }])) },
    uplink: uplink ? { ...uplink.stats, backlog: uplink.backlogLength() } : null,
    nic: driver ? driver.stats() : null,
    accel: accel.stats(),
    driverlink: driverlink.events.log.slice(-20),
    local: { ...local.c },
    skbsFree: skbs.available,
    grantFailures: Object.fromEntries(ops.failures),
    grantMappings: ops.activeMappings,
    endpoint: endpoint.stats(),
    core: { ...core.c, pcpu: core.pcpu },
    log: [...log],
    kinds: counterKinds(),
  });

  env.control.onRequest((op, args, later, shared) => {
    const a = (args ?? {}) as Record<string, unknown>;
    const cap = captureOp(capture, op, a, shared);
    if (cap) return cap;
    switch (op) {
      case 'stats':
        return stats();
      case 'shutdown': {
        const final = stats();
        driver?.remove();
        core.stop();
        return final;
      }
      case 'fdb':
        return bridge.fdbEntries();
      case 'guest_add': {
        // A guest created at run time (xl create): its RAM and grant table come beside the request.
        const [gm, gt] = shared;
        if (!(gm instanceof SharedArrayBuffer) || !(gt instanceof SharedArrayBuffer)) throw new Error('guest_add: the guest\'s RAM and grant table must come beside the request');
        const gid = Number(a.domid);
        if (!Number.isInteger(gid) || gid <= 0 || guests.has(gid)) throw new Error(`guest_add: domid ${String(a.domid)} is not a new guest's`);
        const vifs = Array.isArray(a.vifs) ? a.vifs.map(Number) : [];
        addGuest({ domid: gid, uid: Number(a.uid), mem: gm, gnttab: gt, vifs });
        return true;
      }
      case 'guest_remove': {
        // The guest is gone (shut down, destroyed or crashed): its vifs are removed now, counting what
        // was queued for them, its plugin channels close, and no grant operation can reach its memory.
        const gid = Number(a.domid);
        if (!guests.has(gid)) throw new Error(`guest_remove: domain ${String(a.domid)} is not a guest of this host`);
        backends.dropDomain(gid);
        for (const key of accel.channelKeys()) if (key.split('/')[0] === String(gid)) accel.removeChannel(key);
        guests.delete(gid);
        // Every removed vif of the guest by handle, however it went (this request, the watch on its
        // removed node first, or an earlier hotplug): the toolstack knows which were still its own.
        const removed = [...backends.removed.values()].filter((v) => String(v.key).split('/')[0] === String(gid)).map((v) => Number(String(v.key).split('/')[1]));
        return { removed, grantMappings: ops.activeMappings };
      }
      case 'vif_add': {
        // Hotplug (xl network-attach): the vif's plugin channel, before its xenstore nodes appear.
        const v = vifArgs(op, a);
        if (accel.channelKeys().includes(v.key)) throw new Error(`vif_add: vif${v.domid}.${v.handle} exists`);
        addChannel(v.domid, v.handle);
        return true;
      }
      case 'vif_unplug': {
        // xl network-detach: the backend closes first; the frontend follows it to Closed.
        const v = vifArgs(op, a);
        const vif = backends.vifs.get(v.key);
        if (!vif) throw new Error(`vif_unplug: no vif${v.domid}.${v.handle}`);
        vif.close();
        return true;
      }
      case 'vif_remove': {
        // Both ends closed and the nodes removed: nothing of the vif stays (its counters do).
        const v = vifArgs(op, a);
        backends.dropVif(v.key);
        accel.removeChannel(v.key);
        return backends.removed.has(`vif${v.domid}.${v.handle}`);
      }
      case 'accel_migrate_out': {
        // A guest about to migrate: each of its vifs goes PRE_COPY -> STOP_COPY (the plugin saves what it
        // learnt) and is detached (its frontend drains its VI and falls back). Answered once all are off.
        const gid = Number(a.domid);
        if (!guests.has(gid)) throw new Error(`accel_migrate_out: domain ${String(a.domid)} is not a guest of this host`);
        const keys = accel.channelKeys().filter((k) => k.split('/')[0] === String(gid));
        const reply = later();
        const out: { handle: number; plugin: string | null; state: unknown }[] = [];
        if (keys.length === 0) reply([]);
        for (const key of keys) {
          accel.migrateOut(key, (r) => {
            out.push({ handle: Number(key.split('/')[1]), plugin: r.plugin, state: r.state as RpcValue });
            if (out.length === keys.length) reply(out.sort((x, y) => x.handle - y.handle) as RpcValue);
          });
        }
        return DEFERRED;
      }
      case 'accel_migrate_in': {
        // A migrated guest's vif arrives here: what its source plugin saved waits for a plugin to attach it.
        const v = vifArgs(op, a);
        if (!accel.channelKeys().includes(v.key)) throw new Error(`accel_migrate_in: no vif${v.domid}.${v.handle}`);
        const saved = typeof a.plugin === 'string' ? { plugin: a.plugin, state: a.state } : null;
        accel.migrateIn(v.key, saved);
        return true;
      }
      case 'fdb_forget':
        return bridge.forget(Number(a.mac));
      case 'plugin_load': {
        accel.load(String(a.name), String(a.backend), a.frontend ? String(a.frontend) : undefined, (a.args ?? {}) as Record<string, unknown>, later());
        return DEFERRED;
      }
      case 'plugin_unload': {
        accel.unload(String(a.name), later());
        return DEFERRED;
      }
      case 'plugin_list':
        return accel.stats();
      default:
        if ((NIC_ADMIN_OPS as readonly string[]).includes(op)) {
          nicAdmin.request(op as NicAdminOp, a, later());
          return DEFERRED;
        }
        return endpoint.control(op, args, later);
    }
  });

  backends.start();
  core.add('accel', () => accel.poll());
  core.add('netback', () => backends.poll());
  if (uplink) core.add('uplink', () => uplink.poll());
  core.add('endpoint', () => endpoint.poll());
  core.timer(() => endpoint.nextDeadline());
}
