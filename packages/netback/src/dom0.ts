/**
 * dom0's kernel: the privileged domain of one host. It runs netback (a
 * VifBackend per guest vif), the software bridge, the NIC's primary driver
 * (VI 0) as the bridge's uplink, and its own small IP stack on the bridge so
 * dom0 can be a traffic endpoint too (the dom0-to-dom0 baseline).
 */
import {
  DEFERRED,
  DomainLoop,
  EventChannelBus,
  EventChannels,
  FrameAllocator,
  GrantOps,
  GrantTable,
  GuestMemory,
  RpcEndpoint,
  WakeWord,
  VIF_KEY,
  counterKinds,
  declareCounters,
  XenstoreClient,
  vifBackendPath,
  type DomainHandle,
  type DomainTask,
} from '@xsim/hypervisor';
import { Driverlink, NetDriver, netDriverPages, nicAlias } from '@xsim/nic';
import { NetEndpoint, type FrameTransport } from '@xsim/netfront';
import { Bridge, type BridgePort } from './bridge.ts';
import { DOM0_SLACK_PAGES, MIN_SKBS, SkbPool, skbPages } from './skb.ts';
import { UplinkPort } from './uplink.ts';
import { VifBackends } from './backends.ts';
import { AccelManager } from './accel.ts';
import { NicAdmin } from './nic-admin.ts';
import type { AccelVif } from './accel-api.ts';
import type { VifPort } from './vif/common.ts';

/** The least RAM (pages) a dom0 runs in at an MTU: the NIC driver's RX ring, MIN_SKBS skbs, and slack. */
export function dom0MinPages(mtu: number): number {
  return netDriverPages(mtu) + MIN_SKBS * skbPages(mtu + 18) + DOM0_SLACK_PAGES;
}

export interface Dom0Config {
  mem: SharedArrayBuffer;
  gnttab: SharedArrayBuffer;
  evtchn: SharedArrayBuffer;
  guests: { domid: number; mem: SharedArrayBuffer; gnttab: SharedArrayBuffer }[];
  mac: string;
  ip: string;
  mtu: number;
  /**
   * This host's NIC: every VI's memory (VI 0 is ours; the others are handed to
   * accelerated guests), its PCI ids, and the MCDI channel is task.ports[0].
   */
  nic?: { viSabs: SharedArrayBuffer[]; fabricWake: { sab: SharedArrayBuffer; offset: number }; mac: number; vendor: string; device: string };
  /** One accelerator-plugin channel per guest vif: task.ports[1 + i] belongs to accelChannels[i]. */
  accelChannels?: { domid: number; handle: number }[];
  skbs?: number;
  spinRounds?: number;
}

/** The bridge port of dom0's own stack: frames are built in an skb and forwarded. */
export const LOCAL_PORT_COUNTERS = declareCounters("dom0's stack port", {
  txDropNoSkb: { kind: 'drop', help: "frames dom0's own stack could not send: no skb was free" },
});

class LocalPort implements BridgePort, FrameTransport {
  readonly name = 'dom0';
  portId = -1;
  onReceive: (ram: Uint8Array, off: number, len: number) => void = () => {};
  private reserved = -1;
  txDropNoSkb = 0;

  constructor(
    private readonly skbs: SkbPool,
    private readonly bridge: Bridge,
  ) {}

  get ram(): Uint8Array {
    return this.skbs.mem.u8;
  }

  deliver(addr: number, len: number): void {
    this.onReceive(this.skbs.mem.u8, addr, len);
  }

  txReserve(len: number): number {
    if (len > this.skbs.slotSize) return -1;
    this.reserved = this.skbs.alloc();
    if (this.reserved < 0) {
      this.txDropNoSkb++;
      return -1;
    }
    return this.skbs.addr(this.reserved);
  }

  txCommit(len: number): void {
    const skb = this.reserved;
    this.reserved = -1;
    this.skbs.len[skb] = len;
    this.bridge.forward(this.portId, this.skbs.addr(skb), len, skb);
    this.skbs.put(skb);
  }

  txAvailable(): number {
    return this.skbs.available;
  }

  flush(): void {}
}

