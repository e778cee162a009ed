/**
 * One vif backend: the xenbus half of Linux's xen-netback (probe → InitWait,
 * connect on the frontend's Connected, close on Closing) and its data path.
 *
 * The frontend is never trusted. Every index, grant ref, offset and size it
 * writes is checked; a frontend that breaks the protocol (impossible producer,
 * a grant it does not own, a slot past its page, a zero or oversized frame, a
 * chain too long or inconsistent) is disconnected alone: the vif is unplugged
 * from the bridge, its rings unmapped, its state driven to Closed, and the
 * reason counted and logged once. dom0 and every other vif carry on.
 */
import {
  BackRing,
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTST_okay,
  NETIF_RSP_OKAY,
  NETIF_RX_SLOT_SIZE,
  NETIF_TX_SLOT_SIZE,
  NETRXF_data_validated,
  NETRXF_more_data,
  NETTXF_extra_info,
  NETTXF_more_data,
  PAGE_SIZE,
  RXREQ_GREF,
  RXREQ_ID,
  RXRSP_FLAGS,
  RXRSP_ID,
  RXRSP_OFFSET,
  RXRSP_STATUS,
  SharedRing,
  TXREQ_FLAGS,
  TXREQ_GREF,
  TXREQ_ID,
  TXREQ_OFFSET,
  TXREQ_SIZE,
  TXRSP_ID,
  TXRSP_STATUS,
  XEN_NETBK_LEGACY_SLOTS_MAX,
  XenbusState,
  grantStatusName,
  type EventChannels,
  type GrantOps,
  type XenstoreClient,
} from '@xsim/hypervisor';
import { parseIp, parseMac } from '@xsim/netfront';
import type { Bridge, BridgePort } from './bridge.ts';
import type { SkbPool } from './skb.ts';

const ETH_HLEN = 14;
const TX_BUDGET = 64;
const RX_QUEUE_MAX = 256;

export interface VifDeps {
  ops: GrantOps;
  evtchn: EventChannels;
  xs: XenstoreClient;
  skbs: SkbPool;
  bridge: Bridge;
  /** Largest frame accepted from the guest (MTU + Ethernet header + VLAN tag). */
  maxFrame: number;
  log: (msg: string) => void;
  /** The vif reached Connected / left it (accelerators attach and detach). */
  onConnected?: (vif: VifBackend) => void;
  onDisconnected?: (vif: VifBackend) => void;
  /** A frame was delivered into the guest on the slow path (accelerators learn flows here). */
  onRxDelivered?: (vif: VifBackend, ram: Uint8Array, addr: number, len: number) => void;
}

export interface VifStats {
  /** Frames the guest sent (guest TX = our receive from it). */
  txPackets: number;
  txBytes: number;
  /** Frames we delivered into the guest. */
  rxPackets: number;
  rxBytes: number;
  /** Frames for the guest dropped because its RX queue was full. */
  rxDropQueueFull: number;
  /** Frames for the guest dropped because the vif is not connected. */
  rxDropNotConnected: number;
  /** Frames for the guest dropped because no skb was free to queue them. */
  rxDropNoSkb: number;
  /** Times we stopped taking TX requests because dom0 had no free skb (the frames wait in the ring). */
  txStallNoSkb: number;
  notifiesSent: number;
  disconnects: number;
  fatalReason: string;
}

export class VifBackend implements BridgePort {
  readonly name: string;
  readonly key: string;
  readonly path: string;
  /** The guest MAC and IP the toolstack gave this vif. */
  mac = 0;
  ip = 0;
  readonly frontendPath: string;
  state: XenbusState = XenbusState.Initialising;
  frontendState: XenbusState = XenbusState.Unknown;
  readonly stats: VifStats = {
    txPackets: 0,
    txBytes: 0,
    rxPackets: 0,
    rxBytes: 0,
    rxDropQueueFull: 0,
    rxDropNotConnected: 0,
    rxDropNoSkb: 0,
    txStallNoSkb: 0,
    notifiesSent: 0,
    disconnects: 0,
    fatalReason: '',
  };

