/**
 * The bridge port that leads to the NIC (dom0's VI 0, through the primary
 * driver). Frames go to the NIC without a copy: the skb is referenced until the
 * NIC reports the DMA done. Received frames enter the bridge straight from the
 * driver's RX buffer, which is reposted when forwarding returns.
 */
import { DIR_INBOUND, DIR_OUTBOUND, declareCounters, offTap, type Counters, type Tap } from '@xsim/hypervisor';
import type { Bridge, BridgePort } from './bridge.ts';
import type { SkbPool } from './skb.ts';

/** What netback needs of the NIC's primary driver (implemented by @xsim/nic's NetDriver). */
export interface UplinkDriver {
  transmit(addr: number, len: number, cookie: number): boolean;
  poll(budget: number, onRx: (ram: Uint8Array, off: number, len: number) => void, onTxDone: (cookie: number) => void): number;
}

export const UPLINK_COUNTERS = declareCounters('uplink', {
  txPackets: { kind: 'event', help: 'frames handed to the NIC' },
  rxPackets: { kind: 'event', help: 'frames received from the NIC' },
  txDropBacklogFull: { kind: 'drop', help: "frames dropped: the NIC's TX ring and our backlog were both full" },
  txDropNoSkb: { kind: 'drop', help: 'frames dropped: no skb was free to hold them' },
});

export type UplinkStats = Counters<typeof UPLINK_COUNTERS.decls>;

const BACKLOG_MAX = 1024;

export class UplinkPort implements BridgePort {
  readonly name = 'uplink';
  portId = -1;
  private readonly backlog: number[] = [];
  /** Backlogged frames the tap saw already (when the NIC's ring was full): not seen twice. */
  private readonly tappedEarly = new Set<number>();
  private backlogHead = 0;
  readonly stats: UplinkStats = UPLINK_COUNTERS.zero();
  private readonly onRx: (ram: Uint8Array, off: number, len: number) => void;
  private readonly onTxDone: (cookie: number) => void;

  constructor(
    private readonly driver: UplinkDriver,
    private readonly skbs: SkbPool,
    private readonly bridge: Bridge,
    /** Capture point: frames from the NIC (inbound) and to it (outbound). */
    readonly tap: Tap = offTap('uplink'),
  ) {
    this.onRx = (ram, off, len) => {
      this.stats.rxPackets++;
      if (this.tap.on) this.tap.frame(ram, off, len, DIR_INBOUND);
      this.bridge.forward(this.portId, off, len, -1);
    };
    this.onTxDone = (skb) => this.skbs.put(skb);
  }

  attach(): void {
    this.portId = this.bridge.addPort(this);
  }

  deliver(addr: number, len: number, skb: number): void {
    let keep = skb;
    if (keep >= 0) this.skbs.get(keep);
    else {
      keep = this.skbs.clone(addr, len);
      if (keep < 0) {
        this.stats.txDropNoSkb++;
        if (this.tap.on) this.tap.drop(this.skbs.mem.u8, addr, len, DIR_OUTBOUND, 'uplink.txDropNoSkb');
        return;
      }
    }
    this.skbs.len[keep] = len;
    if (this.backlog.length - this.backlogHead === 0) {
      // Seen at the tap before the NIC, whose thread may take it at once, so times stay in hop order.
      const tapped = this.tap.on;
      if (tapped) this.tap.frame(this.skbs.mem.u8, this.skbs.addr(keep), len, DIR_OUTBOUND);
      if (this.driver.transmit(this.skbs.addr(keep), len, keep)) {
        this.stats.txPackets++;
        return;
      }
      if (tapped) this.tappedEarly.add(keep);
    }
    if (this.backlog.length - this.backlogHead >= BACKLOG_MAX) {
      if (this.tap.on) this.tap.drop(this.skbs.mem.u8, this.skbs.addr(keep), len, DIR_OUTBOUND, 'uplink.txDropBacklogFull');
      this.skbs.put(keep);
      this.stats.txDropBacklogFull++;
      return;
    }
    this.backlog.push(keep);
  }

  poll(budget = 64): number {
    let work = this.driver.poll(budget, this.onRx, this.onTxDone);
    while (this.backlogHead < this.backlog.length) {
      const skb = this.backlog[this.backlogHead];
      if (!this.driver.transmit(this.skbs.addr(skb), this.skbs.len[skb], skb)) break;
      this.backlogHead++;
      this.stats.txPackets++;
      if (this.tap.on && !this.tappedEarly.delete(skb)) this.tap.frame(this.skbs.mem.u8, this.skbs.addr(skb), this.skbs.len[skb], DIR_OUTBOUND);
      work++;
    }
    if (this.backlogHead === this.backlog.length) {
      this.backlog.length = 0;
      this.backlogHead = 0;
    }
    return work;
  }

  backlogLength(): number {
    return this.backlog.length - this.backlogHead;
  }
}
