/**
 * vnic, guest side: drives the guest's own VI. TX: a frame for a destination
 * the NIC reaches directly (a unicast MAC learnt behind the uplink, or a guest
 * of this host whose VI runs: the NIC's internal switch delivers it, as dom0
 * told us with `localmac`) is posted on the VI from one of our registered DMA
 * buffers: the TX slot txBuffer lent the stack to build it in (no copy), or
 * one it is copied into; everything else (broadcast, multicast, ARP, unknown
 * destinations) is declined and netfront sends it on the slow path. We only
 * learn destinations: dom0 inserts every filter. RX: frames the NIC steered
 * to our VI are handed to the stack from the DMA page itself.
 *
 * Our DMA area, allocated and granted at newDevice and given back at release
 * (after the backend has unmapped it), so a plugin no longer attached holds
 * no guest memory:
 *
 *     [ VI rings: VI_RING_PAGES ][ TX slots: txSlots × slotPages ][ RX buffers: RX_PAGES ][ TSO buffers: 2 × 17 ]
 *
 * The rings are ours, registered for our VI; the doorbell is the one the NIC
 * made for this attachment (it comes with 'ready').
 */
import { CHANNEL_OP, NETRXF_data_validated, logWarn, declareCounters, readMac, type Counters } from '@xsim/hypervisor';
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
  TXD_CSUM,
  VI_EVQ_SIZE,
  VI_RXQ_SIZE,
  VI_STATE_FAULTED,
  VI_STATE_RUNNING,
  VI_RING_PAGES,
  VI_TXQ_SIZE,
  ViQueues,
} from '@xsim/nic';
import { DmaArea } from '../dma-area.ts';
import { LentSlot, txDecline } from '../tx-path.ts';
import { TSO_ID, TSO_MAX, TSO_SLOTS, TSO_SLOT_PAGES, TsoSlots, type TsoArea } from './tso-slots.ts';

const PAGE = 4096;
const TX_PAGES = 128;
const RX_PAGES = 256;

export const VNIC_FRONTEND_COUNTERS = declareCounters('vnic frontend', {
  taken: { kind: 'event', help: 'frames sent on the fast path' },
  takenLocal: { kind: 'event', help: "frames sent on the fast path to a guest of this host (the NIC's internal switch delivers them): part of taken" },
  localDestinations: { kind: 'gauge', help: "MACs of this host's guests vnic's frontend sends to on the fast path now (dom0's localmac)" },
  declinedMulticast: { kind: 'event', help: 'broadcast/multicast frames left to the slow path' },
  declinedArp: { kind: 'event', help: 'ARP frames left to the slow path' },
  declinedUnknown: { kind: 'event', help: 'frames for a destination not behind the NIC, left to the slow path' },
  declinedBusy: { kind: 'event', help: 'frames left to the slow path: no free fast-path TX slot' },
  declinedNotReady: { kind: 'event', help: 'frames left to the slow path: the VI is not up (attaching, draining or faulted)' },
  txCopied: {
    kind: 'event',
    help: 'frames taken that had to be copied into a TX slot (the stack had not built them in the slot txBuffer lent): part of taken; the rest went out of the buffer they were built in',
  },
  txCsumOffloaded: { kind: 'event', help: "frames taken with a partial checksum: posted with TXD_CSUM, the NIC completes it (the VI's checksum offload)" },
  txTso: {
    kind: 'event',
    help: 'TCP frames of up to 64 KiB taken for the NIC to cut into segments (posted with TXD_TSO from a TSO slot, copied there): part of taken',
  },
  rxFrames: { kind: 'event', help: 'frames received on the VI' },
  rxGathered: { kind: 'event', help: 'received frames that spanned several RX buffers' },
  rxTooLong: { kind: 'drop', help: 'received frames longer than our gather buffer: dropped' },
  txLostOnFault: { kind: 'drop', help: 'frames posted on the VI that never completed: it faulted or was reset under us' },
  releaseLeaks: { kind: 'event', help: 'DMA grants dom0 still mapped at release: their pages stay allocated' },
  dmaAreaWaits: {
    kind: 'event',
    help: 'offers answered late: the DMA area did not fit until frames came back (a resumed kernel still held the TX frames it sends again)',
  },
});

/** The counter each reason to decline a frame bumps. */
const VNIC_DECLINED = { notReady: 'declinedNotReady', multicast: 'declinedMulticast', arp: 'declinedArp', unknown: 'declinedUnknown' } as const;

