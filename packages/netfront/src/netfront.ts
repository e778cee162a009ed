/**
 * netfront: the guest half of a vif. It follows xen-netfront: on the backend
 * reaching InitWait it allocates and grants one TX and one RX shared-ring page,
 * allocates an unbound event channel for the backend, publishes ring refs and
 * features in one xenstore transaction and switches to Connected.
 *
 * TX: a frame is written straight into a guest-owned buffer (one or more
 * whole pages), each page granted read-only to the backend for the life of the
 * request and revoked on its response. RX: every posted buffer is a whole page
 * granted read-write; the backend copies into it and answers.
 *
 * Requests are pushed once per burst and the backend is notified only when the
 * ring protocol says it is waiting (req_event); responses are consumed with the
 * final-check re-arm so we never sleep on a response that has arrived.
 */
import {
  FrameAllocator,
  FrontRing,
  GrantRefAllocator,
  GrantTable,
  GuestMemory,
  NETIF_RSP_OKAY,
  NETIF_RX_SLOT_SIZE,
  NETIF_TX_SLOT_SIZE,
  NETRXF_more_data,
  NETTXF_more_data,
  NET_RX_RING_SIZE,
  NET_TX_RING_SIZE,
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
  type EventChannels,
  type XenstoreClient,
} from '@xsim/hypervisor';
import { XenbusState, parseState } from './xenbus.ts';
import { parseMac } from './net/addr.ts';
import type { AccelFrontend } from './accel-api.ts';

export interface NetfrontDeps {
  domid: number;
  handle: number;
  mem: GuestMemory;
  frames: FrameAllocator;
  gnttab: GrantTable;
  grefs: GrantRefAllocator;
  evtchn: EventChannels;
  xs: XenstoreClient;
  /** Largest L2 payload; TX buffers are sized for mtu + 18 (Ethernet header and a VLAN tag). */
  mtu: number;
  log?: (msg: string) => void;
}

export interface NetfrontStats {
  state: number;
  backendState: number;
  txPackets: number;
  txBytes: number;
  txErrors: number;
  txBusy: number;
  rxPackets: number;
  rxBytes: number;
  rxErrors: number;
  notifiesSent: number;
  rxFragmented: number;
  /** Frames the accelerator took on TX (never on the slow path), and received on its VI. */
  txAccel: number;
  rxAccel: number;
}

/** A frame delivered to the guest; the view is valid only during the call. */
export type RxHandler = (ram: Uint8Array, off: number, len: number) => void;

const MAX_FRAME_PIECES = 18;

export class Netfront {
  readonly domid: number;
  readonly handle: number;
  readonly path: string;
  mac = 0;
  backendDomid = 0;
  backendPath = '';
  state: XenbusState = XenbusState.Initialising;
  backendState: XenbusState = XenbusState.Unknown;
  onReceive: RxHandler = () => {};
  /** Called on carrier changes (backend Connected / lost). */
  onCarrier: (up: boolean) => void = () => {};

  private readonly d: NetfrontDeps;
  private tx: FrontRing | null = null;
  private rx: FrontRing | null = null;
  private txRingFrame = -1;
  private rxRingFrame = -1;
  private txRingRef = -1;
  private rxRingRef = -1;
  private port = 0;

  // TX buffers: `txChunks` chunks of `chunkPages` contiguous pages.
  private readonly chunkPages: number;
  private readonly txChunks: number;
  private txBase = -1;
  private readonly freeChunks: number[] = [];
  private readonly chunkOutstanding: Int32Array;
  private readonly txIdChunk = new Int32Array(NET_TX_RING_SIZE).fill(-1);
  private readonly txIdGref = new Int32Array(NET_TX_RING_SIZE).fill(-1);
  private readonly freeTxIds: number[] = [];
  private reservedChunk = -1;
  private txUnpushed = 0;

  // RX buffers: one page per ring slot id.
  private rxBase = -1;
  private readonly rxIdGref = new Int32Array(NET_RX_RING_SIZE).fill(-1);
  private readonly freeRxIds: number[] = [];
  private rxScratch: Uint8Array;
  private rxScratchLen = 0;
  private rxPieces = 0;
  private rxChainBroken = false;

