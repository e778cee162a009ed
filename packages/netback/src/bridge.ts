/**
 * dom0's software bridge (xenbr0): MAC learning between the vifs, dom0's own
 * stack and the uplink. Frames stay where they are in dom0 RAM; a port that
 * needs to keep one past deliver() takes a reference on its skb (or copies a
 * transient one).
 */
import { DIR_INBOUND, declareCounters, offTap, readMac, type Counters, type Tap } from '@xsim/hypervisor';
import { CSUM_NONE, type CsumState } from './skb.ts';

export interface BridgePort {
  readonly name: string;
  /**
   * A frame at [addr, addr+len) of dom0 RAM. `skb` >= 0 names a pooled buffer
   * the port may keep with SkbPool.get(); -1 means the memory is only valid
   * during this call. `csum`: what is known of its checksum (skb.ts: a
   * partial one is for the port to complete, on a copy, if what lies behind
   * it cannot).
   */
  deliver(addr: number, len: number, skb: number, csum: CsumState): void;
  /**
   * The port takes a TCPv4 GSO frame whole (the egress device has
   * NETIF_F_TSO: a vif whose frontend wrote feature-gso-tcpv4). Absent or
   * false: the sender segments it in software first (validate_xmit_skb).
   */
  takesGso?(): boolean;
  /** A GSO frame for this port, asked of it only after takesGso(); it takes a reference on each skb it keeps. */
  deliverGso?(f: GsoFrame): void;
}

/**
 * A TCPv4 GSO frame held whole in dom0 (an skb with frags and gso_size):
 * its `len` octets in order over `skbs`, each full (SkbPool.slotSize) but
 * the last; `mss` its gso_size. Its headers are in the first skb.
 */
export interface GsoFrame {
  readonly skbs: readonly number[];
  readonly len: number;
  readonly mss: number;
  readonly csum: CsumState;
}

export const BRIDGE_COUNTERS = declareCounters('bridge', {
  forwarded: { kind: 'event', help: 'frames forwarded to the one port their destination was learnt on' },
  flooded: { kind: 'event', help: 'frames flooded (broadcast, multicast, unknown unicast)' },
  floodCopies: { kind: 'copy', help: 'extra copies flooding made: a frame flooded to n ports is n - 1 more frames in the system' },
  learned: { kind: 'event', help: 'source MACs learnt on a port' },
  moved: { kind: 'event', help: 'source MACs that moved to another port' },
  dropSamePort: { kind: 'drop', help: "known destination is the port the frame came from: nothing to do (as Linux's bridge)" },
  dropNoPort: { kind: 'drop', help: 'nowhere to send: no other port exists' },
  dropBadSource: { kind: 'drop', help: 'source MAC is broadcast/multicast: invalid, never forwarded' },
  dropStaticSource: {
    kind: 'drop',
    help: "source MAC is a vif's own (a static entry) but the frame came in on another port: a spoof, never learnt, never forwarded",
  },
});

export type BridgeStats = Counters<typeof BRIDGE_COUNTERS.decls>;

const NO_PORT = -1;

export class Bridge {
  /** Capture point of the bridge itself (`host/bridge`): the frames it drops, each with its counter's name and the port it came in on. */
  tap: Tap = offTap('bridge');
  private readonly ports: (BridgePort | null)[] = [];
  /**
   * Per port: does unknown unicast flood to it (Linux's BR_FLOOD)? Off on vif
   * ports: every vif's MAC is a static entry, so a unicast frame whose
   * destination the bridge does not know cannot be for a guest, and no guest
   * is sent a copy of someone else's traffic. Broadcast and multicast still
   * reach every port.
   */
  private readonly unicastFlood: boolean[] = [];
  private readonly fdb = new Map<number, number>();
  /**
   * Static entries (as `bridge fdb add ... static`, which Xen's vif scripts
   * amount to): each vif's configured MAC on its port. Learning never moves
   * one, so no other port can draw a guest's traffic by sending with its MAC.
   */
  private readonly statics = new Map<number, number>();
  readonly stats: BridgeStats = BRIDGE_COUNTERS.zero();

  /**
   * Told when a MAC is learned on a port, moves to it (from: the port it was
   * on) or is pinned there: accelerators track the uplink's MACs, which are
   * fast-path destinations only while they stay behind the uplink.
   */
  onLearn: (mac: number, port: number, from: number | undefined) => void = () => {};
  /** Told when a learnt MAC is forgotten (its guest left or moved elsewhere): `port` is where it was. */
  onForget: (mac: number, port: number) => void = () => {};

  constructor(private readonly ram: Uint8Array) {}

  addPort(port: BridgePort, o: { unicastFlood?: boolean } = {}): number {
    let id = this.ports.indexOf(null);
    if (id < 0) id = this.ports.push(port) - 1;
    else this.ports[id] = port;
    this.unicastFlood[id] = o.unicastFlood ?? true;
    return id;
  }

  removePort(id: number): void {
    if (!this.ports[id]) return;
    this.ports[id] = null;
    for (const [mac, p] of this.fdb) if (p === id) this.fdb.delete(mac);
    for (const [mac, p] of this.statics) if (p === id) this.statics.delete(mac);
  }

