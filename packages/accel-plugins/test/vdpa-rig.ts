/**
 * The vdpa plugin's two halves against a real virtio NIC (VqNic), in process:
 * the backend's vDPA commands go to the device's admin handlers, the channel
 * between the halves is two queues pumped by the test, the guest's grants and
 * frames are real (GuestMemory, FrameAllocator) with a grant table standing in
 * for Xen's. The NIC is wired to a second one, whose function 0 (a plain
 * Virtqueue driver, as the remote host's dom0 would be) sends and receives
 * the frames from the wire; the local NIC's function 0 stands for dom0's
 * slow path: what reaches it is shown to the backend's onSlowPathRx, as
 * netback does for an accelerated guest.
 */
import { FrameAllocator, GuestMemory, VirtualClock, WithShared, type RpcValue, type VdpaOp } from '@xsim/hypervisor';
import { parseIp, writeIpUdp } from '@xsim/netstack';
import { VQ_PAIR_PAGES, VQ_SIZE, Virtqueue, VqNic, VqNotify, handleVdpa } from '@xsim/nic';
import type { AccelBackend, AccelVif } from '@xsim/netback';
import type { AccelFrontend, AccelFrontendContext } from '@xsim/netfront';
import { createBackend } from '../src/vdpa/backend.ts';
import { createFrontend } from '../src/vdpa/frontend.ts';

const PAGE = 4096;
export const GUEST_MAC = 0x00163e000101;
export const REMOTE_MAC = 0x00163e000201;
export const GUEST_IP = '10.0.1.1';
export const REMOTE_IP = '10.0.2.1';
const GUEST = 1;
const GUEST_PAGES = 512;
/** A plain driver's RAM: 64 RX pages, then 3 TX pages, then its queues. */
const DRV_RX = 64;
const DRV_TX = DRV_RX;
const DRV_Q = DRV_RX + 3;
const DRV_PAGES = DRV_Q + VQ_PAIR_PAGES;
const FN = 3;

const macBytes = (mac: number): number[] => [5, 4, 3, 2, 1, 0].map((i) => Math.floor(mac / 2 ** (8 * i)) % 256);

/** An Ethernet + IPv4 + UDP frame dst <- src of `len` octets to `port`, payload filled with `fill`. */
export function udpFrame(dst: number, src: number, dstIp: string, port: number, len = 200, fill = 0x5a): Uint8Array {
  const b = new Uint8Array(len);
  b.set(macBytes(dst), 0);
  b.set(macBytes(src), 6);
  b[12] = 0x08;
  b.fill(fill, 42);
  writeIpUdp(b, 14, parseIp(dst === GUEST_MAC ? REMOTE_IP : GUEST_IP), parseIp(dstIp), 1, 40000, port, len - 42);
  return b;
}

/** Function 0 of a NIC driven by a plain Virtqueue driver (RX chains of `pagesPerBuf` pages): what it received, and a send. */
class PlainDriver {
  readonly ram = new Uint8Array(new SharedArrayBuffer(DRV_PAGES * PAGE));
  readonly rx: Virtqueue;
  readonly tx: Virtqueue;
  readonly notify: VqNotify;
  readonly received: Uint8Array[] = [];
  /** By chain head: the RAM offset of the RX buffer it carries. */
  private readonly bufAt = new Map<number, number>();

  constructor(
    nic: VqNic,
    domid: number,
    private readonly pagesPerBuf: number,
  ) {
    nic.addDomain(domid, this.ram);
    handleVdpa(nic, 'iotlb_map', { fn: 0, domid, iova: 0, frames: Array.from({ length: DRV_PAGES }, (_, i) => i) });
    const q = (p: number) => ({ desc: p * PAGE, avail: (p + 1) * PAGE, used: (p + 2) * PAGE });
    const r = handleVdpa(nic, 'fn_start', {
      fn: 0,
      domid,
      rx: { size: VQ_SIZE, ...q(DRV_Q) },
      tx: { size: VQ_SIZE, ...q(DRV_Q + 3) },
      macs: null,
    }) as WithShared;
    this.notify = new VqNotify(r.shared[0]);
    const sab = this.ram.buffer as SharedArrayBuffer;
    this.rx = new Virtqueue(sab, q(DRV_Q), VQ_SIZE, () => {});
    this.tx = new Virtqueue(sab, q(DRV_Q + 3), VQ_SIZE, () => {});
    for (let p = 0; p + pagesPerBuf <= DRV_RX; p += pagesPerBuf) this.postRx(p * PAGE);
    this.rx.publish();
  }

