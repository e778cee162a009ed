/**
 * One vif backend's xenbus side, after Linux xen-netback's xenbus.c: probe
 * (features, InitWait), follow the frontend's state, connect (the queues the
 * frontend asked for, what it advertised, its control ring, each queue's
 * rings and event channels, the rate), disconnect, and xenvif_fatal_tx_err
 * for a frontend that broke the protocol. Negotiation lives in features.ts,
 * the queues in queue.ts (each queue's rings in connect.ts), the control
 * ring in ctrl.ts, RX steering in hash.ts, the rate limit in credit.ts, the
 * data path in tx.ts and rx.ts.
 *
 * The backend's state changes only through setBackendState, which walks the
 * transition table below along the shortest path to the state asked for,
 * running each edge's action (connect on InitWait → Connected, disconnect on
 * Connected → Closing) and logging every transition in the vif's history.
 */
import {
  tracer,
  logDebug,
  logWarn,
  HOTPLUG_CONNECTED,
  VIF_KEY,
  XenbusState,
  parseState,
  readUnsigned,
  stateName,
  vifBackendPath,
  offTap,
  type Tap,
} from '@xsim/hypervisor';
import { parseIp, parseMac } from '@xsim/netstack';
import type { BridgePort, GsoFrame } from '../bridge.ts';
import { VIF_COUNTERS, addCounters, type VifCounters, type VifDeps, type VifPort } from './common.ts';
import { CSUM_NONE, type CsumState } from '../skb.ts';
import { RateNode } from './credit.ts';
import { CtrlRing, type CtrlOwner } from './ctrl.ts';
import { McastList } from './extras.ts';
import { backendFeatures, maxQueuesOf, readFrontendFlags, type FrontendFlags } from './features.ts';
import { VifHash } from './hash.ts';
import { connectQueues, requestedQueues, type QueueOwner, type VifQueue } from './queue.ts';
import { NEXT } from './states.ts';
import { NodeWatch } from './watch.ts';
import { droppedForGuest } from './rx.ts';

type S = XenbusState;
const { Initialising, InitWait, Connected, Closing, Closed } = XenbusState;

const HISTORY_MAX = 32;

export class VifBackend implements BridgePort, QueueOwner, CtrlOwner, VifPort {
  readonly name: string;
  /** Capture point: frames from the guest (inbound to dom0) and to it (outbound), and drops here. */
  readonly tap: Tap;
  readonly key: string;
  readonly path: string;
  readonly frontendPath: string;
  /** The guest MAC and IP the toolstack gave this vif. */
  mac = 0;
  ip = 0;
  state: S = Initialising;
  frontendState: S = XenbusState.Unknown;
  /** What the vif counts itself, and the counters of queues that are gone: c adds the live queues' to it. */
  readonly own: VifCounters = VIF_COUNTERS.zero();
  /** Why the frontend was disconnected (first reason only), or ''. */
  fatalReason = '';
  /** Every backend state transition, newest last: "InitWait->Connected (frontend Connected)". */
  readonly history: string[] = [];
  portId = -1;

  /** What the frontend advertised, read at connect (null before its first connect). */
  flags: FrontendFlags | null = null;
  /** The connected queues (none while not connected). */
  private queues: VifQueue[] = [];
  private ctrl: CtrlRing | null = null;
  /** RX steering: the hash the frontend configured over its control ring. */
  readonly hash = new VifHash();
  /** The TX rate limit of the current connection (the backend's rate node), applied to each queue. */
  private readonly rate = new RateNode((why) => this.d.log(logWarn(`${this.name}: ${why}`)));
  /** The multicast addresses the frontend listed (MCAST_ADD/DEL), and whether it asked that only they pass. */
  readonly mcast = new McastList();
  multicastControl = false;
  /** While connected: the backend's rate node and the frontend's request-multicast-control. */
  private readonly watches: NodeWatch[];
  private readonly dom0: number;
  /** The toolstack removed the vif's node (netback_remove): nothing more is written to it. */
  private removed = false;
  private hotplugWatch = false;

  constructor(
    private readonly d: VifDeps,
    readonly frontendDomid: number,
    readonly handle: number,
  ) {
    this.dom0 = d.ops.self.domid;
    this.name = `vif${frontendDomid}.${handle}`;
    this.tap = d.tapPoint?.(this.name) ?? offTap(this.name);
    this.path = vifBackendPath(this.dom0, frontendDomid, handle);
    this.frontendPath = d.xs.read(`${this.path}/${VIF_KEY.frontend}`);
    this.key = `${frontendDomid}/${handle}`;
    const mac = d.xs.tryRead(`${this.path}/${VIF_KEY.mac}`);
    const ip = d.xs.tryRead(`${this.path}/${VIF_KEY.ip}`);
    if (mac) this.mac = parseMac(mac);
    if (ip) this.ip = parseIp(ip);
    this.watches = [
      // xen_net_rate_changed: a new rate applies at once.
      new NodeWatch(d.xs, `${this.path}/${VIF_KEY.rate}`, `${this.name}-rate`, (v) => this.rateChanged(v)),
      // xen_mcast_ctrl_changed (feature-dynamic-multicast-control): sampled again on every change.
      new NodeWatch(d.xs, `${this.frontendPath}/${VIF_KEY.requestMulticastControl}`, `${this.name}-mcast`, (v) => {
        if (this.connected) this.multicastControl = readUnsigned(v, 0) !== 0;
      }),
    ];
  }

