/**
 * vnic, guest side: drives the guest's own VI. TX (tx.ts): a frame for a
 * destination the NIC reaches directly (a unicast MAC learnt behind the
 * uplink, or a guest of this host whose VI runs: the NIC's internal switch
 * delivers it, as dom0 told us with `localmac`) is posted on the VI from one
 * of our registered DMA buffers; everything else (broadcast, multicast, ARP,
 * unknown destinations) is declined and netfront sends it on the slow path.
 * We only learn destinations: dom0 inserts every filter. RX: frames the NIC
 * steered to our VI are handed to the stack from the DMA page itself.
 *
 * Our DMA area, allocated and granted at newDevice and given back at release
 * (after the backend has unmapped it), so a plugin no longer attached holds
 * no guest memory:
 *
 *     [ VI rings: VI_RING_PAGES ][ TX pages: TX_PAGES, one ring (tx-ring.ts) ][ RX buffers: RX_PAGES ]
 *
 * The rings are ours, registered for our VI; the doorbell is the one the NIC
 * made for this attachment (it comes with 'ready').
 */
import { CHANNEL_OP, NETRXF_data_validated, logWarn } from '@xsim/hypervisor';
import type { AccelFrontend, AccelFrontendContext } from '@xsim/netfront';
import {
  EV_FLAGS,
  EV_INDEX,
  EV_LEN,
  EV_RX,
  EV_RX_CONT,
  EV_RX_CSUM_OK,
  EV_TX,
  EV_TYPE,
  FAULT_NAMES,
  VI_EVQ_SIZE,
  VI_RXQ_SIZE,
  VI_STATE_FAULTED,
  VI_STATE_RUNNING,
  VI_RING_PAGES,
  ViQueues,
} from '@xsim/nic';
import { DmaArea } from '../dma-area.ts';
import { TSO_MAX, TSO_PAGES, VnicTx } from './tx.ts';
import { VNIC_FRONTEND_COUNTERS, type VnicFrontendCounters } from './frontend-counters.ts';

const PAGE = 4096;
/**
 * TX pages: a ring every frame takes its pages from (one for an MTU frame,
 * 17 for a 64 KiB TSO frame: seven of those in flight, more than TCP's
 * 256 KiB window fills). The 94 MTU slots and the two dedicated 17-page TSO
 * buffers they replace had these 128 pages between them, so the area is the
 * size it was (a guest's RAM is tight: the default guest's 1024 pages keep
 * 50 free with vnic attached).
 */
const TX_PAGES = 128;
const RX_PAGES = 256;

export { VNIC_FRONTEND_COUNTERS, type VnicFrontendCounters } from './frontend-counters.ts';

export class VnicFrontend implements AccelFrontend {
  protected readonly slotPages: number;
  /** RX buffer size: half pages for a standard MTU (so RX_PAGES fill the 512-slot ring), a whole frame's contiguous pages for jumbo. */
  protected readonly rxBuf: number;
  protected readonly rxBufs: number;
  protected readonly totalPages: number;
  /** Our DMA area (rings, TX pages, RX buffers), its grants and interrupt port. */
  protected readonly dma: DmaArea;
  protected q: ViQueues | null = null;
  protected bufBase = 0;
  protected ready = false;
  protected draining = false;
  protected faulted = false;
  protected linkUp = true;
  /** The offer said the VI does TSO (vnic's tso argument). */
  protected tsoOffered = false;
  /** The TX path: the TX pages, descriptors, completions (tx.ts). */
  protected readonly tx: VnicTx;
  protected readonly fast = new Set<number>();
  /** Guests of this host reached through the NIC's internal switch (dom0's localmac, taken back by slowpath). */
  protected readonly local = new Set<number>();
  private readonly rxBufOf = new Int32Array(VI_RXQ_SIZE).fill(-1);
  private readonly scratch: Uint8Array;
  private scratchLen = 0;
  private chainBroken = false;
  protected readonly s: VnicFrontendCounters = VNIC_FRONTEND_COUNTERS.zero();
  protected readonly ram: Uint8Array;

