/**
 * netfront's TX buffers, shared by its queues: chunks of whole guest pages,
 * one frame each, allocated once. A frame is built in a chunk before its
 * queue is known (the stack writes it straight into the buffer; the queue is
 * picked from the frame's flow hash at commit, as Linux's core picks a TX
 * queue from the skb), so the chunks belong to no queue: a queue's ring
 * grants a chunk's pages for the life of the frame's requests and gives the
 * chunk back when the last is answered. As many chunks as every queue's ring
 * has slots for.
 */
import { NETTXF_csum_blank, NET_TX_RING_SIZE, PAGE_SIZE } from '@xsim/hypervisor';
import { completeL4Checksum } from '@xsim/netstack';
import type { NetfrontDeps } from './common.ts';

/** Pages of one TX chunk at an MTU (a frame of mtu + 18 bytes). */
export function txChunkPages(mtu: number): number {
  return Math.ceil((mtu + 18) / PAGE_SIZE);
}

/** Big chunks for TCP GSO frames (up to 64 KiB: XEN_NETIF_MAX_TX_SIZE), taken at the first connect that negotiates GSO. */
export const GSO_CHUNKS = 4;
export const GSO_CHUNK_PAGES = 16;

/** Chunks one ring's slots call for. */
export function chunksPerRing(mtu: number): number {
  return Math.floor(NET_TX_RING_SIZE / txChunkPages(mtu));
}

export class TxPool {
  readonly chunkPages: number;
  readonly chunks: number;
  private readonly base: number;
  private readonly free: number[] = [];
  /** Requests of each chunk's frame not yet answered (0: the chunk is free or reserved). */
  readonly outstanding: Int32Array;
  /** Each busy chunk's frame length and queue order (a suspend re-sends unanswered frames in order). */
  private readonly len: Int32Array;
  private readonly order: Float64Array;
  /** Each busy chunk's first-slot NETTXF_* flags (a partial checksum is completed before a resumed kernel sends it again). */
  private readonly flags: Uint16Array;
  private queued = 0;
  private reserved = -1;
  /** The big chunks' first frames (ids chunks .. chunks + GSO_CHUNKS - 1), once allocated, and the free ones. */
  private readonly bigBase: number[] = [];
  private readonly bigFree: number[] = [];

  constructor(
    private readonly d: NetfrontDeps,
    rings: number,
  ) {
    this.chunkPages = txChunkPages(d.mtu);
    this.chunks = rings * chunksPerRing(d.mtu);
    this.outstanding = new Int32Array(this.chunks + GSO_CHUNKS);
    this.len = new Int32Array(this.chunks + GSO_CHUNKS);
    this.order = new Float64Array(this.chunks + GSO_CHUNKS);
    this.flags = new Uint16Array(this.chunks + GSO_CHUNKS);
    this.base = d.frames.allocRange(this.chunks * this.chunkPages);
  }

  /** A fresh connection: every chunk free. */
  reset(): void {
    this.free.length = 0;
    for (let c = this.chunks - 1; c >= 0; c--) this.free.push(c);
    this.bigFree.length = 0;
    for (let i = this.bigBase.length - 1; i >= 0; i--) this.bigFree.push(this.chunks + i);
    this.outstanding.fill(0);
    this.reserved = -1;
  }

  /**
   * Big chunks for GSO frames, taken from the guest's free pages the first
   * time (contiguous runs of GSO_CHUNK_PAGES): false when its RAM has none
   * to spare (the device then offers no TSO to its stack).
   */
  enableGso(): boolean {
    if (this.bigBase.length > 0) return true;
    try {
      for (let i = 0; i < GSO_CHUNKS; i++) this.bigBase.push(this.d.frames.allocRange(GSO_CHUNK_PAGES));
    } catch {
      for (const b of this.bigBase.splice(0)) for (let k = 0; k < GSO_CHUNK_PAGES; k++) this.d.frames.release(b + k);
      return false;
    }
    for (let i = this.bigBase.length - 1; i >= 0; i--) this.bigFree.push(this.chunks + i);
    return true;
  }

  /** The largest frame a reservation may be (GSO chunks allocated: 64 KiB). */
  get maxFrame(): number {
    return this.bigBase.length > 0 ? GSO_CHUNK_PAGES * PAGE_SIZE : this.chunkPages * PAGE_SIZE;
  }

  /** Unplugged: the buffers go back to the guest's allocator (every queue detached first). */
  releaseBuffers(): void {
    for (let k = 0; k < this.chunks * this.chunkPages; k++) this.d.frames.release(this.base + k);
    for (const b of this.bigBase.splice(0)) for (let k = 0; k < GSO_CHUNK_PAGES; k++) this.d.frames.release(b + k);
    this.bigFree.length = 0;
  }

  get freeChunks(): number {
    return this.free.length;
  }

  /** A chunk for a frame of `len` bytes (kept as the reservation), or -1. */
  reserve(len: number): number {
    const list = len > this.chunkPages * PAGE_SIZE ? this.bigFree : this.free;
    if (len <= 0 || len > this.maxFrame || list.length === 0) return -1;
    this.reserved = list.pop()!;
    return this.reserved;
  }

  /** Is `chunk` a big (GSO) one? */
  isBig(chunk: number): boolean {
    return chunk >= this.chunks;
  }

  /** The chunk reserved last, taken (-1: none). */
  takeReserved(): number {
    const c = this.reserved;
    this.reserved = -1;
    return c;
  }

  giveBack(chunk: number): void {
    (chunk >= this.chunks ? this.bigFree : this.free).push(chunk);
  }

  chunkAddr(chunk: number): number {
    return this.frame(chunk, 0) * PAGE_SIZE;
  }

  /** The guest frame number of page `piece` of `chunk`. */
  frame(chunk: number, piece: number): number {
    return chunk >= this.chunks ? this.bigBase[chunk - this.chunks] + piece : this.base + chunk * this.chunkPages + piece;
  }

  /** A frame of `len` bytes in `chunk` went onto a ring in `pieces` requests, its first flagged `flags`. */
  queuedFrame(chunk: number, len: number, pieces: number, flags = 0): void {
    this.outstanding[chunk] = pieces;
    this.flags[chunk] = flags;
    this.len[chunk] = len;
    this.order[chunk] = this.queued++;
  }

  /** One request of `chunk`'s frame was answered; the last frees the chunk. */
  answered(chunk: number): void {
    if (--this.outstanding[chunk] === 0) this.giveBack(chunk);
  }

  /** GSO frames on the rings their backend has not answered (a suspend cannot carry them: lost, counted by the caller). */
  gsoUnanswered(): number {
    let n = 0;
    for (let c = this.chunks; c < this.chunks + this.bigBase.length; c++) if (this.outstanding[c] > 0) n++;
    return n;
  }

  /**
   * Frames on the rings their backend has not answered, oldest first, where
   * they lie in guest RAM; a partial checksum among them is completed (the
   * resumed kernel sends them again as plain frames, whatever its new backend).
   */
  unanswered(): { addr: number; len: number }[] {
    const out: { addr: number; len: number; order: number }[] = [];
    // GSO frames (big chunks) are not sent again: gsoUnanswered() counts them.
    for (let c = 0; c < this.chunks; c++) {
      if (this.outstanding[c] <= 0) continue;
      if (this.flags[c] & NETTXF_csum_blank) completeL4Checksum(this.d.mem.u8, this.chunkAddr(c), this.len[c]);
      out.push({ addr: this.chunkAddr(c), len: this.len[c], order: this.order[c] });
    }
    return out.sort((a, b) => a.order - b.order).map(({ addr, len }) => ({ addr, len }));
  }
}
