/**
 * netfront's TX half, after xen-netfront's xennet_start_xmit and
 * xennet_tx_buf_gc. A frame is written straight into a guest-owned buffer
 * (one or more whole pages), each page granted read-only to the backend for
 * the life of its request and revoked on its response. Requests are pushed
 * once per burst; the backend is notified only when it asked (req_event).
 *
 * The backend is not trusted: the response producer is checked
 * (RING_RESPONSE_PROD_OVERFLOW) and each response is copied out of the ring
 * once; a response with an id out of range or for a request not in flight,
 * or a grant the backend still holds when it says it is done, marks the
 * device broken.
 */
import {
  tracer,
  traceRingPush,
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETTXF_more_data,
  NET_TX_RING_SIZE,
  PAGE_SIZE,
  TXREQ_FLAGS,
  TXREQ_GREF,
  TXREQ_ID,
  TXREQ_OFFSET,
  TXREQ_SIZE,
  TXRSP_ID,
  TXRSP_STATUS,
  type FrontRing,
} from '@xsim/hypervisor';
import type { NetfrontDeps, RingOwner } from './common.ts';

export class NetfrontTx {
  /** Buffers: `chunks` chunks of `chunkPages` contiguous pages, allocated once. */
  readonly chunkPages: number;
  private readonly chunks: number;
  private readonly base: number;
  private readonly freeChunks: number[] = [];
  private readonly chunkOutstanding: Int32Array;
  /** Each busy chunk's frame length and queue order (a suspend re-sends unanswered frames in order). */
  private readonly chunkLen: Int32Array;
  private readonly chunkOrder: Float64Array;
  private queued = 0;
  private readonly idChunk = new Int32Array(NET_TX_RING_SIZE).fill(-1);
  private readonly idGref = new Int32Array(NET_TX_RING_SIZE).fill(-1);
  /** The id of the first slot of a frame carries the frame; the others -1. One frame per chunk. */
  private readonly idFrameStart = new Uint8Array(NET_TX_RING_SIZE);
  private readonly freeIds: number[] = [];
  private reserved = -1;
  private unpushed = 0;
  private ring: FrontRing | null = null;

  constructor(
    private readonly d: NetfrontDeps,
    private readonly o: RingOwner,
  ) {
    this.chunkPages = Math.ceil((d.mtu + 18) / PAGE_SIZE);
    this.chunks = Math.floor(NET_TX_RING_SIZE / this.chunkPages);
    this.chunkOutstanding = new Int32Array(this.chunks);
    this.chunkLen = new Int32Array(this.chunks);
    this.chunkOrder = new Float64Array(this.chunks);
    this.base = d.frames.allocRange(this.chunks * this.chunkPages);
  }

  /** Unplugged: the buffers go back to the guest's allocator (detached first, so no grant of them is left). */
  releaseBuffers(): void {
    for (let k = 0; k < this.chunks * this.chunkPages; k++) this.d.frames.release(this.base + k);
  }

  /** A new ring (connect): every buffer and id is free. */
  attach(ring: FrontRing): void {
    this.ring = ring;
    this.freeChunks.length = 0;
    for (let c = this.chunks - 1; c >= 0; c--) this.freeChunks.push(c);
    this.chunkOutstanding.fill(0);
    this.freeIds.length = 0;
    for (let id = NET_TX_RING_SIZE - 1; id >= 0; id--) this.freeIds.push(id);
    this.idChunk.fill(-1);
    this.idGref.fill(-1);
    this.idFrameStart.fill(0);
    this.reserved = -1;
    this.unpushed = 0;
  }

  /**
   * The ring is going (teardown, or a broken backend): revoke every grant we
   * can and count every frame still unanswered, once. Returns that count.
   */
  detach(): number {
    const { gnttab, grefs } = this.d;
    let lost = 0;
    for (let id = 0; id < NET_TX_RING_SIZE; id++) {
      const g = this.idGref[id];
      if (g < 0) continue;
      if (this.idFrameStart[id]) lost++;
      // A grant the backend still maps stays granted (its page is never reused).
      if (gnttab.endAccess(g)) grefs.release(g);
      this.idGref[id] = -1;
      this.idChunk[id] = -1;
      this.idFrameStart[id] = 0;
    }
    this.ring = null;
    return lost;
  }

  /** Byte offset in guest RAM to build a frame of `len` bytes at, or -1 if there is no room now. */
  reserve(len: number): number {
    const ring = this.ring;
    if (!ring || len <= 0 || len > this.chunkPages * PAGE_SIZE) return -1;
    const pieces = Math.ceil(len / PAGE_SIZE);
    if (this.freeChunks.length === 0 || ring.freeRequests() < pieces || this.freeIds.length < pieces) return -1;
    this.reserved = this.freeChunks.pop()!;
    return this.chunkAddr(this.reserved);
  }

  chunkAddr(chunk: number): number {
    return (this.base + chunk * this.chunkPages) * PAGE_SIZE;
  }

