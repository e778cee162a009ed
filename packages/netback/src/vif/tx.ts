/**
 * Guest → dom0: the vif's TX ring, after Linux xen-netback's xenvif_tx_action.
 *
 *   count   copy each request of a frame out of the shared ring once
 *           (RING_COPY_REQUEST) and check the copies: the chain's length,
 *           every slot's size and page bounds (xenvif_count_requests);
 *   build   an skb and one grant-copy op per slot, from the copies only
 *           (xenvif_tx_build_gops);
 *   copy    the batch's grant copies (gnttab_batch_copy), checking each status;
 *   respond one response per slot, pushed before the frames go on
 *           (xenvif_tx_check_gop / xenvif_idx_release), then forward.
 *
 * Nothing read from the ring is read twice: a guest that rewrites a slot
 * after it was copied changes nothing dom0 does.
 *
 * A rate-limited vif (credit.ts) takes a frame only while it has credit for
 * it, as xenvif_tx_build_gops does: otherwise the frame stays in the ring,
 * unanswered, until the credit timer refills the credit.
 *
 * Two tiers of guest error, as Linux: a malformed but harmless frame (runt,
 * over the MTU, a slot larger than the size left, 19–20 slots, a grant copy
 * that fails) is answered XEN_NETIF_RSP_ERROR, counted and dropped, and the
 * vif stays up (xenvif_tx_err); a frontend that breaks the ring or shows
 * malice (an impossible producer, a chain running past the published
 * requests, more than fatal_skb_slots slots, a slot crossing its page, an
 * extra-info slot of no known type or a chain of them past the published
 * requests, a GSO slot xenvif_set_skb_gso refuses) is disconnected
 * (xenvif_fatal_tx_err). Extra-info slots (extras.ts) are answered
 * NETIF_RSP_NULL, after the response of the request they follow.
 */
import {
  tracer,
  traceRingPush,
  logWarn,
  GNTST_okay,
  NETIF_RSP_ERROR,
  NETIF_RSP_OKAY,
  NETTXF_extra_info,
  NETTXF_more_data,
  PAGE_SIZE,
  XEN_NETIF_MAX_TX_SIZE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_HASH,
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
  XEN_NETIF_EXTRA_TYPE_MCAST_DEL,
  XEN_NETIF_EXTRA_TYPE_XDP,
  grantStatusName,
  DIR_INBOUND,
  type BackRing,
  type Tap,
} from '@xsim/hypervisor';
import { tapFrame } from '@xsim/netstack';
import { CSUM_PARTIAL, type CsumState } from '../skb.ts';
import { ETH_HLEN, VIF_TUNABLES, copyFromGuest, type VifCounters, type VifDeps } from './common.ts';
import type { TxCredit } from './credit.ts';
import { TxExtras, macOf, type McastList } from './extras.ts';
import { TxSlots } from './tx-slots.ts';
import type { GsoFrame } from '../bridge.ts';
import { copyGsoForBridge, forwardGsoSegments, forwardGsoWhole } from './tx-gso.ts';
import { checksumSetup, spoofed } from './tx-checks.ts';

const { legacySlotsMax, fatalSkbSlots, txBudget, txBatch } = VIF_TUNABLES;

/** What the TX path needs of its vif. */
export interface TxOwner {
  readonly name: string;
  readonly frontendDomid: number;
  readonly c: VifCounters;
  readonly tap: Tap;
  readonly portId: number;
  readonly connected: boolean;
  /** The MAC the toolstack gave this vif (0: none given, nothing to check against). */
  readonly mac: number;
  /** xenvif_fatal_tx_err: disconnect this frontend. The ring is gone when this returns. */
  fatal(reason: string): void;
  /** Tell the frontend its TX responses are there (its TX port). */
  notifyTx(): void;
  /** The multicast addresses the frontend listed (MCAST_ADD, MCAST_DEL). */
  readonly mcast: McastList;
}

