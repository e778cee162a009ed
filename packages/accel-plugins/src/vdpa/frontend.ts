/**
 * vdpa, guest side: drives the guest's own function of the virtio NIC, its
 * receiveq1 and transmitq1 split virtqueues (Virtqueue from @xsim/nic), as
 * vnic's frontend drives a VI. TX: a frame for a destination the NIC reaches
 * directly (a unicast MAC learnt behind the uplink, or a guest of this host
 * dom0 told us of with `localmac`: the device's switch delivers it) is copied
 * once into one of our DMA buffers right after a zeroed virtio_net_hdr and
 * posted as one chain
 * (one descriptor per page it spans); everything else (broadcast, multicast,
 * ARP, unknown destinations) is declined and netfront sends it on the slow
 * path. RX: chains of writable buffers, each a whole frame's room; a frame the
 * device wrote is copied once out of the shared page into private memory, and
 * only that copy is checked and handed to the stack, so nothing the device (or
 * anyone mapping the page) writes afterwards can change what was checked.
 *
 * The DMA area (layout.ts) is allocated and granted at the offer and given
 * back at release, after the backend has unmapped it.
 */
import { CHANNEL_OP, NETRXF_data_validated, declareCounters, logWarn, readMac, type Counters } from '@xsim/hypervisor';
import type { AccelFrontend, AccelFrontendContext } from '@xsim/netfront';
import {
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_STATUS_DRIVER_OK,
  VIRTIO_STATUS_NEEDS_RESET,
  VNH_FLAGS,
  VNH_NUM_BUFFERS,
  VQ_FAULT_NAMES,
  VQ_RX,
  VQ_SIZE,
  VQ_TX,
  VQU_IDX,
  Virtqueue,
  VqNotify,
  type VqArea,
} from '@xsim/nic';
import { LentSlot, txDecline } from '../tx-path.ts';
import { DmaArea } from '../dma-area.ts';
import { HDR, IOVA_BASE, PAGE, QUEUE_PAGES, chainOf, geometry, writeVnetHdr, type Geometry } from './layout.ts';

/** Most descriptors one buffer takes (a 9000-octet MTU: three pages). */
const MAX_DESCS = 4;

export const VDPA_FRONTEND_COUNTERS = declareCounters('vdpa frontend', {
  vdpaTaken: { kind: 'event', help: 'frames sent on the fast path (posted on the transmitq)' },
  vdpaTakenLocal: { kind: 'event', help: "frames sent on the fast path to a guest of this host (the device's switch delivers them): part of vdpaTaken" },
  vdpaLocalDestinations: { kind: 'gauge', help: "MACs of this host's guests vdpa's frontend sends to on the fast path now (dom0's localmac)" },
  vdpaDeclinedMulticast: { kind: 'event', help: 'broadcast/multicast frames left to the slow path' },
  vdpaDeclinedArp: { kind: 'event', help: 'ARP frames left to the slow path' },
  vdpaDeclinedUnknown: { kind: 'event', help: 'frames for a destination not behind the NIC, left to the slow path' },
  vdpaDeclinedBusy: { kind: 'event', help: 'frames left to the slow path: no free TX buffer, or longer than one' },
  vdpaTxCopied: {
    kind: 'event',
    help: 'frames taken that had to be copied into a TX buffer (the stack had not built them in the one txBuffer lent): part of vdpaTaken',
  },
  vdpaDeclinedNotReady: { kind: 'event', help: 'frames left to the slow path: the function is not up (attaching, draining or stopped)' },
  vdpaTxCsumOffloaded: { kind: 'event', help: 'frames taken with a partial checksum: their header says NEEDS_CSUM, the device completes them' },
  vdpaRxFrames: { kind: 'event', help: 'frames received on the receiveq' },
  vdpaRxMalformed: {
    kind: 'drop',
    help: 'received frames dropped: the used entry named a length outside its buffer, or the header claimed merged buffers we never negotiated',
  },
  vdpaBogusUsed: { kind: 'event', help: 'used entries naming a chain we had not posted: ignored' },
  vdpaTxLostOnFault: { kind: 'drop', help: 'frames posted on the transmitq that never completed: the function needed a reset or was stopped under us' },
  vdpaReleaseLeaks: { kind: 'event', help: 'DMA grants dom0 still mapped at release: their pages stay allocated' },
  vdpaDmaAreaWaits: { kind: 'event', help: 'offers answered late: the DMA area did not fit until frames came back' },
});

