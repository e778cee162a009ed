/**
 * The TX path's private copies of ring requests and its responses (Linux
 * xen-netback's RING_COPY_REQUEST and make_tx_response): every request a
 * frame takes is copied out of the shared ring once, into the pool, and only
 * the copy is checked and used; responses go out in slot order, each
 * extra-info slot answered NETIF_RSP_NULL after the request it follows.
 */
import {
  NETIF_RSP_ERROR,
  NETIF_RSP_NULL,
  TXREQ_FLAGS,
  TXREQ_GREF,
  TXREQ_ID,
  TXREQ_OFFSET,
  TXREQ_SIZE,
  TXRSP_ID,
  TXRSP_STATUS,
  type BackRing,
} from '@xsim/hypervisor';
import { VIF_TUNABLES, type VifCounters } from './common.ts';

const { legacySlotsMax, fatalSkbSlots, txBatch } = VIF_TUNABLES;
/** Copies kept for frames awaiting their grant copies: each accepted frame has at most legacySlotsMax slots. */
const POOL = txBatch * legacySlotsMax + fatalSkbSlots;

export class TxSlots {
  // RING_COPY_REQUEST's destination: private copies, one per slot, of the batch's requests.
  protected readonly gref = new Uint32Array(POOL);
  protected readonly off = new Uint16Array(POOL);
  protected readonly flags = new Uint16Array(POOL);
  protected readonly id = new Uint16Array(POOL);
  protected readonly size = new Uint16Array(POOL);

  constructor(
    readonly ring: BackRing,
    private readonly c: VifCounters,
  ) {}

  /** RING_COPY_REQUEST: the only read of request `idx` from shared memory, into copy `k`. */
  protected copyRequest(idx: number, k: number): void {
    const dv = this.ring.sring.dv;
    const o = this.ring.sring.slotOffset(idx);
    this.gref[k] = dv.getUint32(o + TXREQ_GREF, true);
    this.off[k] = dv.getUint16(o + TXREQ_OFFSET, true);
    this.flags[k] = dv.getUint16(o + TXREQ_FLAGS, true);
    this.id[k] = dv.getUint16(o + TXREQ_ID, true);
    this.size[k] = dv.getUint16(o + TXREQ_SIZE, true);
  }

  protected respond(k: number, status: number): void {
    const ring = this.ring;
    const dv = ring.sring.dv;
    const r = ring.nextResponseOffset();
    dv.setUint16(r + TXRSP_ID, this.id[k], true);
    dv.setInt16(r + TXRSP_STATUS, status, true);
    ring.rspProdPvt = (ring.rspProdPvt + 1) >>> 0;
  }

  /** make_tx_response: a request's status, then NETIF_RSP_NULL for each extra-info slot that followed it. */
  protected respondFirst(k: number, status: number, extras: number): void {
    this.respond(k, status);
    const ring = this.ring;
    for (let i = 0; i < extras; i++) {
      ring.sring.dv.setInt16(ring.nextResponseOffset() + TXRSP_STATUS, NETIF_RSP_NULL, true);
      ring.rspProdPvt = (ring.rspProdPvt + 1) >>> 0;
    }
  }

  /** xenvif_tx_err: answer every slot of a dropped frame with XEN_NETIF_RSP_ERROR (its extra-info slots NULL). */
  protected txErr(first: number, slots: number, extras: number): void {
    this.respondFirst(first, NETIF_RSP_ERROR, extras);
    for (let s = 1; s < slots; s++) this.respond(first + s, NETIF_RSP_ERROR);
    this.c.txErrResponses += slots;
  }
}