  constructor(protected readonly ctx: AccelFrontendContext) {
    this.slotPages = Math.ceil((ctx.mtu + 18) / PAGE);
    this.rxBuf = ctx.mtu + 18 <= PAGE / 2 ? PAGE / 2 : this.slotPages * PAGE;
    this.rxBufs = Math.min(VI_RXQ_SIZE, Math.floor((RX_PAGES * PAGE) / this.rxBuf));
    this.ram = ctx.mem.u8;
    this.dma = new DmaArea(ctx, VI_RING_PAGES + TX_PAGES + RX_PAGES);
    this.totalPages = this.dma.pages;
    this.tx = new VnicTx(
      { ram: this.ram, dma: this.dma, s: this.s, fast: this.fast, local: this.local, up: () => this.ready && !this.draining && !this.faulted },
      this.slotPages,
      TX_PAGES,
    );
    this.scratch = new Uint8Array(this.slotPages * PAGE);
  }

  /** For a subclass posting a frame of its own (a test's hostile guest): `freeTx.pop()` takes a TX page (undefined: none free). */
  protected readonly freeTx = { pop: (): number | undefined => this.tx.claim() };

  /** RAM offset of TX page `slot` (freeTx.pop's). */
  protected slotAddr(slot: number): number {
    return this.tx.pageAddr(slot);
  }

  /** Post and publish a TX descriptor for `len` bytes at TX page `slot` (freeTx.pop's), or at buffer id `bufId`: VnicTx.postTx. */
  protected postTx(slot: number, len: number, bufId?: number, csumPartial = false): void {
    this.tx.postTx(slot, len, bufId, csumPartial);
  }

  private get rxPages(): number {
    return VI_RING_PAGES + TX_PAGES;
  }

  private rxAddr(i: number): number {
    return this.dma.ram(this.rxPages * PAGE + i * this.rxBuf);
  }

  private postRx(i: number): void {
    const at = i * this.rxBuf;
    const idx = this.q!.postRx(this.bufBase + this.rxPages + Math.floor(at / PAGE), at % PAGE, this.rxBuf);
    this.rxBufOf[idx & (VI_RXQ_SIZE - 1)] = i;
  }

  newDevice(args: Record<string, unknown> = {}): void {
    this.ready = this.draining = this.faulted = false;
    // The backend says in its offer whether the VI will do TSO: tsoMax (asked next) follows it.
    this.tsoOffered = args.tso === true && TX_PAGES >= TSO_PAGES;
    if (this.allocate()) this.accept();
  }

  /**
   * Our DMA area, its grants and interrupt port (dma-area.ts). False while
   * it does not fit yet but frames are coming back (a kernel just resumed
   * holds the TX frames it is about to send again): poll retries. Throws
   * when it never will: the frontend fails and the vif stays on the slow path.
   */
  private allocate(): boolean {
    return this.dma.allocate(() => {
      this.s.dmaAreaWaits++;
      this.ctx.log(`vnic: ${this.totalPages} contiguous frames for the DMA area are not free yet (${this.ctx.frames.available} free); waiting for frames`);
    });
  }

  /** Answer the offer with our DMA area. */
  private accept(): void {
    // Stale bytes in the ring pages must not look like events to the next attachment.
    ViQueues.clearRings(this.ram, this.dma.ram(0));
    this.ctx.send('accept', { grefs: this.dma.grefs, irqPort: this.dma.irqPort });
  }