  /**
   * Forget a learnt MAC (a guest that was destroyed or moved elsewhere): its
   * frames go nowhere stale. A pinned MAC stays pinned: it is a vif of this
   * bridge and leaves with its port.
   */
  forget(mac: number): boolean {
    if (this.statics.has(mac)) return false;
    const port = this.fdb.get(mac);
    if (port === undefined) return false;
    this.fdb.delete(mac);
    this.onForget(mac, port);
    return true;
  }

  /** Pin `mac` to `port` (a vif's configured MAC while it is connected). */
  addStatic(mac: number, port: number): void {
    const from = this.fdb.get(mac);
    this.statics.set(mac, port);
    this.fdb.set(mac, port);
    // A guest arriving (migrated in) whose MAC was learnt behind the uplink while it lived elsewhere.
    if (from !== port) this.onLearn(mac, port, from);
  }

  get portCount(): number {
    return this.ports.filter((p) => p !== null).length;
  }

  lookup(mac: number): number {
    return this.fdb.get(mac) ?? NO_PORT;
  }

  macsOn(port: number): number[] {
    const out: number[] = [];
    for (const [mac, p] of this.fdb) if (p === port) out.push(mac);
    return out;
  }

  fdbEntries(): { mac: number; port: string; static: boolean }[] {
    return [...this.fdb].map(([mac, p]) => ({ mac, port: this.ports[p]?.name ?? '?', static: this.statics.get(mac) === p }));
  }

  /** Count a drop, and capture it at the port it came in on with the counter's name. */
  private dropped(ingress: number, addr: number, len: number, counter: 'dropBadSource' | 'dropStaticSource' | 'dropSamePort' | 'dropNoPort'): 0 {
    this.stats[counter]++;
    const t = this.tap;
    if (t.on) t.drop(this.ram, addr, len, DIR_INBOUND, `bridge.${counter} (in on ${this.ports[ingress]?.name ?? `port ${ingress}`})`);
    return 0;
  }

  /** Why a frame from `ingress` with the source MAC at `addr + 6` is never forwarded, or ''. */
  private badSource(ingress: number, addr: number): '' | 'dropBadSource' | 'dropStaticSource' {
    if (this.ram[addr + 6] & 1) return 'dropBadSource';
    const pinned = this.statics.get(readMac(this.ram, addr + 6));
    return pinned !== undefined && pinned !== ingress ? 'dropStaticSource' : '';
  }

  private learn(ingress: number, src: number): void {
    const known = this.fdb.get(src);
    if (known === ingress) return;
    if (known === undefined) this.stats.learned++;
    else this.stats.moved++;
    this.fdb.set(src, ingress);
    this.onLearn(src, ingress, known);
  }

  /** The port a GSO frame from `ingress` with its MACs at `addr` would go to whole, or null (it would be segmented). */
  gsoPort(ingress: number, addr: number): BridgePort | null {
    if ((this.ram[addr] & 1) !== 0 || this.badSource(ingress, addr)) return null;
    const out = this.fdb.get(readMac(this.ram, addr));
    const port = out === undefined || out === ingress ? null : this.ports[out];
    return port?.deliverGso && port.takesGso?.() ? port : null;
  }

  /**
   * A GSO frame from `ingress` whose headers are at `addr`, forwarded whole
   * if its destination is one known unicast port that takes GSO frames.
   * False: nothing was done (the caller segments it and forwards each
   * segment, which the bridge then counts as any frame).
   */
  forwardGso(ingress: number, addr: number, f: GsoFrame): boolean {
    const port = this.gsoPort(ingress, addr);
    if (!port?.deliverGso) return false;
    this.learn(ingress, readMac(this.ram, addr + 6));
    this.stats.forwarded++;
    port.deliverGso(f);
    return true;
  }

  /**
   * Forward a frame that arrived on port `ingress`, its checksum state with
   * it. Returns how many ports it was delivered to (0 = dropped, and counted).
   */
  forward(ingress: number, addr: number, len: number, skb: number, csum: CsumState = CSUM_NONE): number {
    const r = this.ram;
    const bad = this.badSource(ingress, addr);
    if (bad) return this.dropped(ingress, addr, len, bad);
    this.learn(ingress, readMac(r, addr + 6));
    if ((r[addr] & 1) === 0) {
      const dst = readMac(r, addr);
      const out = this.fdb.get(dst);
      if (out !== undefined) {
        if (out === ingress) return this.dropped(ingress, addr, len, 'dropSamePort');
        const port = this.ports[out];
        if (port) {
          this.stats.forwarded++;
          port.deliver(addr, len, skb, csum);
          return 1;
        }
      }
    }
    // Broadcast or multicast: flood to every port; unknown unicast: to the ports that take it.
    const group = (r[addr] & 1) !== 0;
    let n = 0;
    for (let i = 0; i < this.ports.length; i++) {
      const p = this.ports[i];
      if (p && i !== ingress && (group || this.unicastFlood[i])) {
        p.deliver(addr, len, skb, csum);
        n++;
      }
    }
    if (n === 0) this.dropped(ingress, addr, len, 'dropNoPort');
    else {
      this.stats.flooded++;
      this.stats.floodCopies += n - 1;
    }
    return n;
  }
}
