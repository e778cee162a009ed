/**
 * The second NIC model (`nic:1af4-1041`): a vDPA-style device whose every
 * function is a virtio-net queue pair in hardware (split virtqueues, virtio
 * 1.2 §2.7), behind an IOMMU with one IO address space per function, with
 * flow steering into functions. Same isolation as the VI model: only dom0
 * maps pages and steers traffic (the admin channel, vdpa-admin.ts); every DMA
 * goes through the IOMMU; a function sends only from its MACs.
 *
 * Everything a driver wrote is read once: the available index once per
 * round, each ring entry and descriptor copied out once, each TX chain
 * gathered into the device's FIFO before the checks and the routing read it,
 * each RX chain's descriptors copied once for the room check and the DMA.
 */
import { DIR_INBOUND, DIR_OUTBOUND, DeviceIrq, type Clock } from '@xsim/hypervisor';
import { Iommu } from './iommu.ts';
import { NicPort, type NicStats } from './nic-port.ts';
import type { NicSpec } from './nic-spec.ts';
import { DeviceQueue, VqFn } from './vq-fn.ts';
import { nicCompleteAt, nicCsumGood } from './csum-engine.ts';
import {
  N_RX_SEEN,
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_SIZE,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VNH_CSUM_OFFSET,
  VNH_CSUM_START,
  VNH_FLAGS,
  VNH_NUM_BUFFERS,
  VQD_ADDR,
  VQD_FLAGS,
  VQD_LEN,
  VQD_NEXT,
  VQ_DESC_SIZE,
  VQ_FAULT_CHAIN,
  VQ_FAULT_DIRECTION,
  VQ_FAULT_INDEX,
  VQ_FAULT_IOMMU,
  VQ_PAGE,
} from './vq-layout.ts';

const TX_BUDGET = 64;
/** The longest chain the device follows (a 64 KiB frame in 4 KiB pieces is 17): longer is a fault. */
const MAX_CHAIN = 64;
const FIFO = 65536 + VIRTIO_NET_HDR_SIZE;

/** A queue's areas as fn_start names them (IOVAs). */
export interface VqSetup {
  size: number;
  desc: number;
  avail: number;
  used: number;
}

export class VqNic extends NicPort<VqFn> {
  readonly fns: VqFn[];
  readonly iommu = new Iommu();
  /** The TX FIFO: every chain a function sends is gathered here once. */
  private readonly staging = new Uint8Array(FIFO);
  private readonly fifoView = new DataView(this.staging.buffer);
  // Private copies of the descriptors of the chain in hand.
  private readonly dAddr = new Float64Array(MAX_CHAIN);
  private readonly dLen = new Uint32Array(MAX_CHAIN);
  private readonly active: VqFn[] = [];
  private readonly hdr = new Uint8Array(VIRTIO_NET_HDR_SIZE);

  constructor(spec: NicSpec, rams: Map<number, Uint8Array>, clock?: Clock) {
    super(spec, rams, clock);
    this.fns = Array.from({ length: spec.vis }, (_, i) => new VqFn(i));
    // Received frames fill one chain each (no VIRTIO_NET_F_MRG_RXBUF merging): num_buffers is 1.
    new DataView(this.hdr.buffer).setUint16(VNH_NUM_BUFFERS, 1, true);
  }

  protected attached(f: VqFn): boolean {
    return f.a !== null;
  }

  fn(fn: number): VqFn {
    const f = this.fns[fn];
    if (!f) throw new Error(`no function ${fn} (this NIC has ${this.fns.length})`);
    return f;
  }

  // ---------------- admin ----------------

  iotlbMap(fn: number, domid: number, iova: number, frames: number[]): number {
    const f = this.fn(fn);
    if (f.a && f.a.domid !== domid) throw new Error(`iotlb_map: function ${fn} runs for domain ${f.a.domid}, not ${domid}`);
    const r = this.rams.get(domid);
    return this.iommu.map(fn, domid, iova, frames, r ? Math.floor(r.u8.byteLength / VQ_PAGE) : undefined);
  }