export type VdpaFrontendCounters = Counters<typeof VDPA_FRONTEND_COUNTERS.decls>;

/** The counter each reason to decline a frame bumps. */
const VDPA_DECLINED = {
  notReady: 'vdpaDeclinedNotReady',
  multicast: 'vdpaDeclinedMulticast',
  arp: 'vdpaDeclinedArp',
  unknown: 'vdpaDeclinedUnknown',
} as const;

/** A queue's areas in RAM: the area's pages named by layout.ts. */
function areaOf(area: DmaArea, p: { desc: number; avail: number; used: number }): VqArea {
  return { desc: area.ram(p.desc * PAGE), avail: area.ram(p.avail * PAGE), used: area.ram(p.used * PAGE) };
}

export class VdpaFrontend implements AccelFrontend {
  private geo: Geometry;
  private area: DmaArea;
  private notify: VqNotify | null = null;
  private rx: Virtqueue | null = null;
  private tx: Virtqueue | null = null;
  private iovaBase = IOVA_BASE;
  private ready = false;
  private draining = false;
  private faulted = false;
  private linkUp = true;
  /** VIRTIO_NET_F_CSUM negotiated (the backend's 'ready'): partial checksums go with NEEDS_CSUM for the device to complete. */
  private csum = false;
  private readonly fast = new Set<number>();
  /** Guests of this host reached through the device's switch (dom0's localmac, taken back by slowpath). */
  private readonly local = new Set<number>();
  private readonly freeTx: number[] = [];
  /** By chain head: the TX slot or RX buffer it carries (-1: none). Ours, never read from shared memory. */
  private readonly txSlotOf = new Int32Array(VQ_SIZE).fill(-1);
  private readonly rxBufOf = new Int32Array(VQ_SIZE).fill(-1);
  /** The private copy every received frame is read into, once, before anything looks at it. */
  private rxCopy: Uint8Array;
  private readonly iovas = new Float64Array(MAX_DESCS);
  private readonly lens = new Uint32Array(MAX_DESCS);
  /** Used entries the earlier attachments' queues ignored. */
  private bogusBefore = 0;
  /** The TX slot txBuffer lent the stack for the frame it is building. */
  private readonly lent = new LentSlot();
  /** TX chains made available since the last kick decision (flush makes it). */
  private unkicked = false;
  private readonly s: VdpaFrontendCounters = VDPA_FRONTEND_COUNTERS.zero();
  private readonly ram: Uint8Array;
  private readonly u16: Uint16Array;

  constructor(private readonly ctx: AccelFrontendContext) {
    this.geo = geometry(ctx.mtu);
    this.area = new DmaArea(ctx, this.geo.pages);
    this.rxCopy = new Uint8Array(this.geo.bufBytes);
    this.ram = ctx.mem.u8;
    this.u16 = new Uint16Array(ctx.mem.sab);
  }

  newDevice(): void {
    this.ready = this.draining = this.faulted = false;
    // The area is sized for the MTU the vif has now (a frontend outlives MTU changes between attachments).
    if (!this.area.held && !this.area.waiting && geometry(this.ctx.mtu).bufBytes !== this.geo.bufBytes) {
      this.geo = geometry(this.ctx.mtu);
      this.area = new DmaArea(this.ctx, this.geo.pages);
      this.rxCopy = new Uint8Array(this.geo.bufBytes);
    }
    if (this.allocate()) this.accept();
  }

  private allocate(): boolean {
    return this.area.allocate(() => {
      this.s.vdpaDmaAreaWaits++;
      this.ctx.log(`vdpa: ${this.geo.pages} contiguous frames for the DMA area are not free yet (${this.ctx.frames.available} free); waiting for frames`);
    });
  }

  /** Answer the offer with our DMA area; the queue pages are zeroed first (stale octets must not look like entries). */
  private accept(): void {
    Virtqueue.clear(this.ram, areaOf(this.area, QUEUE_PAGES.rx));
    Virtqueue.clear(this.ram, areaOf(this.area, QUEUE_PAGES.tx));
    this.ctx.send('accept', { grefs: this.area.grefs, irqPort: this.area.irqPort });
  }