  onMessage(op: string, args: Record<string, unknown>, shared: readonly SharedArrayBuffer[]): void {
    if (op === 'ready') {
      this.bufBase = Number(args.bufBase);
      this.q = new ViQueues(shared[0], this.ctx.mem.sab, this.dma.ram(0), () => this.ctx.kickNic());
      this.tx.attach(this.q, this.bufBase, args.csum === true, args.tso === true);
      for (let i = 0; i < this.rxBufs; i++) this.postRx(i);
      this.q.pushRx();
      this.fast.clear();
      for (const m of args.macs as number[]) this.fast.add(m);
      this.local.clear();
      if (Array.isArray(args.localMacs)) for (const m of args.localMacs) this.addLocal(Number(m));
      // What the link is now (a frontend kept from an earlier attachment may have missed a change while detached).
      if (typeof args.linkUp === 'boolean') this.linkUp = args.linkUp;
      this.ready = true;
      // Our RX buffers are on the ring: the backend may now steer flows to the VI.
      this.ctx.send('running', {});
    } else if (op === 'fastpath') this.fast.add(Number(args.mac));
    else if (op === 'localmac') this.addLocal(Number(args.mac));
    else if (op === 'slowpath') {
      // Gone from behind the uplink, or a guest of this host that left its fast path: not one more frame for it.
      this.fast.delete(Number(args.mac));
      this.local.delete(Number(args.mac));
    } else if (op === 'link') this.linkUp = args.up === true;
    else if (op === CHANNEL_OP.detach) this.draining = true;
  }

  /** A guest of this host to send to through the NIC's switch (never our own MAC: nothing of ours is sent to us). */
  private addLocal(mac: number): void {
    if (mac !== this.ctx.mac) this.local.add(mac);
  }

  /**
   * Plugin API 1.4: a partial checksum we take is completed by the NIC (the
   * VI's checksum offload is on). Until the VI is up we take nothing, so a
   * partial frame stays partial for the slow path.
   */
  csumOffload(): boolean {
    return this.tx.csum || !this.ready;
  }

  /** Plugin API 1.5: TCP frames of up to 64 KiB may be offered (startXmit's gsoSize) when the offer said the VI does TSO. */
  tsoMax(): number {
    return this.tsoOffered ? TSO_MAX : 0;
  }

  startXmit(src: Uint8Array, off: number, len: number, csumPartial = false, gsoSize = 0): boolean {
    return this.tx.startXmit(src, off, len, csumPartial, gsoSize);
  }

  /** Lend room in the TX pages for the stack to build the next frame in (up to 64 KiB while the VI does TSO): tx.ts. */
  txBuffer(len: number): number {
    return this.tx.txBuffer(len);
  }

  /** The end of netfront's burst: the NIC, if it sleeps, is woken once for every frame posted since. */
  flush(): void {
    this.tx.flush();
  }

  poll(budget: number): number {
    // An offer waiting for room: try again once frames came back (or the wait is over: then it throws).
    if (this.dma.waiting && !this.draining) {
      if (this.dma.retryDue() && this.allocate()) this.accept();
      return 0;
    }
    const q = this.q;
    if (!this.ready || !q || this.faulted) return 0;
    // Descriptors posted outside a burst netfront flushed: announce them now.
    this.flush();
    // A VI that faulted, or was reset under us (its backend failed), still posted valid events
    // for all it did before: take them all, then stop and count what never went out.
    const state = q.state;
    const faulting = state !== VI_STATE_RUNNING;
    if (faulting) budget = VI_EVQ_SIZE;
    const dv = q.dv;
    let n = 0;
    for (let o = q.nextEvent(); o >= 0 && n < budget; o = q.nextEvent()) {
      const type = dv.getUint16(o + EV_TYPE, true);
      const index = dv.getUint32(o + EV_INDEX, true);
      const len = dv.getUint16(o + EV_LEN, true);
      const flags = dv.getUint16(o + EV_FLAGS, true);
      q.takeEvent();
      n++;
      if (type === EV_TX) this.tx.completed(index);
      else if (type === EV_RX) {
        this.rxEvent(index, len, flags);
      }
    }
    q.publishEvCons();
    if (faulting) {
      this.faulted = true;
      this.s.txLostOnFault += this.tx.inFlight;
      if (state === VI_STATE_FAULTED) this.ctx.send('fault', { reason: FAULT_NAMES[q.fault] ?? String(q.fault) });
      return n + 1;
    }
    if (n === 0 && q.armIrq()) return 1;
    return n;
  }

