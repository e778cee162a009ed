/**
 * netfront's RX half, after xen-netfront's xennet_alloc_rx_buffers and
 * xennet_poll. Every posted buffer is a whole page granted read-write to the
 * backend, which copies a frame into it and answers.
 *
 * The backend is not trusted: the response producer is checked
 * (RING_RESPONSE_PROD_OVERFLOW), each response is copied out of the ring once,
 * and an id out of range or for a buffer not posted marks the device broken.
 * A response whose offset and size run past its page, or a chain too long, is
 * a bad frame: dropped here and counted (xennet_get_responses' rx_errors).
 *
 * A frame's first response may be followed by extra-info slots
 * (NETRXF_extra_info, xennet_get_extras): each sits in the slot of a buffer
 * posted there, which goes back unused. One of no known type, a GSO one
 * xennet_set_skb_gso would refuse (size 0, a type other than TCPv4: xsim
 * has no IPv6), or one missing drops the frame.
 *
 * A TCPv4 GSO frame (feature-gso-tcpv4: a backend may send frames up to
 * 64 KiB) comes as its first response, its GSO extra-info slot, and the
 * rest of its data in following slots (more_data on all but the last). It
 * is gathered into one buffer (xennet_fill_frags) and handed to the stack
 * whole, with the checksum flags of its first response; one longer than
 * 65535 + 14 octets or over MAX_FRAME_PIECES slots is dropped. Every drop
 * is counted by its reason, once per frame, and every slot is consumed.
 */
import {
  tracer,
  traceRingPush,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_extra_info,
  NETRXF_more_data,
  NET_RX_RING_SIZE,
  PAGE_SIZE,
  RXREQ_GREF,
  RXREQ_ID,
  RXRSP_FLAGS,
  RXRSP_ID,
  RXRSP_OFFSET,
  RXRSP_STATUS,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_HASH,
  XEN_NETIF_EXTRA_TYPE_MAX,
  XEN_NETIF_GSO_TYPE_TCPV4,
  newExtraInfo,
  readExtraInfo,
  type FrontRing,
  type NetifExtraInfo,
} from '@xsim/hypervisor';
import { l4Frame } from '@xsim/netstack';
import { MAX_FRAME_PIECES, type NetfrontDeps, type RingOwner, type RxDropReason, type RxHandler } from './common.ts';

export class NetfrontRx {
  private readonly base: number;
  private readonly idGref = new Int32Array(NET_RX_RING_SIZE).fill(-1);
  /** The buffer posted at each ring slot: an extra-info response names none, it sits in the slot of one. */
  private readonly slotId = new Int32Array(NET_RX_RING_SIZE).fill(-1);
  private readonly extra = newExtraInfo();
  private readonly freeIds: number[] = [];
  private readonly scratch: Uint8Array;
  private scratchLen = 0;
  private pieces = 0;
  /** The checksum flags of the chain's first response (NETRXF_csum_blank, NETRXF_data_validated). */
  private csumFlags = 0;
  /** Why the chain being gathered is dropped: '' (it is fine), or the counter of the first reason found. */
  private chainBad: '' | RxDropReason = '';
  /** The gso.size of the chain's GSO extra-info slot (0: none). */
  private gsoSize = 0;
  private ring: FrontRing | null = null;
  onReceive: RxHandler = () => {};

  constructor(
    private readonly d: NetfrontDeps,
    private readonly o: RingOwner,
    maxFrameBytes: number,
  ) {
    this.base = d.frames.allocRange(NET_RX_RING_SIZE);
    this.scratch = new Uint8Array(maxFrameBytes);
  }

  attach(ring: FrontRing): void {
    this.ring = ring;
    this.freeIds.length = 0;
    for (let id = NET_RX_RING_SIZE - 1; id >= 0; id--) this.freeIds.push(id);
    this.idGref.fill(-1);
    this.resetChain();
  }

  /** The ring is going: revoke what the backend no longer holds. */
  detach(): void {
    const { gnttab, grefs } = this.d;
    for (let id = 0; id < NET_RX_RING_SIZE; id++) {
      const g = this.idGref[id];
      if (g < 0) continue;
      if (gnttab.endAccess(g)) grefs.release(g);
      this.idGref[id] = -1;
    }
    this.ring = null;
  }

