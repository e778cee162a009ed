/**
 * netfront: the guest half of a vif, after Linux xen-netfront. On the backend
 * reaching InitWait it reads what the backend advertised (no feature-rx-copy:
 * it does not connect), takes min(multi-queue-max-queues, its own max)
 * queues, for each allocates and grants a TX and an RX shared-ring page and
 * allocates unbound event channels for the backend (a TX and an RX port when
 * it offers split event channels), with several queues and a backend
 * offering feature-ctrl-ring sets up a control ring, publishes ring refs,
 * ports and features in one xenstore transaction (flat for one queue,
 * queue-N/ for several), cuts the MTU to 1500 if either end lacks
 * scatter-gather, and switches to Connected (xennet_connect,
 * talk_to_netback), then configures a Toeplitz hash over the control ring.
 * A backend in Initialising, Initialised, Reconfiguring or Reconfigured is
 * ignored, as Linux's netback_changed ignores it. Negotiation lives in
 * features.ts, the queues in queues.ts and queue.ts (their rings in connect.ts), the TX
 * buffers in tx-pool.ts, the control ring in ctrl.ts, the data path in tx.ts
 * and rx.ts.
 *
 * The frontend's state changes only through setState, along the transition
 * table below, and every change is kept in the device's history. A backend
 * that breaks the ring protocol marks the device broken (Linux's `broken`):
 * logged once, counted, the rings are no longer used, and the guest lives on.
 */
import {
  tracer,
  logDebug,
  logWarn,
  VIF_KEY,
  XenbusState,
  parseState,
  stateName,
  vifFrontendPath,
  DIR_INBOUND,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  offTap,
  type Tap,
} from '@xsim/hypervisor';
import { parseMac, tapFrame } from '@xsim/netstack';
import type { AccelFrontend } from '../accel-api.ts';
import { NETFRONT_COUNTERS, type NetfrontCounters, type NetfrontDeps, type RxHandler } from './common.ts';
import type { CtrlHost } from './ctrl.ts';
import { ETH_DATA_LEN, readBackendFeatures, type BackendFeatures } from './features.ts';
import type { NetfrontQueue, QueueHost } from './queue.ts';
import { QueueSet } from './queues.ts';
import { StackTx } from './stack-tx.ts';

type S = XenbusState;
const { Initialising, Connected, Closing, Closed } = XenbusState;

/** The frontend's transitions: the states it may go to from each. */
const ALLOWED: Partial<Record<S, readonly S[]>> = {
  [Initialising]: [Connected, Closing, Closed],
  [Connected]: [Closing, Closed],
  [Closing]: [Closed],
  [Closed]: [Initialising],
};

export function frontendMayMove(from: S, to: S): boolean {
  return ALLOWED[from]?.includes(to) ?? false;
}

const HISTORY_MAX = 32;

export class Netfront implements QueueHost, CtrlHost {
  readonly domid: number;
  readonly handle: number;
  readonly path: string;
  mac = 0;
  backendDomid = 0;
  backendPath = '';
  state: S = Initialising;
  backendState: S = XenbusState.Unknown;
  /** What the device counts itself, and the counters of its queues' past connections: c adds the live queues' to it. */
  readonly own: NetfrontCounters = NETFRONT_COUNTERS.zero();
  readonly history: string[] = [];
  /** Called on carrier changes (backend Connected / lost). */
  onCarrier: (up: boolean) => void = () => {};
  /** The device's MTU: the toolstack's, or 1500 once scatter-gather is found missing at either end. */
  mtu: number;
  /** Called when the MTU is cut (the stack must build no larger frame). */
  onMtu: (mtu: number) => void = () => {};
  /**
   * Called at each connect, and when an accelerator comes or goes, with what
   * the stack may hand down (txCsum: partial checksums; tsoMax: the largest
   * TCP frame with an MSS, 0 for none).
   */
  onOffloads: (o: { txCsum: boolean; tsoMax: number }) => void = () => {};
  /** What the backend advertised, read at the last connect (null before). */
  backendFeatures: BackendFeatures | null = null;
  /** The accelerator plugin's frontend hooks, while one is attached (its hardware has no TSO: the stack is told). */
  private accelFe: AccelFrontend | null = null;
  /** Capture point of the frontend side (`host/guest/vifN`). */
  readonly tap: Tap;
  /** Why the backend was given up on, or ''. */
  brokenReason = '';
  /** The kernel is suspending (save or migration): no more TX, the backend's comings and goings ignored. */
  private suspended = false;

