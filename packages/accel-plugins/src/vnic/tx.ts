/**
 * vnic, guest side, TX: which frames go on the fast path, the buffer they go
 * from and the descriptors that post them on the VI. A frame for a
 * destination the NIC reaches directly (a unicast MAC learnt behind the
 * uplink, or a guest of this host whose VI runs) is posted from our
 * registered TX pages: where txBuffer lent the stack room to build it (no
 * copy), or copied there; everything else is declined and netfront sends it
 * on the slow path. A TCP frame over the MTU (startXmit's gsoSize, plugin
 * API 1.5) is posted the same way with TXD_TSO, for the NIC to cut into
 * segments, while the VI does TSO.
 *
 * The TX pages are one ring (tx-ring.ts): an MTU frame takes a page, a 64 KiB
 * frame 17 contiguous ones, so the stack builds either in place, and as many
 * are in flight as the pages hold. Completions (EV_TX, in order) give the
 * pages back.
 *
 * The frontend (frontend.ts) owns the attachment, RX and the events; this
 * module owns the TX pages, the descriptor ring's producer side and the
 * decisions of startXmit, txBuffer and checkReady.
 */
import { readMac } from '@xsim/hypervisor';
import { TXD_CONT, TXD_CSUM, TXD_TSO, VI_RING_PAGES, VI_TXQ_SIZE, type ViQueues } from '@xsim/nic';
import type { DmaArea } from '../dma-area.ts';
import { txDecline } from '../tx-path.ts';
import type { VnicFrontendCounters } from './frontend-counters.ts';
import { TxRing } from './tx-ring.ts';

const PAGE = 4096;
/** The largest IP datagram vnic hands the NIC to cut (tsoMax). */
export const TSO_MAX = 65535;
/** The largest TSO frame: the datagram behind an Ethernet header and a VLAN tag. */
const TSO_FRAME = TSO_MAX + 18;
/** Pages a TSO frame of TSO_FRAME octets takes. */
export const TSO_PAGES = Math.ceil(TSO_FRAME / PAGE);
/** Octets per TX descriptor of a TSO frame (a descriptor's length is a u16). */
const PIECE = 32 * 1024;

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

/** The TX pages: `pages` of the DMA area from page VI_RING_PAGES; an MTU-sized frame is at most `slotPages` of them. */
export class VnicTx {
  readonly ring: TxRing;
  /** The VI's checksum offload is on (the backend enabled it at vi_init): partial checksums go to the NIC to complete. */
  csum = false;
  /** The VI's TSO is on (the backend enabled it at vi_init): TCP frames up to 64 KiB go to the NIC to cut. */
  tsoOn = false;
  /** Descriptors posted since the NIC was last told to look (flush wakes it if it sleeps). */
  unpushed = false;
  private q: ViQueues | null = null;
  private bufBase = 0;
  /** Per TX descriptor: the pages its frame was charged (on a frame's first descriptor; 0 on the rest). */
  private readonly chargeOf = new Int32Array(VI_TXQ_SIZE);
  private txDone = 0;
  /** Where txBuffer lent the stack room for the frame it is building (a TX page), or -1. */
  private lentAt = -1;
  /** The pages of that frame (held for it in the stats' levels). */
  private lentPages = 0;
  /** Pages taken by claim() for a frame a subclass posts itself (postTx). */
  private claimed = 0;

  constructor(
    private readonly h: VnicTxHost,
    readonly slotPages: number,
    readonly pages: number,
  ) {
    this.ring = new TxRing(pages);
  }

  /** A new attachment's VI: every page free, nothing posted. */
  attach(q: ViQueues, bufBase: number, csum: boolean, tso: boolean): void {
    this.q = q;
    this.bufBase = bufBase;
    this.txDone = q.txProdPvt;
    this.unpushed = false;
    this.lentAt = -1;
    this.lentPages = 0;
    this.claimed = 0;
    this.ring.reset();
    this.csum = csum;
    this.tsoOn = tso && this.pages >= TSO_PAGES;
  }

  detach(): void {
    this.q = null;
  }

  /** RAM offset of TX page `page`. */
  pageAddr(page: number): number {
    return this.h.dma.ram((VI_RING_PAGES + page) * PAGE);
  }

  /** The largest frame taken: an MTU-sized one, or a TSO frame while the VI does TSO. */
  private get maxLen(): number {
    return this.tsoOn ? TSO_FRAME : this.slotPages * PAGE;
  }

  /**
   * Room for a frame of up to `len` octets for the stack to build in (plugin
   * API 1.3): where the next frame will go in the TX pages, so it goes out
   * from there with no copy; -1 if the fast path is down, the frame too long
   * (over the MTU without TSO) or the pages full.
   */
  txBuffer(len: number): number {
    this.lentAt = -1;
    this.lentPages = 0;
    if (!this.h.up() || len > this.maxLen) return -1;
    this.ring.rewind();
    const n = Math.ceil(len / PAGE);
    this.lentAt = this.ring.fit(n);
    if (this.lentAt < 0) return -1;
    this.lentPages = n;
    return this.pageAddr(this.lentAt);
  }