  /** Unplugged: the buffers go back to the guest's allocator (detached first, so no grant of them is left). */
  releaseBuffers(): void {
    for (let k = 0; k < NET_RX_RING_SIZE; k++) this.d.frames.release(this.base + k);
  }

  get needsRefill(): boolean {
    return this.ring !== null && this.freeIds.length > 0;
  }

  /** xennet_alloc_rx_buffers: post every free page. Returns buffers posted. */
  refill(): number {
    const ring = this.ring;
    if (!ring) return 0;
    const { gnttab, grefs } = this.d;
    const dv = ring.sring.dv;
    let n = 0;
    while (this.freeIds.length > 0 && ring.freeRequests() > 0) {
      const id = this.freeIds.pop()!;
      const gref = grefs.alloc();
      gnttab.grantAccess(gref, this.o.backendDomid, this.base + id, false);
      this.idGref[id] = gref;
      this.slotId[ring.reqProdPvt & (NET_RX_RING_SIZE - 1)] = id;
      const o = ring.nextRequestOffset();
      dv.setUint16(o + RXREQ_ID, id, true);
      dv.setUint16(o + 2, 0, true);
      dv.setUint32(o + RXREQ_GREF, gref, true);
      ring.reqProdPvt = (ring.reqProdPvt + 1) >>> 0;
      n++;
    }
    if (n === 0) return n;
    const notify = ring.pushRequestsAndCheckNotify();
    if (tracer.on) traceRingPush('netfront rx requests', ring.reqProdPvt, notify);
    if (notify) this.o.notifyRx();
    return n;
  }

  private resetChain(): void {
    this.scratchLen = 0;
    this.pieces = 0;
    this.chainBad = '';
    this.gsoSize = 0;
  }

  /** xennet_poll: take up to `budget` frames. Returns frames handled, or -1 if the backend broke the ring. */
  poll(budget: number): number {
    const ring = this.ring;
    if (!ring) return 0;
    const dv = ring.sring.dv;
    const ram = this.d.mem.u8;
    const c = this.o.c;
    let n = 0;
    do {
      const prod = ring.responseProducer();
      if (prod < 0)
        return this.fail(`Illegal number of RX responses: rsp_prod ${ring.sring.rspProd}, rsp_cons ${ring.rspCons}, req_prod_pvt ${ring.reqProdPvt}`);
      while (ring.rspCons !== prod && n < budget) {
        // RING_COPY_RESPONSE: every field is read once.
        const o = ring.responseOffset(ring.rspCons);
        const id = dv.getUint16(o + RXRSP_ID, true);
        const offset = dv.getUint16(o + RXRSP_OFFSET, true);
        const flags = dv.getUint16(o + RXRSP_FLAGS, true);
        const status = dv.getInt16(o + RXRSP_STATUS, true);
        ring.rspCons = (ring.rspCons + 1) >>> 0;
        if (!this.release(id)) return -1;
        const more = (flags & NETRXF_more_data) !== 0;
        this.pieces++;
        if (this.pieces === 1) this.csumFlags = flags & (NETRXF_csum_blank | NETRXF_data_validated);
        if (this.pieces === 1 && flags & NETRXF_extra_info && !this.takeExtras(prod)) return -1;
        if (status < 0) this.chainBad ||= 'rxErrorStatus';
        else if (offset + status > PAGE_SIZE) this.chainBad ||= 'rxBadResponse';
        else if (this.pieces > MAX_FRAME_PIECES) this.chainBad ||= 'rxErrTooManySlots';
        const at = (this.base + id) * PAGE_SIZE + offset;
        if (!more && this.pieces === 1 && this.chainBad === '' && this.gsoSize === 0) {
          // The common case: a whole frame in one page, handed up without a copy.
          this.pieces = 0;
          n++;
          this.deliver(ram, at, status);
          continue;
        }
        // A frame spread over several pages: gather it (the stack wants it contiguous).
        if (this.chainBad === '') {
          if (this.scratchLen + status > this.scratch.length) this.chainBad = 'rxErrTooLong';
          else {
            this.scratch.set(ram.subarray(at, at + status), this.scratchLen);
            this.scratchLen += status;
          }
        }
        if (more) continue;
        // End of the chain: one frame, delivered or counted once.
        n++;
        if (this.chainBad !== '') c[this.chainBad]++;
        else {
          if (this.pieces > 1) c.rxFragmented++;
          if (this.gsoSize > 0) c.rxGso++;
          this.deliver(this.scratch, 0, this.scratchLen);
        }
        this.resetChain();
      }
      if (n >= budget) break;
    } while (ring.finalCheckForResponses());
    return n;
  }