  readonly stats: NetfrontStats = {
    state: 1,
    backendState: 0,
    txPackets: 0,
    txBytes: 0,
    txErrors: 0,
    txBusy: 0,
    rxPackets: 0,
    rxBytes: 0,
    rxErrors: 0,
    notifiesSent: 0,
    rxFragmented: 0,
    txAccel: 0,
    rxAccel: 0,
  };
  /** The accelerator plugin's frontend hooks, while one is attached. */
  accel: AccelFrontend | null = null;

  constructor(deps: NetfrontDeps) {
    this.d = deps;
    this.domid = deps.domid;
    this.handle = deps.handle;
    this.path = `/local/domain/${deps.domid}/device/vif/${deps.handle}`;
    this.chunkPages = Math.ceil((deps.mtu + 18) / PAGE_SIZE);
    this.txChunks = Math.floor(NET_TX_RING_SIZE / this.chunkPages);
    this.chunkOutstanding = new Int32Array(this.txChunks);
    this.rxScratch = new Uint8Array(this.chunkPages * PAGE_SIZE);
  }

  /** Probe: read what the toolstack wrote and follow the backend's state. */
  start(): void {
    const xs = this.d.xs;
    this.backendPath = xs.read(`${this.path}/backend`);
    this.backendDomid = Number.parseInt(xs.read(`${this.path}/backend-id`), 10);
    this.mac = parseMac(xs.read(`${this.path}/mac`));
    // Buffers are allocated once; rings are (re)made on each connect.
    this.txBase = this.d.frames.allocRange(this.txChunks * this.chunkPages);
    this.rxBase = this.d.frames.allocRange(NET_RX_RING_SIZE);
    xs.watch(`${this.backendPath}/state`, `vif${this.handle}-backend`, () => this.backendChanged());
  }

  get connected(): boolean {
    return this.state === XenbusState.Connected && this.backendState === XenbusState.Connected;
  }

  private setState(s: XenbusState): void {
    this.state = s;
    this.stats.state = s;
    this.d.xs.write(`${this.path}/state`, String(s));
  }

  private backendChanged(): void {
    const prev = this.backendState;
    const s = parseState(this.d.xs.tryRead(`${this.backendPath}/state`));
    this.backendState = s;
    this.stats.backendState = s;
    switch (s) {
      case XenbusState.InitWait:
        if (this.state === XenbusState.Initialising) this.connect();
        break;
      case XenbusState.Connected:
        if (prev !== XenbusState.Connected && this.state === XenbusState.Connected) this.onCarrier(true);
        break;
      case XenbusState.Closing:
        // Backend wants to go (or disconnected us for misbehaviour): tear down and close.
        this.teardown();
        this.setState(XenbusState.Closed);
        break;
      case XenbusState.Closed:
        if (this.state === XenbusState.Closing) {
          this.teardown();
          this.setState(XenbusState.Closed);
        }
        break;
      default:
        break;
    }
    if (prev === XenbusState.Connected && s !== XenbusState.Connected) this.onCarrier(false);
  }

  /** xennet_connect + talk_to_netback. */
  private connect(): void {
    const { frames, gnttab, grefs, mem, evtchn, xs } = this.d;
    this.txRingFrame = frames.alloc();
    this.rxRingFrame = frames.alloc();
    const txs = new SharedRing(mem.page(this.txRingFrame), NETIF_TX_SLOT_SIZE);
    const rxs = new SharedRing(mem.page(this.rxRingFrame), NETIF_RX_SLOT_SIZE);
    txs.init();
    rxs.init();
    this.tx = new FrontRing(txs);
    this.rx = new FrontRing(rxs);
    this.txRingRef = grefs.alloc();
    this.rxRingRef = grefs.alloc();
    gnttab.grantAccess(this.txRingRef, this.backendDomid, this.txRingFrame, false);
    gnttab.grantAccess(this.rxRingRef, this.backendDomid, this.rxRingFrame, false);
    this.port = evtchn.allocUnbound(this.backendDomid);
    // Responses are polled by the domain loop; the upcall only has to wake us.
    evtchn.bindHandler(this.port, () => {});

    this.freeChunks.length = 0;
    for (let c = this.txChunks - 1; c >= 0; c--) this.freeChunks.push(c);
    this.chunkOutstanding.fill(0);
    this.freeTxIds.length = 0;
    for (let id = NET_TX_RING_SIZE - 1; id >= 0; id--) this.freeTxIds.push(id);
    this.freeRxIds.length = 0;
    for (let id = NET_RX_RING_SIZE - 1; id >= 0; id--) this.freeRxIds.push(id);
    this.reservedChunk = -1;
    this.txUnpushed = 0;

    for (;;) {
      const t = xs.transactionStart();
      xs.write(`${this.path}/tx-ring-ref`, String(this.txRingRef), t);
      xs.write(`${this.path}/rx-ring-ref`, String(this.rxRingRef), t);
      xs.write(`${this.path}/event-channel`, String(this.port), t);
      xs.write(`${this.path}/request-rx-copy`, '1', t);
      xs.write(`${this.path}/feature-rx-notify`, '1', t);
      xs.write(`${this.path}/feature-sg`, '1', t);
      xs.write(`${this.path}/feature-gso-tcpv4`, '0', t);
      if (xs.transactionEnd(t, true)) break;
    }
    this.refillRx();
    this.setState(XenbusState.Connected);
  }