export type VnicFrontendCounters = Counters<typeof VNIC_FRONTEND_COUNTERS.decls>;

export class VnicFrontend implements AccelFrontend {
  protected readonly slotPages: number;
  /** RX buffer size: half pages for a standard MTU (so RX_PAGES fill the 512-slot ring), a whole frame's contiguous pages for jumbo. */
  protected readonly rxBuf: number;
  protected readonly rxBufs: number;
  protected readonly txSlots: number;
  protected readonly totalPages: number;
  /** Our DMA area (rings, TX slots, RX buffers), its grants and interrupt port. */
  protected readonly dma: DmaArea;
  protected q: ViQueues | null = null;
  protected bufBase = 0;
  protected ready = false;
  protected draining = false;
  protected faulted = false;
  protected linkUp = true;
  /** The VI's checksum offload is on (the backend enabled it at vi_init): partial checksums go to the NIC to complete. */
  protected csum = false;
  /** The VI's TSO is on (the backend enabled it at vi_init): TCP frames up to 64 KiB go to the NIC to cut. */
  protected tsoOn = false;
  /** The offer said the VI does TSO (vnic's tso argument). */
  protected tsoOffered = false;
  /** Our TSO slots (tso-slots.ts). */
  protected readonly tso: TsoSlots;
  private tsoArea: TsoArea | null = null;
  protected readonly fast = new Set<number>();
  /** Guests of this host reached through the NIC's internal switch (dom0's localmac, taken back by slowpath). */
  protected readonly local = new Set<number>();
  protected readonly freeTx: number[] = [];
  protected readonly txSlotOf = new Int32Array(VI_TXQ_SIZE);
  private readonly rxBufOf = new Int32Array(VI_RXQ_SIZE).fill(-1);
  private txDone = 0;
  /** The TX slot txBuffer lent the stack for the frame it is building. */
  private readonly lent = new LentSlot();
  /** Descriptors posted since the NIC was last told to look (flush wakes it if it sleeps). */
  protected unpushed = false;
  private readonly scratch: Uint8Array;
  private scratchLen = 0;
  private chainBroken = false;
  protected readonly s: VnicFrontendCounters = VNIC_FRONTEND_COUNTERS.zero();
  protected readonly ram: Uint8Array;

  constructor(protected readonly ctx: AccelFrontendContext) {
    this.slotPages = Math.ceil((ctx.mtu + 18) / PAGE);
    this.rxBuf = ctx.mtu + 18 <= PAGE / 2 ? PAGE / 2 : this.slotPages * PAGE;
    this.rxBufs = Math.min(VI_RXQ_SIZE, Math.floor((RX_PAGES * PAGE) / this.rxBuf));
    // The TSO buffers are carved out of the TX pages (the area stays the size it was: a guest's RAM is tight).
    this.txSlots = Math.max(16, Math.floor((TX_PAGES - TSO_SLOTS * TSO_SLOT_PAGES) / this.slotPages));
    const base = VI_RING_PAGES + this.txSlots * this.slotPages + RX_PAGES;
    this.tso = new TsoSlots(base, TSO_SLOTS);
    this.totalPages = base + this.tso.pages;
    this.dma = new DmaArea(ctx, this.totalPages);
    this.scratch = new Uint8Array(this.slotPages * PAGE);
    this.ram = ctx.mem.u8;
  }

  /** Page index (in our DMA area, = buffer id - bufBase) of TX slot `slot`. */
  protected slotPage(slot: number): number {
    return VI_RING_PAGES + slot * this.slotPages;
  }

  protected slotAddr(slot: number): number {
    return this.dma.ram(this.slotPage(slot) * PAGE);
  }

  private get rxPages(): number {
    return VI_RING_PAGES + this.txSlots * this.slotPages;
  }

  private rxAddr(i: number): number {
    return this.dma.ram(this.rxPages * PAGE + i * this.rxBuf);
  }

  private postRx(i: number): void {
    const at = i * this.rxBuf;
    const idx = this.q!.postRx(this.bufBase + this.rxPages + Math.floor(at / PAGE), at % PAGE, this.rxBuf);
    this.rxBufOf[idx & (VI_RXQ_SIZE - 1)] = i;
  }

