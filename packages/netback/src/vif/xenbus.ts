/**
 * One vif backend's xenbus side, after Linux xen-netback's xenbus.c: probe
 * (features, InitWait), follow the frontend's state, connect (read what the
 * frontend advertised, map the rings, bind its event channels, read and
 * watch the rate), disconnect, and xenvif_fatal_tx_err for a frontend that
 * broke the protocol. Negotiation lives in features.ts, the rings in
 * connect.ts, the rate limit in credit.ts, the data path in tx.ts and rx.ts.
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
import type { BridgePort } from '../bridge.ts';
import { VIF_COUNTERS, type VifCounters, type VifDeps, type VifPort } from './common.ts';
import { connectDataRings, releaseDataRings, type DataRings } from './connect.ts';
import { TxCredit, parseRate } from './credit.ts';
import { McastList } from './extras.ts';
import { backendFeatures, readFrontendFlags, type FrontendFlags } from './features.ts';
import { NodeWatch } from './watch.ts';
import { VifRx, droppedForGuest, type RxOwner } from './rx.ts';
import { VifTx, type TxOwner } from './tx.ts';

type S = XenbusState;
const { Initialising, InitWait, Connected, Closing, Closed } = XenbusState;

/**
 * set_backend_state's table: from the current state, the next hop towards a
 * target. Initialising → InitWait → Connected, any → Closing ↔ Closed.
 */
const NEXT: Partial<Record<S, Partial<Record<S, S>>>> = {
  [Initialising]: { [InitWait]: InitWait, [Connected]: InitWait, [Closing]: InitWait, [Closed]: Closed },
  [Closed]: { [InitWait]: InitWait, [Connected]: InitWait, [Closing]: Closing },
  [InitWait]: { [Connected]: Connected, [Closing]: Closing, [Closed]: Closing },
  [Connected]: { [InitWait]: Closing, [Closing]: Closing, [Closed]: Closing },
  [Closing]: { [InitWait]: Closed, [Connected]: Closed, [Closed]: Closed },
};

/** The backend transitions a test may check, as "from->to" names. */
export function backendNextHop(from: S, to: S): S | undefined {
  return NEXT[from]?.[to];
}

const HISTORY_MAX = 32;

export class VifBackend implements BridgePort, TxOwner, RxOwner, VifPort {
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
  readonly c: VifCounters = VIF_COUNTERS.zero();
  /** Why the frontend was disconnected (first reason only), or ''. */
  fatalReason = '';
  /** Every backend state transition, newest last: "InitWait->Connected (frontend Connected)". */
  readonly history: string[] = [];
  portId = -1;