  private readonly d: NetfrontDeps;
  /** Its queues (as many as it may ask for), their TX buffers and the control ring. */
  private readonly qs: QueueSet;
  /** The stack's way in: reservations and commits (stack-tx.ts). */
  private readonly stx: StackTx;
  /** The backend said Connected (and has not left it for Closing, Closed or Unknown since). */
  private carrier = false;
  /** The backend lacks feature-rx-copy: said once. */
  private refusedSaid = false;
  /** Closed to connect again with other features (setOffloads): back to Initialising once the backend has closed too. */
  private reconnecting = false;

  constructor(deps: NetfrontDeps) {
    this.d = deps;
    this.domid = deps.domid;
    this.handle = deps.handle;
    this.mtu = deps.mtu;
    this.path = vifFrontendPath(deps.domid, deps.handle);
    this.tap = deps.tap ?? offTap(`vif${deps.handle}`);
    this.qs = new QueueSet(deps, this);
    this.stx = new StackTx(deps, this.qs, this);
  }

  set onReceive(h: RxHandler) {
    const tap = this.tap;
    const rx: RxHandler = (ram, off, len, flags) => {
      if (tap.on) tapFrame(tap, ram, off, len, DIR_INBOUND, (flags & NETRXF_csum_blank) !== 0);
      h(ram, off, len, flags);
    };
    this.qs.onReceive = rx;
  }

  /** Every counter: the device's own and its live queues' (what stats, a suspend record and tests read). */
  get c(): NetfrontCounters {
    return this.qs.addTo({ ...this.own });
  }

  /** Queues connected now. */
  get numQueues(): number {
    return this.qs.active.length;
  }

  /** Connected queue `i` (its rings and counters). */
  queue(i: number): NetfrontQueue | undefined {
    return this.qs.active[i];
  }

  /** Probe: read what the toolstack wrote and follow the backend's state. */
  start(): void {
    const xs = this.d.xs;
    this.backendPath = xs.read(`${this.path}/${VIF_KEY.backend}`);
    this.backendDomid = Number.parseInt(xs.read(`${this.path}/${VIF_KEY.backendId}`), 10);
    this.mac = parseMac(xs.read(`${this.path}/${VIF_KEY.mac}`));
    xs.watch(`${this.backendPath}/${VIF_KEY.state}`, `vif${this.handle}-backend`, () => this.backendChanged());
  }

  get connected(): boolean {
    return this.state === Connected && this.carrier && this.brokenReason === '' && !this.suspended;
  }

  /**
   * Suspend, first half: publish what was queued, then take no more frames
   * and stop following the backend (the toolstack is about to remove it; the
   * device is not closed, it moves). The kernel's pollers still run.
   */
  quiesce(): void {
    this.flush();
    this.suspended = true;
  }

  /**
   * Suspend, second half, once the backend is gone: take every response it
   * left on the rings (frames it delivered reach the stack; TX it answered is
   * done) and hand back the frames it never took, oldest first, still in
   * guest RAM: the resumed kernel sends them again (none was taken by the
   * backend, so none can arrive twice).
   */
  drainForSuspend(): { addr: number; len: number }[] {
    if (this.numQueues === 0 || this.brokenReason !== '') return [];
    const frames = this.qs.drain();
    this.own.txGsoLostAtSuspend += this.qs.pool.gsoUnanswered();
    return frames;
  }

  private setState(s: S, why: string): void {
    if (s === this.state) return;
    if (!frontendMayMove(this.state, s)) throw new Error(`netfront vif${this.handle}: no transition ${stateName(this.state)} -> ${stateName(s)}`);
    const line = `${stateName(this.state)}->${stateName(s)} (${why})`;
    this.history.push(line);
    if (this.history.length > HISTORY_MAX) this.history.shift();
    this.d.log?.(logDebug(`netfront vif${this.handle}: ${line}`));
    if (tracer.on) tracer.instant(`xenbus vif${this.handle} frontend: ${stateName(s)}`, { from: stateName(this.state), to: stateName(s), why });
    this.state = s;
    this.d.xs.write(`${this.path}/${VIF_KEY.state}`, String(s));
  }