  /** Frontend-initiated unplug: ask the backend to close, finish when it has. */
  close(): void {
    if (this.state === XenbusState.Connected) this.setState(XenbusState.Closing);
  }

  private teardown(): void {
    if (!this.tx || !this.rx) return;
    const { gnttab, grefs, frames, evtchn } = this.d;
    // The backend has unmapped by now (it closed first); revoke and reclaim everything.
    for (let id = 0; id < NET_TX_RING_SIZE; id++) {
      const g = this.txIdGref[id];
      if (g >= 0) {
        if (gnttab.endAccess(g)) grefs.release(g);
        this.txIdGref[id] = -1;
        this.stats.txErrors++;
      }
      this.txIdChunk[id] = -1;
    }
    for (let id = 0; id < NET_RX_RING_SIZE; id++) {
      const g = this.rxIdGref[id];
      if (g >= 0) {
        if (gnttab.endAccess(g)) grefs.release(g);
        this.rxIdGref[id] = -1;
      }
    }
    for (const r of [this.txRingRef, this.rxRingRef]) if (r >= 0 && gnttab.endAccess(r)) grefs.release(r);
    frames.release(this.txRingFrame);
    frames.release(this.rxRingFrame);
    evtchn.close(this.port);
    this.tx = this.rx = null;
    this.txRingRef = this.rxRingRef = -1;
  }

  /**
   * Fault injection, for testing backends against a broken or hostile guest:
   * publish one malformed TX request of the given kind. The backend must
   * disconnect this vif alone.
   */
  injectFault(kind: 'bad-producer' | 'bad-gref' | 'cross-page' | 'zero-size' | 'oversize'): void {
    const tx = this.tx;
    if (!tx) throw new Error('netfront: not connected');
    const dv = tx.sring.dv;
    if (kind === 'bad-producer') {
      // Claim more outstanding requests than the ring can hold.
      Atomics.store(tx.sring.idx, 0, (tx.reqProdPvt + NET_TX_RING_SIZE + 7) | 0);
      this.d.evtchn.send(this.port);
      return;
    }
    const o = tx.nextRequestOffset();
    const page = this.txBase;
    const gref = kind === 'bad-gref' ? 7 /* a reserved ref we never granted */ : this.d.grefs.alloc();
    if (kind !== 'bad-gref') this.d.gnttab.grantAccess(gref, this.backendDomid, page, true);
    dv.setUint32(o + TXREQ_GREF, gref, true);
    dv.setUint16(o + TXREQ_OFFSET, kind === 'cross-page' ? 4000 : 0, true);
    dv.setUint16(o + TXREQ_FLAGS, 0, true);
    dv.setUint16(o + TXREQ_ID, 0, true);
    dv.setUint16(o + TXREQ_SIZE, kind === 'zero-size' ? 0 : kind === 'oversize' ? 65000 : kind === 'cross-page' ? 1000 : 100, true);
    tx.reqProdPvt = (tx.reqProdPvt + 1) >>> 0;
    tx.pushRequestsAndCheckNotify();
    this.d.evtchn.send(this.port);
  }

  // ---------------- TX ----------------

