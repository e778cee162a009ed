/**
 * An L2 switch between hosts' NICs (and other switches): ports, MAC learning,
 * flooding of broadcast, multicast and unknown unicast, per-port counters,
 * and every frame it does not forward in a named counter. Frames are handed
 * on synchronously inside the NIC worker, as views into the sender's FIFO:
 * a port that keeps one copies it (a NIC DMAs it into a VI).
 */
import { DIR_INBOUND, DIR_OUTBOUND, declareCounters, offTap, readMac, type CaptureSink, type Counters, type Tap } from '@xsim/hypervisor';
import type { WireEnd } from './nic-spec.ts';

export const SWITCH_PORT_COUNTERS = declareCounters('switch port', {
  rxFrames: { kind: 'event', help: 'frames received on the port' },
  txFrames: { kind: 'event', help: 'frames sent out of the port' },
});

export const SWITCH_COUNTERS = declareCounters('switch', {
  swForwarded: { kind: 'event', help: 'frames forwarded to the one port their destination was learnt on' },
  swFlooded: { kind: 'event', help: 'frames flooded (broadcast, multicast, unknown unicast)' },
  swFloodCopies: { kind: 'copy', help: 'extra copies flooding made: a frame flooded to n ports is n - 1 more frames in the system' },
  swLearned: { kind: 'event', help: 'source MACs learnt on a port' },
  swMoved: { kind: 'event', help: 'source MACs that moved to another port' },
  swDropSamePort: { kind: 'drop', help: 'known destination is the port the frame came from: not sent back' },
  swDropBadSource: { kind: 'drop', help: 'source MAC is broadcast/multicast: invalid, never forwarded' },
  swDropNoPort: { kind: 'drop', help: 'nowhere to send: no other port is wired' },
  swDropUnwired: { kind: 'drop', help: 'sent to a port with nothing wired to it' },
});

export type SwitchCounters = Counters<typeof SWITCH_COUNTERS.decls>;
type PortCounters = Counters<typeof SWITCH_PORT_COUNTERS.decls>;

export class L2Switch {
  /** The far end of each port's wire (null: nothing plugged in). */
  private readonly peers: (WireEnd | null)[];
  private readonly fdb = new Map<number, number>();
  readonly c: SwitchCounters = SWITCH_COUNTERS.zero();
  readonly ports: PortCounters[];
  /** Capture points, one per port (`<switch>/port<N>`): frames in from its wire and out to it. */
  private taps: Tap[];

  constructor(
    readonly name: string,
    readonly portCount: number,
  ) {
    this.peers = new Array(portCount).fill(null);
    this.ports = Array.from({ length: portCount }, () => SWITCH_PORT_COUNTERS.zero());
    this.taps = Array.from({ length: portCount }, () => offTap());
  }

  tapInto(sink: CaptureSink): void {
    this.taps = this.taps.map((_, i) => sink.tap(`${this.name}/port${i}`));
  }

  private dropped(
    port: number,
    ram: Uint8Array,
    off: number,
    len: number,
    dir: number,
    counter: 'swDropSamePort' | 'swDropBadSource' | 'swDropNoPort' | 'swDropUnwired',
  ): void {
    this.c[counter]++;
    const t = this.taps[port];
    if (t.on) t.drop(ram, off, len, dir, `switches.${this.name}.${counter}`);
  }

  /** Plug a wire into `port`; returns what the other end hands frames to. */
  plug(port: number, peer: WireEnd): WireEnd {
    if (!(port >= 0 && port < this.portCount)) throw new Error(`${this.name}: no port ${port} (it has ${this.portCount})`);
    if (this.peers[port]) throw new Error(`${this.name}: port ${port} is already wired`);
    this.peers[port] = peer;
    return (ram, off, len) => this.receive(port, ram, off, len);
  }

  /** Forget what was learnt on a port, or a MAC anywhere (a guest that left, moved or was destroyed). */
  forget(mac: number): boolean {
    return this.fdb.delete(mac);
  }

  macs(): number {
    return this.fdb.size;
  }

  private send(port: number, ram: Uint8Array, off: number, len: number): boolean {
    const p = this.peers[port];
    if (!p) {
      this.dropped(port, ram, off, len, DIR_OUTBOUND, 'swDropUnwired');
      return false;
    }
    this.ports[port].txFrames++;
    if (this.taps[port].on) this.taps[port].frame(ram, off, len, DIR_OUTBOUND);
    p(ram, off, len);
    return true;
  }

  /** A frame in on `ingress`: captured there once (with the counter's name if it is dropped here). */
  private receive(ingress: number, ram: Uint8Array, off: number, len: number): void {
    this.ports[ingress].rxFrames++;
    const tap = this.taps[ingress];
    if (len < 14 || ram[off + 6] & 1) return this.dropped(ingress, ram, off, len, DIR_INBOUND, 'swDropBadSource');
    const src = readMac(ram, off + 6);
    const known = this.fdb.get(src);
    if (known !== ingress) {
      if (known === undefined) this.c.swLearned++;
      else this.c.swMoved++;
      this.fdb.set(src, ingress);
    }
    if ((ram[off] & 1) === 0) {
      const out = this.fdb.get(readMac(ram, off));
      if (out !== undefined) {
        if (out === ingress) return this.dropped(ingress, ram, off, len, DIR_INBOUND, 'swDropSamePort');
        if (tap.on) tap.frame(ram, off, len, DIR_INBOUND);
        this.c.swForwarded++;
        this.send(out, ram, off, len);
        return;
      }
    }
    let wired = 0;
    for (let p = 0; p < this.portCount; p++) if (p !== ingress && this.peers[p]) wired++;
    if (wired === 0) return this.dropped(ingress, ram, off, len, DIR_INBOUND, 'swDropNoPort');
    if (tap.on) tap.frame(ram, off, len, DIR_INBOUND);
    for (let p = 0; p < this.portCount; p++) {
      if (p === ingress || !this.peers[p]) continue;
      this.ports[p].txFrames++;
      if (this.taps[p].on) this.taps[p].frame(ram, off, len, DIR_OUTBOUND);
      this.peers[p]!(ram, off, len);
    }
    this.c.swFlooded++;
    this.c.swFloodCopies += wired - 1;
  }

  stats() {
    return { name: this.name, ...this.c, macs: this.fdb.size, ports: this.ports.map((p, i) => ({ port: i, wired: this.peers[i] !== null, ...p })) };
  }
}