  /** netback_changed */
  private backendChanged(): void {
    if (this.suspended) return;
    const prev = this.backendState;
    const s = parseState(this.d.xs.tryRead(`${this.backendPath}/${VIF_KEY.state}`));
    if (s === prev) return;
    this.backendState = s;
    const why = `backend ${stateName(s)}`;
    const up = this.carrier;
    switch (s) {
      case XenbusState.InitWait:
        if (this.state === Initialising) this.connect(why);
        break;
      case Connected:
        this.carrier = true;
        if (this.state === Connected) this.onCarrier(true);
        break;
      case Closing:
        // The backend wants to go (or disconnected us for misbehaviour): tear down and close.
        this.teardown();
        if (this.state === Initialising) this.setState(Closed, why);
        else if (this.state !== Closed) {
          if (this.state === Connected) this.setState(Closing, why);
          this.setState(Closed, why);
        }
        break;
      case Closed:
      case XenbusState.Unknown:
        if (this.state === Closing || this.state === Connected) {
          this.teardown();
          if (this.state === Connected) this.setState(Closing, why);
          this.setState(Closed, why);
        }
        if (this.reconnecting && this.state === Closed) {
          this.reconnecting = false;
          this.setState(Initialising, 'reconnect with new offloads');
        }
        break;
      default:
        // Initialising, Initialised, Reconfiguring, Reconfigured: nothing to do, the carrier stays as it was.
        return;
    }
    if (s !== Connected) this.carrier = false;
    if (up && !this.carrier) this.onCarrier(false);
  }

  /**
   * xennet_connect + talk_to_netback: refuse a backend that cannot copy into
   * our buffers (stay Initialising, as Linux's -ENODEV), set up the rings and
   * ports, publish the keys, fix the features, post RX buffers.
   */
  private connect(why: string): void {
    const xs = this.d.xs;
    const be = readBackendFeatures((k) => xs.tryRead(`${this.backendPath}/${k}`));
    this.backendFeatures = be;
    if (!be.rxCopy) {
      if (!this.refusedSaid) this.d.log?.(`netfront vif${this.handle}: backend does not support copying receive path`);
      this.refusedSaid = true;
      return;
    }
    const params = this.d.params ?? {};
    this.qs.connect(be, this.path, () => this.fixFeatures(params.sg !== false && be.sg));
    this.notifyOffloads();
    this.setState(Connected, why);
  }

  get accel(): AccelFrontend | null {
    return this.accelFe;
  }

  set accel(a: AccelFrontend | null) {
    if (a === this.accelFe) return;
    this.accelFe = a;
    this.notifyOffloads();
  }

  private notifyOffloads(): void {
    this.onOffloads({ txCsum: this.csumOffload, tsoMax: this.tsoMax });
  }

  /** Checksum offload on (the default, as Linux's): partial frames go flagged, partial or validated ones are taken. */
  get csumOffload(): boolean {
    return this.d.params?.csum !== false;
  }

  /** TCPv4 segmentation offload on (the default, as Linux's): GSO frames sent when the backend takes them, feature-gso-tcpv4 written. */
  get gsoOffload(): boolean {
    return this.d.params?.gso !== false;
  }

  /**
   * Switch checksum or segmentation offload (ethtool -K): the stack is told
   * at once; the backend learns it (feature-no-csum-offload,
   * feature-gso-tcpv4) when the device connects again, so a connected device
   * closes and reconnects. Returns whether anything changed.
   */
  setOffloads(o: { csum?: boolean; gso?: boolean }): boolean {
    const csum = o.csum ?? this.csumOffload;
    const gso = o.gso ?? this.gsoOffload;
    if (csum === this.csumOffload && gso === this.gsoOffload) return false;
    this.d.params = { ...this.d.params, csum, gso };
    // Until the reconnect, no TSO frame for a device that dropped GSO.
    if (!gso) this.qs.gso = false;
    this.notifyOffloads();
    if (this.state === Connected) {
      this.reconnecting = true;
      this.setState(Closing, 'offloads changed');
    }
    return true;
  }

  /** xennet_fix_features and xennet_set_features: without scatter-gather at both ends, no MTU over ETH_DATA_LEN. */
  private fixFeatures(sg: boolean): void {
    if (sg || this.mtu <= ETH_DATA_LEN) return;
    this.d.log?.(`netfront vif${this.handle}: Reducing MTU because no SG offload (${this.mtu} -> ${ETH_DATA_LEN})`);
    this.mtu = ETH_DATA_LEN;
    this.onMtu(this.mtu);
  }

