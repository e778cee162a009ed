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
  VIF_KEY,
  XenbusState,
  controlShutdownPath,
  counterKinds,
  crossThreadNow,
  CaptureSink,
  captureClock,
  captureOp,
  domainPath,
  vifErrorPath,
  vifFrontendPath,
  type Addr,
  type DEFERRED,
  type DomainEnv,
  type EventChannels,
  type RpcValue,
  type XenstoreClient,
} from '@xsim/hypervisor';
import { NetEndpoint } from '@xsim/netstack';
import { parseMac } from '@xsim/netstack';
import { Netfront } from './netfront/xenbus.ts';
import { AccelHost } from './accel-host.ts';
import { bufferFrames, readKernelState, stateFrames, writeKernelState, KERNEL_STATE_VERSION, type DeviceState } from './suspend.ts';

export interface GuestConfig {
  mem: SharedArrayBuffer;
  gnttab: SharedArrayBuffer;
  mtu: number;
  vifs: { handle: number; mac: string; ip: string }[];
  /** Bus address of the host's dom0 (the vifs' backend, and the peer of their plugin channels). */
  dom0Uid: Addr;
  /**
   * Resume instead of a fresh boot (restore, or the destination of a
   * migration): where the suspended kernel left its record in this RAM.
   * The vifs then come from the record.
   */
  resume?: { frame: number; len: number };
}

export interface GuestDevice {
  nf: Netfront;
  ep: NetEndpoint;
  accel: AccelHost | null;
  readonly ip: string;
  readonly mac: string;
  readonly mtu: number;
  /**
   * Frame arrival times, kept only while a migration is under way (one
   * branch per frame otherwise): the last before the suspend, and the first
   * after the resume, for the downtime.
   */
  rx: { armed: boolean; last: number; firstAfterResume: number | null };
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

  const devices: GuestDevice[] = [];
  /** Capture points: each vif's frontend side. */
  const capture = new CaptureSink(captureClock(clock));
  const unpoll = new Map<number, (() => void)[]>();

  /** xennet_probe: a netfront, its stack and its plugin host for vif `v`, polled from now on. */
  const addDevice = (v: { handle: number; mac: string; ip: string; mtu: number }): GuestDevice => {
    const tap = capture.tap(`${env.id.host}/${env.id.name}/vif${v.handle}`);
    const nf = new Netfront({ domid, handle: v.handle, mem, frames, gnttab, grefs, evtchn, xs, mtu: v.mtu, log, tap });
    const transport = {
      ram: mem.u8,
      txReserve: (len: number) => nf.txReserve(len),
      txCommit: (len: number) => nf.txCommit(len),
      txAvailable: () => nf.txAvailable(),
      flush: () => nf.flush(),
    };
    const ep = new NetEndpoint({ name: `${env.id.host}/${env.id.name}`, mac: v.mac, ip: v.ip, transport, mtu: v.mtu, clock });
    const rx: GuestDevice['rx'] = { armed: false, last: -1, firstAfterResume: null };
    nf.onReceive = (ram, off, len) => {
      if (rx.armed) {
        rx.last = clock.now();
        if (resumedAt !== null && rx.firstAfterResume === null) {
          rx.firstAfterResume = crossThreadNow(clock);
          rx.armed = false;
        }
      }
      ep.receive(ram, off, len);
    };
    const accel = new AccelHost(
      env.channel(CH.accel + v.handle, cfg.dom0Uid),
      nf,
      { domid, backendDomid: 0, mac: parseMac(v.mac), mem, frames, gnttab, grefs, evtchn, mtu: v.mtu, clock, log, kickNic: () => env.kickDevice(ADDR_FABRIC) },
      (p, then, fail) => core.defer(p, then, fail),
    );
    const d: GuestDevice = { nf, ep, accel, ip: v.ip, mac: v.mac, mtu: v.mtu, rx };
    devices.push(d);
    nf.start();
    unpoll.set(v.handle, [
      core.add(`accel${v.handle}`, () => accel.poll()),
      core.add(`vif${v.handle}`, () => nf.poll()),
      core.add(`apps${v.handle}`, () => ep.poll()),
      core.timer(() => ep.nextDeadline()),
    ]);
    return d;
  };