  onMessage(op: string, args: Record<string, unknown>, shared: readonly SharedArrayBuffer[]): void {
    if (op === 'ready') this.start(args, shared);
    else if (op === 'fastpath') this.fast.add(Number(args.mac));
    else if (op === 'localmac') this.addLocal(Number(args.mac));
    else if (op === 'slowpath') {
      // Gone from behind the uplink, or a guest of this host that left its fast path: not one more frame for it.
      this.fast.delete(Number(args.mac));
      this.local.delete(Number(args.mac));
    } else if (op === 'link') this.linkUp = args.up === true;
    else if (op === CHANNEL_OP.detach) this.draining = true;
  }

  /** The function runs: set up our side of its queues, post every RX buffer, tell the backend it may steer flows to us. */
  private start(args: Record<string, unknown>, shared: readonly SharedArrayBuffer[]): void {
    if (!this.area.held || this.ready) return;
    if (args.queueSize !== VQ_SIZE) {
      this.ctx.send(CHANNEL_OP.decline, { reason: `queues of ${String(args.queueSize)} entries; this frontend lays out ${VQ_SIZE}` });
      return;
    }
    this.iovaBase = Number(args.iovaBase);
    const notify = new VqNotify(shared[0]);
    const kick = (q: number) => () => {
      notify.notify(q);
      this.ctx.kickNic();
    };
    this.bogusBefore += (this.rx?.bogusUsed ?? 0) + (this.tx?.bogusUsed ?? 0);
    this.rx = new Virtqueue(this.ctx.mem.sab, areaOf(this.area, QUEUE_PAGES.rx), VQ_SIZE, kick(VQ_RX));
    this.tx = new Virtqueue(this.ctx.mem.sab, areaOf(this.area, QUEUE_PAGES.tx), VQ_SIZE, kick(VQ_TX));
    this.notify = notify;
    this.txSlotOf.fill(-1);
    this.rxBufOf.fill(-1);
    this.freeTx.length = 0;
    this.lent.reset();
    this.unkicked = false;
    for (let i = this.geo.txSlots - 1; i >= 0; i--) this.freeTx.push(i);
    for (let i = 0; i < this.geo.rxBufs; i++) this.postRx(i);
    this.rx.publish();
    this.fast.clear();
    for (const m of args.macs as number[]) this.fast.add(m);
    this.local.clear();
    if (Array.isArray(args.localMacs)) for (const m of args.localMacs) this.addLocal(Number(m));
    if (typeof args.linkUp === 'boolean') this.linkUp = args.linkUp;
    this.csum = (Number(args.features ?? 0) & VIRTIO_NET_F_CSUM) !== 0;
    this.ready = true;
    this.ctx.send('running', {});
  }

  /** Post RX buffer `i` (not yet published). */
  private postRx(i: number): void {
    const k = chainOf(this.iovaBase, this.geo.rxStart + i * this.geo.bufBytes, this.geo.bufBytes, this.iovas, this.lens);
    const head = this.rx!.add(this.iovas, this.lens, true, k);
    if (head >= 0) this.rxBufOf[head] = i;
  }

  /** A guest of this host to send to through the device's switch (never our own MAC). */
  private addLocal(mac: number): void {
    if (mac !== this.ctx.mac) this.local.add(mac);
  }

  /**
   * Plugin API 1.4: a partial checksum we take is completed by the device
   * (VIRTIO_NET_F_CSUM negotiated). Until the function is up we take
   * nothing, so a partial frame stays partial for the slow path.
   */
  csumOffload(): boolean {
    return this.csum || !this.ready;
  }

