/**
 * Shared rings with io/ring.h semantics. The producer/consumer indices are
 * free-running u32s; slot = index & (size - 1). Index words are accessed with
 * Atomics (sequentially consistent), which gives the wmb()/rmb()/mb() that the
 * C macros place; entries are plain memory ordered by those index accesses.
 *
 * Notification avoidance is the real protocol: a producer notifies only if the
 * consumer's event index falls inside the batch it just published, and a
 * consumer that runs dry re-arms its event index and checks once more
 * (FINAL_CHECK_FOR_...) before sleeping, so no wake-up is lost and a consumer
 * that keeps up is never notified needlessly.
 */
import { SRING_HEADER_SIZE, SRING_REQ_EVENT, SRING_REQ_PROD, SRING_RSP_EVENT, SRING_RSP_PROD, ringSlots } from './abi/ring.ts';

const REQ_PROD = SRING_REQ_PROD >> 2;
const REQ_EVENT = SRING_REQ_EVENT >> 2;
const RSP_PROD = SRING_RSP_PROD >> 2;
const RSP_EVENT = SRING_RSP_EVENT >> 2;

/** A view of one shared-ring page (lives in the frontend's RAM, mapped by the backend). */
export class SharedRing {
  readonly page: Uint8Array;
  readonly size: number;
  readonly entrySize: number;
  readonly idx: Int32Array;
  /** DataView over the whole page; entry fields are read at slotOffset(i) + field. */
  readonly dv: DataView;

  constructor(page: Uint8Array, entrySize: number) {
    if (page.byteOffset % 4 !== 0) throw new RangeError('ring page must be 4-byte aligned');
    this.page = page;
    this.entrySize = entrySize;
    this.size = ringSlots(entrySize, page.byteLength);
    this.idx = new Int32Array(page.buffer, page.byteOffset, 4);
    this.dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
  }

  /** SHARED_RING_INIT: done by the frontend before granting the page. */
  init(): void {
    Atomics.store(this.idx, REQ_PROD, 0);
    Atomics.store(this.idx, RSP_PROD, 0);
    Atomics.store(this.idx, REQ_EVENT, 1);
    Atomics.store(this.idx, RSP_EVENT, 1);
    this.page.fill(0, 16, SRING_HEADER_SIZE);
  }

  /** Byte offset of the entry for free-running index `i`. */
  slotOffset(i: number): number {
    return SRING_HEADER_SIZE + (i & (this.size - 1)) * this.entrySize;
  }

  get reqProd(): number {
    return Atomics.load(this.idx, REQ_PROD) >>> 0;
  }
  get rspProd(): number {
    return Atomics.load(this.idx, RSP_PROD) >>> 0;
  }
  get reqEvent(): number {
    return Atomics.load(this.idx, REQ_EVENT) >>> 0;
  }
  get rspEvent(): number {
    return Atomics.load(this.idx, RSP_EVENT) >>> 0;
  }
}

/** Is `event` within (old, new]? The u32 test from RING_PUSH_..._AND_CHECK_NOTIFY. */
function eventInBatch(newIdx: number, oldIdx: number, event: number): boolean {
  return (newIdx - event) >>> 0 < (newIdx - oldIdx) >>> 0;
}

/** FRONT_RING: the frontend's private producer/consumer state. */
export class FrontRing {
  reqProdPvt = 0;
  rspCons = 0;

  constructor(readonly sring: SharedRing) {}

  get size(): number {
    return this.sring.size;
  }

  /** RING_FREE_REQUESTS */
  freeRequests(): number {
    return this.sring.size - ((this.reqProdPvt - this.rspCons) >>> 0);
  }

  /** RING_FULL */
  full(): boolean {
    return this.freeRequests() === 0;
  }