export class VifTx extends TxSlots {
  // The frames built and waiting for their grant copies: skb, first copy, data slots, extra-info slots, length.
  private readonly fSkb = new Int32Array(txBatch);
  private readonly fFirst = new Int32Array(txBatch);
  private readonly fSlots = new Int32Array(txBatch);
  private readonly fExtras = new Int32Array(txBatch);
  private readonly fLen = new Int32Array(txBatch);
  /** Each built frame's checksum state, from its first slot's flags (set at the copy). */
  private readonly fCsum = new Uint8Array(txBatch);
  /** Each built frame's gso_size (0: no GSO extra-info slot), and a GSO frame's segments once copied. */
  private readonly fGso = new Uint16Array(txBatch);
  private readonly fSegs: (number[] | null)[] = new Array<number[] | null>(txBatch).fill(null);
  /** A GSO frame copied whole (its destination takes it so), or null. */
  private readonly fWhole: (GsoFrame | null)[] = new Array<GsoFrame | null>(txBatch).fill(null);
  /** The extra-info slots of the request being taken. */
  private readonly x = new TxExtras();
  private frames = 0;
  /** Next free entry in the copy pool. */
  private top = 0;

  constructor(
    ring: BackRing,
    private readonly d: VifDeps,
    private readonly v: TxOwner,
    private readonly credit: TxCredit,
  ) {
    super(ring, v.c);
  }

  /**
   * Take up to txBudget frames. Returns frames taken (forwarded or answered with an error). If the frontend is
   * disconnected meanwhile (its own fault), returns at once: the ring is gone.
   */
  action(): number {
    const ring = this.ring;
    let taken = 0;
    // The credit timer, if it is due (xenvif_tx_credit_callback).
    this.credit.fire();
    for (;;) {
      if (taken >= txBudget) break;
      const prod = ring.requestProducer();
      if (prod < 0)
        return (this.fatal(`impossible number of TX requests: req_prod ${ring.sring.reqProd}, rsp_prod_pvt ${ring.rspProdPvt}, ring size ${ring.size}`), taken);
      const work = ring.unconsumedRequests(prod);
      if (work === 0) {
        if (!this.flush()) return taken;
        const more = ring.finalCheckForRequests();
        if (more < 0) return (this.fatal('impossible TX producer index'), taken);
        if (more === 0) break;
        continue;
      }
      const r = this.countAndBuild(work);
      if (r === FATAL) return taken;
      if (r === STALL) break;
      // A dropped frame is work too (it was answered): both count against the budget.
      taken++;
      if (this.frames === txBatch && !this.flush()) return taken;
    }
    if (!this.flush()) return taken;
    return taken;
  }

  /**
   * One frame: copy and check its requests (xenvif_count_requests), then
   * either answer it with an error or build its skb and grant-copy ops. A
   * multicast request is answered at once; it carries no frame.
   */
  private countAndBuild(work: number): Outcome {
    const cons = this.ring.reqCons;
    const k0 = this.top;
    this.copyRequest(cons, k0);
    // Credit-based scheduling: a frame costs the size its first slot carries, whatever becomes of it.
    if (!this.takeCredit(this.size[k0])) return STALL;
    let nx = 0;
    if (this.flags[k0] & NETTXF_extra_info) {
      const r = this.x.read(this.ring.sring.dv, (i) => this.ring.sring.slotOffset(i), cons, work);
      if (typeof r === 'string') return this.fatal(r);
      nx = r;
    } else this.x.clear();
    if (this.x.get(XEN_NETIF_EXTRA_TYPE_MCAST_ADD) || this.x.get(XEN_NETIF_EXTRA_TYPE_MCAST_DEL)) return this.multicast(cons, k0, nx);
    return this.countFrame(cons, k0, nx, work);
  }

