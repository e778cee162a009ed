/**
 * vnic, guest side, TX: which frames go on the fast path, the buffer they go
 * from and the descriptors that post them on the VI. A frame for a
 * destination the NIC reaches directly (a unicast MAC learnt behind the
 * uplink, or a guest of this host whose VI runs) is posted from one of our
 * registered DMA buffers: the TX slot txBuffer lent the stack to build it in
 * (no copy), or one it is copied into; everything else is declined and
 * netfront sends it on the slow path. A TCP frame over the MTU (startXmit's
 * gsoSize, plugin API 1.5) goes from a TSO slot with TXD_TSO for the NIC to
 * cut (tso-slots.ts). Completions (EV_TX) give the slots back.
 *
 * The frontend (frontend.ts) owns the attachment, RX and the events; this
 * module owns the TX slots, the descriptor ring's producer side and the
 * decisions of startXmit, txBuffer and checkReady.
 */
import { readMac } from '@xsim/hypervisor';
import { TXD_CSUM, VI_RING_PAGES, VI_TXQ_SIZE, type ViQueues } from '@xsim/nic';
import type { DmaArea } from '../dma-area.ts';
import { LentSlot, txDecline } from '../tx-path.ts';
import type { VnicFrontendCounters } from './frontend.ts';
import { TSO_ID, TSO_SLOTS, TSO_SLOT_PAGES, TsoSlots, type TsoArea } from './tso-slots.ts';

const PAGE = 4096;

/** The counter each reason to decline a frame bumps. */
const VNIC_DECLINED = { notReady: 'declinedNotReady', multicast: 'declinedMulticast', arp: 'declinedArp', unknown: 'declinedUnknown' } as const;

/** What the TX path needs of its frontend: guest RAM, the DMA area, the counters and the destinations the fast path reaches. */
export interface VnicTxHost {
  readonly ram: Uint8Array;
  readonly dma: DmaArea;
  readonly s: VnicFrontendCounters;
  /** MACs behind the uplink, and guests of this host (dom0's localmac). */
  readonly fast: ReadonlySet<number>;
  readonly local: ReadonlySet<number>;
  /** Attached, running, not draining, not faulted. */
  up(): boolean;
}

/**
 * The TX slots (`txSlots` of `slotPages` pages from the DMA area's page
 * VI_RING_PAGES) and the TSO slots (from `tsoFirstPage`).
 */
export class VnicTx {
  readonly freeTx: number[] = [];
  readonly tso: TsoSlots;
  /** The VI's checksum offload is on (the backend enabled it at vi_init): partial checksums go to the NIC to complete. */
  csum = false;
  /** The VI's TSO is on (the backend enabled it at vi_init): TCP frames up to 64 KiB go to the NIC to cut. */
  tsoOn = false;
  /** Descriptors posted since the NIC was last told to look (flush wakes it if it sleeps). */
  unpushed = false;
  private q: ViQueues | null = null;
  private bufBase = 0;
  private readonly txSlotOf = new Int32Array(VI_TXQ_SIZE);
  private txDone = 0;
  /** The TX slot txBuffer lent the stack for the frame it is building. */
  private readonly lent = new LentSlot();
  private tsoArea: TsoArea | null = null;

  constructor(
    private readonly h: VnicTxHost,
    readonly slotPages: number,
    readonly txSlots: number,
    tsoFirstPage: number,
  ) {
    this.tso = new TsoSlots(tsoFirstPage, TSO_SLOTS);
  }

  /** Pages the TSO slots take (at the end of the DMA area). */
  get tsoPages(): number {
    return this.tso.pages;
  }

  /** A new attachment's VI: every slot free, nothing posted. */
  attach(q: ViQueues, bufBase: number, csum: boolean, tso: boolean): void {
    this.q = q;
    this.bufBase = bufBase;
    this.txDone = q.txProdPvt;
    this.unpushed = false;
    this.lent.reset();
    this.freeTx.length = 0;
    for (let i = this.txSlots - 1; i >= 0; i--) this.freeTx.push(i);
    this.tso.reset();
    this.csum = csum;
    this.tsoOn = tso && this.tso.count > 0;
  }

  detach(): void {
    this.q = null;
  }

  /** Page index (in our DMA area, = buffer id - bufBase) of TX slot `slot`. */
  slotPage(slot: number): number {
    return VI_RING_PAGES + slot * this.slotPages;
  }

  slotAddr(slot: number): number {
    return this.h.dma.ram(this.slotPage(slot) * PAGE);
  }

  /**
   * Post a TX descriptor for `len` bytes at `slot`'s buffer (or at buffer id
   * `bufId` if given) and publish it: the NIC sees every frame we took at
   * once (and counts it if our VI ends under it); a sleeping NIC is woken
   * at netfront's flush (once a burst), or at the next poll for a frame
   * posted outside a burst.
   */
  postTx(slot: number, len: number, bufId = this.bufBase + this.slotPage(slot), csumPartial = false): void {
    const idx = this.q!.postTx(bufId, 0, len, csumPartial ? TXD_CSUM : 0);
    this.txSlotOf[idx & (VI_TXQ_SIZE - 1)] = slot;
    this.q!.publishTx();
    this.unpushed = true;
  }

