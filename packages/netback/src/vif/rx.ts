/**
 * dom0 → guest: the vif's RX ring, after Linux xen-netback's rx.c. Frames
 * the bridge hands the vif are copied into buffers the guest posted (one
 * request per page of the frame) or wait in a bounded queue until it posts
 * more. Each request is copied out of the shared ring once before use.
 *
 * A grant copy into a buffer the guest does not own fails that frame alone:
 * its response carries the GNTST_* status, as xenvif_rx_copy_flush writes
 * it, and the frame is counted. An impossible request producer is a broken
 * ring: the vif is disconnected, and the frame in hand is counted too.
 *
 * A frontend that did not negotiate feature-sg is given no frame over
 * NO_SG_MAX_FRAME: Linux holds such a vif to MTU 1500, and the bridge drops
 * what does not fit; here the vif counts it (rxDropNoSg).
 *
 * A frame whose queue was chosen by a Toeplitz hash the frontend configured
 * carries that hash to it in a HASH extra-info slot after its first
 * response (xenvif_rx_extra_slot: NETRXF_extra_info on the first response,
 * the slot taking the next request, whose buffer goes back unused).
 *
 * A TCPv4 GSO frame (a guest's TSO frame, held whole in a chain of skbs) is
 * offered only to a vif whose frontend wrote feature-gso-tcpv4 and takes
 * frames over several slots and partial checksums (takesGso); the bridge
 * segments it for any other. It goes over as many slots as its pages: the
 * first response flagged NETRXF_extra_info, NETRXF_more_data and
 * csum_blank | data_validated, then its GSO extra-info slot (rx-gso.ts),
 * then the rest with more_data on all but the last.
 */
import {
  tracer,
  traceRingPush,
  logWarn,
  GNTST_okay,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_more_data,
  PAGE_SIZE,
  RXREQ_GREF,
  RXREQ_ID,
  RXRSP_FLAGS,
  RXRSP_ID,
  RXRSP_OFFSET,
  RXRSP_STATUS,
  DIR_OUTBOUND,
  NETRXF_extra_info,
  XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
  XEN_NETIF_EXTRA_TYPE_HASH,
  grantStatusName,
  newExtraInfo,
  writeExtraInfo,
  type BackRing,
  type Tap,
} from '@xsim/hypervisor';
import { completeL4Checksum, tapFrame } from '@xsim/netstack';
import type { GsoFrame } from '../bridge.ts';
import { CSUM_NONE, CSUM_PARTIAL, CSUM_UNNECESSARY, type CsumState } from '../skb.ts';
import { copyChainToGuest, gatherChain, writeGsoSlot } from './rx-gso.ts';
import { NO_SG_MAX_FRAME, VIF_TUNABLES, copyToGuest, type VifCounters, type VifDeps, type VifPort } from './common.ts';

/** What the RX path needs of its vif. */
export interface RxOwner extends VifPort {
  readonly name: string;
  readonly c: VifCounters;
  readonly tap: Tap;
  /** What the frontend negotiated: feature-sg (it takes a frame over several RX slots). */
  readonly canSg: boolean;
  /** It takes partial checksums (no feature-no-csum-offload = 1: vif->ip_csum). */
  readonly ipCsum: boolean;
  fatal(reason: string): void;
  /** Tell the frontend its RX responses are there (its RX port). */
  notifyRx(): void;
}

type Copied = 'done' | 'wait' | 'gone';

export type RxDropCounter = 'rxDropNotConnected' | 'rxDropQueueFull' | 'rxDropNoSkb' | 'rxDropNoSg' | 'rxDropMcast' | 'rxDropCsum';

/** The NETRXF_* flags a frame goes to the guest with (xenvif_rx_complete's, from skb->ip_summed). */
export function rxCsumFlags(csum: CsumState): number {
  return csum === CSUM_PARTIAL ? NETRXF_csum_blank | NETRXF_data_validated : csum === CSUM_UNNECESSARY ? NETRXF_data_validated : 0;
}

/** A frame for the guest dropped before its RX ring (dom0 RAM at `addr`): counted, and captured at the vif with the counter's name. */
export function droppedForGuest(v: Pick<RxOwner, 'c' | 'tap' | 'name'>, ram: Uint8Array, addr: number, len: number, counter: RxDropCounter): void {
  v.c[counter]++;
  if (v.tap.on) v.tap.drop(ram, addr, len, DIR_OUTBOUND, `vifs.${v.name}.${counter}`);
}