  /** Byte offset of the next request slot to fill (RING_GET_REQUEST(req_prod_pvt)). */
  nextRequestOffset(): number {
    return this.sring.slotOffset(this.reqProdPvt);
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publish and say whether the backend must be notified. */
  pushRequestsAndCheckNotify(): boolean {
    const oldIdx = Atomics.load(this.sring.idx, REQ_PROD) >>> 0;
    const newIdx = this.reqProdPvt >>> 0;
    Atomics.store(this.sring.idx, REQ_PROD, newIdx | 0);
    return eventInBatch(newIdx, oldIdx, this.sring.reqEvent);
  }

  /** RING_HAS_UNCONSUMED_RESPONSES */
  unconsumedResponses(): number {
    return (this.sring.rspProd - this.rspCons) >>> 0;
  }

  /**
   * A snapshot of rsp_prod after checking it is possible: a backend claiming
   * more responses than there are requests outstanding is broken or hostile
   * (io/ring.h RING_RESPONSE_PROD_OVERFLOW; netfront's "Illegal number of
   * responses"). Returns -1 in that case.
   */
  responseProducer(): number {
    const prod = this.sring.rspProd;
    if ((prod - this.rspCons) >>> 0 > (this.reqProdPvt - this.rspCons) >>> 0) return -1;
    return prod;
  }

  /** RING_FINAL_CHECK_FOR_RESPONSES: re-arm rsp_event, then look once more. */
  finalCheckForResponses(): boolean {
    if (this.unconsumedResponses() > 0) return true;
    Atomics.store(this.sring.idx, RSP_EVENT, (this.rspCons + 1) | 0);
    return this.unconsumedResponses() > 0;
  }

  /** RING_COPY_RESPONSE's source: the byte offset of response `i` (read it once, into private memory). */
  responseOffset(i: number): number {
    return this.sring.slotOffset(i);
  }
}

/** BACK_RING: the backend's private state. It never trusts the frontend's indices. */
export class BackRing {
  rspProdPvt = 0;
  reqCons = 0;

  constructor(readonly sring: SharedRing) {}

  get size(): number {
    return this.sring.size;
  }

  /**
   * A snapshot of req_prod after checking it is possible: a frontend claiming
   * more outstanding requests than the ring holds is broken or hostile
   * (netback's "Impossible producer"). Returns -1 in that case.
   */
  requestProducer(): number {
    const prod = this.sring.reqProd;
    if ((prod - this.rspProdPvt) >>> 0 > this.sring.size) return -1;
    return prod;
  }

  /** RING_HAS_UNCONSUMED_REQUESTS against a checked producer snapshot. */
  unconsumedRequests(prod: number): number {
    const req = (prod - this.reqCons) >>> 0;
    const rsp = this.sring.size - ((this.reqCons - this.rspProdPvt) >>> 0);
    return req < rsp ? req : rsp;
  }

  /** Byte offset of the next response slot to fill. */
  nextResponseOffset(): number {
    return this.sring.slotOffset(this.rspProdPvt);
  }

  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY */
  pushResponsesAndCheckNotify(): boolean {
    const oldIdx = Atomics.load(this.sring.idx, RSP_PROD) >>> 0;
    const newIdx = this.rspProdPvt >>> 0;
    Atomics.store(this.sring.idx, RSP_PROD, newIdx | 0);
    return eventInBatch(newIdx, oldIdx, this.sring.rspEvent);
  }

  /**
   * RING_FINAL_CHECK_FOR_REQUESTS: re-arm req_event, then look once more.
   * Returns -1 if the producer index became impossible.
   */
  finalCheckForRequests(): number {
    let prod = this.requestProducer();
    if (prod < 0) return -1;
    if (this.unconsumedRequests(prod) > 0) return 1;
    Atomics.store(this.sring.idx, REQ_EVENT, (this.reqCons + 1) | 0);
    prod = this.requestProducer();
    if (prod < 0) return -1;
    return this.unconsumedRequests(prod) > 0 ? 1 : 0;
  }
}