  /**
   * Post a TX descriptor for `len` bytes at `slot`'s buffer (or at buffer id
   * `bufId` if given) and publish it: the NIC sees every frame we took at
   * once (and counts it if our VI ends under it); a sleeping NIC is woken
   * at netfront's flush (once a burst), or at the next poll for a frame
   * posted outside a burst.
   */
  protected postTx(slot: number, len: number, bufId = this.bufBase + this.slotPage(slot), csumPartial = false): void {
    const idx = this.q!.postTx(bufId, 0, len, csumPartial ? TXD_CSUM : 0);
    this.txSlotOf[idx & (VI_TXQ_SIZE - 1)] = slot;
    this.q!.publishTx();
    this.unpushed = true;
  }

  newDevice(args: Record<string, unknown> = {}): void {
    this.ready = this.draining = this.faulted = false;
    // The backend says in its offer whether the VI will do TSO: tsoMax (asked next) follows it.
    this.tsoOffered = args.tso === true && this.tso.count > 0;
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
      this.txDone = this.q.txProdPvt;
      this.unpushed = false;
      this.lent.reset();
      this.freeTx.length = 0;
      for (let i = this.txSlots - 1; i >= 0; i--) this.freeTx.push(i);
      this.tso.reset();
      for (let i = 0; i < this.rxBufs; i++) this.postRx(i);
      this.q.pushRx();
      this.fast.clear();
      for (const m of args.macs as number[]) this.fast.add(m);
      this.local.clear();
      if (Array.isArray(args.localMacs)) for (const m of args.localMacs) this.addLocal(Number(m));
      // What the link is now (a frontend kept from an earlier attachment may have missed a change while detached).
      if (typeof args.linkUp === 'boolean') this.linkUp = args.linkUp;
      this.csum = args.csum === true;
      this.tsoOn = args.tso === true && this.tso.count > 0;
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
    return this.csum || !this.ready;
  }

  /** Plugin API 1.5: TCP frames of up to 64 KiB may be offered (startXmit's gsoSize) while we have TSO slots. */
  tsoMax(): number {
    return this.tsoOffered ? TSO_MAX : 0;
  }

  startXmit(src: Uint8Array, off: number, len: number, csumPartial = false, gsoSize = 0): boolean {
    // The slot txBuffer lent for this frame, if any: a declined frame gives it back (netfront copies the frame out first).
    let built = this.lent.take();
    if (gsoSize > 0) return this.xmitTso(src, off, len, gsoSize, built);
    if (built >= TSO_ID) {
      // A TSO buffer lent for a frame that came as an MTU-sized one: back, and the frame is copied as any other.
      this.tso.give(built);
      built = -1;
    }
    // A partial checksum our VI cannot complete is left to the slow path (still partial: netback or the NIC completes it).
    const why = txDecline(this.ready && !this.draining && !this.faulted && (this.csum || !csumPartial), this.fast, this.local, src, off);
    if (why !== null) {
      if (built >= 0) this.freeTx.push(built);
      this.s[VNIC_DECLINED[why]]++;
      return false;
    }
    const dst = readMac(src, off);
    const s = this.s;
    let slot = built;
    // Built in place, it goes out of the buffer it was built in; otherwise it is copied into a free slot.
    if (slot < 0 || src !== this.ram || off !== this.slotAddr(slot)) {
      if (slot >= 0) this.freeTx.push(slot);
      const free = this.freeTx.pop();
      if (free === undefined || len > this.slotPages * PAGE) {
        if (free !== undefined) this.freeTx.push(free);
        s.declinedBusy++;
        return false;
      }
      slot = free;
      const a = this.slotAddr(slot);
      if (src === this.ram) this.ram.copyWithin(a, off, off + len);
      else this.ram.set(src.subarray(off, off + len), a);
      s.txCopied++;
    }
    this.postTx(slot, len, undefined, csumPartial && this.csum);
    if (csumPartial) s.txCsumOffloaded++;
    s.taken++;
    if (!this.fast.has(dst)) s.takenLocal++;
    return true;
  }

