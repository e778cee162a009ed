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

  constructor(
    private readonly d: NetfrontDeps,
    rings: number,
  ) {
    this.chunkPages = txChunkPages(d.mtu);
    this.chunks = rings * chunksPerRing(d.mtu);
    this.outstanding = new Int32Array(this.chunks);
    this.len = new Int32Array(this.chunks);
    this.order = new Float64Array(this.chunks);
    this.flags = new Uint16Array(this.chunks);
    this.base = d.frames.allocRange(this.chunks * this.chunkPages);
  }

  /** A fresh connection: every chunk free. */
  reset(): void {
    this.free.length = 0;
    for (let c = this.chunks - 1; c >= 0; c--) this.free.push(c);
    this.outstanding.fill(0);
    this.reserved = -1;
  }

  /** Unplugged: the buffers go back to the guest's allocator (every queue detached first). */
  releaseBuffers(): void {
    for (let k = 0; k < this.chunks * this.chunkPages; k++) this.d.frames.release(this.base + k);
  }

  get freeChunks(): number {
    return this.free.length;
  }

  /** A chunk for a frame of `len` bytes (kept as the reservation), or -1. */
  reserve(len: number): number {
    if (len <= 0 || len > this.chunkPages * PAGE_SIZE || this.free.length === 0) return -1;
    this.reserved = this.free.pop()!;
    return this.reserved;
  }

  /** The chunk reserved last, taken (-1: none). */
  takeReserved(): number {
    const c = this.reserved;
    this.reserved = -1;
    return c;
  }

  giveBack(chunk: number): void {
    this.free.push(chunk);
  }

  chunkAddr(chunk: number): number {
    return (this.base + chunk * this.chunkPages) * PAGE_SIZE;
  }

  /** The guest frame number of page `piece` of `chunk`. */
  frame(chunk: number, piece: number): number {
    return this.base + chunk * this.chunkPages + piece;
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
    if (--this.outstanding[chunk] === 0) this.free.push(chunk);
  }

  /**
   * Frames on the rings their backend has not answered, oldest first, where
   * they lie in guest RAM; a partial checksum among them is completed (the
   * resumed kernel sends them again as plain frames, whatever its new backend).
   */
  unanswered(): { addr: number; len: number }[] {
    const out: { addr: number; len: number; order: number }[] = [];
    for (let c = 0; c < this.chunks; c++) {
      if (this.outstanding[c] <= 0) continue;
      if (this.flags[c] & NETTXF_csum_blank) completeL4Checksum(this.d.mem.u8, this.chunkAddr(c), this.len[c]);
      out.push({ addr: this.chunkAddr(c), len: this.len[c], order: this.order[c] });
    }
    return out.sort((a, b) => a.order - b.order).map(({ addr, len }) => ({ addr, len }));
  }
}