  iotlbUnmap(fn: number, iova: number, count: number): number {
    const a = this.fn(fn).a;
    if (a) {
      const rings = [a.rx, a.tx].flatMap((q) => [q.desc, q.avail, q.used]);
      for (let i = 0; i < count; i++) {
        const page = this.iommu.translate(fn, iova + i * VQ_PAGE, 0);
        if (page >= 0 && rings.includes(page))
          throw new Error(`iotlb_unmap: iova ${iova + i * VQ_PAGE} holds a queue of function ${fn}, which runs (fn_stop it first)`);
      }
    }
    return this.iommu.unmap(fn, iova, count);
  }

  /** Attach a driver: its queues' areas (IOVAs of pages mapped for the function), its interrupt, its MACs. */
  fnStart(
    fn: number,
    domid: number,
    rx: VqSetup,
    tx: VqSetup,
    irq: { binding: SharedArrayBuffer; doorbell: SharedArrayBuffer } | null,
    macs: number[] | null,
    features = 0,
  ): SharedArrayBuffer {
    const f = this.fn(fn);
    if (f.running || f.a) throw new Error(`function ${fn} is already started`);
    const ram = this.rams.get(domid);
    if (!ram) throw new Error(`no domain ${domid} on host ${this.spec.host}`);
    if (this.iommu.domainOf(fn) !== domid) throw new Error(`function ${fn} has no pages of domain ${domid} mapped (iotlb_map first)`);
    const queue = (name: string, s: VqSetup): DeviceQueue => {
      if (s.size < 2 || s.size > 256 || (s.size & (s.size - 1)) !== 0) throw new Error(`fn_start: ${name} size ${s.size} is not a power of two from 2 to 256`);
      const at = (area: string, iova: number) => {
        const o = this.iommu.translate(fn, iova, VQ_PAGE);
        if (o < 0) throw new Error(`fn_start: ${name} ${area} at iova ${iova} is not a page mapped for function ${fn}`);
        return o;
      };
      return new DeviceQueue(ram, s.size, at('desc', s.desc), at('avail', s.avail), at('used', s.used));
    };
    const notify = VqFn.newNotifyArea();
    f.attach({
      domid,
      ram,
      notify,
      nw: new Int32Array(notify),
      rx: queue('rx', rx),
      tx: queue('tx', tx),
      irq: irq ? new DeviceIrq(irq.binding, irq.doorbell) : null,
      macs: macs === null ? null : new Set(macs),
      features,
    });
    if (!this.active.includes(f)) this.active.push(f);
    this.tapFn(f);
    return notify;
  }

  /**
   * Stop a function and end its attachment; its steering rules and IOMMU
   * pages go. With `countStranded` (the default: its driver is gone) the
   * chains it made available that were never sent, and the frames delivered
   * that it never took, are counted here.
   */
  fnStop(fn: number, countStranded = true): { rules: number; pages: number } {
    const f = this.fn(fn);
    if (f.a) {
      f.flush(this.spec.host);
      if (countStranded) this.countStranded(f);
      f.detach();
      f.tap.release();
    }
    f.running = false;
    const i = this.active.indexOf(f);
    if (i >= 0) this.active.splice(i, 1);
    return { rules: this.filters.removeVi(fn), pages: this.iommu.clear(fn) };
  }

  private countStranded(f: VqFn): void {
    const a = f.a!;
    if (f.faultReason === 0) f.c.txDiscardedAtFini += Math.min(a.tx.pending(), a.tx.size);
    const seen = Atomics.load(a.nw, N_RX_SEEN) & 0xffff;
    f.c.rxUnreadAtFini += Math.min((a.rx.usedIdx - seen) & 0xffff, a.rx.size);
  }

  /** A reset of the device's virtualised resources: every guest function stops. Function 0 keeps running. */
  reset(): { vis: number; filters: number } {
    let vis = 0;
    let filters = 0;
    for (const f of [...this.active]) {
      if (f.id === 0) continue;
      filters += this.fnStop(f.id).rules;
      vis++;
    }
    return { vis, filters };
  }

  removeDomain(domid: number): void {
    for (const f of this.fns) if (f.domid === domid || (!f.a && this.iommu.domainOf(f.id) === domid)) this.fnStop(f.id, true);
    this.rams.delete(domid);
  }

  // ---------------- the notification protocol with a sleeping device ----------------