  get connected(): boolean {
    return this.queues.length > 0;
  }

  get numQueues(): number {
    return this.queues.length;
  }

  /** Queue `i` while connected (its rings, counters and credit). */
  queue(i: number): VifQueue | undefined {
    return this.queues[i];
  }

  /** Every counter: the vif's own and its live queues' (what stats and tests read). */
  get c(): VifCounters {
    const out = { ...this.own };
    for (const q of this.queues) addCounters(out, q.c);
    return out;
  }

  /** netback_probe: advertise features, wait for the frontend. */
  probe(): void {
    const xs = this.d.xs;
    for (const [k, v] of Object.entries(backendFeatures(this.d.params))) xs.write(`${this.path}/${k}`, v);
    this.setBackendState(InitWait, 'probe');
    xs.watch(`${this.frontendPath}/${VIF_KEY.state}`, `${this.name}-frontend`, () => this.frontendChanged());
  }

  /** frontend_changed */
  private frontendChanged(): void {
    if (this.removed) return;
    const s = this.d.xs.tryRead(`${this.frontendPath}/${VIF_KEY.state}`);
    const fs = s === undefined ? XenbusState.Unknown : parseState(s);
    if (fs === this.frontendState) return;
    this.frontendState = fs;
    const why = `frontend ${stateName(fs)}`;
    switch (fs) {
      case Initialising:
        // A frontend coming back (driver reload) finds us waiting again; one we disconnected
        // for misbehaviour stays out until the toolstack re-creates the vif.
        if (!this.fatalReason) this.setBackendState(InitWait, why);
        break;
      case XenbusState.Initialised:
        break;
      case Connected:
        if (!this.fatalReason) this.setBackendState(Connected, why);
        break;
      case Closing:
        this.setBackendState(Closing, why);
        break;
      case Closed:
      case XenbusState.Unknown:
        this.setBackendState(Closed, why);
        break;
      case XenbusState.Reconfiguring:
        this.reconfigure(why);
        break;
      default:
        // InitWait, Reconfigured: states a vif frontend never takes.
        // Linux answers xenbus_dev_fatal(-EINVAL, "saw state %d at frontend"): the backend goes to Closing.
        this.fatal(`saw state ${fs} (${stateName(fs)}) at frontend`);
        break;
    }
  }

  /**
   * Linux 5.9 and later: a frontend goes Reconfiguring when it changes its
   * XDP headroom (xdp-headroom); netback reads it and answers Reconfigured
   * with xenbus_switch_state alone, so its own state stays what it was and
   * the node keeps saying Reconfigured until the next transition. xsim offers
   * no XDP headroom (no feature-xdp-headroom) and puts RX data at offset 0
   * whatever xdp-headroom says.
   */
  private reconfigure(why: string): void {
    const headroom = this.d.xs.tryRead(`${this.frontendPath}/xdp-headroom`);
    this.remember(`${stateName(this.state)}, node ->Reconfigured (${why}; xdp-headroom ${headroom ?? 'absent'}, not applied)`);
    if (!this.removed) this.d.xs.write(`${this.path}/${VIF_KEY.state}`, String(XenbusState.Reconfigured));
  }

  /** set_backend_state: walk the table to `target`, running each edge's action. */
  private setBackendState(target: S, why: string): void {
    while (this.state !== target) {
      const next = NEXT[this.state]?.[target];
      if (next === undefined) throw new Error(`${this.name}: no transition from ${stateName(this.state)} towards ${stateName(target)}`);
      if (this.state === InitWait && next === Connected && !this.hotplugDone()) return;
      if (this.state === InitWait && next === Connected && !this.connect()) return;
      if (this.state === Connected && next === Closing) this.disconnect();
      this.switchState(next, why);
    }
  }