  /**
   * Reserve a TX buffer for a frame of `len` bytes. Returns the byte offset in
   * guest RAM where the frame must be written, or -1 if the ring or buffers
   * are exhausted (the caller should retry after poll()). One reservation at a
   * time: commit it before reserving again.
   */
  txReserve(len: number): number {
    if (!this.tx || !this.connected) return -1;
    if (len <= 0 || len > this.chunkPages * PAGE_SIZE) return -1;
    // An attached accelerator out of fast-path room stops the queue (as Xen's
    // netfront does until checkReady): diverting to the slow path would reorder flows.
    if (this.accel && !this.accel.checkReady()) {
      this.stats.txBusy++;
      return -1;
    }
    const pieces = Math.ceil(len / PAGE_SIZE);
    if (this.freeChunks.length === 0 || this.tx.freeRequests() < pieces || this.freeTxIds.length < pieces) {
      this.stats.txBusy++;
      return -1;
    }
    this.reservedChunk = this.freeChunks.pop()!;
    return (this.txBase + this.reservedChunk * this.chunkPages) * PAGE_SIZE;
  }

  /** Queue the reserved frame on the TX ring (pushed at the end of the burst, in poll/flush). */
  txCommit(len: number): void {
    const chunk = this.reservedChunk;
    const tx = this.tx;
    if (chunk < 0 || !tx) throw new Error('netfront: txCommit without txReserve');
    this.reservedChunk = -1;
    // Offer the frame to the accelerator first; a declined frame goes on unchanged.
    if (this.accel && this.accel.startXmit(this.d.mem.u8, (this.txBase + chunk * this.chunkPages) * PAGE_SIZE, len)) {
      this.freeChunks.push(chunk);
      this.stats.txAccel++;
      return;
    }
    const { gnttab, grefs } = this.d;
    const firstFrame = this.txBase + chunk * this.chunkPages;
    const dv = tx.sring.dv;
    let left = len;
    let piece = 0;
    while (left > 0) {
      const size = left < PAGE_SIZE ? left : PAGE_SIZE;
      const id = this.freeTxIds.pop()!;
      const gref = grefs.alloc();
      gnttab.grantAccess(gref, this.backendDomid, firstFrame + piece, true);
      this.txIdChunk[id] = chunk;
      this.txIdGref[id] = gref;
      const o = tx.nextRequestOffset();
      dv.setUint32(o + TXREQ_GREF, gref, true);
      dv.setUint16(o + TXREQ_OFFSET, 0, true);
      left -= size;
      dv.setUint16(o + TXREQ_FLAGS, left > 0 ? NETTXF_more_data : 0, true);
      dv.setUint16(o + TXREQ_ID, id, true);
      // First slot carries the whole frame length, the rest their own (netif.h).
      dv.setUint16(o + TXREQ_SIZE, piece === 0 ? len : size, true);
      tx.reqProdPvt = (tx.reqProdPvt + 1) >>> 0;
      this.chunkOutstanding[chunk]++;
      piece++;
    }
    this.txUnpushed++;
    this.stats.txPackets++;
    this.stats.txBytes += len;
  }

  /** Publish queued requests; notify the backend only if it asked (req_event). */
  flush(): void {
    if (this.txUnpushed === 0 || !this.tx) return;
    this.txUnpushed = 0;
    if (this.tx.pushRequestsAndCheckNotify()) {
      this.d.evtchn.send(this.port);
      this.stats.notifiesSent++;
    }
  }

  /** Free TX slots, for flow control by the sender. */
  txAvailable(): number {
    if (!this.tx || !this.connected) return 0;
    return Math.min(this.freeChunks.length, Math.floor(this.tx.freeRequests() / this.chunkPages));
  }

  private txGc(): number {
    const tx = this.tx!;
    let n = 0;
    const dv = tx.sring.dv;
    const { gnttab, grefs } = this.d;
    do {
      const prod = tx.sring.rspProd;
      while (tx.rspCons !== prod) {
        const o = tx.sring.slotOffset(tx.rspCons);
        const id = dv.getUint16(o + TXRSP_ID, true);
        const status = dv.getInt16(o + TXRSP_STATUS, true);
        tx.rspCons = (tx.rspCons + 1) >>> 0;
        n++;
        if (id >= NET_TX_RING_SIZE || this.txIdGref[id] < 0) {
          this.stats.txErrors++;
          continue;
        }
        if (status !== NETIF_RSP_OKAY) this.stats.txErrors++;
        const g = this.txIdGref[id];
        if (gnttab.endAccess(g)) grefs.release(g);
        this.txIdGref[id] = -1;
        const c = this.txIdChunk[id];
        this.txIdChunk[id] = -1;
        this.freeTxIds.push(id);
        if (--this.chunkOutstanding[c] === 0) this.freeChunks.push(c);
      }
    } while (tx.finalCheckForResponses());
    return n;
  }

