/**
 * dom0's packet buffers ("skbs"): fixed-size slots in dom0 RAM, reference
 * counted so one frame can sit in several queues (a flooded broadcast, a frame
 * waiting for the NIC to finish DMA) without being copied.
 */
import { PAGE_SIZE, type FrameAllocator, type GuestMemory } from '@xsim/hypervisor';

/**
 * What is known of a frame's TCP or UDP checksum as it crosses dom0 (Linux's
 * skb->ip_summed): nothing (the receiver checks it), known good (checked by
 * the NIC, or vouched for by a frontend with NETTXF_data_validated), or
 * partial (CHECKSUM_PARTIAL: the field holds the pseudo-header sum, to be
 * completed by whatever sends it on). It travels with the frame through the
 * bridge; a frame is never completed in place (other ports may hold it):
 * a port that must complete one completes a copy.
 */
export const CSUM_NONE = 0;
export const CSUM_UNNECESSARY = 1;
export const CSUM_PARTIAL = 2;
export type CsumState = typeof CSUM_NONE | typeof CSUM_UNNECESSARY | typeof CSUM_PARTIAL;

/** Pages one skb takes for frames of `frameBytes` (power-of-two slots up to a page, whole pages beyond). */
export function skbPages(frameBytes: number): number {
  return frameBytes <= PAGE_SIZE ? 2 ** Math.ceil(Math.log2(Math.max(frameBytes, 64))) / PAGE_SIZE : Math.ceil(frameBytes / PAGE_SIZE);
}

/** The fewest skbs dom0 runs with: below this a burst from one guest exhausts it. */
export const MIN_SKBS = 64;
/** Pages dom0 keeps back for rings, its stack and the odd allocation. */
export const DOM0_SLACK_PAGES = 32;

export class SkbPool {
  readonly slotSize: number;
  readonly count: number;
  readonly base: number;
  readonly len: Int32Array;
  private readonly refs: Int32Array;
  private readonly free: number[] = [];

  constructor(
    readonly mem: GuestMemory,
    frames: FrameAllocator,
    count: number,
    frameBytes: number,
  ) {
    // Power-of-two slots up to a page never straddle a page; bigger ones are page multiples.
    this.slotSize = frameBytes <= PAGE_SIZE ? 2 ** Math.ceil(Math.log2(Math.max(frameBytes, 64))) : Math.ceil(frameBytes / PAGE_SIZE) * PAGE_SIZE;
    this.count = count;
    const pages = Math.ceil((count * this.slotSize) / PAGE_SIZE);
    this.base = frames.allocRange(pages) * PAGE_SIZE;
    this.len = new Int32Array(count);
    this.refs = new Int32Array(count);
    for (let i = count - 1; i >= 0; i--) this.free.push(i);
  }

  get available(): number {
    return this.free.length;
  }

  /** A fresh skb with one reference, or -1 when the pool is exhausted. */
  alloc(): number {
    const i = this.free.pop();
    if (i === undefined) return -1;
    this.refs[i] = 1;
    this.len[i] = 0;
    return i;
  }

  addr(skb: number): number {
    return this.base + skb * this.slotSize;
  }

  get(skb: number): void {
    this.refs[skb]++;
  }

  put(skb: number): void {
    if (--this.refs[skb] === 0) this.free.push(skb);
  }

  /** Copy a transient frame (a NIC RX buffer) into a new skb; -1 if none is free. */
  clone(addr: number, len: number): number {
    if (len > this.slotSize) return -1;
    const skb = this.alloc();
    if (skb < 0) return -1;
    const d = this.addr(skb);
    this.mem.u8.copyWithin(d, addr, addr + len);
    this.len[skb] = len;
    return skb;
  }
}