  private tx: BackRing | null = null;
  private rx: BackRing | null = null;
  private txMap = -1;
  private rxMap = -1;
  private port = 0;
  private portId = -1;
  private rxUnpushed = false;
  private readonly rxQueue: number[] = [];
  private readonly d: VifDeps;
  private readonly dom0: number;

  constructor(
    deps: VifDeps,
    readonly frontendDomid: number,
    readonly handle: number,
  ) {
    this.d = deps;
    this.dom0 = deps.ops.self.domid;
    this.name = `vif${frontendDomid}.${handle}`;
    this.path = `/local/domain/${this.dom0}/backend/vif/${frontendDomid}/${handle}`;
    this.frontendPath = deps.xs.read(`${this.path}/frontend`);
    this.key = `${frontendDomid}/${handle}`;
    const mac = deps.xs.tryRead(`${this.path}/mac`);
    const ip = deps.xs.tryRead(`${this.path}/ip`);
    if (mac) this.mac = parseMac(mac);
    if (ip) this.ip = parseIp(ip);
  }

  get connected(): boolean {
    return this.tx !== null;
  }

  /** netback_probe: advertise features, wait for the frontend. */
  probe(): void {
    const xs = this.d.xs;
    xs.write(`${this.path}/feature-sg`, '1');
    xs.write(`${this.path}/feature-gso-tcpv4`, '0');
    xs.write(`${this.path}/feature-rx-copy`, '1');
    xs.write(`${this.path}/feature-rx-flip`, '0');
    this.setState(XenbusState.InitWait);
    xs.watch(`${this.frontendPath}/state`, `${this.name}-frontend`, () => this.frontendChanged());
  }

  private setState(s: XenbusState): void {
    this.state = s;
    this.d.xs.write(`${this.path}/state`, String(s));
  }

  private frontendChanged(): void {
    const v = this.d.xs.tryRead(`${this.frontendPath}/state`);
    const s = (v === undefined ? XenbusState.Closed : Number.parseInt(v, 10)) as XenbusState;
    this.frontendState = s;
    switch (s) {
      case XenbusState.Initialised:
      case XenbusState.Connected:
        if (this.state === XenbusState.InitWait) this.connect();
        break;
      case XenbusState.Closing:
        this.disconnect();
        this.setState(XenbusState.Closing);
        this.setState(XenbusState.Closed);
        break;
      case XenbusState.Closed:
        this.disconnect();
        if (this.state !== XenbusState.Closed) this.setState(XenbusState.Closed);
        break;
      case XenbusState.Initialising:
        // A frontend coming back (driver reload) finds us waiting again; one we
        // disconnected for misbehaviour stays out until the toolstack re-creates the vif.
        if (this.state === XenbusState.Closed && this.stats.fatalReason === '') this.setState(XenbusState.InitWait);
        break;
      default:
        break;
    }
  }

