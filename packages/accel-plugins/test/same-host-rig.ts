/**
 * Several guests of one host with a vif plugin (vnic on the VI NIC, vdpa on
 * the virtio NIC), in process: the plugin's real backend with its commands
 * going to a real NIC's admin handlers, each guest's real frontend with real
 * RAM, frames and grants (a map standing for Xen's grant table), each vif's
 * plugin channel two queues the test pumps. The NIC's wire ends in a list
 * (what left the host), its function 0 (dom0's slow path) is not driven: a
 * frame steered there is counted by the NIC. What the same-host tests drive.
 */
import { FrameAllocator, GuestMemory, VirtualClock, WithShared, type McdiOp, type VdpaOp } from '@xsim/hypervisor';
import { parseIp, writeIpUdp } from '@xsim/netstack';
import { HwNic, VqNic, mcdiServer, vdpaServer } from '@xsim/nic';
import type { AccelBackend, AccelVif } from '@xsim/netback';
import type { AccelFrontend, AccelFrontendContext } from '@xsim/netfront';
import * as vnicBackend from '../src/vnic/backend.ts';
import * as vnicFrontend from '../src/vnic/frontend.ts';
import * as vdpaBackend from '../src/vdpa/backend.ts';
import * as vdpaFrontend from '../src/vdpa/frontend.ts';

export type Model = 'vnic' | 'vdpa';
export const REMOTE_MAC = 0x00163e00ff01;
const GUEST_PAGES = 512;
const macOf = (domid: number) => 0x00163e000000 + domid;
const ipOf = (domid: number) => `10.0.1.${domid}`;
const macBytes = (mac: number): number[] => [5, 4, 3, 2, 1, 0].map((i) => Math.floor(mac / 2 ** (8 * i)) % 256);

/** An Ethernet + IPv4 + UDP frame to `dst` from `src` (MACs), `len` octets, to port 5001 of `dstIp`. */
export function udpTo(dst: number, src: number, dstIp = '10.0.9.9', len = 200, fill = 0x5a): Uint8Array {
  const b = new Uint8Array(len);
  b.set(macBytes(dst), 0);
  b.set(macBytes(src), 6);
  b[12] = 0x08;
  b.fill(fill, 42);
  writeIpUdp(b, 14, parseIp('10.0.1.200'), parseIp(dstIp), 1, 40000, 5001, len - 42);
  return b;
}

interface Msg {
  op: string;
  args: Record<string, unknown>;
  shared: readonly SharedArrayBuffer[];
}

/** One guest: its vif, its frontend, its two message queues, what it was told and what it received. */
export interface Guest {
  vif: AccelVif;
  fe: AccelFrontend;
  /** The guest's RAM (the plugin's DMA memory is in it). */
  ram: Uint8Array;
  /** Times its frontend asked the platform to wake the NIC (ctx.kickNic). */
  kicks: number;
  toBackend: Msg[];
  toFrontend: Msg[];
  /** Every message its frontend got from the backend, in order (the plugin's own and the framework's). */
  told: Msg[];
  delivered: Uint8Array[];
  draining: boolean;
  drained: boolean;
  detached: boolean;
  stats(): Record<string, number | boolean>;
  /** Is this MAC a fast-path destination of its frontend now (does it take a frame to it)? */
  takes(mac: number): boolean;
}