export class VifRx {
  /** skbs waiting for RX buffers, oldest first, and each one's hash (HashInfo, -1: none) and checksum state. */
  private readonly queue: number[] = [];
  private readonly hashes: number[] = [];
  private readonly csums: CsumState[] = [];
  /** A GSO frame's chain (its first skb the one in `queue`), or null. */
  private readonly gsos: (GsoFrame | null)[] = [];
  /** Octets of the frames queued. */
  private queuedBytes = 0;
  private readonly extra = newExtraInfo();
  private head = 0;
  /**
   * Frames copied whose responses are written but not yet published
   * (rsp_prod): counted delivered at the push, since until then the guest
   * cannot see them. A vif that goes in between publishes them first.
   */
  private unpushed = 0;
  private unpushedBytes = 0;
  /** Responses written since the last push (delivered frames and failed copies alike). */
  private written = false;
  private gone = false;

  constructor(
    readonly ring: BackRing,
    private readonly d: VifDeps,
    private readonly v: RxOwner,
  ) {}

  get queued(): number {
    return this.queue.length - this.head;
  }

  /**
   * A frame for this guest from the bridge (skb >= 0: a pooled buffer we may
   * keep a reference to); `hash`: the Toeplitz hash its queue was chosen by,
   * as VifHash.lastHash gives it (type * 2^32 + hash), or -1. A partial
   * checksum for a guest that cannot take one is completed on a copy first.
   */
  deliver(addr: number, len: number, skb: number, hash = -1, csum: CsumState = CSUM_NONE): void {
    if (this.gone) return this.dropped(addr, len, 'rxDropNotConnected');
    if (len > NO_SG_MAX_FRAME && !this.v.canSg) return this.dropped(addr, len, 'rxDropNoSg');
    if (csum === CSUM_PARTIAL && !this.v.ipCsum) return this.deliverCompleted(addr, len, hash);
    if (this.queued === 0) {
      const r = this.copyOne(addr, len, hash, csum);
      if (r !== 'wait') return;
    }
    if (this.full(len)) return this.dropped(addr, len, 'rxDropQueueFull');
    const { skbs } = this.d;
    let keep = skb;
    if (keep >= 0) skbs.get(keep);
    else {
      keep = skbs.clone(addr, len);
      if (keep < 0) return this.dropped(addr, len, 'rxDropNoSkb');
    }
    skbs.len[keep] = len;
    this.queue.push(keep);
    this.queuedBytes += len;
    this.hashes.push(hash);
    this.csums.push(csum);
    this.gsos.push(null);
  }

  /** A GSO frame for this guest, whole (its owner checked that the frontend takes it): copied now, or queued with a reference on each skb. */
  deliverGso(f: GsoFrame, hash = -1): void {
    const { skbs } = this.d;
    const head = f.skbs[0];
    if (this.gone) return this.dropped(skbs.addr(head), skbs.len[head], 'rxDropNotConnected');
    if (this.queued === 0 && this.copyOne(skbs.addr(head), f.len, hash, f.csum, f) !== 'wait') return;
    if (this.full(f.len)) return this.dropped(skbs.addr(head), skbs.len[head], 'rxDropQueueFull');
    for (const x of f.skbs) skbs.get(x);
    this.queue.push(head);
    this.queuedBytes += f.len;
    this.hashes.push(hash);
    this.csums.push(f.csum);
    this.gsos.push(f);
  }

  /** The queue cannot take a frame of `len` octets more (xenvif_rx_queue_tail's limits). */
  private full(len: number): boolean {
    return this.queued >= VIF_TUNABLES.rxQueueMax || this.queuedBytes + len > VIF_TUNABLES.rxQueueBytes;
  }

  /** Give back a queued frame's skbs (a GSO frame's whole chain). */
  private putQueued(i: number): void {
    const g = this.gsos[i];
    this.queuedBytes -= g ? g.len : this.d.skbs.len[this.queue[i]];
    if (g) for (const x of g.skbs) this.d.skbs.put(x);
    else this.d.skbs.put(this.queue[i]);
  }