  /** connect(): map the rings and bind the event channel the frontend published. */
  private connect(): void {
    const xs = this.d.xs;
    const num = (k: string): number => {
      const v = xs.tryRead(`${this.frontendPath}/${k}`);
      const n = v === undefined ? Number.NaN : Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${k} missing or malformed: ${JSON.stringify(v)}`);
      return n;
    };
    try {
      const txRef = num('tx-ring-ref');
      const rxRef = num('rx-ring-ref');
      const evtchn = num('event-channel');
      if (xs.tryRead(`${this.frontendPath}/request-rx-copy`) !== '1') throw new Error('frontend does not support rx-copy (flipping is not supported)');
      const { ops } = this.d;
      const txm = ops.map(this.frontendDomid, txRef, false);
      if (txm.status !== GNTST_okay) throw new Error(`cannot map tx-ring-ref ${txRef}: ${grantStatusName(txm.status)}`);
      this.txMap = txm.handle;
      const rxm = ops.map(this.frontendDomid, rxRef, false);
      if (rxm.status !== GNTST_okay) throw new Error(`cannot map rx-ring-ref ${rxRef}: ${grantStatusName(rxm.status)}`);
      this.rxMap = rxm.handle;
      this.port = this.d.evtchn.bindInterdomain(this.frontendDomid, evtchn);
      this.d.evtchn.bindHandler(this.port, () => {});
      this.tx = new BackRing(new SharedRing(txm.page, NETIF_TX_SLOT_SIZE));
      this.rx = new BackRing(new SharedRing(rxm.page, NETIF_RX_SLOT_SIZE));
    } catch (e) {
      this.fatal(`connect failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    this.portId = this.d.bridge.addPort(this);
    this.setState(XenbusState.Connected);
    this.d.onConnected?.(this);
  }

  private disconnect(): void {
    const { ops, evtchn, bridge, skbs } = this.d;
    if (this.tx) this.d.onDisconnected?.(this);
    if (this.portId >= 0) bridge.removePort(this.portId);
    this.portId = -1;
    if (this.port > 0) evtchn.close(this.port);
    this.port = 0;
    if (this.txMap >= 0) ops.unmap(this.txMap);
    if (this.rxMap >= 0) ops.unmap(this.rxMap);
    this.txMap = this.rxMap = -1;
    this.tx = this.rx = null;
    for (const skb of this.rxQueue) {
      skbs.put(skb);
      this.stats.rxDropNotConnected++;
    }
    this.rxQueue.length = 0;
  }

  /** xenvif_fatal_tx_err: this frontend broke the protocol. Disconnect it alone. */
  fatal(reason: string): void {
    this.stats.disconnects++;
    if (this.stats.fatalReason === '') {
      this.stats.fatalReason = reason;
      this.d.log(`${this.name}: disconnecting misbehaving frontend (domain ${this.frontendDomid}): ${reason}`);
    }
    this.disconnect();
    this.setState(XenbusState.Closing);
  }

  /** Toolstack unplug (xl network-detach): close from our side. */
  close(): void {
    this.disconnect();
    this.setState(XenbusState.Closing);
  }

  // ---------------- guest → dom0 (the guest's TX ring) ----------------

  private txAction(): number {
    const tx = this.tx;
    if (!tx) return 0;
    const { ops, skbs, bridge } = this.d;
    const dv = tx.sring.dv;
    let frames = 0;
    let done = false;
    while (!done && frames < TX_BUDGET) {
      const prod = tx.requestProducer();
      if (prod < 0) return this.fatal(`impossible TX producer index ${tx.sring.reqProd} (rsp_prod_pvt ${tx.rspProdPvt})`), frames;
      let avail = tx.unconsumedRequests(prod);
      if (avail === 0) {
        // Nothing left: push what we answered and re-arm req_event (final check).
        const more = tx.finalCheckForRequests();
        if (more < 0) return this.fatal('impossible TX producer index'), frames;
        if (more === 0) break;
        continue;
      }
      while (avail > 0 && frames < TX_BUDGET) {
        // Walk the chain first (xenvif_count_requests): it must be whole and sane.
        const c = tx.reqCons;
        const o0 = tx.sring.slotOffset(c);
        const flags0 = dv.getUint16(o0 + TXREQ_FLAGS, true);
        const total = dv.getUint16(o0 + TXREQ_SIZE, true);
        if (flags0 & NETTXF_extra_info) return this.fatal('extra info slot used but no extra feature was negotiated'), frames;
        if (total < ETH_HLEN) return this.fatal(`frame of ${total} bytes is smaller than an Ethernet header`), frames;
        if (total > this.d.maxFrame) return this.fatal(`frame of ${total} bytes exceeds the maximum ${this.d.maxFrame}`), frames;
        let slots = 1;
        let rest = 0;
        let f = flags0;
        while (f & NETTXF_more_data) {
          if (slots >= avail) return this.fatal(`frame chain of ${slots}+ slots runs past the ${avail} published requests`), frames;
          if (slots >= XEN_NETBK_LEGACY_SLOTS_MAX) return this.fatal(`frame spans more than ${XEN_NETBK_LEGACY_SLOTS_MAX} slots`), frames;
          const o = tx.sring.slotOffset(c + slots);
          const sz = dv.getUint16(o + TXREQ_SIZE, true);
          const off = dv.getUint16(o + TXREQ_OFFSET, true);
          if (off + sz > PAGE_SIZE) return this.fatal(`TX slot offset ${off} + size ${sz} crosses its page`), frames;
          rest += sz;
          f = dv.getUint16(o + TXREQ_FLAGS, true);
          slots++;
        }
        if (rest >= total) return this.fatal(`frame size ${total} smaller than its ${slots - 1} follow-on slots (${rest} bytes)`), frames;
        const firstLen = total - rest;
        const firstOff = dv.getUint16(o0 + TXREQ_OFFSET, true);
        if (firstOff + firstLen > PAGE_SIZE) return this.fatal(`TX slot offset ${firstOff} + size ${firstLen} crosses its page`), frames;

        const skb = skbs.alloc();
        if (skb < 0) {
          // dom0 is out of buffers: leave the frame in the ring (backpressure, not loss).
          this.stats.txStallNoSkb++;
          done = true;
          break;
        }
        const base = skbs.addr(skb);
        let at = 0;
        for (let s = 0; s < slots; s++) {
          const o = tx.sring.slotOffset(c + s);
          const gref = dv.getUint32(o + TXREQ_GREF, true);
          const off = dv.getUint16(o + TXREQ_OFFSET, true);
          const len = s === 0 ? firstLen : dv.getUint16(o + TXREQ_SIZE, true);
          const st = this.copyFromGuest(gref, off, base + at, len);
          if (st !== GNTST_okay) {
            skbs.put(skb);
            return this.fatal(`grant copy from TX gref ${gref} failed: ${grantStatusName(st)}`), frames;
          }
          at += len;
        }
        // Answer every slot of the frame.
        for (let s = 0; s < slots; s++) {
          const id = dv.getUint16(tx.sring.slotOffset(c + s) + TXREQ_ID, true);
          const r = tx.nextResponseOffset();
          dv.setUint16(r + TXRSP_ID, id, true);
          dv.setInt16(r + TXRSP_STATUS, NETIF_RSP_OKAY, true);
          tx.rspProdPvt = (tx.rspProdPvt + 1) >>> 0;
        }
        tx.reqCons = (c + slots) >>> 0;
        avail -= slots;
        frames++;
        this.stats.txPackets++;
        this.stats.txBytes += total;
        skbs.len[skb] = total;
        bridge.forward(this.portId, base, total, skb);
        skbs.put(skb);
        if (!this.tx) return frames; // forwarding may have disconnected us (we sent to ourselves a bad RX)
      }
    }
    if (this.tx && this.tx.pushResponsesAndCheckNotify()) this.notify();
    return frames;
  }

  /** Grant-copy guest (gref, off) → dom0 RAM address, split at dom0 page boundaries. */
  private copyFromGuest(gref: number, off: number, dst: number, len: number): number {
    const { ops } = this.d;
    while (len > 0) {
      const dOff = dst & (PAGE_SIZE - 1);
      const n = Math.min(len, PAGE_SIZE - dOff);
      const st = ops.copy(GNTCOPY_source_gref, this.frontendDomid, gref, off, DOMID_SELF, dst >>> 12, dOff, n);
      if (st !== GNTST_okay) return st;
      off += n;
      dst += n;
      len -= n;
    }
    return GNTST_okay;
  }

  private notify(): void {
    if (this.port > 0 && this.d.evtchn.send(this.port)) this.stats.notifiesSent++;
  }

  // ---------------- dom0 → guest (the guest's RX ring) ----------------

  deliver(addr: number, len: number, skb: number): void {
    if (!this.rx) {
      this.stats.rxDropNotConnected++;
      return;
    }
    if (this.rxQueue.length === 0 && this.rxCopy(addr, len) !== 0) return;
    if (!this.rx) return;
    if (this.rxQueue.length >= RX_QUEUE_MAX) {
      this.stats.rxDropQueueFull++;
      return;
    }
    const { skbs } = this.d;
    let keep = skb;
    if (keep >= 0) skbs.get(keep);
    else {
      keep = skbs.clone(addr, len);
      if (keep < 0) {
        this.stats.rxDropNoSkb++;
        return;
      }
    }
    skbs.len[keep] = len;
    this.rxQueue.push(keep);
  }

  /**
   * Copy one frame into buffers the guest posted. Returns 1 when delivered, 0
   * when the guest has not posted enough buffers yet (the frame must wait).
   */
  private rxCopy(addr: number, len: number): number {
    const rx = this.rx!;
    const prod = rx.requestProducer();
    if (prod < 0) {
      this.fatal(`impossible RX producer index ${rx.sring.reqProd}`);
      return 1;
    }
    const need = Math.ceil(len / PAGE_SIZE);
    if (rx.unconsumedRequests(prod) < need) return 0;
    const dv = rx.sring.dv;
    let left = len;
    let src = addr;
    while (left > 0) {
      const o = rx.sring.slotOffset(rx.reqCons);
      const id = dv.getUint16(o + RXREQ_ID, true);
      const gref = dv.getUint32(o + RXREQ_GREF, true);
      rx.reqCons = (rx.reqCons + 1) >>> 0;
      const n = left < PAGE_SIZE ? left : PAGE_SIZE;
      const st = this.copyToGuest(src, gref, n);
      if (st !== GNTST_okay) {
        this.fatal(`grant copy into RX gref ${gref} failed: ${grantStatusName(st)}`);
        return 1;
      }
      left -= n;
      src += n;
      const r = rx.nextResponseOffset();
      dv.setUint16(r + RXRSP_ID, id, true);
      dv.setUint16(r + RXRSP_OFFSET, 0, true);
      dv.setUint16(r + RXRSP_FLAGS, NETRXF_data_validated | (left > 0 ? NETRXF_more_data : 0), true);
      dv.setInt16(r + RXRSP_STATUS, n, true);
      rx.rspProdPvt = (rx.rspProdPvt + 1) >>> 0;
    }
    this.rxUnpushed = true;
    this.stats.rxPackets++;
    this.stats.rxBytes += len;
    this.d.onRxDelivered?.(this, this.d.skbs.mem.u8, addr, len);
    return 1;
  }

  /** Grant-copy dom0 RAM → guest RX page, split at dom0 page boundaries. */
  private copyToGuest(src: number, gref: number, len: number): number {
    const { ops } = this.d;
    let dOff = 0;
    while (len > 0) {
      const sOff = src & (PAGE_SIZE - 1);
      const n = Math.min(len, PAGE_SIZE - sOff);
      const st = ops.copy(GNTCOPY_dest_gref, DOMID_SELF, src >>> 12, sOff, this.frontendDomid, gref, dOff, n);
      if (st !== GNTST_okay) return st;
      src += n;
      dOff += n;
      len -= n;
    }
    return GNTST_okay;
  }

  private rxAction(): number {
    if (!this.rx) return 0;
    const { skbs } = this.d;
    let n = 0;
    while (this.rxQueue.length > 0 && this.rx) {
      const skb = this.rxQueue[0];
      if (this.rxCopy(skbs.addr(skb), skbs.len[skb]) === 0) break;
      this.rxQueue.shift();
      skbs.put(skb);
      n++;
    }
    if (this.rx && this.rxUnpushed) {
      this.rxUnpushed = false;
      if (this.rx.pushResponsesAndCheckNotify()) this.notify();
    }
    if (this.rx && this.rxQueue.length > 0) {
      // Waiting for buffers: ask to be told when the guest posts more.
      this.rx.finalCheckForRequests();
    }
    return n;
  }

  /** This vif's share of dom0's loop. */
  poll(): number {
    return this.txAction() + this.rxAction();
  }

  rxQueueLength(): number {
    return this.rxQueue.length;
  }
}