export function sameHostRig(model: Model, o: { guests?: number; args?: Record<string, unknown>; filters?: number } = {}) {
  const clock = new VirtualClock();
  const n = o.guests ?? 3;
  const rams = new Map<number, Uint8Array>([[0, new Uint8Array(new SharedArrayBuffer(16 * 4096))]]);
  const mems = new Map<number, GuestMemory>();
  for (let d = 1; d <= n; d++) {
    const mem = GuestMemory.allocate(GUEST_PAGES);
    mems.set(d, mem);
    rams.set(d, mem.u8);
  }
  const spec = { name: 'nic-a', host: 'host-a', mac: 0x000f53000000, mtu: 1500, vis: 8, filters: o.filters };
  const nic =
    model === 'vnic'
      ? new HwNic({ ...spec, vendor: '1924', device: '0803' }, rams, clock)
      : new VqNic({ ...spec, vendor: '1af4', device: '1041' }, rams, clock);
  const wire: Uint8Array[] = [];
  nic.wire = (ram, addr, len) => void wire.push(ram.slice(addr, addr + len));
  const mcdi = model === 'vnic' ? mcdiServer(nic as HwNic) : null;
  const vdpa = model === 'vdpa' ? vdpaServer(nic as VqNic) : null;
  const reply = (r: unknown) => (r instanceof WithShared ? { value: r.value, shared: r.shared } : { value: r, shared: [] });

  const granted = new Map<number, Map<number, number>>();
  const mapped = new Set<string>();
  const guests: Guest[] = [];
  const logs: string[] = [];
  const freeVis = [1, 2, 3, 4, 5, 6, 7];
  const byKey = (vif: AccelVif) => guests.find((g) => g.vif.key === vif.key)!;

  const bctx = {
    apiVersion: '1.5',
    nic: () => ({ alias: model === 'vnic' ? 'nic:1924-0803' : 'nic:1af4-1041', mac: spec.mac, mtu: 1500, vis: 8, linkUp: true }),
    dom0: 0,
    mcdi: (op: McdiOp, a: unknown) => mcdi!.call(op, a as never),
    mcdiShared: (op: McdiOp, a: unknown, shared: SharedArrayBuffer[]) => reply(mcdi!.call(op, a as never, shared)),
    vdpa: (op: VdpaOp, a: unknown) => vdpa!.call(op, a as never),
    vdpaShared: (op: VdpaOp, a: unknown, shared: SharedArrayBuffer[]) => reply(vdpa!.call(op, a as never, shared)),
    allocVi: () => freeVis.shift() ?? null,
    freeVi: (vi: number) => void freeVis.push(vi),
    deviceIrq: () => ({ binding: new SharedArrayBuffer(8), doorbell: new SharedArrayBuffer(64) }),
    mapGrants: (domid: number, grefs: number[]) => {
      for (const g of grefs) mapped.add(`${domid}/${g}`);
      return { frames: grefs.map((g) => granted.get(domid)!.get(g)!), handles: grefs.map((g) => domid * 100000 + g) };
    },
    unmapGrants: (handles: number[]) => handles.forEach((h) => mapped.delete(`${Math.floor(h / 100000)}/${h % 100000}`)),
    send: (vif: AccelVif, op: string, args: Record<string, unknown>, shared: SharedArrayBuffer[] = []) => byKey(vif).toFrontend.push({ op, args, shared }),
    uplinkMacs: () => [REMOTE_MAC],
    detached: (vif: AccelVif) => byKey(vif).toFrontend.push({ op: 'detached', args: {}, shared: [] }),
    log: (m: string) => logs.push(m),
  };
  const be: AccelBackend = (model === 'vnic' ? vnicBackend : vdpaBackend).createBackend(bctx as never, o.args ?? {});

  for (let d = 1; d <= n; d++) {
    const mem = mems.get(d)!;
    const grants = new Map<number, number>();
    granted.set(d, grants);
    let nextRef = 1;
    const g: Guest = {
      vif: { key: `${d}/0`, domid: d, handle: 0, mac: macOf(d), ip: parseIp(ipOf(d)) },
      fe: null as unknown as AccelFrontend,
      ram: mem.u8,
      kicks: 0,
      toBackend: [],
      toFrontend: [],
      told: [],
      delivered: [],
      draining: false,
      drained: false,
      detached: false,
      stats: () => g.fe.getStats() as Record<string, number | boolean>,
      takes: (mac) => {
        // The frontend's destination sets (private to it): read, never changed, so asking sends nothing.
        const f = g.fe as unknown as { fast: Set<number>; local: Set<number> };
        return f.fast.has(mac) || f.local.has(mac);
      },
    };
    const fctx = {
      apiVersion: '1.5',
      domid: d,
      backendDomid: 0,
      mac: g.vif.mac,
      mem,
      frames: new FrameAllocator(mem),
      gnttab: {
        grantAccess: (ref: number, _d: number, frame: number) => void grants.set(ref, frame),
        endAccess: (ref: number) => !mapped.has(`${d}/${ref}`) && grants.delete(ref),
      },
      grefs: { alloc: () => nextRef++, release: () => {} },
      evtchn: { allocPirq: () => 7, bindHandler: () => {}, close: () => {} },
      mtu: 1500,
      clock,
      send: (op: string, args: Record<string, unknown>) => g.toBackend.push({ op, args, shared: [] }),
      kickNic: () => void g.kicks++,
      deliver: (ram: Uint8Array, off: number, len: number) => void g.delivered.push(ram.slice(off, off + len)),
      log: (m: string) => logs.push(m),
    } as unknown as AccelFrontendContext;
    g.fe = (model === 'vnic' ? vnicFrontend : vdpaFrontend).createFrontend(fctx);
    guests.push(g);
  }

  /** One round: every vif's messages both ways, the NIC, each guest's poll (or drain). */
  const step = (): number => {
    let work = 0;
    for (const g of guests) {
      for (let m = g.toFrontend.shift(); m; m = g.toFrontend.shift(), work++) {
        g.told.push(m);
        if (m.op === 'offer') {
          g.draining = g.drained = g.detached = false;
          g.fe.newDevice(m.args, m.shared);
        } else if (m.op === 'detached') {
          g.detached = true;
          g.fe.release!();
        } else {
          if (m.op === 'detach') g.draining = true;
          g.fe.onMessage(m.op, m.args, m.shared);
        }
      }
      for (let m = g.toBackend.shift(); m; m = g.toBackend.shift(), work++) be.onFrontendMessage!(g.vif, m.op, m.args);
    }
    work += nic.poll();
    nic.flushAll();
    for (const g of guests) {
      if (g.detached) continue;
      if (g.draining && !g.drained && g.fe.remove()) {
        g.drained = true;
        g.toBackend.push({ op: 'drained', args: {}, shared: [] });
        work++;
      } else if (!g.draining) work += g.fe.poll(64);
    }
    return work;
  };
  const pump = (): void => {
    for (let i = 0; i < 1000 && step() > 0; i++);
  };
  /** Attach a guest's vif and take it through the whole handshake (offer, accept, ready, running). */
  const attach = (...gs: Guest[]): void => {
    for (const g of gs) be.attachVif!(g.vif);
    pump();
  };
  /** The switch-only MAC filters on the NIC: [VI or function, MAC]. */
  const localFilters = (): [number, number][] =>
    nic.filters
      .list()
      .filter((e) => e.match.kind === 'mac' && e.match.local === true)
      .map((e) => [e.vi, e.match.kind === 'mac' ? e.match.mac : -1]);
  /** The plugin's messages a guest was told of `op`, and their MACs. */
  const toldMacs = (g: Guest, op: string): number[] => g.told.filter((m) => m.op === op).map((m) => Number(m.args.mac));
  /** A frame from `from` to `to`'s MAC, offered to `from`'s frontend as netfront does (then the burst's flush): taken (fast path) or declined. */
  const send = (from: Guest, to: Guest | number, len = 200): boolean => {
    const mac = typeof to === 'number' ? to : to.vif.mac;
    const f = udpTo(mac, from.vif.mac, typeof to === 'number' ? '10.0.9.9' : ipOf(to.vif.domid), len, from.vif.domid);
    const taken = from.fe.startXmit(f, 0, f.length);
    from.fe.flush?.();
    return taken;
  };
  const fnStats = (g: Guest): Record<string, number> => {
    const vi = Number(
      (be.stats() as { vifs: { vif: string; vi?: number; fn?: number }[] }).vifs.find((v) => v.vif === g.vif.key)?.[model === 'vnic' ? 'vi' : 'fn'],
    );
    return nic.stats().vis[String(vi)] as unknown as Record<string, number>;
  };
  return { model, nic, be, guests, wire, logs, step, pump, attach, localFilters, toldMacs, send, fnStats, mapped, macOf };
}

export type SameHostRig = ReturnType<typeof sameHostRig>;
