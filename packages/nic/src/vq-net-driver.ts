/**
 * dom0's primary driver for the virtio NIC (`nic:1af4-1041`): owns function
 * 0, maps all of dom0's RAM into the function's IOMMU at IOVA = byte address
 * (an identity map, so any skb is sent without a copy and a multi-page RX
 * buffer is one descriptor), keeps the RX queue full of buffers that hold a
 * whole frame with its virtio_net_hdr, and turns used entries into RX frames
 * and TX completions. Its surface is NetDriver's, so netback's uplink and
 * NIC administration drive either model alike.
 *
 * TX: each frame is a chain of two readable descriptors, a 12-byte header
 * (a zeroed header of its own in a page of dom0's RAM: no offload is
 * negotiated) and the frame where it lies. RX: each buffer is one writable
 * descriptor; the device writes header and frame and returns the bytes
 * written, header included. The device's used entries are checked, never
 * trusted: a head we did not post is skipped (Virtqueue), a length that does
 * not fit what was posted is counted and dropped.
 */
import { WakeWord, declareCounters, type Counters, type RpcEndpoint, type VdpaOps } from '@xsim/hypervisor';
import {
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_STATUS_DRIVER_OK,
  VIRTIO_STATUS_NEEDS_RESET,
  VNH_CSUM_OFFSET,
  VNH_CSUM_START,
  VNH_FLAGS,
  VNH_NUM_BUFFERS,
  VQ_FAULT_NAMES,
  VQ_PAGE,
  VQ_PAIR_PAGES,
  VQ_QUEUE_PAGES,
  VQ_RX,
  VQ_SIZE,
  VQ_TX,
} from './vq-layout.ts';
import { Virtqueue, VqNotify, type VqArea } from './vq-queues.ts';
import type { NetDriverOptions, RxCallback, TxDoneCallback } from './net-driver.ts';
import { primaryStats, releasePrimary } from './primary-driver.ts';
import { nicCsumField } from './csum-engine.ts';

export interface VqNetDriverOptions extends Omit<NetDriverOptions, 'mcdi'> {
  /** The virtio NIC's admin channel (abi/vdpa.ts, over CH.mcdi: only dom0 holds it). */
  vdpa: RpcEndpoint<VdpaOps>;
}

/** Counters of the virtio primary driver: NetDriver's names where the meaning is the same. */
export const VQ_NET_DRIVER_COUNTERS = declareCounters('virtio primary driver', {
  txPosted: { kind: 'event', help: 'frames posted on VI 0' },
  txCompleted: { kind: 'event', help: 'VI 0 TX completions' },
  txRingFull: { kind: 'event', help: "times VI 0's TX ring was full (the caller keeps the frame)" },
  rxFrames: { kind: 'event', help: 'frames received on VI 0' },
  rxScatterDrops: { kind: 'drop', help: 'frames that did not fit one RX buffer (cannot happen within the MTU): dropped' },
  rxBadLenDrops: {
    kind: 'drop',
    help: 'virtio NIC RX used entries whose length is no frame (header only) or more than the buffer posted: dropped, the buffer posted again',
  },
  vqUsedUnposted: { kind: 'event', help: 'virtio used entries naming a chain the driver had not posted (either queue): ignored' },
  txCsumBad: { kind: 'drop', help: 'frames handed over with a partial checksum that is no IPv4 TCP or UDP frame: not sent (never partial on the wire)' },
  // vetoedRx, vetoedTx (shown in stats()) are declared and stored by driverlink (DRIVERLINK_COUNTERS).
});

export type VqNetDriverCounters = Counters<typeof VQ_NET_DRIVER_COUNTERS.decls>;

export interface VqNetDriverStats extends VqNetDriverCounters {
  /** Function 0 as its notify area says: 'running', 'needs reset' (a fault) or 'stopped'. */
  fnStatus: string;
  fault: string;
}