  /**
   * A whole frame to the stack with its checksum flags (handle_incoming):
   * csum_blank means a partial checksum, so its headers must be ones a
   * checksum can be completed over (checksum_setup), else it is dropped.
   */
  private deliver(ram: Uint8Array, at: number, len: number): void {
    const c = this.o.c;
    const f = this.csumFlags;
    if (f & NETRXF_csum_blank) {
      if (typeof l4Frame(ram, at, len) === 'string') {
        c.rxCsumSetupErr++;
        return;
      }
      c.rxCsumBlank++;
    } else if (f & NETRXF_data_validated) c.rxCsumValidated++;
    c.rxPackets++;
    c.rxBytes += len;
    this.onReceive(ram, at, len, f);
  }

  /** A buffer the backend answered: its grant revoked, the buffer free again. False: the backend broke the ring (now broken). */
  private release(id: number): boolean {
    const g = id >= 0 && id < NET_RX_RING_SIZE ? this.idGref[id] : -2;
    const why =
      g === -2
        ? `RX response has incorrect id (${id})`
        : g < 0
          ? `RX response for a buffer not posted (id ${id})`
          : !this.d.gnttab.endAccess(g)
            ? `RX grant ${g} still in use by the backend after its response`
            : '';
    if (why) {
      this.o.broken(why);
      return false;
    }
    this.d.grefs.release(g);
    this.idGref[id] = -1;
    this.freeIds.push(id);
    return true;
  }

  /** xennet_get_extras: the extra-info slots after a frame's first response. False: the backend broke the ring. */
  private takeExtras(prod: number): boolean {
    const ring = this.ring!;
    let more = true;
    while (more) {
      // "Missing extra info": the chain says more, the backend published no more.
      if (ring.rspCons === prod) return ((this.chainBad ||= 'rxErrExtraMissing'), true);
      const e = readExtraInfo(ring.sring.dv, ring.responseOffset(ring.rspCons), this.extra);
      const id = this.slotId[ring.rspCons & (NET_RX_RING_SIZE - 1)];
      ring.rspCons = (ring.rspCons + 1) >>> 0;
      if (!this.release(id)) return false;
      this.o.c.rxExtraInfo++;
      if (e.type === XEN_NETIF_EXTRA_TYPE_HASH) this.o.c.rxHashExtras++;
      more = (e.flags & XEN_NETIF_EXTRA_FLAG_MORE) !== 0;
      this.chainBad ||= this.extraProblem(e);
    }
    return true;
  }

  /** xennet_get_extras' and xennet_set_skb_gso's checks of one extra-info slot (copied out of the ring): the drop it means, or ''. A good GSO one is kept. */
  private extraProblem(e: Readonly<NetifExtraInfo>): '' | RxDropReason {
    if (e.type === 0 || e.type >= XEN_NETIF_EXTRA_TYPE_MAX) return 'rxErrExtraType';
    if (e.type !== XEN_NETIF_EXTRA_TYPE_GSO) return '';
    if (e.gsoSize === 0) return 'rxErrGsoSize';
    if (e.gsoType !== XEN_NETIF_GSO_TYPE_TCPV4) return 'rxErrGsoType';
    this.gsoSize = e.gsoSize;
    return '';
  }

  private fail(reason: string): number {
    this.o.broken(reason);
    return -1;
  }
}