  startXmit(src: Uint8Array, off: number, len: number, csumPartial = false): boolean {
    // The slot txBuffer lent for this frame, if any: a declined frame gives it back (netfront copies the frame out first).
    const built = this.lent.take();
    // A partial checksum our function cannot complete is left to the slow path (still partial there).
    const why = txDecline(this.ready && !this.draining && !this.faulted && (this.csum || !csumPartial), this.fast, this.local, src, off);
    if (why !== null) {
      if (built >= 0) this.freeTx.push(built);
      this.s[VDPA_DECLINED[why]]++;
      return false;
    }
    const s = this.s;
    const tx = this.tx!;
    const n = HDR + len;
    const inPlace = built >= 0 && src === this.ram && off === this.area.ram(this.slotOffset(built)) + HDR;
    if (built >= 0 && !inPlace) this.freeTx.push(built);
    const slot = inPlace ? built : this.freeTx.length > 0 && n <= this.geo.bufBytes ? this.freeTx[this.freeTx.length - 1] : -1;
    const o = this.slotOffset(slot);
    const k = slot >= 0 ? chainOf(this.iovaBase, o, n, this.iovas, this.lens) : 0;
    if (slot < 0 || tx.free < k) {
      if (inPlace) this.freeTx.push(built);
      s.vdpaDeclinedBusy++;
      return false;
    }
    // The frame right after its header: built there already, or copied (the one copy).
    const at = this.area.ram(o);
    if (!inPlace) {
      if (src === this.ram) this.ram.copyWithin(at + HDR, off, off + len);
      else this.ram.set(src.subarray(off, off + len), at + HDR);
    }
    // The header: zero, or NEEDS_CSUM for a partial checksum the device completes (one it cannot: declined).
    if (!writeVnetHdr(this.ram, at, len, csumPartial && this.csum)) {
      if (inPlace) this.freeTx.push(built);
      s.vdpaDeclinedBusy++;
      return false;
    }
    if (!inPlace) {
      this.freeTx.pop();
      s.vdpaTxCopied++;
    }
    if (csumPartial) s.vdpaTxCsumOffloaded++;
    const head = tx.add(this.iovas, this.lens, false, k);
    this.txSlotOf[head] = slot;
    // Visible to the device at once; whether to kick it is decided once a burst (flush).
    tx.expose();
    this.unkicked = true;
    s.vdpaTaken++;
    if (!this.fast.has(readMac(src, off))) s.vdpaTakenLocal++;
    return true;
  }

  /** Byte offset in our DMA area of TX slot `slot`'s buffer (its virtio-net header first). */
  private slotOffset(slot: number): number {
    return this.geo.txStart + slot * this.geo.bufBytes;
  }

  /** Lend a free TX slot for the stack to build the next frame in, right after its header: taken, it needs no copy. */
  txBuffer(len: number): number {
    if (!this.ready || this.draining || this.faulted || HDR + len > this.geo.bufBytes) return -1;
    const slot = this.lent.lend(this.freeTx);
    return slot < 0 ? -1 : this.area.ram(this.slotOffset(slot)) + HDR;
  }

  /** The end of netfront's burst: kick the device once if it asked to be told of what we made available. */
  flush(): void {
    if (this.unkicked && this.tx) {
      this.unkicked = false;
      this.tx.kickIfAsked();
    }
  }

  /** Completed TX chains give their slots back; returns how many. */
  private takeTx(budget: number): number {
    let n = 0;
    for (; n < budget; n++) {
      const u = this.tx!.takeUsed();
      if (!u) break;
      const slot = this.txSlotOf[u.head];
      this.txSlotOf[u.head] = -1;
      if (slot >= 0) this.freeTx.push(slot);
    }
    return n;
  }

  /** Received frames, each copied out once and delivered from the copy; `repost` while the function runs. Returns how many. */
  private takeRx(budget: number, repost: boolean): number {
    const rx = this.rx!;
    let n = 0;
    for (; n < budget; n++) {
      const u = rx.takeUsed();
      if (!u) break;
      const buf = this.rxBufOf[u.head];
      this.rxBufOf[u.head] = -1;
      const len = u.len; // read once by takeUsed: the device's word, checked here
      const ok = buf >= 0 && len >= HDR + 14 && len <= this.geo.bufBytes;
      if (ok) {
        const at = this.area.ram(this.geo.rxStart + buf * this.geo.bufBytes);
        this.rxCopy.set(this.ram.subarray(at, at + len));
      }
      // The buffer goes back at once (the copy is ours): the stack may credit the sender during deliver.
      if (buf >= 0 && repost) {
        this.postRx(buf);
        rx.publish();
      }
      if (!ok || (this.rxCopy[VNH_NUM_BUFFERS] | (this.rxCopy[VNH_NUM_BUFFERS + 1] << 8)) !== 1) {
        this.s.vdpaRxMalformed++;
        continue;
      }
      this.s.vdpaRxFrames++;
      this.ctx.deliver(this.rxCopy, HDR, len - HDR, this.rxCopy[VNH_FLAGS] & VIRTIO_NET_HDR_F_DATA_VALID ? NETRXF_data_validated : 0);
    }
    // The device learns how far we read (it counts what a driver that vanished never took).
    if (n > 0) this.notify!.rxSeen(rx.lastUsed);
    return n;
  }

