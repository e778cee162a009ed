/**
 * What every NIC model shares, whatever its queue design: the port to a wire,
 * the RX filter (steering) table, the internal switch, anti-spoofing and the
 * MTU check, and the NIC's own counters. A model (hw-nic.ts: sfc-style VIs;
 * vq-nic.ts: virtio queue pairs) supplies its functions (a VI, or a virtio
 * function) and how a frame is DMAed into one; this class decides where
 * every frame goes, and every frame ends in exactly one place: delivered,
 * sent on the wire, or a named drop counter.
 */
import { DIR_INBOUND, DIR_OUTBOUND, readMac, offTap, type CaptureSink, type Clock, type Tap } from '@xsim/hypervisor';
import { FilterTable } from './filter-table.ts';
import { NIC_COUNTERS, type NicCounters, type NicSpec, type WireEnd } from './nic-spec.ts';
import type { ViCounters } from './hw-vi.ts';
import type { NicModel } from './resources.ts';
import { LineRate } from './line-rate.ts';

/** One of a NIC's functions as the port engine sees it: a VI, or a virtio function. */
export interface NicFunction {
  readonly id: number;
  /** Per-function counters (VI_COUNTERS: the same meanings on every model). */
  readonly c: ViCounters;
  tap: Tap;
  readonly running: boolean;
}

/** What a domain's RAM is to the NIC: bytes to DMA, words to stamp events with. */
export interface Ram {
  u8: Uint8Array;
  i32: Int32Array;
  dv: DataView;
}

/** A function's stats: its counters and state (pages: what the virtio NIC's IOMMU maps for it). */
export interface NicFnStats extends ViCounters {
  domid: number;
  running: boolean;
  fault: number;
  pages?: number;
}

/** A NIC's stats, whatever its model: the port's counters and filter table, and each function that was ever used. */
export type NicStats = ReturnType<NicPort<NicFunction>['portStats']> & { model: NicModel; vis: Record<string, NicFnStats> };

export type FnDropCounter = 'txOversize' | 'txSpoofDrops' | 'rxNoDesc' | 'txCsumBad' | 'txTsoBad';

export abstract class NicPort<F extends NicFunction> {
  readonly filters: FilterTable;
  readonly c: NicCounters = NIC_COUNTERS.zero();
  /** The other end of this NIC's wire (a NIC or a switch port), if wired. */
  wire: WireEnd | null = null;
  /** Is the far end of the wire up? (A switch port always is.) */
  peerUp: () => boolean = () => true;
  linkUp = true;
  protected maxFrame: number;
  protected readonly rams = new Map<number, Ram>();
  /** Received from the wire: what this NIC's port hands on. */
  readonly fromWire: WireEnd;
  /** Capture point of the NIC's port (`host/nic/wire`). */
  private wireTap: Tap = offTap();
  /** How drop comments name this NIC's counters (`nics.<index>`). */
  protected capPath = 'nic';
  private sink: CaptureSink | null = null;
  /** The port's line rate, if its wire has one (null: a frame crosses at once). */
  private line: LineRate | null = null;
  /** The functions, by id (function 0 is dom0's). */
  abstract readonly fns: readonly F[];

  constructor(
    readonly spec: NicSpec,
    rams: Map<number, Uint8Array>,
    /** The NIC thread's clock: what the filter table's aging and the line rate read (without one, no filter ages). */
    private readonly clock?: Clock,
  ) {
    this.filters = new FilterTable({ size: spec.filters, clock });
    this.maxFrame = spec.mtu + 18;
    for (const [d, u8] of rams) this.addDomain(d, u8);
    this.fromWire = (ram, addr, len) => this.receive(ram, addr, len);
  }

  /** Give the port a line rate (its wire's `gbps`): from now on what it sends is serialised at that rate. */
  setLineRate(gbps: number): void {
    const clock = this.clock;
    if (!clock) throw new Error(`NIC ${this.spec.name}: a line rate needs the NIC thread's clock`);
    this.line = new LineRate(gbps, () => clock.now());
  }