  /** xennet_remove: the toolstack removed a Closed vif's node; its memory goes back to the allocator. */
  const removeDevice = (d: GuestDevice): void => {
    if (!d.nf.release()) return log(`vif${d.nf.handle}: node removed while the device is not closed; kept until it is`);
    for (const off of unpoll.get(d.nf.handle) ?? []) off();
    unpoll.delete(d.nf.handle);
    d.accel?.close();
    devices.splice(devices.indexOf(d), 1);
    d.nf.tap.release();
    log(`vif${d.nf.handle} unplugged`);
  };

  /** Cross-thread time this kernel resumed at, if it is a resumed one. */
  let resumedAt: number | null = null;
  if (cfg.resume) {
    resumedAt = crossThreadNow(clock);
    resume(cfg.resume);
  } else for (const v of cfg.vifs) addDevice({ ...v, mtu: cfg.mtu });

  // Hotplug: the toolstack writes a new vif's frontend directory (xl network-attach) or removes a
  // closed one's (network-detach); like Linux's xenbus frontend, watch the device directory.
  const vifRoot = `${domainPath(domid)}/device/vif`;
  /** Handles whose probe failed: not retried until the toolstack removes the node. */
  const failed = new Set<number>();
  xs.watch(vifRoot, 'vif-hotplug', (path) => {
    // Our own writes under a device we run (its state, rings, features) need no look at the directory.
    const m = /^\/(\d+)(\/.*)?$/.exec(path.slice(vifRoot.length));
    if (m && m[2] !== undefined && (m[2] !== `/${VIF_KEY.state}` || devices.some((d) => d.nf.handle === Number(m[1])))) return;
    const handles = new Set((xs.tryRead(vifRoot) === undefined ? [] : xs.directory(vifRoot)).map(Number));
    for (const d of [...devices]) if (!handles.has(d.nf.handle)) removeDevice(d);
    for (const h of [...failed]) if (!handles.has(h)) failed.delete(h);
    for (const h of handles) {
      if (devices.some((d) => d.nf.handle === h) || failed.has(h)) continue;
      const fe = vifFrontendPath(domid, h);
      const mac = xs.tryRead(`${fe}/${VIF_KEY.mac}`);
      const ip = xs.tryRead(`${fe}/${VIF_KEY.ip}`);
      // Wait until the toolstack has written the whole directory (the state key comes last).
      if (mac === undefined || ip === undefined || xs.tryRead(`${fe}/${VIF_KEY.state}`) === undefined) continue;
      const be = xs.tryRead(`${fe}/${VIF_KEY.backend}`);
      const mtu = Number((be !== undefined ? xs.tryRead(`${be}/${VIF_KEY.mtu}`) : undefined) ?? cfg.mtu);
      try {
        addDevice({ handle: h, mac, ip, mtu: Number.isInteger(mtu) && mtu >= 68 && mtu <= cfg.mtu ? mtu : cfg.mtu });
        log(`vif${h} plugged: ${mac} ${ip}`);
      } catch (e) {
        // xenbus_dev_fatal: the probe failed (e.g. no room for the buffers); say why where the toolstack
        // looks, and close the device: the guest carries on without it.
        const why = e instanceof Error ? e.message : String(e);
        log(`vif${h}: probe failed: ${why}`);
        xs.write(vifErrorPath(domid, h), `probe failed: ${why}`);
        xs.write(`${fe}/${VIF_KEY.state}`, String(XenbusState.Closed));
        failed.add(h);
      }
    }
  });
  /** The device a control op names (`vif: N`), else the first. */
  const deviceFor = (args: RpcValue): GuestDevice => {
    const want = args !== null && typeof args === 'object' && 'vif' in args ? Number((args as { vif: unknown }).vif) : undefined;
    if (want === undefined) return devices[0];
    const d = devices.find((x) => x.nf.handle === want);
    if (!d) throw new Error(`no vif${String(want)} (vifs: ${devices.map((x) => x.nf.handle).join(', ')})`);
    return d;
  };
  const kernel: GuestKernel = { env, mem, frames, gnttab, grefs, evtchn, xs, devices, log };

  const stats = (): Record<string, unknown> => ({
    domid,
    name: env.id.name,
    host: env.id.host,
    vifs: devices.map((d) => ({ handle: d.nf.handle, ...d.nf.stats(), accel: d.accel ? d.accel.stats(d.nf.accel !== null) : null })),
    endpoint: devices[0]?.ep.stats() ?? null,
    endpoints: Object.fromEntries(devices.slice(1).map((d) => [`vif${d.nf.handle}`, d.ep.stats()])),
    core: { ...core.c, pcpu: core.pcpu },
    freeFrames: frames.available,
    resume: resumedAt === null ? null : { at: resumedAt, firstRxAt: devices.map((d) => d.rx.firstAfterResume) },
    freeGrants: grefs.available,
    kinds: counterKinds(),
  });

