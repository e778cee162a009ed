/**
 * dom0's primary driver for its NIC (the sfc-like "net driver"): owns VI 0,
 * registers all of dom0's RAM in the buffer table so any skb can be sent
 * without a copy, keeps RX buffers big enough for a whole frame posted, and
 * turns events into RX frames and TX completions.
 */
import {
  WakeWord,
  declareCounters,
  type Counters,
  type EventChannels,
  type FrameAllocator,
  type GuestMemory,
  type McdiOps,
  type RpcEndpoint,
} from '@xsim/hypervisor';
import {
  EV_FLAGS,
  EV_INDEX,
  EV_LEN,
  EV_RX,
  EV_RX_CONT,
  EV_RX_CSUM_OK,
  EV_TX,
  EV_TYPE,
  FAULT_NAMES,
  TXD_CSUM,
  VI_RING_PAGES,
  VI_RXQ_SIZE,
  VI_STATE_FAULTED,
  VI_TXQ_SIZE,
} from './layout.ts';
import { ViQueues } from './vi-queues.ts';
import type { Driverlink } from './driverlink.ts';
import { primaryStats, releasePrimary } from './primary-driver.ts';

export interface NetDriverOptions {
  mcdi: RpcEndpoint<McdiOps>;
  /** The NIC's wake line (rung only when a doorbell says the NIC sleeps). */
  nicWake: { sab: SharedArrayBuffer; offset: number };
  mem: GuestMemory;
  frames: FrameAllocator;
  evtchn: EventChannels;
  mac: number;
  mtu: number;
  rxBuffers?: number;
  /** Secondary drivers' data-path intercepts run on this driver's RX and TX. */
  driverlink?: Driverlink;
  /** Enable VI 0's checksum offload (default on, as sfc's NETIF_F_IP_CSUM / RXCSUM); off: ethtool -K tx off rx off. */
  csum?: boolean;
}

export const NET_DRIVER_COUNTERS = declareCounters('nic primary driver', {
  txPosted: { kind: 'event', help: 'frames posted on VI 0' },
  txCompleted: { kind: 'event', help: 'VI 0 TX completions' },
  txRingFull: { kind: 'event', help: "times VI 0's TX ring was full (the caller keeps the frame)" },
  rxFrames: { kind: 'event', help: 'frames received on VI 0' },
  rxScatterDrops: { kind: 'drop', help: 'frames that did not fit one RX buffer (cannot happen within the MTU): dropped' },
  // vetoedRx, vetoedTx (shown in stats()) are declared and stored by driverlink (DRIVERLINK_COUNTERS).
});

export type NetDriverCounters = Counters<typeof NET_DRIVER_COUNTERS.decls>;

export interface NetDriverStats extends NetDriverCounters {
  viState: number;
  fault: string;
}

/** RX buffer size of dom0's primary driver at an MTU (a whole frame, 64-byte aligned). */
export function netDriverRxBuf(mtu: number): number {
  return Math.ceil((mtu + 18) / 64) * 64;
}

/** dom0 pages the primary driver takes for its full RX ring at an MTU. */
export function netDriverPages(mtu: number): number {
  return Math.ceil((VI_RXQ_SIZE * netDriverRxBuf(mtu)) / 4096);
}

/** A received frame; `validated`: the NIC checked its TCP or UDP checksum good. */
export type RxCallback = (ram: Uint8Array, off: number, len: number, validated?: boolean) => void;
export type TxDoneCallback = (cookie: number) => void;

export class NetDriver {
  private readonly q: ViQueues;
  private readonly bufBase: number;
  private readonly rxAddr: Int32Array;
  private readonly rxSlotBuf = new Int32Array(VI_RXQ_SIZE).fill(-1);
  private readonly txCookie = new Int32Array(VI_TXQ_SIZE);
  private txDone = 0;
  private rxBroken = false;
  private readonly rxBufSize: number;
  private readonly ram: Uint8Array;
  private readonly port: number;
  /** Frames a secondary driver vetoed on TX: completed at the next poll without reaching the NIC. */
  private readonly vetoedCookies: number[] = [];
  linkUp = true;
  mtu: number;
  /** VI 0's checksum offload is on: partial checksums may be handed to transmit, received frames come checked. */
  readonly csumOffload: boolean;
  readonly s: NetDriverCounters = NET_DRIVER_COUNTERS.zero();