  /** The frame's data slots after its first and its extras: checked, then dropped with an error, refused, or built. */
  private countFrame(cons: number, k0: number, nx: number, work: number): Outcome {
    const c = this.v.c;
    const total = this.size[k0];
    let remaining = total;
    let slots = 1;
    let drop: 'slot-size' | 'too-many' | '' = '';
    let more = (this.flags[k0] & NETTXF_more_data) !== 0;
    while (more) {
      if (nx + slots >= work) return this.fatal(`frame chain needs more than the ${work} published TX requests`);
      if (slots >= fatalSkbSlots) return this.fatal(`malicious frontend using more than ${fatalSkbSlots} slots for one frame`);
      if (!drop && slots >= legacySlotsMax) drop = 'too-many';
      const k = k0 + slots;
      this.copyRequest(cons + nx + slots, k);
      if (!drop && this.size[k] > remaining) drop = 'slot-size';
      remaining -= this.size[k];
      if (this.off[k] + this.size[k] > PAGE_SIZE) return this.fatal(`TX slot offset ${this.off[k]} + size ${this.size[k]} crosses its page`);
      more = (this.flags[k] & NETTXF_more_data) !== 0;
      slots++;
    }
    const firstLen = remaining;
    if (drop) {
      if (drop === 'too-many') c.txErrTooManySlots++;
      else c.txErrSlotSize++;
      return this.consumeDropped(cons, k0, slots, nx);
    }
    if (firstLen < ETH_HLEN) {
      c.txErrRunt++;
      return this.consumeDropped(cons, k0, slots, nx);
    }
    // "No crossing a page as the payload mustn't fragment" (xenvif_tx_build_gops): malice, not a bug.
    if (this.off[k0] + firstLen > PAGE_SIZE) return this.fatal(`TX slot offset ${this.off[k0]} + size ${firstLen} crosses its page`);
    const gso = this.x.gsoProblem();
    if (gso) return this.fatal(gso);
    const gsoSize = this.x.get(XEN_NETIF_EXTRA_TYPE_GSO)?.gsoSize ?? 0;
    if (total > (gsoSize > 0 ? XEN_NETIF_MAX_TX_SIZE : this.d.maxFrame)) {
      c.txErrOversize++;
      return this.consumeDropped(cons, k0, slots, nx);
    }
    const skb = this.d.skbs.alloc();
    if (skb < 0) {
      // dom0 is out of buffers: the frame stays in the ring (backpressure, not loss), and keeps its credit.
      c.txStallNoSkb++;
      this.credit.refund(total);
      return STALL;
    }
    this.countExtras();
    // The first slot's own length replaces the frame length it carried: the copies now say what to copy.
    this.size[k0] = firstLen;
    const f = this.frames++;
    this.fSkb[f] = skb;
    this.fFirst[f] = k0;
    this.fSlots[f] = slots;
    this.fExtras[f] = nx;
    this.fLen[f] = total;
    this.fGso[f] = gsoSize;
    this.top = k0 + slots;
    this.ring.reqCons = (cons + nx + slots) >>> 0;
    return TAKEN;
  }

  /**
   * A request with MCAST_ADD or MCAST_DEL: no frame, a change to the vif's
   * list (ADD first if it has both, as Linux), answered at once. Its data
   * slots, if it says it has any, are not its own: they are the next requests.
   */
  private multicast(cons: number, k0: number, nx: number): Outcome {
    const c = this.v.c;
    const add = this.x.get(XEN_NETIF_EXTRA_TYPE_MCAST_ADD);
    let status = NETIF_RSP_OKAY;
    if (add) {
      c.txMcastAdd++;
      if (!this.v.mcast.add(macOf(add.mcastAddr))) {
        status = NETIF_RSP_ERROR;
        if (c.txMcastFull++ === 0) this.d.log(logWarn(`${this.v.name}: too many multicast addresses: MCAST_ADD answered XEN_NETIF_RSP_ERROR`));
      }
    } else {
      c.txMcastDel++;
      this.v.mcast.del(macOf(this.x.get(XEN_NETIF_EXTRA_TYPE_MCAST_DEL)!.mcastAddr));
    }
    this.respondFirst(k0, status, nx);
    this.ring.reqCons = (cons + 1 + nx) >>> 0;
    return DROPPED;
  }