  /** skb_checksum_help for a guest without checksum offload: the frame copied, its checksum completed there, the copy delivered. */
  private deliverCompleted(addr: number, len: number, hash: number): void {
    const { skbs } = this.d;
    const copy = skbs.clone(addr, len);
    if (copy < 0) return this.dropped(addr, len, 'rxDropNoSkb');
    if (!completeL4Checksum(skbs.mem.u8, skbs.addr(copy), len)) this.dropped(addr, len, 'rxDropCsum');
    else {
      this.v.c.rxCsumCompletedSw++;
      this.deliver(skbs.addr(copy), len, copy, hash, CSUM_NONE);
    }
    skbs.put(copy);
  }

  private dropped(addr: number, len: number, counter: RxDropCounter): void {
    droppedForGuest(this.v, this.d.skbs.mem.u8, addr, len, counter);
  }

  /**
   * Copy one frame into buffers the guest posted: 'done' (delivered or
   * counted), 'wait' (not enough buffers posted yet) or 'gone' (the ring
   * broke: the vif is being disconnected and the frame was counted).
   */
  private copyOne(addr: number, len: number, hash: number, csum: CsumState, gso: GsoFrame | null = null): Copied {
    const ring = this.ring;
    const c = this.v.c;
    const prod = ring.requestProducer();
    if (prod < 0) {
      c.rxDropFatal++;
      this.gone = true;
      this.v.fatal(`impossible RX producer index ${ring.sring.reqProd} (rsp_prod_pvt ${ring.rspProdPvt}, ring size ${ring.size})`);
      return 'gone';
    }
    const need = Math.max(1, Math.ceil(len / PAGE_SIZE)) + (hash >= 0 ? 1 : 0) + (gso ? 1 : 0);
    if (ring.unconsumedRequests(prod) < need) return 'wait';
    const dv = ring.sring.dv;
    const domid = this.v.frontendDomid;
    let left = len;
    let src = addr;
    let failed = GNTST_okay;
    let failedRef = 0;
    const csumFlags = rxCsumFlags(csum);
    while (left > 0) {
      // RING_COPY_REQUEST: id and gref are read once.
      const o = ring.sring.slotOffset(ring.reqCons);
      const id = dv.getUint16(o + RXREQ_ID, true);
      const gref = dv.getUint32(o + RXREQ_GREF, true);
      ring.reqCons = (ring.reqCons + 1) >>> 0;
      const n = left < PAGE_SIZE ? left : PAGE_SIZE;
      const st = gso ? copyChainToGuest(this.d.ops, domid, this.d.skbs, gso, src - addr, gref, n) : copyToGuest(this.d.ops, domid, src, gref, 0, n);
      if (st !== GNTST_okay && failed === GNTST_okay) {
        failed = st;
        failedRef = gref;
      }
      left -= n;
      src += n;
      const r = ring.nextResponseOffset();
      dv.setUint16(r + RXRSP_ID, id, true);
      dv.setUint16(r + RXRSP_OFFSET, 0, true);
      const first = src - n === addr;
      const extra = first && (hash >= 0 || gso) ? NETRXF_extra_info : 0;
      dv.setUint16(r + RXRSP_FLAGS, (first ? csumFlags : 0) | extra | (left > 0 ? NETRXF_more_data : 0), true);
      dv.setInt16(r + RXRSP_STATUS, st === GNTST_okay ? n : st, true);
      ring.rspProdPvt = (ring.rspProdPvt + 1) >>> 0;
      // xenvif_rx_extra_slot: GSO first, then HASH.
      if (extra && gso) writeGsoSlot(ring, this.extra, gso.mss, hash >= 0);
      if (extra && hash >= 0) this.hashSlot(hash);
    }
    this.written = true;
    if (failed !== GNTST_okay) {
      c.rxErrGrantCopy++;
      if (c.rxErrGrantCopy === 1)
        this.d.log(logWarn(`${this.v.name}: grant copy into RX gref ${failedRef} failed: ${grantStatusName(failed)}; frame dropped, status in the response`));
      return 'done';
    }
    this.unpushed++;
    this.unpushedBytes += len;
    if (csum === CSUM_PARTIAL) c.rxCsumBlank++;
    else if (csum === CSUM_UNNECESSARY) c.rxCsumValidated++;
    const ram = this.d.skbs.mem.u8;
    if (gso) {
      c.rxGsoFrames++;
      if (this.v.tap.on) tapFrame(this.v.tap, gatherChain(this.d.skbs, gso), 0, len, DIR_OUTBOUND, csum === CSUM_PARTIAL);
      // Flows are learnt from the headers, all in the chain's first skb.
      this.d.onRxDelivered?.(this.v, ram, addr, this.d.skbs.len[gso.skbs[0]]);
      return 'done';
    }
    if (this.v.tap.on) tapFrame(this.v.tap, ram, addr, len, DIR_OUTBOUND, csum === CSUM_PARTIAL);
    this.d.onRxDelivered?.(this.v, ram, addr, len);
    return 'done';
  }

