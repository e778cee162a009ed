/**
 * An L2 switch between hosts' NICs (and other switches): ports, MAC learning,
 * flooding of broadcast, multicast and unknown unicast, per-port counters,
 * and every frame it does not forward in a named counter. Frames are handed
 * on synchronously inside the NIC worker, as views into the sender's FIFO:
 * a port that keeps one copies it (a NIC DMAs it into a VI).
 */
import { declareCounters, readMac, type Counters } from '@xsim/hypervisor';
import type { WireEnd } from './hw-nic.ts';

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

  constructor(
    readonly name: string,
    readonly portCount: number,
  ) {
    this.peers = new Array(portCount).fill(null);
    this.ports = Array.from({ length: portCount }, () => SWITCH_PORT_COUNTERS.zero());
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
      this.c.swDropUnwired++;
      return false;
    }
    this.ports[port].txFrames++;
    p(ram, off, len);
    return true;
  }

  private receive(ingress: number, ram: Uint8Array, off: number, len: number): void {
    this.ports[ingress].rxFrames++;
    if (len < 14 || ram[off + 6] & 1) {
      this.c.swDropBadSource++;
      return;
    }
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
        if (out === ingress) {
          this.c.swDropSamePort++;
          return;
        }
        this.c.swForwarded++;
        this.send(out, ram, off, len);
        return;
      }
    }
    let n = 0;
    for (let p = 0; p < this.portCount; p++) {
      if (p === ingress || !this.peers[p]) continue;
      this.ports[p].txFrames++;
      this.peers[p]!(ram, off, len);
      n++;
    }
    if (n === 0) this.c.swDropNoPort++;
    else {
      this.c.swFlooded++;
      this.c.swFloodCopies += n - 1;
    }
  }

  stats(): Record<string, unknown> {
    return { name: this.name, ...this.c, macs: this.fdb.size, ports: this.ports.map((p, i) => ({ port: i, wired: this.peers[i] !== null, ...p })) };
  }
}