  /**
   * A TCP frame over the MTU: copied into a TSO slot and posted with TXD_TSO
   * (the MSS in the first descriptor) over descriptors of at most 32 KiB, for
   * the NIC to cut; declined (netback segments it) where an MTU-sized frame
   * would be, or while the VI has no TSO or no TSO slot is free.
   */
  private xmitTso(src: Uint8Array, off: number, len: number, mss: number, built: number): boolean {
    const s = this.s;
    const why = txDecline(this.ready && !this.draining && !this.faulted, this.fast, this.local, src, off);
    if (why !== null) {
      this.giveBack(built);
      s[VNIC_DECLINED[why]]++;
      return false;
    }
    // Built in the TSO buffer txBuffer lent: posted from there; else copied into a free one.
    let id = built >= TSO_ID && src === this.ram && off === this.dma.ram(this.tso.page(built) * PAGE) ? built : -1;
    if (id < 0) {
      this.giveBack(built);
      id = this.tsoOn && len <= TSO_SLOT_PAGES * PAGE ? this.tso.take() : -1;
      if (id >= 0) s.txCopied++;
    }
    if (id < 0) {
      s.declinedBusy++;
      return false;
    }
    this.tsoArea ??= { ram: this.ram, at: (page) => this.dma.ram(page * PAGE), bufBase: 0, slotOf: this.txSlotOf };
    this.tsoArea.bufBase = this.bufBase;
    this.tso.post(this.q!, id, this.tsoArea, src, off, len, mss);
    this.q!.publishTx();
    this.unpushed = true;
    s.txTso++;
    s.taken++;
    if (!this.fast.has(readMac(src, off))) s.takenLocal++;
    return true;
  }

  /**
   * Offer a free TX slot for the stack to build the next frame in (a TSO
   * buffer for a frame over the MTU, while the VI does TSO): taken, it goes
   * out from there with no copy.
   */
  txBuffer(len: number): number {
    if (!this.ready || this.draining || this.faulted) return -1;
    this.giveBack(this.lent.take());
    if (len <= this.slotPages * PAGE) {
      const slot = this.lent.lend(this.freeTx);
      return slot < 0 ? -1 : this.slotAddr(slot);
    }
    if (!this.tsoOn || len > TSO_SLOT_PAGES * PAGE) return -1;
    const id = this.lent.lend(this.tso.free);
    return id < 0 ? -1 : this.dma.ram(this.tso.page(id) * PAGE);
  }

  /** A lent buffer not used: back to its free list (-1: none). */
  private giveBack(slot: number): void {
    if (slot >= TSO_ID) this.tso.give(slot);
    else if (slot >= 0) this.freeTx.push(slot);
  }

  /** The end of netfront's burst: the NIC, if it sleeps, is woken once for every frame posted since. */
  flush(): void {
    if (this.unpushed && this.q) {
      this.unpushed = false;
      this.q.wakeIfAsleep();
    }
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
      if (type === EV_TX) {
        // Completions up to `index`, never past what we posted.
        if ((index - this.txDone) >>> 0 > (q.txProdPvt - this.txDone) >>> 0) continue;
        while (this.txDone !== index) {
          const slot = this.txSlotOf[this.txDone & (VI_TXQ_SIZE - 1)];
          if (slot >= TSO_ID) this.tso.give(slot);
          else if (slot >= 0) this.freeTx.push(slot);
          this.txDone = (this.txDone + 1) >>> 0;
        }
      } else if (type === EV_RX) {
        this.rxEvent(index, len, flags);
      }
    }
    q.publishEvCons();
    if (faulting) {
      this.faulted = true;
      this.s.txLostOnFault += (q.txProdPvt - this.txDone) >>> 0;
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
   * False only while the fast path is up and out of TX slots, or of TSO slots
   * while the VI does TSO (a fast path not in use never holds netfront up;
   * a frame declined for want of a slot would overtake the ones before it).
   */
  checkReady(): boolean {
    return !this.ready || this.draining || this.faulted || (this.freeTx.length > 0 && (!this.tsoOn || this.tso.available > 0));
  }

  remove(): boolean {
    this.draining = true;
    const q = this.q;
    if (!q || this.faulted) return true;
    this.poll(VI_RXQ_SIZE);
    // Drained once every TX descriptor has completed and every event is consumed.
    return this.txDone === q.txProdPvt && !q.evPending();
  }

  release(): void {
    const leaks = this.dma.release();
    if (leaks > 0) {
      // dom0 still maps some: those pages must never be reused, so none are freed (counted, logged).
      this.ctx.log(logWarn(`vnic: ${leaks} DMA grants still mapped by dom0 at release; their pages stay allocated`));
      this.s.releaseLeaks += leaks;
    }
    this.q = null;
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
      freeTxSlots: this.freeTx.length,
      freeTsoSlots: this.tso.available,
      tso: this.tsoOn,
    };
  }
}

export function createFrontend(ctx: AccelFrontendContext): AccelFrontend {
  return new VnicFrontend(ctx);
}