  /** An EV_RX: `flags` say whether the frame goes on (EV_RX_CONT) and whether the NIC checked its checksum good (EV_RX_CSUM_OK). */
  private rxEvent(index: number, len: number, flags: number): void {
    const more = (flags & EV_RX_CONT) !== 0;
    const rxFlags = flags & EV_RX_CSUM_OK ? NETRXF_data_validated : 0;
    const s = this.s;
    const buf = this.rxBufOf[index & (VI_RXQ_SIZE - 1)];
    // An event naming a buffer we never posted, or longer than it: not the NIC we know (dropped, counted).
    if (buf < 0 || len > this.rxBuf) {
      s.rxTooLong++;
      return;
    }
    const at = this.rxAddr(buf);
    if (!more && this.scratchLen === 0 && !this.chainBroken) {
      s.rxFrames++;
      this.ctx.deliver(this.ram, at, len, rxFlags);
    } else {
      if (!this.chainBroken && this.scratchLen + len <= this.scratch.length) {
        this.scratch.set(this.ram.subarray(at, at + len), this.scratchLen);
        this.scratchLen += len;
      } else this.chainBroken = true;
      if (!more) {
        if (this.chainBroken) s.rxTooLong++;
        else {
          s.rxFrames++;
          s.rxGathered++;
          this.ctx.deliver(this.scratch, 0, this.scratchLen, rxFlags);
        }
        this.scratchLen = 0;
        this.chainBroken = false;
      }
    }
    // Repost at once, not at the end of the batch: the stack may already have
    // credited the sender for this frame, and its successor needs the slot.
    this.postRx(buf);
    this.q!.pushRx();
  }

  /**
   * False only while the fast path is up and its TX pages have no room for
   * the largest frame the stack may hand it, 64 KiB while the VI does TSO
   * (a fast path not in use never holds netfront up;
   * a frame declined for want of room would overtake the ones before it).
   */
  checkReady(): boolean {
    return !this.ready || this.draining || this.faulted || this.tx.hasRoom;
  }

  remove(): boolean {
    this.draining = true;
    const q = this.q;
    if (!q || this.faulted) return true;
    this.poll(VI_RXQ_SIZE);
    // Drained once every TX descriptor has completed and every event is consumed.
    return this.tx.inFlight === 0 && !q.evPending();
  }

  release(): void {
    const leaks = this.dma.release();
    if (leaks > 0) {
      // dom0 still maps some: those pages must never be reused, so none are freed (counted, logged).
      this.ctx.log(logWarn(`vnic: ${leaks} DMA grants still mapped by dom0 at release; their pages stay allocated`));
      this.s.releaseLeaks += leaks;
    }
    this.q = null;
    this.tx.detach();
    this.ready = false;
  }

  getStats(): Record<string, unknown> {
    return {
      ...this.s,
      // The accounting netfront's accel host asks of every frontend: every frame taken is posted on the VI (none dropped before it).
      txPosted: this.s.taken,
      txDropped: 0,
      ready: this.ready,
      draining: this.draining,
      faulted: this.faulted,
      linkUp: this.linkUp,
      fastDestinations: this.fast.size,
      localDestinations: this.local.size,
      freeTxSlots: this.tx.fitting(this.slotPages * PAGE),
      freeTsoSlots: this.tx.tsoOn ? this.tx.fitting(TSO_PAGES * PAGE) : 0,
      tso: this.tx.tsoOn,
    };
  }
}

export function createFrontend(ctx: AccelFrontendContext): AccelFrontend {
  return new VnicFrontend(ctx);
}