  /** A frame the accelerator received on its VI: to the stack like any other. */
  deliverAccelRx(ram: Uint8Array, off: number, len: number): void {
    this.stats.rxAccel++;
    this.onReceive(ram, off, len);
  }

  // ---------------- RX ----------------

  private refillRx(): number {
    const rx = this.rx!;
    const { gnttab, grefs } = this.d;
    const dv = rx.sring.dv;
    let n = 0;
    while (this.freeRxIds.length > 0 && rx.freeRequests() > 0) {
      const id = this.freeRxIds.pop()!;
      const gref = grefs.alloc();
      gnttab.grantAccess(gref, this.backendDomid, this.rxBase + id, false);
      this.rxIdGref[id] = gref;
      const o = rx.nextRequestOffset();
      dv.setUint16(o + RXREQ_ID, id, true);
      dv.setUint16(o + 2, 0, true);
      dv.setUint32(o + RXREQ_GREF, gref, true);
      rx.reqProdPvt = (rx.reqProdPvt + 1) >>> 0;
      n++;
    }
    if (n > 0 && rx.pushRequestsAndCheckNotify()) {
      this.d.evtchn.send(this.port);
      this.stats.notifiesSent++;
    }
    return n;
  }

  private rxPoll(budget: number): number {
    const rx = this.rx!;
    const dv = rx.sring.dv;
    const ram = this.d.mem.u8;
    const { gnttab, grefs } = this.d;
    let n = 0;
    do {
      const prod = rx.sring.rspProd;
      while (rx.rspCons !== prod && n < budget) {
        const o = rx.sring.slotOffset(rx.rspCons);
        const id = dv.getUint16(o + RXRSP_ID, true);
        const offset = dv.getUint16(o + RXRSP_OFFSET, true);
        const flags = dv.getUint16(o + RXRSP_FLAGS, true);
        const status = dv.getInt16(o + RXRSP_STATUS, true);
        rx.rspCons = (rx.rspCons + 1) >>> 0;
        const more = (flags & NETRXF_more_data) !== 0;
        let bad = id >= NET_RX_RING_SIZE || this.rxIdGref[id] < 0;
        if (!bad) {
          const g = this.rxIdGref[id];
          if (gnttab.endAccess(g)) grefs.release(g);
          this.rxIdGref[id] = -1;
          this.freeRxIds.push(id);
          bad = status < 0 || offset + status > PAGE_SIZE;
        }
        this.rxPieces++;
        if (bad || this.rxPieces > MAX_FRAME_PIECES) this.rxChainBroken = true;
        const at = (this.rxBase + id) * PAGE_SIZE + offset;
        if (!more && this.rxPieces === 1 && !this.rxChainBroken) {
          // The common case: a whole frame in one page, handed up without a copy.
          this.rxPieces = 0;
          n++;
          this.stats.rxPackets++;
          this.stats.rxBytes += status;
          this.onReceive(ram, at, status);
          continue;
        }
        // A frame spread over several pages: gather it (the stack wants it contiguous).
        if (!this.rxChainBroken) {
          if (this.rxScratchLen + status > this.rxScratch.length) this.rxChainBroken = true;
          else {
            this.rxScratch.set(ram.subarray(at, at + status), this.rxScratchLen);
            this.rxScratchLen += status;
          }
        }
        if (more) continue;
        // End of the chain: one frame, delivered or counted once as an error.
        if (this.rxChainBroken) this.stats.rxErrors++;
        else {
          n++;
          this.stats.rxPackets++;
          this.stats.rxFragmented++;
          this.stats.rxBytes += this.rxScratchLen;
          this.onReceive(this.rxScratch, 0, this.rxScratchLen);
        }
        this.rxScratchLen = 0;
        this.rxPieces = 0;
        this.rxChainBroken = false;
      }
      if (n >= budget) break;
    } while (rx.finalCheckForResponses());
    return n;
  }

  /** The device's share of the domain loop: TX completions, RX, refill, push. */
  poll(budget = 64): number {
    if (!this.tx || !this.rx) return 0;
    this.flush();
    let work = this.txGc();
    work += this.rxPoll(budget);
    if (this.accel) work += this.accel.poll(budget);
    // Reposting buffers is not progress in itself: it must not keep the loop spinning.
    if (this.freeRxIds.length > 0) this.refillRx();
    return work;
  }
}