  txPending(): boolean {
    if (this.lineFull()) return false;
    for (const f of this.active) if (f.running && f.a!.tx.pending() !== 0) return true;
    return false;
  }

  /** About to sleep: every running function's transmitq asks for a kick at its next entry (avail_event). */
  markAsleep(asleep: boolean): void {
    if (!asleep) return; // awake: avail_event stays behind, so drivers do not kick a polling device
    for (const f of this.active) if (f.running) f.a!.tx.askForKick();
  }

  // ---------------- datapath ----------------

  poll(): number {
    let n = 0;
    for (let i = 0; i < this.active.length; i++) {
      const f = this.active[i];
      if (f.running) n += this.processTx(f);
    }
    return n;
  }

  /**
   * Copy the chain at `head` out of the table: its descriptors' addresses and
   * lengths into dAddr/dLen. Returns the count, or a negative fault reason.
   */
  private readChain(dv: DataView, q: DeviceQueue, head: number, writable: boolean): number {
    let d = head;
    for (let k = 0; k < MAX_CHAIN; k++) {
      if (d >= q.size) return -VQ_FAULT_CHAIN;
      const o = q.desc + d * VQ_DESC_SIZE;
      const lo = dv.getUint32(o + VQD_ADDR, true);
      const hi = dv.getUint32(o + VQD_ADDR + 4, true);
      const flags = dv.getUint16(o + VQD_FLAGS, true);
      if (flags & VIRTQ_DESC_F_INDIRECT) return -VQ_FAULT_CHAIN;
      if (((flags & VIRTQ_DESC_F_WRITE) !== 0) !== writable) return -VQ_FAULT_DIRECTION;
      // IOVAs above 2^48 are beyond any page the IOMMU maps.
      if (hi >= 0x10000) return -VQ_FAULT_IOMMU;
      this.dAddr[k] = hi * 0x100000000 + lo;
      this.dLen[k] = dv.getUint32(o + VQD_LEN, true);
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) return k + 1;
      d = dv.getUint16(o + VQD_NEXT, true);
    }
    return -VQ_FAULT_CHAIN;
  }

  private processTx(f: VqFn): number {
    const a = f.a!;
    const q = a.tx;
    const avail = q.availIdx();
    const pending = (avail - q.lastAvail) & 0xffff;
    if (pending === 0) return 0;
    if (pending > q.size) {
      f.fault(VQ_FAULT_INDEX);
      return 0;
    }
    const fifo = this.staging;
    let frames = 0;
    while (q.lastAvail !== avail && frames < TX_BUDGET && this.lineHasRoom()) {
      const head = q.head(q.lastAvail);
      const k = this.readChain(a.ram.dv, q, head, false);
      if (k < 0) {
        f.fault(-k);
        break;
      }
      let len = 0;
      let bad = 0;
      for (let j = 0; j < k && !bad; j++) {
        const l = this.dLen[j];
        if (len + l > fifo.length) bad = VQ_FAULT_CHAIN;
        else if (!this.iommu.read(f.id, a.ram.u8, this.dAddr[j], l, fifo, len)) bad = VQ_FAULT_IOMMU;
        else len += l;
      }
      if (bad) {
        f.fault(bad);
        break;
      }
      q.lastAvail = (q.lastAvail + 1) & 0xffff;
      q.putUsed(head, 0);
      frames++;
      // The frame follows its virtio_net_hdr: NEEDS_CSUM (with VIRTIO_NET_F_CSUM) is completed here, before anything sees the frame.
      if (len < VIRTIO_NET_HDR_SIZE) this.fnDrop(f, fifo, 0, len, DIR_OUTBOUND, 'txOversize');
      else if (this.txCsum(f, fifo, len)) this.transmit(f, a.macs, fifo, VIRTIO_NET_HDR_SIZE, len - VIRTIO_NET_HDR_SIZE);
      if (!f.a) return frames; // the frame's delivery tore this very function down
    }
    if (frames > 0) {
      q.publish();
      f.dirty = true;
    }
    return frames;
  }

  /** A TX frame's NEEDS_CSUM: completed (true), or, without VIRTIO_NET_F_CSUM or with csum_start/offset outside it, dropped (false). */
  private txCsum(f: VqFn, fifo: Uint8Array, len: number): boolean {
    if ((fifo[VNH_FLAGS] & VIRTIO_NET_HDR_F_NEEDS_CSUM) === 0) return true;
    const dv = this.fifoView;
    const ok =
      ((f.a!.features ?? 0) & VIRTIO_NET_F_CSUM) !== 0 &&
      nicCompleteAt(fifo, VIRTIO_NET_HDR_SIZE, len - VIRTIO_NET_HDR_SIZE, dv.getUint16(VNH_CSUM_START, true), dv.getUint16(VNH_CSUM_OFFSET, true));
    if (!ok) this.fnDrop(f, fifo, VIRTIO_NET_HDR_SIZE, len - VIRTIO_NET_HDR_SIZE, DIR_OUTBOUND, 'txCsumBad');
    else f.c.txCsumOffloaded++;
    return ok;
  }

  /** DMA a frame (after a virtio_net_hdr) into the function's next RX chain, or count why not. */
  protected deliver(f: VqFn, ram: Uint8Array, addr: number, len: number): void {
    if (!f.running) return this.fnDown(f, ram, addr, len);
    const a = f.a!;
    const q = a.rx;
    const pending = q.pending();
    if (pending > q.size) return f.fault(VQ_FAULT_INDEX);
    if (pending === 0) return this.fnDrop(f, ram, addr, len, DIR_INBOUND, 'rxNoDesc');
    const head = q.head(q.lastAvail);
    const k = this.readChain(a.ram.dv, q, head, true);
    if (k < 0) return f.fault(-k);
    let room = 0;
    for (let j = 0; j < k; j++) room += this.dLen[j];
    // A chain too small for the frame stays posted (a driver's buffers are all one size: its MTU is wrong).
    if (room < VIRTIO_NET_HDR_SIZE + len) return this.fnDrop(f, ram, addr, len, DIR_INBOUND, 'rxNoDesc');
    // DATA_VALID (with VIRTIO_NET_F_GUEST_CSUM): the device checked the frame's TCP or UDP checksum good.
    const valid = ((a.features ?? 0) & VIRTIO_NET_F_GUEST_CSUM) !== 0 && nicCsumGood(ram, addr, len);
    if (valid) f.c.rxCsumGood++;
    this.hdr[VNH_FLAGS] = valid ? VIRTIO_NET_HDR_F_DATA_VALID : 0;
    // Header then frame, scattered over the chain's buffers.
    let src: Uint8Array = this.hdr;
    let srcOff = 0;
    let left = VIRTIO_NET_HDR_SIZE;
    let frameDone = false;
    for (let j = 0; j < k && left > 0; j++) {
      let at = this.dAddr[j];
      let space = this.dLen[j];
      while (space > 0 && left > 0) {
        const n = Math.min(space, left);
        if (!this.iommu.write(f.id, a.ram.u8, at, src, srcOff, n)) return f.fault(VQ_FAULT_IOMMU);
        at += n;
        space -= n;
        srcOff += n;
        left -= n;
        if (left === 0 && !frameDone) {
          frameDone = true;
          src = ram;
          srcOff = addr;
          left = len;
        }
      }
    }
    q.lastAvail = (q.lastAvail + 1) & 0xffff;
    q.putUsed(head, VIRTIO_NET_HDR_SIZE + len);
    q.publish();
    f.dirty = true;
    f.c.rxFrames++;
    f.c.rxBytes += len;
    if (f.tap.on) f.tap.frame(ram, addr, len, DIR_INBOUND);
  }

  flushAll(): void {
    for (let i = 0; i < this.active.length; i++) this.active[i].flush(this.spec.host);
  }

  stats(): NicStats {
    return {
      ...this.portStats(),
      model: 'virtio',
      vis: Object.fromEntries(
        this.fns
          .filter((f) => f.running || f.c.faults > 0 || f.c.txFrames > 0 || f.c.rxFrames > 0 || f.c.attachments > 0)
          .map((f) => [f.id, { domid: f.domid, running: f.running, fault: f.faultReason, pages: this.iommu.mapped(f.id), ...f.c }]),
      ),
    };
  }
}
