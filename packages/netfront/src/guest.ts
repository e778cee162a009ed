/**
 * A domU's kernel: its page allocator and grant table, the netfront driver for
 * each vif, a tiny IP stack per vif and the traffic apps, all run from one
 * polling loop that sleeps on the domain's wake word.
 *
 * bootGuest takes an optional extension: more control ops served with access
 * to the kernel's parts. The stock kernel has none; a test fixture uses it to
 * build a guest that misbehaves on purpose, so no driver carries test hooks.
 */
import {
  DEFERRED,
  DomainLoop,
  EventChannelBus,
  EventChannels,
  FrameAllocator,
  GrantRefAllocator,
  GrantTable,
  GuestMemory,
  RpcEndpoint,
  XenstoreClient,
  counterKinds,
  type DomainTask,
  type RpcValue,
} from '@xsim/hypervisor';
import { NetEndpoint } from './endpoint.ts';
import { parseMac } from './net/addr.ts';
import { Netfront } from './netfront/xenbus.ts';
import { AccelHost } from './accel-host.ts';

export interface GuestConfig {
  mem: SharedArrayBuffer;
  gnttab: SharedArrayBuffer;
  evtchn: SharedArrayBuffer;
  mtu: number;
  vifs: { handle: number; mac: string; ip: string }[];
  spinRounds?: number;
}

export interface GuestDevice {
  nf: Netfront;
  ep: NetEndpoint;
  accel: AccelHost | null;
}

/** The parts of a running guest kernel an extension may use. */
export interface GuestKernel {
  readonly task: DomainTask<GuestConfig>;
  readonly mem: GuestMemory;
  readonly frames: FrameAllocator;
  readonly gnttab: GrantTable;
  readonly grefs: GrantRefAllocator;
  readonly evtchn: EventChannels;
  readonly xs: XenstoreClient;
  readonly devices: readonly GuestDevice[];
  log(msg: string): void;
}

type Reply = (result: RpcValue, error?: string) => void;
/** Returned by an extension's control handler for an op it does not serve. */
export const NOT_MINE: unique symbol = Symbol('not mine');

export interface GuestExtension {
  control?(op: string, args: RpcValue, later: () => Reply, g: GuestKernel): RpcValue | typeof DEFERRED | typeof NOT_MINE;
}

export async function bootGuest(task: DomainTask<GuestConfig>, ext: GuestExtension = {}): Promise<unknown> {
  const cfg = task.config;
  const mem = new GuestMemory(cfg.mem);
  const frames = new FrameAllocator(mem);
  const gnttab = new GrantTable(cfg.gnttab);
  const grefs = new GrantRefAllocator(gnttab);
  const evtchn = new EventChannels(cfg.evtchn, task.domid);
  const wake = evtchn.wake;
  const xs = new XenstoreClient(task.xenstore!, wake);
  const loop = new DomainLoop(wake, { spinRounds: cfg.spinRounds });
  const log = (m: string): void => console.error(`[${task.host}/${task.name}] ${m}`);

  const dom0Wake = EventChannelBus.wakeOf(cfg.evtchn, 0);
  const devices: GuestDevice[] = cfg.vifs.map((v, i) => {
    const nf = new Netfront({ domid: task.domid, handle: v.handle, mem, frames, gnttab, grefs, evtchn, xs, mtu: cfg.mtu, log });
    const transport = {
      ram: mem.u8,
      txReserve: (len: number) => nf.txReserve(len),
      txCommit: (len: number) => nf.txCommit(len),
      txAvailable: () => nf.txAvailable(),
      flush: () => nf.flush(),
    };
    const ep = new NetEndpoint({ name: `${task.host}/${task.name}`, mac: v.mac, ip: v.ip, transport, mtu: cfg.mtu });
    nf.onReceive = (ram, off, len) => ep.receive(ram, off, len);
    const port = task.ports?.[i];
    const accel = port
      ? new AccelHost(
          new RpcEndpoint(port, dom0Wake, wake),
          nf,
          { domid: task.domid, backendDomid: 0, mac: parseMac(v.mac), mem, frames, gnttab, grefs, evtchn, mtu: cfg.mtu, log },
          (p, then, fail) => loop.defer(p, then, fail),
        )
      : null;
    return { nf, ep, accel };
  });
  const primary = devices[0];
  const kernel: GuestKernel = { task, mem, frames, gnttab, grefs, evtchn, xs, devices, log };

  const stats = (): Record<string, unknown> => ({
    domid: task.domid,
    name: task.name,
    host: task.host,
    vifs: devices.map((d) => ({ handle: d.nf.handle, ...d.nf.stats(), accel: d.accel ? d.accel.stats(d.nf.accel !== null) : null })),
    endpoint: primary.ep.stats(),
    loop: { ...loop.stats },
    freeFrames: frames.available,
    freeGrants: grefs.available,
    kinds: counterKinds(),
  });

  const control = new RpcEndpoint(task.control, null, wake).onRequest((op, args, later) => {
    if (op === 'stats') return stats();
    if (op === 'shutdown') {
      loop.stop();
      return true;
    }
    if (op === 'vif_close') {
      primary.nf.close();
      return true;
    }
    if (ext.control) {
      const r = ext.control(op, args, later, kernel);
      if (r !== NOT_MINE) return r;
    }
    return primary.ep.control(op, args, later);
  });

  for (const d of devices) d.nf.start();
  loop.add('control', () => control.poll() + xs.pump());
  loop.add('evtchn', () => {
    evtchn.dispatch();
    return 0;
  });
  for (const d of devices) {
    if (d.accel) loop.add(`accel${d.nf.handle}`, () => d.accel!.poll());
    loop.add(`vif${d.nf.handle}`, () => d.nf.poll());
    loop.add(`apps${d.nf.handle}`, () => d.ep.poll());
  }
  await loop.runAsync();
  const final = stats();
  control.close();
  return final;
}

/** The stock guest kernel. */
export function boot(task: DomainTask<GuestConfig>): Promise<unknown> {
  return bootGuest(task);
}
