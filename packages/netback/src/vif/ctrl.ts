/**
 * A vif's control ring, netback's side, after Linux xen-netback's
 * connect_ctrl_ring (xenbus.c), xenvif_connect_ctrl (interface.c) and
 * xenvif_ctrl_action / process_ctrl_request (netback.c).
 *
 * At connect: no ctrl-ring-ref (or one that is no number) means the frontend
 * has no control ring, which is fine; a ctrl-ring-ref without a readable
 * event-channel-ctrl, a page that cannot be mapped, a ring whose req_prod
 * is already impossible, or a port that cannot be bound refuses the
 * frontend, with Linux's messages.
 *
 * Each request is copied out of the ring once and answered in order with
 * the status the hash's setters give (hash.ts); a type netback does not
 * serve (INVALID, the gref-mapping ones, anything unknown) is answered
 * NOT_SUPPORTED, as Linux's default case. Keys and mapping tables are read
 * out of the frontend's granted page with a grant copy into dom0 RAM (an
 * skb serves as the bounce buffer, as Linux copies into the vif's memory).
 * A producer index no ring could hold disconnects the frontend (Linux's
 * xenvif_ctrl_action does not check it and would loop; the data rings do).
 */
import {
  BackRing,
  GNTST_okay,
  NETIF_CTRL_SLOT_SIZE,
  SharedRing,
  VIF_KEY,
  XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED,
  XEN_NETIF_CTRL_STATUS_SUCCESS,
  XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS,
  XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE,
  XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM,
  XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS,
  XEN_NETIF_CTRL_TYPE_SET_HASH_KEY,
  XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING,
  XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE,
  grantStatusName,
  readCtrlRequest,
  scanUnsigned,
  writeCtrlResponse,
  type NetifCtrlRequest,
} from '@xsim/hypervisor';
import { copyFromGuest, type VifCounters, type VifDeps } from './common.ts';
import type { ReadKey } from './features.ts';
import { MAX_HASH_MAPPING_SIZE, type GrantCopyIn, type VifHash } from './hash.ts';

/** What the control ring needs of its vif. */
export interface CtrlOwner {
  readonly name: string;
  readonly frontendDomid: number;
  /** The vif's own counters (ctrlRequests, ctrlErrors). */
  readonly own: VifCounters;
  readonly hash: VifHash;
  /** Queues connected now (SET_HASH_MAPPING's entries must be below it). */
  readonly numQueues: number;
  fatal(reason: string): void;
}

export class CtrlRing {
  private readonly req: NetifCtrlRequest = { id: 0, type: 0, data: [0, 0, 0] };

  private constructor(
    private readonly d: VifDeps,
    private readonly v: CtrlOwner,
    readonly ring: BackRing,
    readonly map: number,
    readonly port: number,
  ) {}

  /**
   * connect_ctrl_ring: null when the frontend has no control ring; a reason
   * (thrown) when it has one netback cannot use. Whatever was taken is given
   * back on failure.
   */
  static connect(d: VifDeps, v: CtrlOwner, read: ReadKey, fePath: string): CtrlRing | null {
    const ref = scanUnsigned(read(VIF_KEY.ctrlRingRef));
    if (ref === undefined) return null;
    const port = scanUnsigned(read(VIF_KEY.eventChannelCtrl));
    if (port === undefined) throw new Error(`reading ${fePath}/${VIF_KEY.eventChannelCtrl}`);
    const fail = (why: string) => new Error(`connecting control ring: mapping shared-frame ${ref} port ${port}: ${why}`);
    const m = d.ops.map(v.frontendDomid, ref, false);
    if (m.status !== GNTST_okay) throw fail(grantStatusName(m.status));
    const ring = new BackRing(new SharedRing(m.page, NETIF_CTRL_SLOT_SIZE));
    // xenvif_connect_ctrl: a req_prod more than a ring ahead of rsp_prod is -EIO.
    if (ring.requestProducer() < 0) {
      d.ops.unmap(m.handle);
      throw fail(`impossible req_prod ${ring.sring.reqProd}`);
    }
    let local: number;
    try {
      local = d.evtchn.bindInterdomain(v.frontendDomid, port);
    } catch (e) {
      d.ops.unmap(m.handle);
      throw fail(e instanceof Error ? e.message : String(e));
    }
    d.evtchn.bindHandler(local, () => {});
    return new CtrlRing(d, v, ring, m.handle, local);
  }