  /** The extra-info slots of a frame taken or dropped: GSO ones (checked; the frame goes whole or segmented: tx-gso.ts) and those xsim ignores. */
  private countExtras(): void {
    const c = this.v.c;
    if (this.x.get(XEN_NETIF_EXTRA_TYPE_GSO)) c.txExtraGso++;
    if (this.x.get(XEN_NETIF_EXTRA_TYPE_HASH)) c.txExtraIgnored++;
    if (this.x.get(XEN_NETIF_EXTRA_TYPE_XDP)) c.txExtraIgnored++;
  }

  /** The frame's credit, or false (TX stops here until the credit timer); a stall is counted once per timer armed. */
  private takeCredit(size: number): boolean {
    const pending = this.credit.timerAt !== Infinity;
    if (this.credit.take(size)) return true;
    if (!pending) this.v.c.txCreditStalls++;
    return false;
  }

  private consumeDropped(cons: number, k0: number, slots: number, nx: number): Outcome {
    this.countExtras();
    this.txErr(k0, slots, nx);
    this.ring.reqCons = (cons + nx + slots) >>> 0;
    return DROPPED;
  }

  /**
   * Grant-copy every built frame, answer each slot, push the responses (and
   * notify if the frontend asked), then hand the frames to the bridge.
   * Returns false if the vif was disconnected by something it did meanwhile.
   */
  private flush(): boolean {
    const n = this.frames;
    const c = this.v.c;
    const { skbs, ops } = this.d;
    const domid = this.v.frontendDomid;
    const t0 = tracer.on ? tracer.now() : 0;
    for (let f = 0; f < n; f++) {
      const k0 = this.fFirst[f];
      const slots = this.fSlots[f];
      if (this.fGso[f] > 0) {
        this.copyGso(f, domid);
        continue;
      }
      let at = skbs.addr(this.fSkb[f]);
      let st = GNTST_okay;
      let bad = 0;
      for (let s = 0; s < slots && st === GNTST_okay; s++) {
        const k = k0 + s;
        st = copyFromGuest(ops, domid, this.gref[k], this.off[k], at, this.size[k]);
        bad = this.gref[k];
        at += this.size[k];
      }
      if (st !== GNTST_okay) {
        // A grant the frontend does not own (or a bad page): its frame is dropped, the vif stays (xenvif_tx_check_gop).
        c.txErrGrantCopy++;
        this.txErr(k0, slots, this.fExtras[f]);
        skbs.put(this.fSkb[f]);
        this.fSkb[f] = -1;
        if (c.txErrGrantCopy === 1)
          this.d.log(logWarn(`${this.v.name}: grant copy from TX gref ${bad} failed: ${grantStatusName(st)}; frame dropped with XEN_NETIF_RSP_ERROR`));
        continue;
      }
      const csum = checksumSetup(this.d, this.v, this.flags[k0], skbs.addr(this.fSkb[f]), this.fLen[f]);
      if (csum < 0) {
        this.txErr(k0, slots, this.fExtras[f]);
        skbs.put(this.fSkb[f]);
        this.fSkb[f] = -1;
        continue;
      }
      this.fCsum[f] = csum;
      this.respondFirst(k0, NETIF_RSP_OKAY, this.fExtras[f]);
      for (let s = 1; s < slots; s++) this.respond(k0 + s, NETIF_RSP_OKAY);
    }
    this.frames = 0;
    this.top = 0;
    if (tracer.on && n > 0) tracer.span('grant copy (tx)', t0, { vif: this.v.name, frames: n });
    const notify = this.ring.pushResponsesAndCheckNotify();
    if (tracer.on && n > 0) traceRingPush(`${this.v.name} tx responses`, this.ring.rspProdPvt, notify);
    if (notify) this.v.notifyTx();
    return this.forwardAll(n);
  }