  startXmit(src: Uint8Array, off: number, len: number, csumPartial: boolean, gsoSize: number): boolean {
    // Room lent for this frame, if any: a declined frame leaves it (nothing was taken).
    const lentAt = this.lentAt;
    this.lentAt = -1;
    this.lentPages = 0;
    const h = this.h;
    const s = h.s;
    const tso = gsoSize > 0;
    // A partial checksum our VI cannot complete is left to the slow path (still partial: netback or the NIC completes it).
    const why = txDecline(h.up() && (tso || this.csum || !csumPartial), h.fast, h.local, src, off);
    if (why !== null) {
      s[VNIC_DECLINED[why]]++;
      return false;
    }
    // Too long for us (a TSO frame while the VI does none): netback takes it.
    if (len > (tso ? (this.tsoOn ? TSO_FRAME : 0) : this.slotPages * PAGE)) {
      s.declinedBusy++;
      return false;
    }
    const ram = h.ram;
    const n = Math.ceil(len / PAGE);
    // Built in place, it goes out from where it was built; otherwise it is copied to where the next frame goes.
    let at = lentAt >= 0 && src === ram && off === this.pageAddr(lentAt) ? lentAt : -1;
    let charged = at >= 0 ? this.ring.take(at, n) : -1;
    if (charged < 0) {
      this.ring.rewind();
      at = this.ring.fit(n);
      if (at < 0) {
        s.declinedBusy++;
        return false;
      }
      charged = this.ring.take(at, n);
      const a = this.pageAddr(at);
      if (src === ram) ram.copyWithin(a, off, off + len);
      else ram.set(src.subarray(off, off + len), a);
      s.txCopied++;
    }
    const dst = readMac(src, off);
    if (tso) {
      this.postTso(at, len, gsoSize, charged);
      s.txTso++;
    } else {
      this.post(at, len, csumPartial && this.csum ? TXD_CSUM : 0, charged);
      if (csumPartial) s.txCsumOffloaded++;
    }
    s.taken++;
    if (!h.fast.has(dst)) s.takenLocal++;
    return true;
  }

  /** One descriptor for a frame at TX page `at`, published (the NIC sees it at once, and counts it if our VI ends under it). */
  private post(at: number, len: number, flags: number, charged: number): void {
    const idx = this.q!.postTx(this.bufBase + VI_RING_PAGES + at, 0, len, flags);
    this.chargeOf[idx & (VI_TXQ_SIZE - 1)] = charged;
    this.q!.publishTx();
    this.unpushed = true;
  }

  /** A TSO frame at TX page `at`: TXD_TSO and TXD_CSUM with the MSS on the first descriptor, over descriptors of at most 32 KiB, published. */
  private postTso(at: number, len: number, mss: number, charged: number): void {
    const q = this.q!;
    const buf = this.bufBase + VI_RING_PAGES + at;
    for (let o = 0; o < len; o += PIECE) {
      const n = Math.min(PIECE, len - o);
      const flags = (o === 0 ? TXD_TSO | TXD_CSUM : 0) | (o + n < len ? TXD_CONT : 0);
      const idx = q.postTx(buf + o / PAGE, 0, n, flags, o === 0 ? mss : 0);
      this.chargeOf[idx & (VI_TXQ_SIZE - 1)] = o === 0 ? charged : 0;
    }
    q.publishTx();
    this.unpushed = true;
  }

  /**
   * For a subclass posting a frame of its own (a test's hostile guest): take
   * one TX page, its number, or undefined if none is free; postTx posts it.
   */
  claim(): number | undefined {
    this.ring.rewind();
    const at = this.ring.fit(1);
    if (at < 0) return undefined;
    this.claimed += this.ring.take(at, 1);
    return at;
  }

  /** Post `len` octets at TX page `page` (claim's), or at buffer id `bufId` if given, with the pages claim took. */
  postTx(page: number, len: number, bufId = this.bufBase + VI_RING_PAGES + page, csumPartial = false): void {
    const idx = this.q!.postTx(bufId, 0, len, csumPartial ? TXD_CSUM : 0);
    this.chargeOf[idx & (VI_TXQ_SIZE - 1)] = this.claimed;
    this.claimed = 0;
    this.q!.publishTx();
    this.unpushed = true;
  }

  /** The end of netfront's burst: the NIC, if it sleeps, is woken once for every frame posted since. */
  flush(): void {
    if (this.unpushed && this.q) {
      this.unpushed = false;
      this.q.wakeIfAsleep();
    }
  }

  /** An EV_TX: descriptors before `index` are done, their pages free (never past what we posted). */
  completed(index: number): void {
    const q = this.q!;
    if ((index - this.txDone) >>> 0 > (q.txProdPvt - this.txDone) >>> 0) return;
    while (this.txDone !== index) {
      this.ring.give(this.chargeOf[this.txDone & (VI_TXQ_SIZE - 1)]);
      this.txDone = (this.txDone + 1) >>> 0;
    }
  }

  /** Descriptors posted that have not completed. */
  get inFlight(): number {
    return this.q ? (this.q.txProdPvt - this.txDone) >>> 0 : 0;
  }

  /**
   * Room for the largest frame the stack may hand us next (checkReady): a
   * 64 KiB one while the VI does TSO, else an MTU-sized one. Less, and
   * netfront holds its queue: a frame declined for want of room would
   * overtake the ones before it.
   */
  get hasRoom(): boolean {
    return this.ring.fit(Math.ceil(this.maxLen / PAGE)) >= 0;
  }

  /** Frames of `len` octets the free pages hold, less those lent for the frame being built (the stats' levels). */
  fitting(len: number): number {
    return Math.floor((this.ring.free - this.lentPages) / Math.ceil(len / PAGE));
  }
}