  /**
   * May the NIC take another frame from a TX queue? Not while its port's FIFO
   * lacks room for a frame of the MTU: the frames wait in the drivers' rings
   * (counted once per stall in lineWaits).
   */
  protected lineHasRoom(): boolean {
    if (this.line === null || this.line.room(this.maxFrame)) return true;
    this.c.lineWaits++;
    return false;
  }

  /** Is the port's FIFO too full for another frame (TX work then waits for the line, not for a doorbell)? */
  protected lineFull(): boolean {
    return this.line !== null && !this.line.room(this.maxFrame);
  }

  /** Send on the wire the frames the line has finished serialising; returns how many. */
  drainLine(): number {
    return this.line ? this.line.due((ram, addr, len) => this.onWire(ram, addr, len)) : 0;
  }

  /** When the line next finishes a frame (Infinity: nothing queued, or no line rate). */
  nextLineDue(): number {
    return this.line?.nextDue() ?? Infinity;
  }

  /** Is a driver attached to the function (only those are capture points)? */
  protected abstract attached(f: F): boolean;
  /** DMA a frame into the function's posted RX buffers, or count why not. */
  protected abstract deliver(f: F, ram: Uint8Array, addr: number, len: number): void;

  /** One round over every running function's TX queue. Returns frames taken. */
  abstract poll(): number;
  /** After a round: interrupt the drivers that asked to be. */
  abstract flushAll(): void;
  /** Is there TX work on any running function? */
  abstract txPending(): boolean;
  /** About to sleep (or awake again): let drivers know a kick must wake the NIC. */
  abstract markAsleep(asleep: boolean): void;
  /** The NIC's whole stats, as its admin command and the fabric answer them. */
  abstract stats(): NicStats;
  /** The domain is gone: its functions end, its RAM is forgotten. */
  abstract removeDomain(domid: number): void;

  /** Register this NIC's capture points (its wire port and every attached function) with the fabric's sink. */
  tapInto(sink: CaptureSink, index: number): void {
    this.capPath = `nics.${index}`;
    this.sink = sink;
    this.wireTap = sink.tap(`${this.spec.host}/nic/wire`);
    for (const f of this.fns) if (this.attached(f)) this.tapFn(f);
  }

  /** A function is a tap point while it is attached (64 idle ones per NIC would only clutter the list). */
  protected tapFn(f: F): void {
    if (this.sink) f.tap = this.sink.tap(`${this.spec.host}/nic/vi${f.id}`);
  }

  protected fnDrop(f: F, ram: Uint8Array, addr: number, len: number, dir: number, counter: FnDropCounter): void {
    f.c[counter]++;
    if (f.tap.on) f.tap.drop(ram, addr, len, dir, `${this.capPath}.vis.${f.id}.${counter}`);
  }

  private nicDrop(ram: Uint8Array, addr: number, len: number, dir: number, counter: 'txNoLink' | 'linkDownDrops' | 'rxOversize'): void {
    this.c[counter]++;
    if (this.wireTap.on) this.wireTap.drop(ram, addr, len, dir, `${this.capPath}.${counter}`);
  }

  /** A frame for a function that is not running: a NIC counter, captured at the function it was for. */
  protected fnDown(f: F, ram: Uint8Array, addr: number, len: number): void {
    this.c.rxViDown++;
    if (f.tap.on) f.tap.drop(ram, addr, len, DIR_INBOUND, `${this.capPath}.rxViDown`);
  }

  /** A domain's RAM the NIC may DMA to and from (always through the buffer table or IOMMU). */
  addDomain(domid: number, u8: Uint8Array): void {
    this.rams.set(domid, { u8, i32: new Int32Array(u8.buffer, u8.byteOffset, u8.byteLength >> 2), dv: new DataView(u8.buffer, u8.byteOffset, u8.byteLength) });
  }

