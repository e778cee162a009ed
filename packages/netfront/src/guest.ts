/**
 * A domU's kernel: its page allocator and grant table, the netfront driver for
 * each vif, a tiny IP stack per vif and the traffic apps, each a poller of the
 * domain's vCPU.
 *
 * bootGuest takes an optional extension: more control ops served with access
 * to the kernel's parts. The stock kernel has none; a test fixture uses it to
 * build a guest that misbehaves on purpose, so no driver carries test hooks.
 */
import {
  ADDR_FABRIC,
  CH,
  FrameAllocator,
  GrantRefAllocator,
  GrantTable,
  GuestMemory,
  SHUTDOWN_POWEROFF,
  controlShutdownPath,
  counterKinds,
  type Addr,
  type DEFERRED,
  type DomainEnv,
  type EventChannels,
  type RpcValue,
  type XenstoreClient,
} from '@xsim/hypervisor';
import { NetEndpoint } from './endpoint.ts';
import { parseMac } from './net/addr.ts';
import { Netfront } from './netfront/xenbus.ts';
import { AccelHost } from './accel-host.ts';

export interface GuestConfig {
  mem: SharedArrayBuffer;
  gnttab: SharedArrayBuffer;
  mtu: number;
  vifs: { handle: number; mac: string; ip: string }[];
  /** Bus address of the host's dom0 (the vifs' backend, and the peer of their plugin channels). */
  dom0Uid: Addr;
}

export interface GuestDevice {
  nf: Netfront;
  ep: NetEndpoint;
  accel: AccelHost | null;
}

/** The parts of a running guest kernel an extension may use. */
export interface GuestKernel {
  readonly env: DomainEnv<GuestConfig>;
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

export function bootGuest(env: DomainEnv<GuestConfig>, ext: GuestExtension = {}): void {
  const cfg = env.config;
  const { core, xs, evtchn, clock } = env;
  const domid = env.id.domid;
  const mem = new GuestMemory(cfg.mem);
  const frames = new FrameAllocator(mem);
  const gnttab = new GrantTable(cfg.gnttab);
  const grefs = new GrantRefAllocator(gnttab);
  const log = (m: string): void => env.log(m);

  const devices: GuestDevice[] = cfg.vifs.map((v) => {
    const nf = new Netfront({ domid, handle: v.handle, mem, frames, gnttab, grefs, evtchn, xs, mtu: cfg.mtu, log });
    const transport = {
      ram: mem.u8,
      txReserve: (len: number) => nf.txReserve(len),
      txCommit: (len: number) => nf.txCommit(len),
      txAvailable: () => nf.txAvailable(),
      flush: () => nf.flush(),
    };
    const ep = new NetEndpoint({ name: `${env.id.host}/${env.id.name}`, mac: v.mac, ip: v.ip, transport, mtu: cfg.mtu, clock });
    nf.onReceive = (ram, off, len) => ep.receive(ram, off, len);
    const accel = new AccelHost(
      env.channel(CH.accel + v.handle, cfg.dom0Uid),
      nf,
      { domid, backendDomid: 0, mac: parseMac(v.mac), mem, frames, gnttab, grefs, evtchn, mtu: cfg.mtu, clock, log, kickNic: () => env.kickDevice(ADDR_FABRIC) },
      (p, then, fail) => core.defer(p, then, fail),
    );
    return { nf, ep, accel };
  });
  const primary = devices[0];
  const kernel: GuestKernel = { env, mem, frames, gnttab, grefs, evtchn, xs, devices, log };

  const stats = (): Record<string, unknown> => ({
    domid,
    name: env.id.name,
    host: env.id.host,
    vifs: devices.map((d) => ({ handle: d.nf.handle, ...d.nf.stats(), accel: d.accel ? d.accel.stats(d.nf.accel !== null) : null })),
    endpoint: primary.ep.stats(),
    core: { ...core.c, pcpu: core.pcpu },
    freeFrames: frames.available,
    freeGrants: grefs.available,
    kinds: counterKinds(),
  });

  env.control.onRequest((op, args, later) => {
    if (op === 'stats') return stats();
    if (op === 'shutdown') {
      core.stop();
      return stats();
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

  // xl shutdown: the toolstack writes "poweroff" to control/shutdown; like Linux's
  // drivers/xen/manage.c the guest then closes its devices (each vif goes through
  // Closing to Closed with its backend) before it stops.
  const shutdownPath = controlShutdownPath(domid);
  xs.watch(shutdownPath, 'shutdown', () => {
    if (xs.tryRead(shutdownPath) !== SHUTDOWN_POWEROFF) return;
    log('poweroff requested: closing every vif');
    for (const d of devices) d.nf.close();
  });

  for (const d of devices) d.nf.start();
  for (const d of devices) {
    if (d.accel) core.add(`accel${d.nf.handle}`, () => d.accel!.poll());
    core.add(`vif${d.nf.handle}`, () => d.nf.poll());
    core.add(`apps${d.nf.handle}`, () => d.ep.poll());
    core.timer(() => d.ep.nextDeadline());
  }
}

/** The stock guest kernel. */
export function boot(env: DomainEnv<GuestConfig>): void {
  bootGuest(env);
}