  /**
   * Hand the copied frames to the bridge. The frames are dom0's now;
   * forwarding one may disconnect this very vif (a reply from dom0's stack
   * into a broken RX ring), after which the rest are dropped, counted.
   */
  private forwardAll(n: number): boolean {
    const c = this.v.c;
    const { skbs } = this.d;
    const port = this.v.portId;
    let alive = true;
    for (let f = 0; f < n; f++) {
      const skb = this.fSkb[f];
      if (skb < 0) continue;
      if (alive && this.v.connected) {
        const len = this.fLen[f];
        const at = skbs.addr(skb);
        if (!spoofed(this.d, this.v, at, len)) {
          c.txPackets++;
          c.txBytes += len;
          const csum = this.fCsum[f] as CsumState;
          const segs = this.fSegs[f];
          const whole = this.fWhole[f];
          if (whole) forwardGsoWhole(this.d, this.v, whole);
          else if (segs) forwardGsoSegments(this.d, this.v, segs);
          else {
            if (this.v.tap.on) tapFrame(this.v.tap, skbs.mem.u8, at, len, DIR_INBOUND, csum === CSUM_PARTIAL);
            skbs.len[skb] = len;
            this.d.bridge.forward(port, at, len, skb, csum);
          }
        }
      } else {
        alive = false;
        c.txDropDisconnected++;
      }
      this.fSegs[f]?.forEach((x) => skbs.put(x));
      this.fSegs[f] = null;
      // The chain's first skb is the frame's own, put below.
      this.fWhole[f]?.skbs.forEach((x, i) => i > 0 && skbs.put(x));
      this.fWhole[f] = null;
      skbs.put(skb);
    }
    return alive && this.v.connected;
  }

  /**
   * Frame `f` carries a GSO slot: copied whole or segment by segment
   * (tx-gso.ts), and answered; a frame that cannot be segmented (not IPv4
   * TCP, headers not in its first slot, segments over the MTU), no skb for
   * it, or a grant copy that fails: XEN_NETIF_RSP_ERROR, counted.
   */
  private copyGso(f: number, domid: number): void {
    const c = this.v.c;
    const k0 = this.fFirst[f];
    const slots = { gref: this.gref, off: this.off, size: this.size, first: k0, count: this.fSlots[f] };
    const r = copyGsoForBridge(this.d, this.v.portId, domid, slots, this.fSkb[f], this.fLen[f], this.fGso[f]);
    if ('error' in r) {
      if (r.error === 'plan') c.txErrGso++;
      else if (r.error === 'noskb') c.txErrGsoNoSkb++;
      else c.txErrGrantCopy++;
      if (r.error !== 'noskb' && c.txErrGso + c.txErrGrantCopy === 1)
        this.d.log(logWarn(`${this.v.name}: GSO frame dropped (${r.why}${r.status ? `: ${grantStatusName(r.status)}` : ''}): XEN_NETIF_RSP_ERROR`));
      this.txErr(k0, this.fSlots[f], this.fExtras[f]);
      this.d.skbs.put(this.fSkb[f]);
      this.fSkb[f] = -1;
      return;
    }
    c.txGsoFrames++;
    if ('frame' in r) this.fWhole[f] = r.frame;
    else {
      c.txGsoSegments += r.segs.length;
      this.fSegs[f] = r.segs;
    }
    this.fCsum[f] = CSUM_PARTIAL;
    this.respondFirst(k0, NETIF_RSP_OKAY, this.fExtras[f]);
    for (let s = 1; s < this.fSlots[f]; s++) this.respond(k0 + s, NETIF_RSP_OKAY);
  }

  private fatal(reason: string): Outcome {
    // Frames already built were checked: they still go out before the frontend is cut off.
    const alive = this.flush();
    if (alive) this.v.fatal(reason);
    return FATAL;
  }

  /** Frames built but not yet copied (for teardown). */
  get pending(): number {
    return this.frames;
  }
}

type Outcome = 0 | 1 | 2 | 3;
const TAKEN: Outcome = 0;
const DROPPED: Outcome = 1;
const STALL: Outcome = 2;
const FATAL: Outcome = 3;
