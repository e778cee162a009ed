/**
 * vnic's TSO buffers: two slots at the end of the frontend's DMA area, each
 * big enough for a 64 KiB IPv4 datagram behind an Ethernet header and a VLAN
 * tag, from which TCP frames are posted with TXD_TSO for the NIC to cut
 * (built there when txBuffer lent the slot, else copied in). They are carved
 * out of the TX pages, so the area is the size it was (a guest's RAM is
 * tight: the default guest's 1024 pages keep 50 free with vnic attached).
 */
import { TXD_CONT, TXD_CSUM, TXD_TSO, VI_TXQ_SIZE, type ViQueues } from '@xsim/nic';

const PAGE = 4096;
/** Octets per TX descriptor of a TSO frame (a descriptor's length is a u16). */
const PIECE = 32 * 1024;

/** Where a frontend's DMA area is: guest RAM, the RAM offset of an area page, its first buffer id, the map from ring index to slot. */
export interface TsoArea {
  ram: Uint8Array;
  at(page: number): number;
  bufBase: number;
  slotOf: Int32Array;
}

export const TSO_SLOTS = 2;
/** Pages per slot: 65535 + 18 octets. */
export const TSO_SLOT_PAGES = 17;
/** Slot ids in the TX descriptor map: TSO slots from here (the MTU-sized slots below). */
export const TSO_ID = 1 << 20;
/** The largest IP datagram a slot takes. */
export const TSO_MAX = 65535;

export class TsoSlots {
  /** Free slots' ids (TSO_ID + j): txBuffer lends from here too (LentSlot). */
  readonly free: number[] = [];

  /** `count` slots from page `firstPage` of the DMA area. */
  constructor(
    readonly firstPage: number,
    readonly count: number,
  ) {
    this.reset();
  }

  get pages(): number {
    return this.count * TSO_SLOT_PAGES;
  }

  get available(): number {
    return this.free.length;
  }

  /** Every slot free (a new attachment). */
  reset(): void {
    this.free.length = 0;
    for (let j = this.count - 1; j >= 0; j--) this.free.push(TSO_ID + j);
  }

  /** A free slot's id (TSO_ID + j), or -1. */
  take(): number {
    return this.free.pop() ?? -1;
  }

  /** A slot's frame went (its descriptors completed). */
  give(id: number): void {
    this.free.push(id);
  }

  /** The page (in the DMA area) a slot starts at. */
  page(id: number): number {
    return this.firstPage + (id - TSO_ID) * TSO_SLOT_PAGES;
  }

  /**
   * Copy the frame into slot `id` (unless it was built there) and post it (not yet published): TXD_TSO
   * with the MSS on the first descriptor, over descriptors of at most 32 KiB.
   * The slot is freed when the first descriptor completes; the others name none.
   */
  post(q: ViQueues, id: number, area: TsoArea, src: Uint8Array, off: number, len: number, mss: number): void {
    const page = this.page(id);
    const a = area.at(page);
    if (src === area.ram) {
      if (off !== a) area.ram.copyWithin(a, off, off + len);
    } else area.ram.set(src.subarray(off, off + len), a);
    for (let o = 0; o < len; o += PIECE) {
      const n = Math.min(PIECE, len - o);
      const flags = (o === 0 ? TXD_TSO | TXD_CSUM : 0) | (o + n < len ? TXD_CONT : 0);
      const idx = q.postTx(area.bufBase + page + o / PAGE, 0, n, flags, o === 0 ? mss : 0);
      area.slotOf[idx & (VI_TXQ_SIZE - 1)] = o === 0 ? id : -1;
    }
  }
}