  /** xenvif_rx_extra_slot: the HASH extra-info slot in the next request's slot (its buffer goes back unused). */
  private hashSlot(hash: number): void {
    const ring = this.ring;
    ring.reqCons = (ring.reqCons + 1) >>> 0;
    const e = this.extra;
    e.type = XEN_NETIF_EXTRA_TYPE_HASH;
    e.flags = 0;
    e.hashType = Math.floor(hash / 0x1_0000_0000);
    e.hashAlgorithm = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
    e.hashValue = hash >>> 0;
    writeExtraInfo(ring.sring.dv, ring.nextResponseOffset(), e);
    ring.rspProdPvt = (ring.rspProdPvt + 1) >>> 0;
    this.v.c.rxHashExtras++;
  }

  /** xenvif_rx_action: copy queued frames while buffers last; push and notify. */
  action(): number {
    if (this.gone) return 0;
    const { skbs } = this.d;
    let n = 0;
    const t0 = tracer.on ? tracer.now() : 0;
    while (this.queued > 0 && n < VIF_TUNABLES.rxBatch) {
      // Out of the queue before the copy: if the ring breaks, this frame is the one in hand (counted once).
      const hash = this.hashes[this.head];
      const csum = this.csums[this.head];
      const gso = this.gsos[this.head];
      const skb = this.queue[this.head++];
      const r = this.copyOne(skbs.addr(skb), gso ? gso.len : skbs.len[skb], hash, csum, gso);
      if (r === 'wait') {
        this.head--;
        break;
      }
      this.putQueued(this.head - 1);
      n++;
      if (r === 'gone') return n;
    }
    if (this.head === this.queue.length) this.clearQueue();
    if (tracer.on && n > 0) tracer.span('grant copy (rx)', t0, { vif: this.v.name, frames: n });
    this.push();
    // Waiting for buffers: ask to be told when the guest posts more (req_event).
    if (this.queued > 0 && this.ring.finalCheckForRequests() < 0) {
      this.v.fatal('impossible RX producer index');
      return n;
    }
    return n;
  }

  /** Publish responses written since the last push (their frames now delivered); notify if the frontend asked. */
  push(): void {
    if (!this.written || this.gone) return;
    this.written = false;
    const c = this.v.c;
    c.rxPackets += this.unpushed;
    c.rxBytes += this.unpushedBytes;
    this.unpushed = this.unpushedBytes = 0;
    const notify = this.ring.pushResponsesAndCheckNotify();
    if (tracer.on) traceRingPush(`${this.v.name} rx responses`, this.ring.rspProdPvt, notify);
    if (notify) this.v.notifyRx();
  }

  /**
   * The vif is going: frames already copied into the guest's buffers are
   * published (an orderly close, or a guest suspending, still reads them);
   * on a ring the frontend broke they are counted lost instead. Every frame
   * still queued is dropped, counted.
   */
  purge(): void {
    this.push();
    this.v.c.rxDropFatal += this.unpushed;
    this.unpushed = this.unpushedBytes = 0;
    this.gone = true;
    for (let i = this.head; i < this.queue.length; i++) {
      this.putQueued(i);
      this.v.c.rxDropNotConnected++;
    }
    this.clearQueue();
  }

  private clearQueue(): void {
    this.queue.length = 0;
    this.hashes.length = 0;
    this.csums.length = 0;
    this.gsos.length = 0;
    this.queuedBytes = 0;
    this.head = 0;
  }
}
