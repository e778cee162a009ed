/**
 * The bridge port that leads to the NIC (dom0's VI 0, through the primary
 * driver). Frames go to the NIC without a copy: the skb is referenced until the
 * NIC reports the DMA done. Received frames enter the bridge straight from the
 * driver's RX buffer, which is reposted when forwarding returns.
 *
 * Checksums: a partial one goes to the NIC to complete (its TX checksum
 * offload) or, when the driver has none, is completed here on a copy
 * (skb_checksum_help): nothing leaves by the wire partial. A frame the NIC
 * checked on RX enters the bridge known good.
 */
import { DIR_INBOUND, DIR_OUTBOUND, declareCounters, offTap, type Counters, type Tap } from '@xsim/hypervisor';
import { completeL4Checksum, tapFrame } from '@xsim/netstack';
import type { Bridge, BridgePort } from './bridge.ts';
import { CSUM_NONE, CSUM_PARTIAL, CSUM_UNNECESSARY, type CsumState, type SkbPool } from './skb.ts';

/** What netback needs of the NIC's primary driver (implemented by @xsim/nic's NetDriver and VqNetDriver). */
export interface UplinkDriver {
  /** `csum`: the frame's checksum is partial, for the NIC to complete (only while csumOffload). */
  transmit(addr: number, len: number, cookie: number, csum?: boolean): boolean;
  /** onRx's `validated`: the NIC checked the frame's TCP or UDP checksum and found it good. */
  poll(budget: number, onRx: (ram: Uint8Array, off: number, len: number, validated?: boolean) => void, onTxDone: (cookie: number) => void): number;
  /** The NIC completes partial checksums on TX (its VI's checksum offload is on); absent: no. */
  readonly csumOffload?: boolean;
}

export const UPLINK_COUNTERS = declareCounters('uplink', {
  txPackets: { kind: 'event', help: 'frames handed to the NIC' },
  rxPackets: { kind: 'event', help: 'frames received from the NIC' },
  txDropBacklogFull: { kind: 'drop', help: "frames dropped: the NIC's TX ring and our backlog were both full" },
  txDropNoSkb: { kind: 'drop', help: 'frames dropped: no skb was free to hold them' },
  txCsumOffloaded: { kind: 'event', help: 'frames handed to the NIC with a partial checksum, for its TX checksum offload to complete' },
  csumCompletedSw: { kind: 'event', help: "partial checksums completed here in software, on a copy: the NIC's TX checksum offload is off" },
  txDropCsum: { kind: 'drop', help: 'frames with a partial checksum that could not be completed (no IPv4 TCP or UDP frame)' },
  rxCsumValidated: { kind: 'event', help: 'frames received that the NIC found with a good TCP or UDP checksum (enter the bridge known good)' },
});

export type UplinkStats = Counters<typeof UPLINK_COUNTERS.decls>;

const BACKLOG_MAX = 1024;

export class UplinkPort implements BridgePort {
  readonly name = 'uplink';
  portId = -1;
  private readonly backlog: number[] = [];
  /** Each backlogged frame's: is its checksum partial, for the NIC? */
  private readonly backlogCsum: boolean[] = [];
  /** Backlogged frames the tap saw already (when the NIC's ring was full): not seen twice. */
  private readonly tappedEarly = new Set<number>();
  private backlogHead = 0;
  readonly stats: UplinkStats = UPLINK_COUNTERS.zero();
  private readonly onRx: (ram: Uint8Array, off: number, len: number, validated?: boolean) => void;
  private readonly onTxDone: (cookie: number) => void;

  constructor(
    private readonly driver: UplinkDriver,
    private readonly skbs: SkbPool,
    private readonly bridge: Bridge,
    /** Capture point: frames from the NIC (inbound) and to it (outbound). */
    readonly tap: Tap = offTap('uplink'),
  ) {
    this.onRx = (ram, off, len, validated) => {
      this.stats.rxPackets++;
      if (validated) this.stats.rxCsumValidated++;
      if (this.tap.on) this.tap.frame(ram, off, len, DIR_INBOUND);
      this.bridge.forward(this.portId, off, len, -1, validated ? CSUM_UNNECESSARY : CSUM_NONE);
    };
    this.onTxDone = (skb) => this.skbs.put(skb);
  }

  attach(): void {
    this.portId = this.bridge.addPort(this);
  }

  deliver(addr: number, len: number, skb: number, csum: CsumState = CSUM_NONE): void {
    const partial = csum === CSUM_PARTIAL;
    // Completed in software on a copy (the frame may sit in other ports' queues too), or kept for the NIC to complete.
    const soft = partial && this.driver.csumOffload !== true;
    let keep = skb;
    if (keep >= 0 && !soft) this.skbs.get(keep);
    else {
      keep = this.skbs.clone(addr, len);
      if (keep < 0) {
        this.stats.txDropNoSkb++;
        if (this.tap.on) this.tap.drop(this.skbs.mem.u8, addr, len, DIR_OUTBOUND, 'uplink.txDropNoSkb');
        return;
      }
      if (soft && !this.complete(keep, len)) return;
    }
    const nicCsum = partial && !soft;
    if (nicCsum) this.stats.txCsumOffloaded++;
    this.skbs.len[keep] = len;
    if (this.backlog.length - this.backlogHead === 0) {
      // Seen at the tap before the NIC, whose thread may take it at once, so times stay in hop order.
      const tapped = this.tap.on;
      if (tapped) tapFrame(this.tap, this.skbs.mem.u8, this.skbs.addr(keep), len, DIR_OUTBOUND, nicCsum);
      if (this.driver.transmit(this.skbs.addr(keep), len, keep, nicCsum)) {
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
    this.backlogCsum.push(nicCsum);
  }

  /** skb_checksum_help on our own copy; false (the copy freed, counted) if it is no frame a checksum can be completed over. */
  private complete(skb: number, len: number): boolean {
    const at = this.skbs.addr(skb);
    if (completeL4Checksum(this.skbs.mem.u8, at, len)) {
      this.stats.csumCompletedSw++;
      return true;
    }
    this.stats.txDropCsum++;
    if (this.tap.on) this.tap.drop(this.skbs.mem.u8, at, len, DIR_OUTBOUND, 'uplink.txDropCsum');
    this.skbs.put(skb);
    return false;
  }

  poll(budget = 64): number {
    let work = this.driver.poll(budget, this.onRx, this.onTxDone);
    while (this.backlogHead < this.backlog.length) {
      const skb = this.backlog[this.backlogHead];
      const nicCsum = this.backlogCsum[this.backlogHead];
      if (!this.driver.transmit(this.skbs.addr(skb), this.skbs.len[skb], skb, nicCsum)) break;
      this.backlogHead++;
      this.stats.txPackets++;
      if (this.tap.on && !this.tappedEarly.delete(skb)) tapFrame(this.tap, this.skbs.mem.u8, this.skbs.addr(skb), this.skbs.len[skb], DIR_OUTBOUND, nicCsum);
      work++;
    }
    if (this.backlogHead === this.backlog.length) {
      this.backlog.length = 0;
      this.backlogCsum.length = 0;
      this.backlogHead = 0;
    }
    return work;
  }

  backlogLength(): number {
    return this.backlog.length - this.backlogHead;
  }
}