  /**
   * As Linux netback with libxl (which writes an empty hotplug-status node):
   * the vif joins the network only once the toolstack's hotplug script says
   * "connected". Until then stay in InitWait, watching the node.
   */
  private hotplugDone(): boolean {
    const path = `${this.path}/${VIF_KEY.hotplugStatus}`;
    const status = this.d.xs.tryRead(path);
    if (status === undefined || status === HOTPLUG_CONNECTED) return true;
    if (!this.hotplugWatch) {
      this.hotplugWatch = true;
      this.d.xs.watch(path, `${this.name}-hotplug`, () => {
        if (this.removed || this.d.xs.tryRead(path) !== HOTPLUG_CONNECTED) return;
        if (this.frontendState === Connected && this.state === InitWait && !this.fatalReason) this.setBackendState(Connected, 'hotplug-status connected');
      });
    }
    return false;
  }

  /** A line of the vif's history, logged at debug level. */
  private remember(line: string): void {
    this.history.push(line);
    if (this.history.length > HISTORY_MAX) this.history.shift();
    this.d.log(logDebug(`${this.name}: backend ${line}`));
  }

  private switchState(s: S, why: string): void {
    this.remember(`${stateName(this.state)}->${stateName(s)} (${why})`);
    if (tracer.on) tracer.instant(`xenbus ${this.name} backend: ${stateName(s)}`, { from: stateName(this.state), to: stateName(s), why });
    this.state = s;
    if (!this.removed) this.d.xs.write(`${this.path}/${VIF_KEY.state}`, String(s));
  }

  /**
   * connect(): the queues the frontend asked for (at most max_queues), what
   * it advertised (read_xenbus_vif_flags), its control ring if it has one
   * (connect_ctrl_ring), each queue's rings and event channels
   * (connect_data_rings), the rate, read and watched. False if it failed
   * (then fatal, with what was taken given back).
   */
  private connect(): boolean {
    const xs = this.d.xs;
    const read = (k: string) => xs.tryRead(`${this.frontendPath}/${k}`);
    const n = requestedQueues(read, maxQueuesOf(this.d.params));
    if (typeof n === 'string') return this.refuse(n);
    const flags = readFrontendFlags(read, this.frontendPath);
    if (typeof flags === 'string') return this.refuse(flags);
    const rate = this.rate.read(xs.tryRead(`${this.path}/${VIF_KEY.rate}`));
    try {
      this.ctrl = CtrlRing.connect(this.d, this, read, this.frontendPath);
      this.queues = connectQueues(this.d, this, read, this.frontendPath, n, rate);
    } catch (e) {
      this.ctrl?.release();
      this.ctrl = null;
      return this.refuse(e instanceof Error ? e.message : String(e));
    }
    this.flags = flags;
    if (!this.removed) for (const w of this.watches) w.start();
    // Unknown unicast is not flooded to a vif (its MAC is pinned below: such a frame is not for it).
    this.portId = this.d.bridge.addPort(this, { unicastFlood: this.mac === 0 });
    // The vif's own MAC is pinned to its port: no other port's frames can move it.
    if (this.mac !== 0) this.d.bridge.addStatic(this.mac, this.portId);
    this.d.onConnected?.(this);
    return true;
  }

  private refuse(reason: string): false {
    this.fatal(`connect failed: ${reason}`);
    return false;
  }

  /** xen_net_rate_changed: the rate node was written or removed while connected; each queue's credit takes it. */
  private rateChanged(node: string | undefined): void {
    if (this.removed || !this.connected) return;
    const before = this.rate.text;
    const rate = this.rate.read(node);
    for (const q of this.queues) q.credit.change(rate);
    if (this.rate.text !== before) this.d.log(logDebug(`${this.name}: rate ${before ?? 'unlimited'} -> ${this.rate.text ?? 'unlimited'}`));
  }

  /**
   * backend_disconnect: out of the bridge, every queue's rings unmapped and
   * what it queued dropped (counted; its counters kept in the vif's own),
   * the control ring and the hash it configured gone.
   */
  private disconnect(): void {
    if (this.connected) this.d.onDisconnected?.(this);
    if (this.portId >= 0) this.d.bridge.removePort(this.portId);
    this.portId = -1;
    const queues = this.queues;
    this.queues = [];
    for (const q of queues) {
      q.release();
      addCounters(this.own, q.c);
    }
    for (const w of this.watches) w.stop();
    // xenvif_mcast_addr_list_free: a frontend that connects again lists its addresses again.
    this.mcast.clear();
    this.multicastControl = false;
    this.ctrl?.release();
    this.ctrl = null;
    this.hash.reset();
  }

  /** xenvif_fatal_tx_err: this frontend broke the protocol. Disconnect it alone; it stays out. */
  fatal(reason: string): void {
    this.own.disconnects++;
    if (this.fatalReason === '') {
      this.fatalReason = reason;
      this.d.log(logWarn(`${this.name}: disconnecting misbehaving frontend (domain ${this.frontendDomid}): ${reason}`));
    }
    if (this.state !== Closing && this.state !== Closed) this.setBackendState(Closing, `fatal: ${reason}`);
    else this.disconnect();
  }