/** The most pages one iotlb_map takes (abi/vdpa.ts). */
const IOTLB_MAP_MAX = 65536;
/** TX chains are two descriptors (header, frame): at most this many frames in flight. */
const TX_SLOTS = VQ_SIZE / 2;

/** RX buffer size of the virtio primary driver at an MTU (virtio_net_hdr and a whole frame, 64-byte aligned). */
export function vqNetDriverRxBuf(mtu: number): number {
  return Math.ceil((VIRTIO_NET_HDR_SIZE + mtu + 18) / 64) * 64;
}

/** dom0 pages the virtio primary driver takes at an MTU: its queues, its TX headers and a full RX queue of buffers. */
export function vqNetDriverPages(mtu: number): number {
  const headers = Math.ceil((TX_SLOTS * VIRTIO_NET_HDR_SIZE) / VQ_PAGE);
  return VQ_PAIR_PAGES + headers + Math.ceil((VQ_SIZE * vqNetDriverRxBuf(mtu)) / VQ_PAGE);
}

/** A queue's three areas, a page each, from `page` of dom0's RAM (byte offsets, which are also their IOVAs). */
function queueArea(page: number): VqArea {
  return { desc: page * VQ_PAGE, avail: (page + 1) * VQ_PAGE, used: (page + 2) * VQ_PAGE };
}

export class VqNetDriver {
  private readonly rx: Virtqueue;
  private readonly tx: Virtqueue;
  private readonly notifyArea: VqNotify;
  private readonly ram: Uint8Array;
  private readonly port: number;
  private readonly rxBufSize: number;
  /** The RX buffer each posted head stands for (its RAM offset, which is its IOVA). */
  private readonly rxAddrOf = new Int32Array(VQ_SIZE).fill(-1);
  private readonly txCookie = new Int32Array(VQ_SIZE);
  /** The header slot each posted TX head holds, and the slots free. */
  private readonly txHdrOf = new Int16Array(VQ_SIZE).fill(-1);
  private readonly hdrFree: number[] = [];
  private readonly hdrBase: number;
  /** Frames a secondary driver vetoed on TX: completed at the next poll without reaching the NIC. */
  private readonly vetoedCookies: number[] = [];
  linkUp = true;
  mtu: number;
  /** VIRTIO_NET_F_CSUM and GUEST_CSUM negotiated: partial checksums may be handed to transmit, received frames come checked. */
  readonly csumOffload: boolean;
  readonly s: VqNetDriverCounters = VQ_NET_DRIVER_COUNTERS.zero();

  private constructor(private readonly o: VqNetDriverOptions) {
    const domid = o.evtchn.domid;
    this.mtu = o.mtu;
    this.ram = o.mem.u8;
    this.identityMap(domid);
    // The queues and the TX headers are pages of dom0's own RAM, mapped with the rest of it.
    const ringPage = o.frames.allocRange(VQ_PAIR_PAGES);
    const rxArea = queueArea(ringPage);
    const txArea = queueArea(ringPage + VQ_QUEUE_PAGES);
    Virtqueue.clear(this.ram, rxArea);
    Virtqueue.clear(this.ram, txArea);
    const hdrPages = Math.ceil((TX_SLOTS * VIRTIO_NET_HDR_SIZE) / VQ_PAGE);
    this.hdrBase = o.frames.allocRange(hdrPages) * VQ_PAGE;
    this.ram.fill(0, this.hdrBase, this.hdrBase + hdrPages * VQ_PAGE);
    for (let i = TX_SLOTS - 1; i >= 0; i--) this.hdrFree.push(i);

    this.port = o.evtchn.allocPirq();
    // Used entries are polled from the domain's turns; the interrupt only makes it runnable.
    o.evtchn.bindHandler(this.port, () => {});
    const irq = o.evtchn.deviceIrq(domid, this.port);
    const vq = (a: VqArea) => ({ size: VQ_SIZE, ...a });
    this.csumOffload = o.csum !== false;
    const features = this.csumOffload ? VIRTIO_NET_F_CSUM | VIRTIO_NET_F_GUEST_CSUM : 0;
    const r = o.vdpa.requestSyncShared('fn_start', { fn: 0, domid, rx: vq(rxArea), tx: vq(txArea), irq: true, macs: null, features }, 10_000, [
      irq.binding,
      irq.doorbell,
    ]);
    this.notifyArea = new VqNotify(r.shared[0]);
    const wake = new WakeWord(o.nicWake.sab, o.nicWake.offset);
    const kick = (q: number) => () => {
      this.notifyArea.notify(q);
      wake.kick();
    };
    this.rx = new Virtqueue(o.mem.sab, rxArea, VQ_SIZE, kick(VQ_RX));
    this.tx = new Virtqueue(o.mem.sab, txArea, VQ_SIZE, kick(VQ_TX));

    this.rxBufSize = vqNetDriverRxBuf(o.mtu);
    // A full RX queue by default, as a real driver keeps: a burst the size of a sender's window must fit.
    const count = Math.min(o.rxBuffers ?? VQ_SIZE, VQ_SIZE);
    const base = o.frames.allocRange(Math.ceil((count * this.rxBufSize) / VQ_PAGE)) * VQ_PAGE;
    for (let i = 0; i < count; i++) this.postRx(base + i * this.rxBufSize);
    this.rx.publish();
  }

