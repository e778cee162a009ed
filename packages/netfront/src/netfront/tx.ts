/**
 * A queue's TX ring, after xen-netfront's xennet_start_xmit and
 * xennet_tx_buf_gc. A frame is written straight into a guest-owned buffer
 * (a chunk of the device's TxPool), each page granted read-only to the
 * backend for the life of its request and revoked on its response. Requests
 * are pushed once per burst; the backend is notified only when it asked
 * (req_event).
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
  NETTXF_extra_info,
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
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_GSO_TYPE_TCPV4,
  newExtraInfo,
  writeExtraInfo,
  type FrontRing,
} from '@xsim/hypervisor';
import type { NetfrontDeps, RingOwner } from './common.ts';
import type { TxPool } from './tx-pool.ts';

export class NetfrontTx {
  private readonly idChunk = new Int32Array(NET_TX_RING_SIZE).fill(-1);
  private readonly idGref = new Int32Array(NET_TX_RING_SIZE).fill(-1);
  /** The id of the first slot of a frame carries the frame; the others -1. One frame per chunk. */
  private readonly idFrameStart = new Uint8Array(NET_TX_RING_SIZE);
  private readonly freeIds: number[] = [];
  private unpushed = 0;
  private ring: FrontRing | null = null;
  private readonly gso = newExtraInfo();

  constructor(
    private readonly d: NetfrontDeps,
    private readonly o: RingOwner,
    private readonly pool: TxPool,
  ) {}

  /** A new ring (connect): every id is free (the pool is reset by the device, once for all its queues). */
  attach(ring: FrontRing): void {
    this.ring = ring;
    this.freeIds.length = 0;
    for (let id = NET_TX_RING_SIZE - 1; id >= 0; id--) this.freeIds.push(id);
    this.idChunk.fill(-1);
    this.idGref.fill(-1);
    this.idFrameStart.fill(0);
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

  /** Room on this ring for a frame of `pieces` requests. */
  room(pieces: number): boolean {
    const ring = this.ring;
    return ring !== null && ring.freeRequests() >= pieces && this.freeIds.length >= pieces;
  }

  /**
   * Queue a frame built in `chunk` on the ring (pushed at the end of the
   * burst, by flush); `flags` (NETTXF_csum_blank...) go on its first slot;
   * `gsoSize` > 0: a TCPv4 GSO frame, its GSO extra-info slot right after
   * the first request (xennet_start_xmit), answered NETIF_RSP_NULL.
   */
  queue(chunk: number, len: number, flags = 0, gsoSize = 0): void {
    const ring = this.ring!;
    const { gnttab, grefs } = this.d;
    const dv = ring.sring.dv;
    let left = len;
    let piece = 0;
    while (left > 0) {
      const size = left < PAGE_SIZE ? left : PAGE_SIZE;
      const id = this.freeIds.pop()!;
      const gref = grefs.alloc();
      gnttab.grantAccess(gref, this.o.backendDomid, this.pool.frame(chunk, piece), true);
      this.idChunk[id] = chunk;
      this.idGref[id] = gref;
      this.idFrameStart[id] = piece === 0 ? 1 : 0;
      const o = ring.nextRequestOffset();
      dv.setUint32(o + TXREQ_GREF, gref, true);
      dv.setUint16(o + TXREQ_OFFSET, 0, true);
      left -= size;
      const extra = piece === 0 && gsoSize > 0 ? NETTXF_extra_info : 0;
      dv.setUint16(o + TXREQ_FLAGS, (left > 0 ? NETTXF_more_data : 0) | (piece === 0 ? flags : 0) | extra, true);
      dv.setUint16(o + TXREQ_ID, id, true);
      // The first slot carries the whole frame length, the rest their own (netif.h).
      dv.setUint16(o + TXREQ_SIZE, piece === 0 ? len : size, true);
      ring.reqProdPvt = (ring.reqProdPvt + 1) >>> 0;
      if (extra) this.gsoSlot(gsoSize);
      piece++;
    }
    this.pool.queuedFrame(chunk, len, piece, flags);
    this.unpushed++;
    this.o.c.txPackets++;
    this.o.c.txBytes += len;
  }

  /** The GSO extra-info slot in the next request slot (it carries no id: the backend answers it NETIF_RSP_NULL). */
  private gsoSlot(gsoSize: number): void {
    const ring = this.ring!;
    const e = this.gso;
    e.type = XEN_NETIF_EXTRA_TYPE_GSO;
    e.flags = 0;
    e.gsoSize = gsoSize;
    e.gsoType = XEN_NETIF_GSO_TYPE_TCPV4;
    e.gsoFeatures = 0;
    writeExtraInfo(ring.sring.dv, ring.nextRequestOffset(), e);
    ring.reqProdPvt = (ring.reqProdPvt + 1) >>> 0;
    this.o.c.txGsoFrames++;
  }

  /** Publish queued requests; notify the backend only if it asked (req_event). */
  flush(): void {
    if (this.unpushed === 0 || !this.ring) return;
    this.unpushed = 0;
    const notify = this.ring.pushRequestsAndCheckNotify();
    if (tracer.on) traceRingPush('netfront tx requests', this.ring.reqProdPvt, notify);
    if (notify) this.o.notifyTx();
  }

  /** Frames this ring has room for right now (the pool's free chunks aside). */
  available(): number {
    if (!this.ring) return 0;
    return Math.min(Math.floor(this.freeIds.length / this.pool.chunkPages), Math.floor(this.ring.freeRequests() / this.pool.chunkPages));
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
        this.pool.answered(c);
      }
    } while (ring.finalCheckForResponses());
    return n;
  }

  private fail(reason: string): number {
    this.o.broken(reason);
    return -1;
  }
}