  /** The chunk reserved last; taking it back un-sent (an accelerator took the frame). */
  takeReserved(): number {
    const c = this.reserved;
    this.reserved = -1;
    return c;
  }

  giveBack(chunk: number): void {
    this.freeChunks.push(chunk);
  }

  /** Queue a frame built in `chunk` on the ring (pushed at the end of the burst, by flush). */
  queue(chunk: number, len: number): void {
    const ring = this.ring!;
    const { gnttab, grefs } = this.d;
    const firstFrame = this.base + chunk * this.chunkPages;
    const dv = ring.sring.dv;
    let left = len;
    let piece = 0;
    while (left > 0) {
      const size = left < PAGE_SIZE ? left : PAGE_SIZE;
      const id = this.freeIds.pop()!;
      const gref = grefs.alloc();
      gnttab.grantAccess(gref, this.o.backendDomid, firstFrame + piece, true);
      this.idChunk[id] = chunk;
      this.idGref[id] = gref;
      this.idFrameStart[id] = piece === 0 ? 1 : 0;
      const o = ring.nextRequestOffset();
      dv.setUint32(o + TXREQ_GREF, gref, true);
      dv.setUint16(o + TXREQ_OFFSET, 0, true);
      left -= size;
      dv.setUint16(o + TXREQ_FLAGS, left > 0 ? NETTXF_more_data : 0, true);
      dv.setUint16(o + TXREQ_ID, id, true);
      // The first slot carries the whole frame length, the rest their own (netif.h).
      dv.setUint16(o + TXREQ_SIZE, piece === 0 ? len : size, true);
      ring.reqProdPvt = (ring.reqProdPvt + 1) >>> 0;
      this.chunkOutstanding[chunk]++;
      piece++;
    }
    this.chunkLen[chunk] = len;
    this.chunkOrder[chunk] = this.queued++;
    this.unpushed++;
    this.o.c.txPackets++;
    this.o.c.txBytes += len;
  }

  /** Frames on the ring the backend has not answered, oldest first, where they lie in guest RAM. */
  unanswered(): { addr: number; len: number }[] {
    const out: { addr: number; len: number; order: number }[] = [];
    for (let c = 0; c < this.chunks; c++)
      if (this.chunkOutstanding[c] > 0) out.push({ addr: this.chunkAddr(c), len: this.chunkLen[c], order: this.chunkOrder[c] });
    return out.sort((a, b) => a.order - b.order).map(({ addr, len }) => ({ addr, len }));
  }

  /** Publish queued requests; notify the backend only if it asked (req_event). */
  flush(): void {
    if (this.unpushed === 0 || !this.ring) return;
    this.unpushed = 0;
    const notify = this.ring.pushRequestsAndCheckNotify();
    if (tracer.on) traceRingPush('netfront tx requests', this.ring.reqProdPvt, notify);
    if (notify) this.o.notifyTx();
  }

  /** Frames that could be queued right now. */
  available(): number {
    if (!this.ring) return 0;
    return Math.min(this.freeChunks.length, Math.floor(this.ring.freeRequests() / this.chunkPages));
  }

  /** xennet_tx_buf_gc: take the backend's responses. Returns responses taken, or -1 if the backend broke the ring. */
  gc(): number {
    const ring = this.ring;
    if (!ring) return 0;
    const dv = ring.sring.dv;
    const { gnttab, grefs } = this.d;
    let n = 0;
    do {
      const prod = ring.responseProducer();
      if (prod < 0)
        return this.fail(`Illegal number of TX responses: rsp_prod ${ring.sring.rspProd}, rsp_cons ${ring.rspCons}, req_prod_pvt ${ring.reqProdPvt}`);
      while (ring.rspCons !== prod) {
        // RING_COPY_RESPONSE: id and status are read once.
        const o = ring.responseOffset(ring.rspCons);
        const id = dv.getUint16(o + TXRSP_ID, true);
        const status = dv.getInt16(o + TXRSP_STATUS, true);
        ring.rspCons = (ring.rspCons + 1) >>> 0;
        n++;
        if (status === NETIF_RSP_NULL) continue;
        if (id >= NET_TX_RING_SIZE) return this.fail(`TX response has incorrect id (${id})`);
        const g = this.idGref[id];
        if (g < 0) return this.fail(`TX response for inactive request (id ${id})`);
        if (!gnttab.endAccess(g)) return this.fail(`TX grant ${g} still in use by the backend after its response`);
        grefs.release(g);
        if (status !== NETIF_RSP_OKAY && this.idFrameStart[id]) this.o.c.txErrorResponses++;
        this.idGref[id] = -1;
        this.idFrameStart[id] = 0;
        const c = this.idChunk[id];
        this.idChunk[id] = -1;
        this.freeIds.push(id);
        if (--this.chunkOutstanding[c] === 0) this.freeChunks.push(c);
      }
    } while (ring.finalCheckForResponses());
    return n;
  }

  private fail(reason: string): number {
    this.o.broken(reason);
    return -1;
  }
}