  private constructor(private readonly o: NetDriverOptions) {
    const domid = o.evtchn.domid;
    this.mtu = o.mtu;
    this.ram = o.mem.u8;
    // VI 0's rings are pages of dom0's own RAM, registered with the rest of it in the buffer table.
    const ringFrame = o.frames.allocRange(VI_RING_PAGES);
    ViQueues.clearRings(this.ram, ringFrame * 4096);
    const frames: number[] = [];
    for (let f = 0; f < o.mem.pages; f++) frames.push(f);
    this.bufBase = o.mcdi.requestSync('buffer_table_alloc', { vi: 0, domid, frames });
    this.port = o.evtchn.allocPirq();
    // Completions are polled from the domain's turns; the interrupt only makes it runnable.
    o.evtchn.bindHandler(this.port, () => {});
    const irq = o.evtchn.deviceIrq(domid, this.port);
    this.csumOffload = o.csum !== false;
    const r = o.mcdi.requestSyncShared('vi_init', { vi: 0, domid, rings: this.bufBase + ringFrame, irq: true, macs: null, csum: this.csumOffload }, 10_000, [
      irq.binding,
      irq.doorbell,
    ]);
    const wake = new WakeWord(o.nicWake.sab, o.nicWake.offset);
    this.q = new ViQueues(r.shared[0], o.mem.sab, ringFrame * 4096, () => wake.kick());
    this.txDone = this.q.txProdPvt;

    this.rxBufSize = netDriverRxBuf(o.mtu);
    // A full RX ring by default, as a real driver keeps: a burst the size of a sender's window must fit.
    const count = Math.min(o.rxBuffers ?? VI_RXQ_SIZE, VI_RXQ_SIZE);
    const base = o.frames.allocRange(Math.ceil((count * this.rxBufSize) / 4096)) * 4096;
    this.rxAddr = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      this.rxAddr[i] = base + i * this.rxBufSize;
      this.postRx(i);
    }
    this.q.pushRx();
  }

  static probe(o: NetDriverOptions): NetDriver {
    return new NetDriver(o);
  }

  private postRx(buf: number): void {
    const a = this.rxAddr[buf];
    const idx = this.q.postRx(this.bufBase + Math.floor(a / 4096), a % 4096, this.rxBufSize);
    this.rxSlotBuf[idx & (VI_RXQ_SIZE - 1)] = buf;
  }

  /**
   * Slots we may fill: counted against completions we have processed, not the
   * NIC's consumer index, since a slot's cookie must live until its EV_TX.
   */
  txFree(): number {
    return VI_TXQ_SIZE - ((this.q.txProdPvt - this.txDone) >>> 0);
  }

  /**
   * Send [addr, addr+len) of dom0 RAM; `cookie` comes back through onTxDone
   * when the DMA is done. `csum`: its checksum is partial, for the NIC to
   * complete (TXD_CSUM; only while csumOffload).
   */
  transmit(addr: number, len: number, cookie: number, csum = false): boolean {
    if (this.o.driverlink?.vetoTx(this.ram, addr, len)) {
      this.vetoedCookies.push(cookie);
      return true;
    }
    if (this.txFree() < 1 || this.q.state === VI_STATE_FAULTED) {
      this.s.txRingFull++;
      return false;
    }
    const idx = this.q.postTx(this.bufBase + Math.floor(addr / 4096), addr % 4096, len, csum ? TXD_CSUM : 0);
    this.txCookie[idx & (VI_TXQ_SIZE - 1)] = cookie;
    this.q.pushTx();
    this.s.txPosted++;
    return true;
  }

  poll(budget: number, onRx: RxCallback, onTxDone: TxDoneCallback): number {
    const q = this.q;
    const dv = q.dv;
    let n = 0;
    while (this.vetoedCookies.length > 0) {
      onTxDone(this.vetoedCookies.shift()!);
      n++;
    }
    let taken = 0;
    for (let o = q.nextEvent(); o >= 0 && n < budget; o = q.nextEvent()) {
      const type = dv.getUint16(o + EV_TYPE, true);
      const index = dv.getUint32(o + EV_INDEX, true);
      const flags = dv.getUint16(o + EV_FLAGS, true);
      const len = dv.getUint16(o + EV_LEN, true);
      q.takeEvent();
      taken++;
      n++;
      if (type === EV_TX) {
        // Completions up to `index`, never past what we posted (the NIC's word is checked, not trusted).
        if ((index - this.txDone) >>> 0 > (q.txProdPvt - this.txDone) >>> 0) continue;
        while (this.txDone !== index) {
          onTxDone(this.txCookie[this.txDone & (VI_TXQ_SIZE - 1)]);
          this.txDone = (this.txDone + 1) >>> 0;
          this.s.txCompleted++;
        }
      } else if (type === EV_RX) {
        const buf = this.rxSlotBuf[index & (VI_RXQ_SIZE - 1)];
        const more = (flags & EV_RX_CONT) !== 0;
        if (buf < 0 || len > this.rxBufSize) continue;
        if (more || this.rxBroken) {
          // Our buffers hold any frame within the MTU; a scattered one is counted and dropped.
          if (!more) this.s.rxScatterDrops++;
          this.rxBroken = more;
        } else if (!this.o.driverlink?.vetoRx(this.ram, this.rxAddr[buf], len)) {
          this.s.rxFrames++;
          onRx(this.ram, this.rxAddr[buf], len, (flags & EV_RX_CSUM_OK) !== 0);
        }
        // Repost at once: whatever onRx did (bridge, stack) may already have let a
        // sender send this frame's successor.
        this.postRx(buf);
        q.pushRx();
      }
    }
    if (taken > 0) q.publishEvCons();
    if (n === 0 && q.armIrq()) return 1;
    return n;
  }

  /** The largest MTU our posted RX buffers can take. */
  get maxMtu(): number {
    return this.rxBufSize - 18;
  }

  stats(): NetDriverStats & { linkUp: boolean; mtu: number; vetoedRx: number; vetoedTx: number } {
    return {
      ...this.s,
      viState: this.q.state,
      fault: FAULT_NAMES[this.q.fault] ?? String(this.q.fault),
      ...primaryStats(this, this.o.driverlink),
    };
  }

  remove(): void {
    releasePrimary(() => this.o.mcdi.requestSync('vi_fini', { vi: 0 }, 2000), this.o.evtchn, this.port);
  }
}