  /** Toolstack unplug (xl network-detach): close from our side. */
  close(): void {
    this.setBackendState(Closing, 'toolstack unplug');
    this.disconnect();
  }

  /**
   * netback_remove: the toolstack removed this vif's node (the domain is gone,
   * or the vif was unplugged). Disconnect as close() does, counting what was
   * queued for the guest, and stop watching its frontend; nothing is written
   * back, so the removed node is not re-created.
   */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    this.tap.release();
    // As Linux's netback_remove: set_backend_state(Closed), walking the table (disconnecting on the way).
    this.setBackendState(Closed, 'toolstack removed the vif');
    this.disconnect();
    try {
      this.d.xs.unwatch(`${this.frontendPath}/${VIF_KEY.state}`, `${this.name}-frontend`);
      if (this.hotplugWatch) this.d.xs.unwatch(`${this.path}/${VIF_KEY.hotplugStatus}`, `${this.name}-hotplug`);
    } catch {
      // Never watched (it failed before probing) or already released with its domain.
    }
  }

  /** A frontend without feature-sg takes no frame over several RX slots. */
  get canSg(): boolean {
    return this.flags?.canSg ?? false;
  }

  /** A frontend that wrote feature-no-csum-offload = 1 takes no partial checksum (vif->ip_csum). */
  get ipCsum(): boolean {
    return this.flags?.ipCsum ?? false;
  }

  /** When one of this vif's credit timers fires (Infinity: none pending). dom0 wakes for it. */
  nextDeadline(): number {
    let t = Infinity;
    for (const q of this.queues) t = Math.min(t, q.credit.timerAt);
    return t;
  }

  /** A frame from the bridge for this guest (xenvif_start_xmit): to the queue xenvif_select_queue picks. */
  deliver(addr: number, len: number, skb: number, csum: CsumState = CSUM_NONE): void {
    const ram = this.d.skbs.mem.u8;
    const own = { c: this.own, tap: this.tap, name: this.name };
    if (!this.connected) return droppedForGuest(own, ram, addr, len, 'rxDropNotConnected');
    // A frontend that asked for multicast control gets only the multicast addresses it listed.
    if (this.multicastControl && this.mcast.filters(ram, addr)) return droppedForGuest(own, ram, addr, len, 'rxDropMcast');
    const q = this.hash.selectQueue(ram, addr, len, this.queues.length);
    // As xenvif_start_xmit: a queue past the last (a table set for more queues) is taken modulo.
    this.queues[q % this.queues.length].rx.deliver(addr, len, skb, this.hash.lastHash, csum);
  }

  /**
   * The bridge may hand this vif a TCPv4 GSO frame whole: its frontend wrote
   * feature-gso-tcpv4 (vif->gso_mask; netfront writes 0 with the vif's gso
   * offload off) and takes frames over several slots and partial checksums,
   * as Linux's xenvif_fix_features keeps NETIF_F_TSO only with SG and IP_CSUM.
   */
  takesGso(): boolean {
    const f = this.flags;
    return this.connected && f !== null && f.gsoTcpv4 && f.canSg && f.ipCsum;
  }

  /** A GSO frame whole from the bridge (after takesGso): to the queue xenvif_select_queue picks for its headers. */
  deliverGso(f: GsoFrame): void {
    const ram = this.d.skbs.mem.u8;
    const head = f.skbs[0];
    const addr = this.d.skbs.addr(head);
    const q = this.hash.selectQueue(ram, addr, this.d.skbs.len[head], this.queues.length);
    this.queues[q % this.queues.length].rx.deliverGso(f, this.hash.lastHash);
  }

  /** This vif's share of dom0's loop: each queue on its own, then the control ring. */
  poll(): number {
    let n = 0;
    const queues = this.queues;
    for (let i = 0; i < queues.length && this.connected; i++) n += queues[i].poll();
    if (this.ctrl && this.connected) n += this.ctrl.action();
    return n;
  }

  rxQueueLength(): number {
    let n = 0;
    for (const q of this.queues) n += q.rx.queued;
    return n;
  }

  stats() {
    const c = this.c;
    c.mcastAddrs = this.mcast.size;
    return {
      ...c,
      state: this.state,
      frontendState: this.frontendState,
      fatalReason: this.fatalReason,
      history: [...this.history],
      rxQueued: this.rxQueueLength(),
      frontendFeatures: this.flags,
      splitEventChannels: this.queues.length ? this.queues[0].rings.txPort !== this.queues[0].rings.rxPort : null,
      rate: this.rate.text,
      multicastControl: this.multicastControl,
      numQueues: this.queues.length,
      ctrlRing: this.ctrl !== null,
      hash: this.hash.describe(),
      /** Each queue's own counters (a live view of what the totals above include). */
      queues: this.queues.map((q) => q.stats()),
    };
  }
}