  static probe(o: VqNetDriverOptions): VqNetDriver {
    return new VqNetDriver(o);
  }

  /** Map every page of dom0's RAM at IOVA = its byte address, at most IOTLB_MAP_MAX pages a call. */
  private identityMap(domid: number): void {
    for (let first = 0; first < this.o.mem.pages; first += IOTLB_MAP_MAX) {
      const n = Math.min(IOTLB_MAP_MAX, this.o.mem.pages - first);
      const frames = Array.from({ length: n }, (_, i) => first + i);
      this.o.vdpa.requestSync('iotlb_map', { fn: 0, domid, iova: first * VQ_PAGE, frames });
    }
  }

  private postRx(addr: number): void {
    const head = this.rx.add([addr], [this.rxBufSize], true);
    // Cannot fail: the queue has a descriptor for every buffer, and a buffer is reposted only once taken back.
    if (head >= 0) this.rxAddrOf[head] = addr;
  }

  /** Frames we may post now: each takes two descriptors and a header slot, given back at its used entry. */
  txFree(): number {
    return Math.min(this.tx.free >> 1, this.hdrFree.length);
  }

  private get faulted(): boolean {
    return (this.notifyArea.status & VIRTIO_STATUS_NEEDS_RESET) !== 0;
  }

  /**
   * Send [addr, addr+len) of dom0 RAM; `cookie` comes back through onTxDone
   * when the device is done with it. `csum`: its checksum is partial (the
   * header says NEEDS_CSUM, where its TCP or UDP checksum is).
   */
  transmit(addr: number, len: number, cookie: number, csum = false): boolean {
    if (this.o.driverlink?.vetoTx(this.ram, addr, len)) {
      this.vetoedCookies.push(cookie);
      return true;
    }
    if (this.txFree() < 1 || this.faulted) {
      this.s.txRingFull++;
      return false;
    }
    const field = csum ? nicCsumField(this.ram, addr, len) : 0;
    if (field < 0) {
      this.s.txCsumBad++;
      this.vetoedCookies.push(cookie);
      return true;
    }
    const slot = this.hdrFree.pop()!;
    const h = this.hdrBase + slot * VIRTIO_NET_HDR_SIZE;
    this.ram[h + VNH_FLAGS] = csum ? VIRTIO_NET_HDR_F_NEEDS_CSUM : 0;
    this.ram[h + VNH_CSUM_START] = (field >>> 16) & 0xff;
    this.ram[h + VNH_CSUM_START + 1] = field >>> 24;
    this.ram[h + VNH_CSUM_OFFSET] = field & 0xffff;
    const head = this.tx.add([this.hdrBase + slot * VIRTIO_NET_HDR_SIZE, addr], [VIRTIO_NET_HDR_SIZE, len], false);
    this.txHdrOf[head] = slot;
    this.txCookie[head] = cookie;
    this.tx.publish();
    this.s.txPosted++;
    return true;
  }