export async function boot(task: DomainTask<Dom0Config>): Promise<unknown> {
  const cfg = task.config;
  const domid = task.domid;
  const mem = new GuestMemory(cfg.mem);
  const frames = new FrameAllocator(mem);
  const gnttab = new GrantTable(cfg.gnttab);
  const evtchn = new EventChannels(cfg.evtchn, domid);
  const wake = evtchn.wake;
  const xs = new XenstoreClient(task.xenstore!, wake);
  const guests = new Map<number, DomainHandle>();
  for (const g of cfg.guests) guests.set(g.domid, { domid: g.domid, mem: new GuestMemory(g.mem), gnttab: new GrantTable(g.gnttab) });
  const ops = new GrantOps({ domid, mem, gnttab }, (d) => guests.get(d));
  const loop = new DomainLoop(wake, { spinRounds: cfg.spinRounds });
  const log: string[] = [];
  const say = (msg: string): void => {
    log.push(msg);
    console.error(`[${task.host}/dom0] ${msg}`);
  };

  const maxFrame = cfg.mtu + 18;
  // Up to 2048 skbs, but never more than half of dom0's free RAM (jumbo skbs take 3 pages each);
  // the NIC driver's RX buffers and the rings need the rest.
  // The NIC driver's RX ring comes first, then up to 2048 skbs from what is left (see dom0MinPages).
  const driverPages = cfg.nic ? netDriverPages(cfg.mtu) : 0;
  const skbCount = Math.min(cfg.skbs ?? 2048, Math.floor((frames.available - driverPages - DOM0_SLACK_PAGES) / skbPages(maxFrame)));
  if (skbCount < MIN_SKBS) throw new Error(`dom0 of ${task.host}: ${mem.pages} pages of RAM leave room for ${skbCount} skbs at MTU ${cfg.mtu} (at least ${MIN_SKBS}): give it at least ${dom0MinPages(cfg.mtu)} pages`);
  const skbs = new SkbPool(mem, frames, skbCount, maxFrame);
  const bridge = new Bridge(mem.u8);
  const local = new LocalPort(skbs, bridge);
  local.portId = bridge.addPort(local);

  let driver: NetDriver | undefined;
  let uplink: UplinkPort | undefined;
  let mcdi: RpcEndpoint | undefined;
  const nic = cfg.nic;
  const driverlink = new Driverlink(() => ({
    alias: nic ? nicAlias(nic.vendor, nic.device) : 'nic:none',
    mac: nic?.mac ?? 0,
    mtu: driver?.mtu ?? cfg.mtu,
    vis: nic?.viSabs.length ?? 0,
    linkUp: driver?.linkUp ?? false,
  }));
  if (nic) {
    const fabricWake = new WakeWord(nic.fabricWake.sab, nic.fabricWake.offset);
    mcdi = new RpcEndpoint(task.ports![0], fabricWake, wake);
    driver = NetDriver.probe({ mcdi, viSab: nic.viSabs[0], fabricWake: nic.fabricWake, mem, frames, evtchn, mac: nic.mac, mtu: cfg.mtu, driverlink });
    uplink = new UplinkPort(driver, skbs, bridge);
    uplink.attach();
  }
  const freeVis: number[] = [];
  for (let v = (nic?.viSabs.length ?? 1) - 1; v >= 1; v--) freeVis.push(v);

  const accel = new AccelManager({
    driverlink,
    defer: (p, then, fail) => loop.defer(p, then, fail),
    writeAccelKey: (vif, plugin) => {
      const path = `${vifBackendPath(domid, vif.domid, vif.handle)}/${VIF_KEY.accel}`;
      if (plugin) xs.write(path, plugin);
      else if (xs.tryRead(path) !== undefined) xs.rm(path);
    },
    ctx: {
      nic: () => driverlink.nic(),
      dom0: domid,
      mcdi: (op, args) => {
        if (!mcdi) throw new Error('this host has no NIC');
        return mcdi.requestSync(op, args);
      },
      allocVi: () => {
        const vi = freeVis.pop();
        return vi === undefined || !nic ? null : { vi, sab: nic.viSabs[vi] };
      },
      freeVi: (vi) => {
        if (!freeVis.includes(vi)) freeVis.push(vi);
      },
      fabricWake: () => nic!.fabricWake,
      mapGrants: (gdom, grefs) => {
        const handles: number[] = [];
        const gframes: number[] = [];
        for (const g of grefs) {
          const m = ops.map(gdom, g, false);
          if (m.status !== 0) {
            for (const h of handles) ops.unmap(h);
            return `cannot map gref ${g} of domain ${gdom}: status ${m.status}`;
          }
          handles.push(m.handle);
          gframes.push(m.frame);
        }
        return { frames: gframes, handles };
      },
      unmapGrants: (handles) => {
        for (const h of handles) ops.unmap(h);
      },
      uplinkMacs: () => (uplink ? bridge.macsOn(uplink.portId) : []),
      log: say,
    },
  });
  bridge.onLearn = (mac, port) => {
    if (uplink && port === uplink.portId) accel.uplinkLearned(mac);
  };
  const accelVif = (v: VifPort): AccelVif => ({ key: v.key, domid: v.frontendDomid, handle: v.handle, mac: v.mac, ip: v.ip });
  (cfg.accelChannels ?? []).forEach((c, i) => {
    const guestWake = EventChannelBus.wakeOf(cfg.evtchn, c.domid);
    const key = `${c.domid}/${c.handle}`;
    const rpc = new RpcEndpoint(task.ports![1 + i], guestWake, wake);
    accel.addChannel({ key, domid: c.domid, handle: c.handle, mac: 0, ip: 0 }, rpc);
  });

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
    },
    xs,
    domid,
  );
  const nicAdmin = new NicAdmin(mcdi, driver, driverlink, accel);
  const endpoint = new NetEndpoint({ name: `${task.host}/dom0`, mac: cfg.mac, ip: cfg.ip, transport: local, mtu: cfg.mtu });
  local.onReceive = (ram, off, len) => endpoint.receive(ram, off, len);

  const stats = (): Record<string, unknown> => ({
    domid,
    name: task.name,
    host: task.host,
    bridge: { ...bridge.stats, ports: bridge.portCount },
    vifs: Object.fromEntries([...backends.vifs].map(([k, v]) => [v.name, { ...v.stats(), key: k }])),
    uplink: uplink ? { ...uplink.stats, backlog: uplink.backlogLength() } : null,
    nic: driver ? driver.stats() : null,
    accel: accel.stats(),
    driverlink: driverlink.events.log.slice(-20),
    local: { txDropNoSkb: local.txDropNoSkb },
    skbsFree: skbs.available,
    grantFailures: Object.fromEntries(ops.failures),
    endpoint: endpoint.stats(),
    loop: { ...loop.stats },
    log,
    kinds: counterKinds(),
  });

  const control = new RpcEndpoint(task.control, null, wake).onRequest((op, args, later) => {
    if (op === 'stats') return stats();
    if (op === 'shutdown') {
      loop.stop();
      return true;
    }
    if (op === 'fdb') return bridge.fdbEntries();
    const a = (args ?? {}) as Record<string, unknown>;
    switch (op) {
      case 'plugin_load': {
        const reply = later();
        accel.load(String(a.name), String(a.backend), a.frontend ? String(a.frontend) : undefined, (a.args ?? {}) as Record<string, unknown>, reply);
        return DEFERRED;
      }
      case 'plugin_unload': {
        const reply = later();
        accel.unload(String(a.name), reply);
        return DEFERRED;
      }
      case 'plugin_list':
        return accel.stats();
      case 'link_set':
      case 'mtu_set':
      case 'nic_reset': {
        nicAdmin.request(op, a, later());
        return DEFERRED;
      }
      default:
        return endpoint.control(op, args, later);
    }
  });

  backends.start();
  loop.add('accel', () => accel.poll());
  loop.add('control', () => control.poll() + xs.pump());
  loop.add('evtchn', () => {
    evtchn.dispatch();
    return 0;
  });
  loop.add('netback', () => backends.poll());
  if (uplink) loop.add('uplink', () => uplink.poll());
  loop.add('endpoint', () => endpoint.poll());
  await loop.runAsync();

  const final = stats();
  driver?.remove();
  control.close();
  mcdi?.close();
  return final;
}