  /**
   * The vif is gone (the toolstack removed its node after both ends closed,
   * xennet_remove): stop following the backend, give the buffers back. Only a
   * Closed device may go: a live one still has grants the backend may hold.
   */
  release(): boolean {
    if (this.numQueues > 0) return false;
    try {
      this.d.xs.unwatch(`${this.backendPath}/${VIF_KEY.state}`, `vif${this.handle}-backend`);
    } catch {
      // The backend path was never read (the device never started).
    }
    this.qs.releaseBuffers();
    return true;
  }

  /** Frontend-initiated unplug: ask the backend to close, finish when it has. */
  close(): void {
    if (this.state === Connected) this.setState(Closing, 'unplug');
  }

  /**
   * The rings are going: each queue takes what the backend answered, counts
   * what it never will and gives everything back, its counters kept in the
   * device's own; the control ring goes too.
   */
  private teardown(): void {
    if (this.numQueues === 0) return;
    this.own.txLostAtTeardown += this.qs.teardown(this.brokenReason === '', this.own);
  }

  /** Linux netfront's `broken`: the backend broke the ring protocol. Disabled for further use; the guest lives. */
  broken(reason: string): void {
    if (this.brokenReason !== '') return;
    this.brokenReason = reason;
    this.own.brokenBackend++;
    this.d.log?.(logWarn(`netfront vif${this.handle}: ${reason}; disabled for further use`));
    this.own.txLostBroken += this.qs.detach();
  }

  // ---------------- the stack's side ----------------

  /**
   * Reserve a TX buffer for a frame of `len` bytes: the byte offset in guest
   * RAM to write it at, or -1 if there is no room now (retry after poll()).
   * One reservation at a time: commit it before reserving again (stack-tx.ts).
   */
  txReserve(len: number): number {
    return this.stx.reserve(len);
  }

  /** Send the reserved frame (stack-tx.ts): `csumPartial`, its checksum is partial; `gsoSize` > 0, a TCPv4 GSO frame of that MSS. */
  txCommit(len: number, csumPartial = false, gsoSize = 0): void {
    this.stx.commit(len, csumPartial, gsoSize);
  }

  /** The largest IP datagram the stack may hand down as one TCP frame with its MSS (StackOffloads.tsoMax), 0 for none. */
  get tsoMax(): number {
    return this.stx.tsoMax;
  }

  /** Publish what was committed (one notification per burst and queue; the accelerator's doorbell too). */
  flush(): void {
    if (this.connected) this.qs.flush();
    this.accel?.flush?.();
  }

  /** Frames that could be queued right now, for flow control by the sender. */
  txAvailable(): number {
    return this.connected ? this.qs.available() : 0;
  }

  /** A frame the accelerator received on its VI: to the stack like any other (NETRXF_data_validated if its NIC checked the checksum). */
  deliverAccelRx(ram: Uint8Array, off: number, len: number, flags = 0): void {
    this.own.rxAccel++;
    // With checksum offload off (rx-checksumming off) the stack checks every frame itself.
    const f = this.csumOffload ? flags & NETRXF_data_validated : 0;
    if (f) this.own.rxCsumValidated++;
    this.qs.onReceive(ram, off, len, f);
  }

  /** The device's share of the domain loop: each queue (TX completions, RX, refill, push), the control ring, the accelerator. */
  poll(budget = 64): number {
    if (this.numQueues === 0 || this.brokenReason !== '') return 0;
    const work = this.qs.poll(budget);
    if (work < 0) return 1;
    return this.accel ? work + this.accel.poll(budget) : work;
  }

  stats() {
    return {
      ...this.c,
      state: this.state,
      backendState: this.backendState,
      broken: this.brokenReason || null,
      history: [...this.history],
      mtu: this.mtu,
      backendFeatures: this.backendFeatures,
      splitEventChannels: this.numQueues ? this.qs.active[0].rings!.txPort !== this.qs.active[0].rings!.rxPort : null,
      numQueues: this.numQueues,
      maxQueues: this.qs.max,
      ctrlRing: this.qs.ctrl?.state ?? 'off',
      /** Each queue's own counters (a live view of what the totals above include). */
      queues: this.qs.active.map((q) => q.stats()),
    };
  }
}
