/**
 * dom0's kernel, put together: its memory and skbs, the bridge and its own
 * stack's port, the NIC's primary driver (VI 0, or function 0 of the virtio
 * NIC) as the bridge's uplink, the
 * accelerator manager, netback's vif backends and the endpoint. Each part is
 * built by a function of its own; the result is every part, by name, for
 * the entry points (guests.ts, migrate.ts, control.ts, stats.ts) to use.
 */
import {
  ADDR_FABRIC,
  CH,
  CaptureSink,
  FrameAllocator,
  GrantOps,
  GrantTable,
  GuestMemory,
  VIF_KEY,
  captureClock,
  vifBackendPath,
  type Tap,
  type DomainEnv,
  type DomainHandle,
  type McdiOps,
  type VdpaOps,
} from '@xsim/hypervisor';
import { Driverlink, NetDriver, VqNetDriver, nicAlias, nicModel } from '@xsim/nic';
import { NetEndpoint } from '@xsim/netstack';
import { Bridge } from '../bridge.ts';
import { DOM0_SLACK_PAGES, MIN_SKBS, SkbPool, skbPages } from '../skb.ts';
import { UplinkPort } from '../uplink.ts';
import { VifBackends } from '../backends.ts';
import { AccelManager } from '../accel.ts';
import { NicAdmin, nicControl, type NicAdminChannel } from '../nic-admin.ts';
import { LocalPort } from './local-port.ts';
import { accelContext } from './accel-context.ts';
import { withVifConfig } from './vif-config.ts';
import type { AccelVif } from '../accel-api.ts';
import type { VifPort } from '../vif/common.ts';
import { dom0MinPages, primaryDriverPages, type Dom0Config } from './config.ts';
import { logRing, type LogRing } from './log-ring.ts';

/** Every part of a running dom0 kernel. */
export interface Dom0Kernel {
  readonly env: DomainEnv<Dom0Config>;
  readonly domid: number;
  readonly log: LogRing;
  readonly mem: GuestMemory;
  /** Guests of this host, by domid: their memory for grant operations. */
  readonly guests: Map<number, DomainHandle>;
  /** Their bus addresses (the peers of their vifs' plugin channels). */
  readonly guestUids: Map<number, number>;
  readonly ops: GrantOps;
  readonly skbs: SkbPool;
  readonly bridge: Bridge;
  readonly capture: CaptureSink;
  readonly local: LocalPort;
  readonly driverlink: Driverlink;
  /** The NIC's admin channel (MCDI, or the virtio NIC's vDPA ops), by model. */
  readonly admin: NicAdminChannel | undefined;
  /** The NIC's primary driver: NetDriver on the VI NIC, VqNetDriver on the virtio NIC. */
  readonly driver: NetDriver | VqNetDriver | undefined;
  readonly uplink: UplinkPort | undefined;
  readonly accel: AccelManager;
  readonly backends: VifBackends;
  readonly endpoint: NetEndpoint;
  readonly nicAdmin: NicAdmin;
}

type Base = Pick<Dom0Kernel, 'env' | 'domid' | 'log' | 'mem' | 'guests' | 'guestUids' | 'ops' | 'skbs' | 'bridge' | 'capture' | 'local'> & {
  frames: FrameAllocator;
  tapPoint(name: string): Tap;
};
type Nic = Pick<Dom0Kernel, 'driverlink' | 'admin' | 'driver' | 'uplink'>;

export function composeDom0(env: DomainEnv<Dom0Config>): Dom0Kernel {
  const base = memoryAndBridge(env);
  const nic = nicDriver(base);
  const accel = accelManager(base, nic);
  const backends = vifBackends(base, accel);
  const cfg = env.config;
  const endpoint = new NetEndpoint({ name: `${env.id.host}/dom0`, mac: cfg.mac, ip: cfg.ip, transport: base.local, mtu: cfg.mtu, clock: env.clock });
  base.local.onReceive = (ram, off, len, rxFlags) => endpoint.receive(ram, off, len, rxFlags);
  // dom0's stack may leave checksums partial: every port behind the bridge completes what it cannot pass on partial.
  endpoint.setOffloads({ txCsum: true });
  const nicAdmin = new NicAdmin(nic.admin && nicControl(nic.admin), nic.driver, nic.driverlink, accel);
  return { ...base, ...nic, accel, backends, endpoint, nicAdmin };
}

/** RAM, grant operations on guests' RAM, the skbs, the bridge and dom0's own port on it, the capture points. */
function memoryAndBridge(env: DomainEnv<Dom0Config>): Base {
  const cfg = env.config;
  const domid = env.id.domid;
  const mem = new GuestMemory(cfg.mem);
  const frames = new FrameAllocator(mem);
  const gnttab = new GrantTable(cfg.gnttab);
  const guests = new Map<number, DomainHandle>();
  const ops = new GrantOps({ domid, mem, gnttab }, (d) => guests.get(d));
  const log = logRing((m) => env.log(m));

  const maxFrame = cfg.mtu + 18;
  // The NIC driver's RX ring comes first, then up to 2048 skbs from what is left (see dom0MinPages).
  const driverPages = cfg.nic ? primaryDriverPages(cfg.mtu, nicModel(cfg.nic.vendor, cfg.nic.device)) : 0;
  const skbCount = Math.min(cfg.skbs ?? 2048, Math.floor((frames.available - driverPages - DOM0_SLACK_PAGES) / skbPages(maxFrame)));
  if (skbCount < MIN_SKBS)
    throw new Error(
      `dom0 of ${env.id.host}: ${mem.pages} pages of RAM leave room for ${skbCount} skbs at MTU ${cfg.mtu} (at least ${MIN_SKBS}): give it at least ${dom0MinPages(cfg.mtu, cfg.nic && nicModel(cfg.nic.vendor, cfg.nic.device))} pages`,
    );
  const skbs = new SkbPool(mem, frames, skbCount, maxFrame);
  const bridge = new Bridge(mem.u8);
  /** Capture points of this host's dom0: its vifs (backend side), the uplink (VI 0), bridge drops at their port. */
  const capture = new CaptureSink(captureClock(env.clock));
  const tapPoint = (name: string) => capture.tap(`${env.id.host}/${name}`);
  bridge.tap = tapPoint('bridge');
  const local = new LocalPort(skbs, bridge);
  local.portId = bridge.addPort(local);
  return { env, domid, log, mem, frames, guests, guestUids: new Map(), ops, skbs, bridge, capture, local, tapPoint };
}