  /**
   * Suspend, second half (the toolstack has removed the backends): drain
   * what they left on the rings, write the kernel's record into RAM and stop.
   * The answer says where the record is.
   */
  function suspend(): RpcValue {
    const now = clock.now();
    const devs: DeviceState[] = devices.map((d) => {
      const unanswered = d.nf.drainForSuspend();
      return {
        handle: d.nf.handle,
        mac: d.mac,
        ip: d.ip,
        mtu: d.mtu,
        counters: { ...d.nf.c },
        endpoint: d.ep.save(),
        unanswered,
        lastRxAt: d.rx.last >= 0 ? crossThreadNow(clock) - (now - d.rx.last) : null,
      };
    });
    const at = writeKernelState(mem, frames, { v: KERNEL_STATE_VERSION, devices: devs });
    for (const offs of unpoll.values()) for (const off of offs) off();
    unpoll.clear();
    core.stop();
    log(`suspended: record of ${at.len} octets at frame ${at.frame}, ${devs.reduce((n, d) => n + d.unanswered.length, 0)} TX frame(s) to send again`);
    return { ...at, lastRxAt: devs.map((d) => d.lastRxAt), unanswered: devs.map((d) => d.unanswered.length) };
  }

  /**
   * Resume from a record: the frames it names stay ours until read; each vif
   * is probed afresh (new rings, grants and event channel against whatever
   * backend this host gives it, as Linux netfront's resume), its counters and
   * apps carry on, and once it is connected it sends again what its old
   * backend never took, then announces itself with a gratuitous ARP so
   * bridges and switches learn where it is now.
   */
  function resume(at: { frame: number; len: number }): void {
    const st = readKernelState(mem, at);
    const held = [...stateFrames(at), ...st.devices.flatMap((d) => d.unanswered.flatMap(bufferFrames))];
    frames.take([...new Set(held)]);
    for (const f of stateFrames(at)) frames.release(f);
    for (const s of st.devices) {
      const d = addDevice({ handle: s.handle, mac: s.mac, ip: s.ip, mtu: s.mtu });
      Object.assign(d.nf.c, s.counters);
      d.ep.restore(s.endpoint, (id) => env.control.replier(id));
      d.rx.armed = true;
      const pending = s.unanswered;
      // Once connected: the untaken TX first (each is sent once: splice empties the list), then the announcement.
      d.nf.onCarrier = (up) => {
        if (!up) return;
        resend(d, pending.splice(0));
        announce(d);
      };
    }
    log(`resumed: ${st.devices.length} vif(s) probed afresh`);
  }

  /** Send again the frames the old backend never took; the rest (no room now) are dropped and counted. */
  function resend(d: GuestDevice, bufs: { addr: number; len: number }[]): void {
    for (const b of bufs) {
      const at = d.nf.txReserve(b.len);
      if (at < 0) {
        d.nf.c.txLostAtResume++;
      } else {
        mem.u8.copyWithin(at, b.addr, b.addr + b.len);
        d.nf.txCommit(b.len);
        d.nf.c.txResent++;
      }
      for (const f of bufferFrames(b)) frames.release(f);
    }
    d.nf.flush();
  }

  function announce(d: GuestDevice): void {
    if (d.ep.stack.announce()) d.nf.flush();
  }

  env.control.onRequest((op, args, later, shared) => {
    if (op === 'stats') return stats();
    const cap = captureOp(capture, op, (args ?? {}) as Record<string, unknown>, shared);
    if (cap) return cap;
    if (op === 'migrate_arm') {
      for (const d of devices) d.rx.armed = true;
      return true;
    }
    if (op === 'suspend_quiesce') {
      for (const d of devices) d.nf.quiesce();
      return true;
    }
    if (op === 'suspend') return suspend();
    if (op === 'shutdown') {
      core.stop();
      return stats();
    }
    if (op === 'vif_close') {
      deviceFor(args).nf.close();
      return true;
    }
    if (ext.control) {
      const r = ext.control(op, args, later, kernel);
      if (r !== NOT_MINE) return r;
    }
    return deviceFor(args).ep.control(op, args, later);
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

}

/** The stock guest kernel. */
export function boot(env: DomainEnv<GuestConfig>): void {
  bootGuest(env);
}