  /** What the frontend advertised, read at connect (null before its first connect). */
  flags: FrontendFlags | null = null;
  private tx: VifTx | null = null;
  private rx: VifRx | null = null;
  private rings: DataRings | null = null;
  /** The TX rate limit of the current connection (the backend's rate node). */
  private credit: TxCredit;
  /** The multicast addresses the frontend listed (MCAST_ADD/DEL), and whether it asked that only they pass. */
  readonly mcast = new McastList();
  multicastControl = false;
  /** While connected: the backend's rate node and the frontend's request-multicast-control. */
  private readonly watches: NodeWatch[];
  /** The malformed rate node last warned about. */
  private badRate: string | undefined;
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
    this.credit = new TxCredit(d.clock);
    this.watches = [
      // xen_net_rate_changed: a new rate applies at once.
      new NodeWatch(d.xs, `${this.path}/${VIF_KEY.rate}`, `${this.name}-rate`, (v) => this.rateChanged(v)),
      // xen_mcast_ctrl_changed (feature-dynamic-multicast-control): sampled again on every change.
      new NodeWatch(d.xs, `${this.frontendPath}/${VIF_KEY.requestMulticastControl}`, `${this.name}-mcast`, (v) => {
        if (this.tx) this.multicastControl = readUnsigned(v, 0) !== 0;
      }),
    ];
  }

  get connected(): boolean {
    return this.tx !== null;
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
   * connect(): read what the frontend advertised (read_xenbus_vif_flags), map
   * its rings and bind its event channels (connect_data_rings), read and watch
   * the rate. False if it failed (then fatal).
   */
  private connect(): boolean {
    const xs = this.d.xs;
    const read = (k: string) => xs.tryRead(`${this.frontendPath}/${k}`);
    const flags = readFrontendFlags(read, this.frontendPath);
    if (typeof flags === 'string') return this.refuse(flags);
    let rings: DataRings;
    try {
      rings = connectDataRings(this.d, this.frontendDomid, read, this.frontendPath);
    } catch (e) {
      return this.refuse(e instanceof Error ? e.message : String(e));
    }
    this.flags = flags;
    this.rings = rings;
    this.credit = new TxCredit(this.d.clock);
    this.credit.start(this.readRate(xs.tryRead(`${this.path}/${VIF_KEY.rate}`)));
    this.tx = new VifTx(rings.tx, this.d, this, this.credit);
    this.rx = new VifRx(rings.rx, this.d, this);
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

  /** xen_net_read_rate: null is unlimited; a malformed node is warned about (once per value: the watch fires as it is set, too). */
  private readRate(node: string | undefined) {
    const { rate, error } = parseRate(node);
    if (error && node !== this.badRate) this.d.log(logWarn(`${this.name}: ${error}`));
    this.badRate = error ? node : undefined;
    return rate;
  }

  /** xen_net_rate_changed: the rate node was written or removed while connected. */
  private rateChanged(node: string | undefined): void {
    if (this.removed || !this.tx) return;
    const before = this.rateText();
    this.credit.change(this.readRate(node));
    if (this.rateText() !== before) this.d.log(logDebug(`${this.name}: rate ${before ?? 'unlimited'} -> ${this.rateText() ?? 'unlimited'}`));
  }

  /** The limit in force, as the rate node spells it ("BYTES,USEC"), or null when unlimited. */
  private rateText(): string | null {
    return this.credit.unlimited ? null : `${this.credit.bytes},${this.credit.usec}`;
  }

  /** backend_disconnect: out of the bridge, rings unmapped, queued frames dropped (counted). */
  private disconnect(): void {
    if (this.tx) this.d.onDisconnected?.(this);
    if (this.portId >= 0) this.d.bridge.removePort(this.portId);
    this.portId = -1;
    this.rx?.purge();
    this.tx = null;
    this.rx = null;
    for (const w of this.watches) w.stop();
    // xenvif_mcast_addr_list_free: a frontend that connects again lists its addresses again.
    this.mcast.clear();
    this.multicastControl = false;
    if (this.rings) releaseDataRings(this.d, this.rings);
    this.rings = null;
  }

  /** xenvif_fatal_tx_err: this frontend broke the protocol. Disconnect it alone; it stays out. */
  fatal(reason: string): void {
    this.c.disconnects++;
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

  /** TX responses pushed: tell the frontend on its TX port (its only port without split channels). */
  notifyTx(): void {
    if (this.rings && this.d.evtchn.send(this.rings.txPort)) this.c.notifiesSent++;
  }

  /** RX responses pushed: tell the frontend on its RX port. */
  notifyRx(): void {
    if (this.rings && this.d.evtchn.send(this.rings.rxPort)) this.c.notifiesSent++;
  }

  /** A frontend without feature-sg takes no frame over several RX slots. */
  get canSg(): boolean {
    return this.flags?.canSg ?? false;
  }

  /** When this vif's credit timer fires (Infinity: none pending). dom0 wakes for it. */
  nextDeadline(): number {
    return this.tx ? this.credit.timerAt : Infinity;
  }

  /** A frame from the bridge for this guest (xenvif_start_xmit). */
  deliver(addr: number, len: number, skb: number): void {
    const ram = this.d.skbs.mem.u8;
    if (!this.rx) return droppedForGuest(this, ram, addr, len, 'rxDropNotConnected');
    // A frontend that asked for multicast control gets only the multicast addresses it listed.
    if (this.multicastControl && this.mcast.filters(ram, addr)) return droppedForGuest(this, ram, addr, len, 'rxDropMcast');
    this.rx.deliver(addr, len, skb);
  }

  /** This vif's share of dom0's loop. */
  poll(): number {
    let n = 0;
    if (this.tx) n += this.tx.action();
    if (this.rx) n += this.rx.action();
    return n;
  }

  rxQueueLength(): number {
    return this.rx?.queued ?? 0;
  }

  stats() {
    this.c.mcastAddrs = this.mcast.size;
    return {
      ...this.c,
      state: this.state,
      frontendState: this.frontendState,
      fatalReason: this.fatalReason,
      history: [...this.history],
      rxQueued: this.rxQueueLength(),
      frontendFeatures: this.flags,
      splitEventChannels: this.rings ? this.rings.txPort !== this.rings.rxPort : null,
      rate: this.rateText(),
      multicastControl: this.multicastControl,
    };
  }
}