  setMtu(mtu: number): void {
    if (!(mtu >= 68 && mtu <= 9000)) throw new Error(`MTU ${mtu} outside 68..9000`);
    this.spec.mtu = mtu;
    this.maxFrame = mtu + 18;
  }

  /** A frame a function sent, gathered into the NIC's FIFO: anti-spoofing, size, then the internal switch or the wire. */
  protected transmit(f: F, macs: Set<number> | null, ram: Uint8Array, addr: number, len: number): void {
    if (len < 14 || len > this.maxFrame) return this.fnDrop(f, ram, addr, len, DIR_OUTBOUND, 'txOversize');
    if (macs !== null && !macs.has(readMac(ram, addr + 6))) return this.fnDrop(f, ram, addr, len, DIR_OUTBOUND, 'txSpoofDrops');
    f.c.txFrames++;
    f.c.txBytes += len;
    if (f.tap.on) f.tap.frame(ram, addr, len, DIR_OUTBOUND);
    if (ram[addr] & 1) {
      // Broadcast/multicast from a guest function also reaches dom0's bridge on this host.
      if (f.id !== 0) this.deliver(this.fns[0], ram, addr, len);
      this.toWire(ram, addr, len);
      return;
    }
    const target = this.filters.lookup(ram, addr, len, true);
    if (target >= 0 && target !== f.id) {
      f.c.txSwitchedLocal++;
      this.deliver(this.fns[target], ram, addr, len);
      return;
    }
    this.toWire(ram, addr, len);
  }

  private toWire(ram: Uint8Array, addr: number, len: number): void {
    if (!this.wire) return this.nicDrop(ram, addr, len, DIR_OUTBOUND, 'txNoLink');
    // With a line rate the frame waits its turn in the port's FIFO (lineHasRoom made room for it).
    if (this.line) return this.line.push(ram, addr, len);
    this.onWire(ram, addr, len);
  }

  /** A frame leaves the port: the link is checked as its last bit goes. */
  private onWire(ram: Uint8Array, addr: number, len: number): void {
    if (!this.wire) return this.nicDrop(ram, addr, len, DIR_OUTBOUND, 'txNoLink');
    if (!this.linkUp || !this.peerUp()) return this.nicDrop(ram, addr, len, DIR_OUTBOUND, 'linkDownDrops');
    this.c.wireTx++;
    if (this.wireTap.on) this.wireTap.frame(ram, addr, len, DIR_OUTBOUND);
    this.wire(ram, addr, len);
  }

  /** A frame arriving from the wire: steer it with the filter table. */
  private receive(ram: Uint8Array, addr: number, len: number): void {
    this.c.wireRx++;
    if (!this.linkUp) return this.nicDrop(ram, addr, len, DIR_INBOUND, 'linkDownDrops');
    if (len > this.maxFrame) return this.nicDrop(ram, addr, len, DIR_INBOUND, 'rxOversize');
    // Captured once: a frame dropped above is in the capture with its counter's name instead.
    if (this.wireTap.on) this.wireTap.frame(ram, addr, len, DIR_INBOUND);
    let target = ram[addr] & 1 ? -1 : this.filters.lookup(ram, addr, len, false);
    if (target < 0) {
      this.c.rxDefault++;
      target = 0;
    }
    this.deliver(this.fns[target], ram, addr, len);
  }

  /** The NIC's part of stats(): its port, its filter table. */
  portStats() {
    return {
      name: this.spec.name,
      link: this.linkUp ? 'up' : 'down',
      mtu: this.spec.mtu,
      ...this.c,
      filters: this.filters.size,
      ...this.filters.c,
      filterTableSize: this.filters.capacity,
      // In the port's FIFO, not yet on the wire (a gauge: frames in flight, part of no drop and no delivery yet).
      ...(this.line
        ? { line: { gbps: this.line.gbps, queued: this.line.queued, queuedOctets: this.line.queuedOctets, framesSent: this.line.framesSent } }
        : {}),
    };
  }
}