  startXmit(src: Uint8Array, off: number, len: number, csumPartial: boolean, gsoSize: number): boolean {
    // The slot txBuffer lent for this frame, if any: a declined frame gives it back (netfront copies the frame out first).
    let built = this.lent.take();
    if (gsoSize > 0) return this.xmitTso(src, off, len, gsoSize, built);
    if (built >= TSO_ID) {
      // A TSO buffer lent for a frame that came as an MTU-sized one: back, and the frame is copied as any other.
      this.tso.give(built);
      built = -1;
    }
    const h = this.h;
    const s = h.s;
    // A partial checksum our VI cannot complete is left to the slow path (still partial: netback or the NIC completes it).
    const why = txDecline(h.up() && (this.csum || !csumPartial), h.fast, h.local, src, off);
    if (why !== null) {
      if (built >= 0) this.freeTx.push(built);
      s[VNIC_DECLINED[why]]++;
      return false;
    }
    const dst = readMac(src, off);
    const ram = h.ram;
    let slot = built;
    // Built in place, it goes out of the buffer it was built in; otherwise it is copied into a free slot.
    if (slot < 0 || src !== ram || off !== this.slotAddr(slot)) {
      if (slot >= 0) this.freeTx.push(slot);
      const free = this.freeTx.pop();
      if (free === undefined || len > this.slotPages * PAGE) {
        if (free !== undefined) this.freeTx.push(free);
        s.declinedBusy++;
        return false;
      }
      slot = free;
      const a = this.slotAddr(slot);
      if (src === ram) ram.copyWithin(a, off, off + len);
      else ram.set(src.subarray(off, off + len), a);
      s.txCopied++;
    }
    this.postTx(slot, len, undefined, csumPartial && this.csum);
    if (csumPartial) s.txCsumOffloaded++;
    s.taken++;
    if (!h.fast.has(dst)) s.takenLocal++;
    return true;
  }

  /**
   * A TCP frame over the MTU: copied into a TSO slot and posted with TXD_TSO
   * (the MSS in the first descriptor) over descriptors of at most 32 KiB, for
   * the NIC to cut; declined (netback segments it) where an MTU-sized frame
   * would be, or while the VI has no TSO or no TSO slot is free.
   */
  private xmitTso(src: Uint8Array, off: number, len: number, mss: number, built: number): boolean {
    const h = this.h;
    const s = h.s;
    const why = txDecline(h.up(), h.fast, h.local, src, off);
    if (why !== null) {
      this.giveBack(built);
      s[VNIC_DECLINED[why]]++;
      return false;
    }
    // Built in the TSO buffer txBuffer lent: posted from there; else copied into a free one.
    let id = built >= TSO_ID && src === h.ram && off === h.dma.ram(this.tso.page(built) * PAGE) ? built : -1;
    if (id < 0) {
      this.giveBack(built);
      id = this.tsoOn && len <= TSO_SLOT_PAGES * PAGE ? this.tso.take() : -1;
      if (id >= 0) s.txCopied++;
    }
    if (id < 0) {
      s.declinedBusy++;
      return false;
    }
    this.tsoArea ??= { ram: h.ram, at: (page) => h.dma.ram(page * PAGE), bufBase: 0, slotOf: this.txSlotOf };
    this.tsoArea.bufBase = this.bufBase;
    this.tso.post(this.q!, id, this.tsoArea, src, off, len, mss);
    this.q!.publishTx();
    this.unpushed = true;
    s.txTso++;
    s.taken++;
    if (!h.fast.has(readMac(src, off))) s.takenLocal++;
    return true;
  }

  /**
   * Offer a free TX slot for the stack to build the next frame in (a TSO
   * buffer for a frame over the MTU, while the VI does TSO): taken, it goes
   * out from there with no copy.
   */
  txBuffer(len: number): number {
    if (!this.h.up()) return -1;
    this.giveBack(this.lent.take());
    if (len <= this.slotPages * PAGE) {
      const slot = this.lent.lend(this.freeTx);
      return slot < 0 ? -1 : this.slotAddr(slot);
    }
    if (!this.tsoOn || len > TSO_SLOT_PAGES * PAGE) return -1;
    const id = this.lent.lend(this.tso.free);
    return id < 0 ? -1 : this.h.dma.ram(this.tso.page(id) * PAGE);
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

  /** An EV_TX: descriptors before `index` are done, their slots free (never past what we posted). */
  completed(index: number): void {
    const q = this.q!;
    if ((index - this.txDone) >>> 0 > (q.txProdPvt - this.txDone) >>> 0) return;
    while (this.txDone !== index) {
      const slot = this.txSlotOf[this.txDone & (VI_TXQ_SIZE - 1)];
      if (slot >= TSO_ID) this.tso.give(slot);
      else if (slot >= 0) this.freeTx.push(slot);
      this.txDone = (this.txDone + 1) >>> 0;
    }
  }

  /** Descriptors posted that have not completed. */
  get inFlight(): number {
    return this.q ? (this.q.txProdPvt - this.txDone) >>> 0 : 0;
  }

  /** A free TX slot, and a free TSO slot while the VI does TSO (checkReady). */
  get hasRoom(): boolean {
    return this.freeTx.length > 0 && (!this.tsoOn || this.tso.available > 0);
  }
}