  poll(budget: number, onRx: RxCallback, onTxDone: TxDoneCallback): number {
    let n = 0;
    while (this.vetoedCookies.length > 0) {
      onTxDone(this.vetoedCookies.shift()!);
      n++;
    }
    for (let u; n < budget && (u = this.tx.takeUsed());) {
      n++;
      this.hdrFree.push(this.txHdrOf[u.head]);
      this.txHdrOf[u.head] = -1;
      this.s.txCompleted++;
      onTxDone(this.txCookie[u.head]);
    }
    const rxSeenBefore = this.rx.lastUsed;
    for (let u; n < budget && (u = this.rx.takeUsed());) {
      n++;
      const addr = this.rxAddrOf[u.head];
      this.rxAddrOf[u.head] = -1;
      this.received(addr, u.len, onRx);
      // Repost at once: whatever onRx did (bridge, stack) may already have let a
      // sender send this frame's successor.
      this.postRx(addr);
      this.rx.publish();
    }
    // How far we have read the receiveq, so a device stopping us can count what nobody read.
    if (this.rx.lastUsed !== rxSeenBefore) this.notifyArea.rxSeen(this.rx.lastUsed);
    this.s.vqUsedUnposted = this.rx.bogusUsed + this.tx.bogusUsed;
    if (n === 0) {
      // Nothing to do: ask for an interrupt at the next used entry of either queue, and look once more.
      const rxMore = this.rx.enableInterrupt();
      if (this.tx.enableInterrupt() || rxMore) return 1;
    }
    return n;
  }

  /** One RX buffer the device returned with `len` bytes written (header included): checked, then handed on. */
  private received(addr: number, len: number, onRx: RxCallback): void {
    if (len <= VIRTIO_NET_HDR_SIZE || len > this.rxBufSize) {
      this.s.rxBadLenDrops++;
      return;
    }
    // No mergeable RX buffers are negotiated: a frame is one buffer, and the device says so.
    if (this.ram[addr + VNH_NUM_BUFFERS] !== 1 || this.ram[addr + VNH_NUM_BUFFERS + 1] !== 0) {
      this.s.rxScatterDrops++;
      return;
    }
    const off = addr + VIRTIO_NET_HDR_SIZE;
    const frameLen = len - VIRTIO_NET_HDR_SIZE;
    if (this.o.driverlink?.vetoRx(this.ram, off, frameLen)) return;
    this.s.rxFrames++;
    onRx(this.ram, off, frameLen, (this.ram[addr + VNH_FLAGS] & VIRTIO_NET_HDR_F_DATA_VALID) !== 0);
  }

  /** The largest MTU our posted RX buffers can take (after the virtio_net_hdr). */
  get maxMtu(): number {
    return this.rxBufSize - VIRTIO_NET_HDR_SIZE - 18;
  }

  stats(): VqNetDriverStats & { linkUp: boolean; mtu: number; vetoedRx: number; vetoedTx: number } {
    const status = this.notifyArea.status;
    return {
      ...this.s,
      fnStatus: status & VIRTIO_STATUS_NEEDS_RESET ? 'needs reset' : status & VIRTIO_STATUS_DRIVER_OK ? 'running' : 'stopped',
      fault: VQ_FAULT_NAMES[this.notifyArea.fault] ?? String(this.notifyArea.fault),
      ...primaryStats(this, this.o.driverlink),
    };
  }

  remove(): void {
    releasePrimary(() => this.o.vdpa.requestSync('fn_stop', { fn: 0 }, 2000), this.o.evtchn, this.port);
  }
}