  poll(budget: number): number {
    // An offer waiting for room: try again once frames came back (or the wait is over: then it throws).
    if (this.area.waiting && !this.draining) {
      if (this.area.retryDue() && this.allocate()) this.accept();
      return 0;
    }
    const notify = this.notify;
    if (!this.ready || !notify || this.faulted) return 0;
    // Chains made available outside a burst netfront flushed: the kick decision now.
    this.flush();
    // A function that needs a reset, or was stopped under us (its backend failed), returned valid
    // used entries for all it did before: take them all, then stop and count what never went out.
    const status = notify.status;
    const running = (status & VIRTIO_STATUS_DRIVER_OK) !== 0 && (status & VIRTIO_STATUS_NEEDS_RESET) === 0;
    if (!running) budget = 2 * VQ_SIZE;
    const n = this.takeTx(budget) + this.takeRx(budget, running);
    if (!running) {
      this.faulted = true;
      this.s.vdpaTxLostOnFault += this.tx!.outstanding;
      if (status & VIRTIO_STATUS_NEEDS_RESET) this.ctx.send('fault', { reason: VQ_FAULT_NAMES[notify.fault] ?? String(notify.fault) });
      return n + 1;
    }
    if (n > 0) return n;
    // Nothing: ask for an interrupt at the next used entry of either queue, then look once more.
    const rxCame = this.rx!.enableInterrupt();
    const txCame = this.tx!.enableInterrupt();
    return rxCame || txCame ? 1 : 0;
  }

  /** False only while the fast path is up and out of TX buffers (a fast path not in use never holds netfront up). */
  checkReady(): boolean {
    return !this.ready || this.draining || this.faulted || this.freeTx.length > 0;
  }

  /** Has the device published RX used entries we have not taken? */
  private rxUnread(): boolean {
    const rx = this.rx!;
    return Atomics.load(this.u16, (rx.area.used + VQU_IDX) >> 1) !== rx.lastUsed;
  }

  remove(): boolean {
    this.draining = true;
    if (!this.ready || this.faulted) return true;
    this.poll(2 * VQ_SIZE);
    if (this.faulted) return true;
    // Drained once every TX chain completed and every frame the device wrote was taken.
    return this.tx!.outstanding === 0 && !this.rxUnread();
  }

  release(): void {
    const leaks = this.area.release();
    if (leaks > 0) {
      this.ctx.log(logWarn(`vdpa: ${leaks} DMA grants still mapped by dom0 at release; their pages stay allocated`));
      this.s.vdpaReleaseLeaks += leaks;
    }
    this.bogusBefore += (this.rx?.bogusUsed ?? 0) + (this.tx?.bogusUsed ?? 0);
    this.rx = this.tx = null;
    this.notify = null;
    this.ready = false;
  }

  getStats(): Record<string, unknown> {
    return {
      ...this.s,
      vdpaBogusUsed: this.bogusBefore + (this.rx?.bogusUsed ?? 0) + (this.tx?.bogusUsed ?? 0),
      // The accounting netfront's accel host asks of every frontend: every frame taken is posted on the transmitq.
      txPosted: this.s.vdpaTaken,
      txDropped: 0,
      ready: this.ready,
      draining: this.draining,
      faulted: this.faulted,
      linkUp: this.linkUp,
      fastDestinations: this.fast.size,
      vdpaLocalDestinations: this.local.size,
      freeTxSlots: this.freeTx.length,
    };
  }
}

export function createFrontend(ctx: AccelFrontendContext): AccelFrontend {
  return new VdpaFrontend(ctx);
}
