/**
 * dom0's kernel: the privileged domain of one host. It runs netback (a
 * VifBackend per guest vif), the software bridge, the NIC's primary driver
 * (VI 0) as the bridge's uplink, and its own small IP stack on the bridge so
 * dom0 can be a traffic endpoint too (the dom0-to-dom0 baseline).
 */
import {
  DomainLoop,
  EventChannels,
  FrameAllocator,
  GrantOps,
  GrantTable,
  GuestMemory,
  RpcEndpoint,
  WakeWord,
  XenstoreClient,
  type DomainHandle,
  type DomainTask,
} from '@xsim/hypervisor';
import { NetDriver } from '@xsim/nic';
import { NetEndpoint, type FrameTransport } from '@xsim/netfront';
import { Bridge, type BridgePort } from './bridge.ts';
import { SkbPool } from './skb.ts';
import { UplinkPort } from './uplink.ts';
import { VifBackends } from './backends.ts';

export interface Dom0Config {
  mem: SharedArrayBuffer;
  gnttab: SharedArrayBuffer;
  evtchn: SharedArrayBuffer;
  guests: { domid: number; mem: SharedArrayBuffer; gnttab: SharedArrayBuffer }[];
  mac: string;
  ip: string;
  mtu: number;
  /** VI 0 of this host's NIC; the MCDI channel is task.ports[0]. Absent: a host with no NIC. */
  nic?: { viSab: SharedArrayBuffer; fabricWake: { sab: SharedArrayBuffer; offset: number }; mac: number };
  skbs?: number;
  spinRounds?: number;
}

/** The bridge port of dom0's own stack: frames are built in an skb and forwarded. */
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

export function boot(task: DomainTask<Dom0Config>): unknown {
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
  const skbPages = maxFrame <= 4096 ? 2 ** Math.ceil(Math.log2(Math.max(maxFrame, 64))) / 4096 : Math.ceil(maxFrame / 4096);
  const skbCount = Math.min(cfg.skbs ?? 2048, Math.floor((frames.available * 0.5) / skbPages));
  const skbs = new SkbPool(mem, frames, skbCount, maxFrame);
  const bridge = new Bridge(mem.u8);
  const local = new LocalPort(skbs, bridge);
  local.portId = bridge.addPort(local);

  let driver: NetDriver | undefined;
  let uplink: UplinkPort | undefined;
  let mcdi: RpcEndpoint | undefined;
  if (cfg.nic) {
    const fabricWake = new WakeWord(cfg.nic.fabricWake.sab, cfg.nic.fabricWake.offset);
    mcdi = new RpcEndpoint(task.ports![0], fabricWake, wake);
    driver = NetDriver.probe({ mcdi, viSab: cfg.nic.viSab, fabricWake: cfg.nic.fabricWake, mem, frames, evtchn, mac: cfg.nic.mac, mtu: cfg.mtu });
    uplink = new UplinkPort(driver, skbs, bridge);
    uplink.attach();
  }

  const backends = new VifBackends({ ops, evtchn, xs, skbs, bridge, maxFrame, log: say }, xs, domid);
  const endpoint = new NetEndpoint({ name: `${task.host}/dom0`, mac: cfg.mac, ip: cfg.ip, transport: local, mtu: cfg.mtu });
  local.onReceive = (ram, off, len) => endpoint.receive(ram, off, len);

  const stats = (): Record<string, unknown> => ({
    domid,
    name: task.name,
    host: task.host,
    bridge: { ...bridge.stats, ports: bridge.portCount },
    vifs: Object.fromEntries([...backends.vifs].map(([k, v]) => [v.name, { ...v.stats, state: v.state, frontendState: v.frontendState, key: k }])),
    uplink: uplink ? { ...uplink.stats, backlog: uplink.backlogLength() } : null,
    nic: driver ? driver.stats() : null,
    local: { txDropNoSkb: local.txDropNoSkb },
    skbsFree: skbs.available,
    grantFailures: Object.fromEntries(ops.failures),
    endpoint: endpoint.stats(),
    loop: { ...loop.stats },
    log,
  });

  const control = new RpcEndpoint(task.control, null, wake).onRequest((op, args, later) => {
    if (op === 'stats') return stats();
    if (op === 'shutdown') {
      loop.stop();
      return true;
    }
    if (op === 'fdb') return bridge.fdbEntries();
    return endpoint.control(op, args, later);
  });

  backends.start();
  loop.add('control', () => control.poll() + xs.pump());
  loop.add('evtchn', () => {
    evtchn.dispatch();
    return 0;
  });
  loop.add('netback', () => backends.poll());
  if (uplink) loop.add('uplink', () => uplink.poll());
  loop.add('endpoint', () => endpoint.poll());
  loop.run();

  const final = stats();
  driver?.remove();
  control.close();
  mcdi?.close();
  return final;
}