/**
 * The NIC's primary driver as the bridge's uplink, and driverlink for the
 * secondary drivers. The NIC's model (its PCI ids) picks the driver: VI 0
 * over MCDI, or function 0 of the virtio NIC over its vDPA ops (the same
 * privileged channel).
 */
function nicDriver(b: Base): Nic {
  const cfg = b.env.config;
  const nic = cfg.nic;
  let driver: NetDriver | VqNetDriver | undefined;
  let uplink: UplinkPort | undefined;
  const admin: NicAdminChannel | undefined = !nic
    ? undefined
    : nicModel(nic.vendor, nic.device) === 'virtio'
      ? { model: 'virtio', vdpa: b.env.channel<VdpaOps>(CH.mcdi, ADDR_FABRIC) }
      : { model: 'vi', mcdi: b.env.channel<McdiOps>(CH.mcdi, ADDR_FABRIC) };
  const driverlink = new Driverlink(() => ({
    alias: nic ? nicAlias(nic.vendor, nic.device) : 'nic:none',
    mac: nic?.mac ?? 0,
    mtu: driver?.mtu ?? cfg.mtu,
    vis: nic?.vis ?? 0,
    linkUp: driver?.linkUp ?? false,
  }));
  if (nic && admin) {
    const o = { nicWake: nic.nicWake, mem: b.mem, frames: b.frames, evtchn: b.env.evtchn, mac: nic.mac, mtu: cfg.mtu, driverlink };
    driver = admin.model === 'virtio' ? VqNetDriver.probe({ ...o, vdpa: admin.vdpa }) : NetDriver.probe({ ...o, mcdi: admin.mcdi });
    uplink = new UplinkPort(driver, b.skbs, b.bridge, b.tapPoint('uplink'));
    uplink.attach();
  }
  return { driverlink, admin, driver, uplink };
}

function accelManager(b: Base, n: Nic): AccelManager {
  const { env, domid, bridge } = b;
  const { xs, evtchn, core } = env;
  const uplink = n.uplink;
  const accel = new AccelManager({
    driverlink: n.driverlink,
    clock: env.clock,
    defer: (p, then, fail) => core.defer(p, then, fail),
    writeAccelKey: (vif, plugin) => {
      const node = vifBackendPath(domid, vif.domid, vif.handle);
      const path = `${node}/${VIF_KEY.accel}`;
      // A vif whose node the toolstack removed (its domain is going) gets no key: that would re-create the node.
      if (plugin && xs.tryRead(node) !== undefined) xs.write(path, plugin);
      else if (xs.tryRead(path) !== undefined) xs.rm(path);
    },
    // vifConfig: the vifs' backend directories (their limits/*), AccelBackendContext's optional vifConfig.
    ctx: withVifConfig(
      accelContext({
        dom0: domid,
        driverlink: n.driverlink,
        admin: n.admin,
        vis: env.config.nic?.vis ?? 0,
        ops: b.ops,
        evtchn,
        uplinkMacs: () => (uplink ? bridge.macsOn(uplink.portId) : []),
        log: b.log.say,
      }),
      xs,
      domid,
    ),
  });
  bridge.onLearn = (mac, port, from) => {
    if (!uplink) return;
    if (port === uplink.portId) accel.uplinkLearned(mac);
    else if (from === uplink.portId) accel.uplinkLost(mac);
  };
  bridge.onForget = (mac, port) => {
    if (uplink && port === uplink.portId) accel.uplinkLost(mac);
  };
  // An unload in progress has a bound (UNLOAD_DETACH_MS): dom0 wakes for it even when nothing else happens.
  core.timer(() => accel.nextDeadline());
  return accel;
}

const accelVif = (v: VifPort): AccelVif => ({ key: v.key, domid: v.frontendDomid, handle: v.handle, mac: v.mac, ip: v.ip });

/** netback: a VifBackend per guest vif, each telling the accelerator manager when it connects and what it delivers. */
function vifBackends(b: Base, accel: AccelManager): VifBackends {
  const { xs, evtchn } = b.env;
  return new VifBackends(
    {
      ops: b.ops,
      evtchn,
      xs,
      skbs: b.skbs,
      bridge: b.bridge,
      maxFrame: b.env.config.mtu + 18,
      clock: b.env.clock,
      params: b.env.config.netback,
      log: b.log.say,
      onConnected: (v) => {
        accel.refreshVif(accelVif(v));
        accel.vifConnected(v.key);
      },
      onDisconnected: (v) => accel.vifDisconnected(v.key),
      onRxDelivered: (v, ram, addr, len) => accel.slowPathRx(v.key, ram, addr, len),
      tapPoint: b.tapPoint,
    },
    xs,
    b.domid,
  );
}