  /** xenvif_disconnect_ctrl: close the port, unmap the page. */
  release(): void {
    this.d.evtchn.close(this.port);
    this.d.ops.unmap(this.map);
  }

  /** xenvif_ctrl_action: answer every request published. Returns requests answered. */
  action(): number {
    const ring = this.ring;
    let n = 0;
    for (;;) {
      const prod = ring.requestProducer();
      if (prod < 0) {
        this.v.fatal(`impossible number of control requests: req_prod ${ring.sring.reqProd}, rsp_prod_pvt ${ring.rspProdPvt}`);
        return n;
      }
      if (ring.unconsumedRequests(prod) === 0) {
        const more = ring.finalCheckForRequests();
        if (more <= 0) return n;
        continue;
      }
      // RING_COPY_REQUEST: every field read once.
      const r = readCtrlRequest(ring.sring.dv, ring.sring.slotOffset(ring.reqCons), this.req);
      ring.reqCons = (ring.reqCons + 1) >>> 0;
      const { status, data } = this.process(r);
      this.v.own.ctrlRequests++;
      if (status !== XEN_NETIF_CTRL_STATUS_SUCCESS) this.v.own.ctrlErrors++;
      writeCtrlResponse(ring.sring.dv, ring.nextResponseOffset(), { id: r.id, type: r.type, status, data });
      ring.rspProdPvt = (ring.rspProdPvt + 1) >>> 0;
      // push_ctrl_response: one push (and notification, if asked) per request, as Linux.
      if (ring.pushResponsesAndCheckNotify()) this.d.evtchn.send(this.port);
      n++;
    }
  }

  /** process_ctrl_request */
  private process(r: NetifCtrlRequest): { status: number; data: number } {
    const h = this.v.hash;
    const [d0, d1, d2] = r.data;
    const ok = (status: number) => ({ status, data: 0 });
    switch (r.type) {
      case XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM:
        return ok(h.setAlg(d0));
      case XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS:
        return h.getFlags();
      case XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS:
        return ok(h.setFlags(d0));
      case XEN_NETIF_CTRL_TYPE_SET_HASH_KEY:
        return ok(h.setKey(d0, d1, this.copyIn));
      case XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE:
        return { status: XEN_NETIF_CTRL_STATUS_SUCCESS, data: MAX_HASH_MAPPING_SIZE };
      case XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE:
        return ok(h.setMappingSize(d0));
      case XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING:
        return ok(h.setMapping(d0, d1, d2, this.v.numQueues, this.copyIn));
      default:
        return ok(XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED);
    }
  }

  /** A grant copy of `len` octets at the start of the frontend's page `gref`, through an skb, into `dst`. */
  private readonly copyIn: GrantCopyIn = (gref, len, dst, dstOff) => {
    const { skbs, ops } = this.d;
    const skb = skbs.alloc();
    if (skb < 0) return false;
    try {
      const at = skbs.addr(skb);
      // A key (40 octets) or a whole table (128 entries, 512 octets) fits any skb dom0 has; a longer copy is refused.
      if (len > skbs.slotSize) return false;
      if (copyFromGuest(ops, this.v.frontendDomid, gref, 0, at, len) !== GNTST_okay) return false;
      dst.set(skbs.mem.u8.subarray(at, at + len), dstOff);
      return true;
    } finally {
      skbs.put(skb);
    }
  };
}