  private postRx(at: number): void {
    const pages = Array.from({ length: this.pagesPerBuf }, (_, i) => at + i * PAGE);
    this.bufAt.set(
      this.rx.add(
        pages,
        pages.map(() => PAGE),
        true,
      ),
      at,
    );
  }

  send(frame: Uint8Array): void {
    const at = DRV_TX * PAGE;
    this.ram.fill(0, at, at + 12);
    this.ram.set(frame, at + 12);
    this.tx.add([at], [12 + frame.length], false);
    this.tx.publish();
  }

  /** Take what the device returned: completions, and received frames (header stripped). */
  take(): Uint8Array[] {
    while (this.tx.takeUsed());
    const got: Uint8Array[] = [];
    for (let u = this.rx.takeUsed(); u; u = this.rx.takeUsed()) {
      const at = this.bufAt.get(u.head)!;
      got.push(this.ram.slice(at + 12, at + u.len));
      this.postRx(at);
    }
    this.rx.publish();
    this.notify.rxSeen(this.rx.lastUsed);
    this.received.push(...got);
    return got;
  }
}

export interface Msg {
  op: string;
  args: Record<string, unknown>;
  shared: SharedArrayBuffer[];
}

export function vdpaRig(o: { mtu?: number; args?: Record<string, unknown>; steering?: number; failIn?: 'deviceIrq' } = {}) {
  const mtu = o.mtu ?? 1500;
  const clock = new VirtualClock();
  const mem = GuestMemory.allocate(GUEST_PAGES);
  const frames = new FrameAllocator(mem);
  const mk = (name: string) =>
    new VqNic({ name, host: name, mac: 0x000f53000000, mtu, vendor: '1af4', device: '1041', vis: 8, filters: o.steering }, new Map([[GUEST, mem.u8]]), clock);
  const nic = mk('nic-a');
  const remoteNic = mk('nic-b');
  nic.wire = remoteNic.fromWire;
  remoteNic.wire = nic.fromWire;
  const pagesPerBuf = Math.ceil((12 + mtu + 18) / PAGE);
  const remote = new PlainDriver(remoteNic, 0, pagesPerBuf);
  const dom0 = new PlainDriver(nic, 0, pagesPerBuf);

  // The guest's grant table: ref -> frame, and which refs dom0 maps.
  const granted = new Map<number, number>();
  const mappedRefs = new Set<number>();
  let nextRef = 1;
  const toBackend: Msg[] = [];
  const toFrontend: Msg[] = [];
  const delivered: { bytes: Uint8Array; shared: boolean }[] = [];
  const logs: string[] = [];
  const detached: string[] = [];
  let nicKicks = 0;
  const irq = { binding: new SharedArrayBuffer(8), doorbell: new SharedArrayBuffer(64) };
  const vif: AccelVif = { key: '1/0', domid: GUEST, handle: 0, mac: GUEST_MAC, ip: parseIp(GUEST_IP) };
  const vdpa = (op: VdpaOp, args: unknown, shared: SharedArrayBuffer[] = []) => handleVdpa(nic, op, args as RpcValue, shared);

  const fctx = {
    apiVersion: '1.5',
    domid: GUEST,
    backendDomid: 0,
    mac: GUEST_MAC,
    mem,
    frames,
    gnttab: {
      grantAccess: (ref: number, _d: number, frame: number) => void granted.set(ref, frame),
      endAccess: (ref: number) => !mappedRefs.has(ref) && granted.delete(ref),
    },
    grefs: { alloc: () => nextRef++, release: () => {} },
    evtchn: { allocPirq: () => 7, bindHandler: () => {}, close: () => {} },
    mtu,
    clock,
    send: (op: string, args: Record<string, unknown>) => toBackend.push({ op, args, shared: [] }),
    kickNic: () => void nicKicks++,
    deliver: (ram: Uint8Array, off: number, len: number) =>
      delivered.push({ bytes: ram.slice(off, off + len), shared: ram.buffer instanceof SharedArrayBuffer }),
    log: (m: string) => logs.push(m),
  } as unknown as AccelFrontendContext;
  const fe: AccelFrontend = createFrontend(fctx);

  const bctx = {
    apiVersion: '1.5',
    nic: () => ({ alias: 'nic:1af4-1041', mac: 0x000f53000000, mtu, vis: 8, linkUp: true }),
    dom0: 0,
    mcdi: () => {
      throw new Error('mcdi on a virtio NIC');
    },
    mcdiShared: () => {
      throw new Error('mcdi on a virtio NIC');
    },
    vdpa: (op: VdpaOp, args: unknown) => vdpa(op, args),
    vdpaShared: (op: VdpaOp, args: unknown, shared: SharedArrayBuffer[]) => {
      const r = vdpa(op, args, shared);
      return r instanceof WithShared ? { value: r.value, shared: r.shared } : { value: r, shared: [] };
    },
    allocVi: () => FN,
    freeVi: () => {},
    deviceIrq: () => {
      if (o.failIn === 'deviceIrq') throw new Error('port 7 is not a device interrupt of domain 1');
      return irq;
    },
    mapGrants: (_d: number, grefs: number[]) => {
      for (const g of grefs) mappedRefs.add(g);
      return { frames: grefs.map((g) => granted.get(g)!), handles: [...grefs] };
    },
    unmapGrants: (handles: number[]) => handles.forEach((h) => mappedRefs.delete(h)),
    send: (_v: AccelVif, op: string, args: Record<string, unknown>, shared: SharedArrayBuffer[] = []) => toFrontend.push({ op, args, shared }),
    uplinkMacs: () => [REMOTE_MAC],
    detached: (v: AccelVif) => {
      detached.push(v.key);
      toFrontend.push({ op: 'detached', args: {}, shared: [] });
    },
    log: (m: string) => logs.push(m),
  };
  const be: AccelBackend = createBackend(bctx as never, o.args ?? {});

  let draining = false;
  let drained = false;
  /** One round: messages both ways, the devices, the guest's poll (or drain), dom0's slow path. */
  const step = (): number => {
    let work = 0;
    for (let m = toFrontend.shift(); m; m = toFrontend.shift(), work++) {
      if (m.op === 'offer') fe.newDevice(m.args, m.shared);
      else if (m.op === 'detached') fe.release!();
      else {
        if (m.op === 'detach') draining = true;
        fe.onMessage(m.op, m.args, m.shared);
      }
    }
    for (let m = toBackend.shift(); m; m = toBackend.shift(), work++) be.onFrontendMessage!(vif, m.op, m.args);
    work += nic.poll() + remoteNic.poll();
    nic.flushAll();
    remoteNic.flushAll();
    if (draining && !drained && fe.remove()) {
      drained = true;
      toBackend.push({ op: 'drained', args: {}, shared: [] });
      work++;
    } else if (!draining) work += fe.poll(64);
    for (const f of dom0.take()) {
      be.onSlowPathRx!(vif, f, 0, f.length);
      work++;
    }
    work += remote.take().length;
    return work;
  };
  const pump = (): void => {
    for (let i = 0; i < 1000 && step() > 0; i++);
  };
  const attach = (): void => {
    be.attachVif!(vif);
    pump();
  };
  const stats = () => fe.getStats() as Record<string, number | boolean>;
  const irqRaised = (): boolean => Atomics.exchange(new Int32Array(irq.binding), 0, 0) === 1;
  return {
    nic,
    remoteNic,
    remote,
    dom0,
    fe,
    be,
    vif,
    mem,
    frames,
    toBackend,
    toFrontend,
    delivered,
    logs,
    detached,
    granted,
    mappedRefs,
    stats,
    step,
    pump,
    attach,
    irqRaised,
    nicKicks: () => nicKicks,
    fn: FN,
  };
}
