/**
 * One simulated NIC: VIs, buffer table, filter table, internal switch, a port
 * to a wire. Runs inside the fabric worker. Every frame it takes from a TX
 * ring ends in exactly one place: delivered to one or more VIs, sent on the
 * wire, or a named drop counter.
 */
import { DeviceInterrupts, declareCounters, readMac, type Counters } from '@xsim/hypervisor';
import { BufferTable } from './buffer-table.ts';
import { FilterTable } from './filter-table.ts';
import { HwVi } from './hw-vi.ts';
import {
  DESC_SIZE,
  EVQ_OFFSET,
  EV_FLAGS,
  EV_INDEX,
  EV_LEN,
  EV_RX,
  EV_RX_CONT,
  EV_SIZE,
  EV_TX,
  EV_TYPE,
  FAULT_TX_CHAIN,
  RXD_BUF,
  RXD_LEN,
  RXD_OFF,
  RXQ_OFFSET,
  TXD_BUF,
  TXD_CONT,
  TXD_FLAGS,
  TXD_LEN,
  TXD_OFF,
  TXQ_OFFSET,
  TX_MAX_CHAIN,
  VI_EVQ_SIZE,
  VI_RXQ_SIZE,
  VI_STATE_FAULTED,
  VI_STATE_RUNNING,
  VI_TXQ_SIZE,
  W_EV_CONS,
  W_EV_PROD,
  W_FAULT,
  W_IRQ_ARM,
  W_RX_CONS,
  W_RX_PROD,
  W_TX_CONS,
  W_TX_PROD,
  W_VI_STATE,
} from './layout.ts';

export interface NicSpec {
  name: string;
  host: string;
  mac: number;
  mtu: number;
  vendor: string;
  device: string;
  vis: number;
}

export const NIC_COUNTERS = declareCounters('nic', {
  wireTx: { kind: 'event', help: 'frames sent on the wire' },
  wireRx: { kind: 'event', help: 'frames received from the wire' },
  txNoLink: { kind: 'drop', help: 'sent while no wire is attached' },
  linkDownDrops: { kind: 'drop', help: 'sent or received while the link is down' },
  rxOversize: { kind: 'drop', help: 'received longer than our MTU allows' },
  rxViDown: { kind: 'drop', help: 'received for a VI that is not running (reset or faulted)' },
  rxDefault: { kind: 'event', help: 'received with no filter match: went to VI 0' },
});

export type NicCounters = Counters<typeof NIC_COUNTERS.decls>;

const TX_BUDGET = 64;

export class HwNic {
  readonly vis: HwVi[];
  readonly buffers: BufferTable;
  readonly filters = new FilterTable();
  readonly c: NicCounters = NIC_COUNTERS.zero();
  peer: HwNic | null = null;
  linkUp = true;
  private maxFrame: number;
  /** The TX FIFO: every frame a VI sends is gathered here once before it is checked or sent. */
  private readonly staging: Uint8Array;
  // Private copies of the descriptors of the frame in hand (TX) and of the RX buffers it needs.
  private readonly dBuf = new Uint32Array(TX_MAX_CHAIN);
  private readonly dOff = new Uint16Array(TX_MAX_CHAIN);
  private readonly dLen = new Uint16Array(TX_MAX_CHAIN);
  private readonly rBuf = new Uint32Array(TX_MAX_CHAIN);
  private readonly rOff = new Uint16Array(TX_MAX_CHAIN);
  private readonly rLen = new Uint16Array(TX_MAX_CHAIN);
  private readonly active: HwVi[] = [];

  constructor(
    readonly spec: NicSpec,
    viSabs: SharedArrayBuffer[],
    private readonly rams: Map<number, Uint8Array>,
    private readonly irqs: DeviceInterrupts,
  ) {
    this.vis = viSabs.map((s, i) => new HwVi(i, s));
    this.buffers = new BufferTable(1 << 18);
    this.maxFrame = spec.mtu + 18;
    this.staging = new Uint8Array(65536);
  }

  // ---------------- control (MCDI) ----------------

  viInit(vi: number, domid: number, irq: { domid: number; port: number } | null, macs: number[] | null): void {
    const v = this.vi(vi);
    if (v.running) throw new Error(`VI ${vi} is already initialised`);
    if (!this.rams.has(domid)) throw new Error(`no domain ${domid} on host ${this.spec.host}`);
    // A VI starts clean: whatever a previous owner left in its rings is gone.
    for (let w = 0; w <= 6; w++) Atomics.store(v.i32, w, 0);
    v.reset();
    v.domid = domid;
    v.irqDomid = irq?.domid ?? -1;
    v.irqPort = irq?.port ?? 0;
    v.macs = macs === null ? null : new Set(macs);
    v.running = true;
    Atomics.store(v.i32, W_VI_STATE, VI_STATE_RUNNING);
    Atomics.store(v.i32, W_FAULT, 0);
    if (!this.active.includes(v)) this.active.push(v);
  }

  /**
   * Stop a VI. Events still unpublished are published first, so a driver that
   * is still alive can take every frame that reached its buffers. With
   * `countStranded` (the default) the frames left on the VI are counted here,
   * for a driver that is gone; without it the driver is alive and accounts
   * for them itself (it sees the VI reset under it).
   */
  viFini(vi: number, countStranded = true): { filters: number; buffers: number } {
    const v = this.vi(vi);
    this.flushEvents(v);
    if (countStranded) this.countStranded(v);
    v.running = false;
    v.reset();
    const i = this.active.indexOf(v);
    if (i >= 0) this.active.splice(i, 1);
    return { filters: this.filters.removeVi(vi), buffers: this.buffers.freeVi(vi) };
  }

  /**
   * A VI torn down with frames still on it (its driver broke or was cut off
   * rather than drained) must not lose them silently: count the frames it
   * posted that we never sent (unless it faulted: then its driver counts
   * them) and those we delivered whose events it never read.
   */
  private countStranded(v: HwVi): void {
    if (!v.running && v.faultReason === 0) return;
    const dv = v.dv;
    if (v.faultReason === 0) {
      const prod = Atomics.load(v.i32, W_TX_PROD) >>> 0;
      const n = Math.min((prod - v.txCons) >>> 0, VI_TXQ_SIZE);
      for (let k = 0; k < n; k++) {
        const o = TXQ_OFFSET + ((v.txCons + k) & (VI_TXQ_SIZE - 1)) * DESC_SIZE;
        if ((dv.getUint16(o + TXD_FLAGS, true) & TXD_CONT) === 0) v.c.txDiscardedAtFini++;
      }
    }
    const cons = Atomics.load(v.i32, W_EV_CONS) >>> 0;
    const n = Math.min((v.evProd - cons) >>> 0, VI_EVQ_SIZE);
    for (let k = 0; k < n; k++) {
      const o = EVQ_OFFSET + ((cons + k) & (VI_EVQ_SIZE - 1)) * EV_SIZE;
      if (dv.getUint16(o + EV_TYPE, true) === EV_RX && (dv.getUint16(o + EV_FLAGS, true) & EV_RX_CONT) === 0) v.c.rxUnreadAtFini++;
    }
  }

  /** A reset of the NIC's virtualised resources: every guest VI stops, its filters and buffers go. VI 0 keeps running. */
  reset(): { vis: number; filters: number } {
    let vis = 0;
    let filters = 0;
    for (const v of [...this.active]) {
      if (v.id === 0) continue;
      filters += this.viFini(v.id).filters;
      vis++;
    }
    return { vis, filters };
  }

  setMtu(mtu: number): void {
    if (!(mtu >= 68 && mtu <= 9000)) throw new Error(`MTU ${mtu} outside 68..9000`);
    this.spec.mtu = mtu;
    this.maxFrame = mtu + 18;
  }

  vi(vi: number): HwVi {
    const v = this.vis[vi];
    if (!v) throw new Error(`no VI ${vi} (this NIC has ${this.vis.length})`);
    return v;
  }

  private fault(v: HwVi, reason: number): void {
    v.running = false;
    v.faultReason = reason;
    v.c.faults++;
    Atomics.store(v.i32, W_FAULT, reason);
    Atomics.store(v.i32, W_VI_STATE, VI_STATE_FAULTED);
    // Tell the driver (it may be asleep waiting for completions that will never come).
    this.raise(v, true);
  }

  // ---------------- datapath ----------------

  /** Is there TX work on any running VI? (the fabric's pre-sleep re-check) */
  txPending(): boolean {
    for (const v of this.active) if (v.running && Atomics.load(v.i32, W_TX_PROD) >>> 0 !== v.txCons) return true;
    return false;
  }

  /** One round over every running VI's TX ring. Returns frames taken. */
  poll(): number {
    let n = 0;
    for (let i = 0; i < this.active.length; i++) {
      const v = this.active[i];
      if (v.running) n += this.processTx(v);
    }
    return n;
  }

  /**
   * One VI's TX ring. Each descriptor is copied out of the ring once (its
   * private copy is what is checked and used), and each frame is gathered
   * once into the NIC's own TX FIFO memory before anything looks at it, as
   * hardware DMAs a frame into its FIFO: a driver rewriting its buffer after
   * that changes nothing the NIC checks or sends (the source-MAC check races).
   */
  private processTx(v: HwVi): number {
    const prod = Atomics.load(v.i32, W_TX_PROD) >>> 0;
    if (prod === v.txCons) return 0;
    if (((prod - v.txCons) >>> 0) > VI_TXQ_SIZE) {
      this.fault(v, FAULT_TX_CHAIN);
      return 0;
    }
    const dv = v.dv;
    let frames = 0;
    let cons = v.txCons;
    const fifo = this.staging;
    while (cons !== prod && frames < TX_BUDGET) {
      // Copy the frame's descriptors; an unfinished chain waits for the driver.
      let k = 0;
      let complete = false;
      while (((cons + k) >>> 0) !== prod) {
        if (k >= TX_MAX_CHAIN) break;
        const o = TXQ_OFFSET + ((cons + k) & (VI_TXQ_SIZE - 1)) * DESC_SIZE;
        this.dBuf[k] = dv.getUint32(o + TXD_BUF, true);
        this.dOff[k] = dv.getUint16(o + TXD_OFF, true);
        this.dLen[k] = dv.getUint16(o + TXD_LEN, true);
        const flags = dv.getUint16(o + TXD_FLAGS, true);
        k++;
        if ((flags & TXD_CONT) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (k >= TX_MAX_CHAIN) this.fault(v, FAULT_TX_CHAIN);
        break;
      }
      // Gather into the FIFO from the copies, each piece through the buffer table.
      let len = 0;
      let bad = 0;
      for (let j = 0; j < k; j++) {
        const l = this.dLen[j];
        const a = this.buffers.resolve(v.id, this.dBuf[j], this.dOff[j], l);
        if (a < 0) {
          bad = -a;
          break;
        }
        if (len + l > fifo.length) {
          bad = FAULT_TX_CHAIN;
          break;
        }
        fifo.set(this.rams.get(this.buffers.lastDomid)!.subarray(a, a + l), len);
        len += l;
      }
      if (bad) {
        this.fault(v, bad);
        break;
      }
      cons = (cons + k) >>> 0;
      frames++;
      this.transmit(v, fifo, 0, len);
    }
    if (cons !== v.txCons) {
      v.txCons = cons;
      Atomics.store(v.i32, W_TX_CONS, cons | 0);
      this.event(v, EV_TX, 0, 0, cons);
    }
    return frames;
  }

  /** A frame a VI sent: anti-spoofing, size, then the internal switch or the wire. */
  private transmit(v: HwVi, ram: Uint8Array, addr: number, len: number): void {
    if (len < 14 || len > this.maxFrame) {
      v.c.txOversize++;
      return;
    }
    if (v.macs !== null) {
      const src = readMac(ram, addr + 6);
      if (!v.macs.has(src)) {
        v.c.txSpoofDrops++;
        return;
      }
    }
    v.c.txFrames++;
    v.c.txBytes += len;
    if (ram[addr] & 1) {
      // Broadcast/multicast from a guest VI also reaches dom0's bridge on this host.
      if (v.id !== 0) this.deliver(this.vis[0], ram, addr, len);
      this.toWire(ram, addr, len);
      return;
    }
    const target = this.filters.lookup(ram, addr, len);
    if (target >= 0 && target !== v.id) {
      v.c.txSwitchedLocal++;
      this.deliver(this.vis[target], ram, addr, len);
      return;
    }
    this.toWire(ram, addr, len);
  }

  private toWire(ram: Uint8Array, addr: number, len: number): void {
    if (!this.peer) {
      this.c.txNoLink++;
      return;
    }
    if (!this.linkUp || !this.peer.linkUp) {
      this.c.linkDownDrops++;
      return;
    }
    this.c.wireTx++;
    this.peer.fromWire(ram, addr, len);
  }

  /** A frame arriving from the wire: steer it with the filter table. */
  fromWire(ram: Uint8Array, addr: number, len: number): void {
    this.c.wireRx++;
    if (len > this.maxFrame) {
      this.c.rxOversize++;
      return;
    }
    let target = ram[addr] & 1 ? -1 : this.filters.lookup(ram, addr, len);
    if (target < 0) {
      this.c.rxDefault++;
      target = 0;
    }
    this.deliver(this.vis[target], ram, addr, len);
  }

  /**
   * DMA a frame into the VI's posted RX buffers (scattering if it must), one
   * event per descriptor. The descriptors needed are copied out of the ring
   * once; the room check and the DMA both use the copies.
   */
  private deliver(v: HwVi, ram: Uint8Array, addr: number, len: number): void {
    if (!v.running) {
      this.c.rxViDown++;
      return;
    }
    const prod = Atomics.load(v.i32, W_RX_PROD) >>> 0;
    const avail = (prod - v.rxCons) >>> 0;
    if (avail > VI_RXQ_SIZE) {
      this.fault(v, FAULT_TX_CHAIN);
      return;
    }
    // Enough room across the posted descriptors? Check before consuming any.
    const dv = v.dv;
    let room = 0;
    let need = 0;
    while (room < len && need < avail && need < TX_MAX_CHAIN) {
      const o = RXQ_OFFSET + ((v.rxCons + need) & (VI_RXQ_SIZE - 1)) * DESC_SIZE;
      this.rBuf[need] = dv.getUint32(o + RXD_BUF, true);
      this.rOff[need] = dv.getUint16(o + RXD_OFF, true);
      this.rLen[need] = dv.getUint16(o + RXD_LEN, true);
      room += this.rLen[need];
      need++;
    }
    if (room < len || this.evSpace(v) < need) {
      v.c.rxNoDesc++;
      return;
    }
    let done = 0;
    for (let j = 0; j < need; j++) {
      const idx = (v.rxCons + j) >>> 0;
      const n = Math.min(this.rLen[j], len - done);
      const dst = this.buffers.resolve(v.id, this.rBuf[j], this.rOff[j], n);
      if (dst < 0) {
        v.rxCons = (v.rxCons + j) >>> 0;
        this.fault(v, -dst);
        return;
      }
      const dram = this.rams.get(this.buffers.lastDomid)!;
      dram.set(ram.subarray(addr + done, addr + done + n), dst);
      done += n;
      this.event(v, EV_RX, done < len ? EV_RX_CONT : 0, n, idx);
    }
    v.rxCons = (v.rxCons + need) >>> 0;
    Atomics.store(v.i32, W_RX_CONS, v.rxCons | 0);
    v.c.rxFrames++;
    v.c.rxBytes += len;
  }

  private evSpace(v: HwVi): number {
    return VI_EVQ_SIZE - ((v.evProd - (Atomics.load(v.i32, W_EV_CONS) >>> 0)) >>> 0);
  }

  private event(v: HwVi, type: number, flags: number, len: number, index: number): void {
    const o = EVQ_OFFSET + (v.evProd & (VI_EVQ_SIZE - 1)) * EV_SIZE;
    v.dv.setUint16(o + EV_TYPE, type, true);
    v.dv.setUint16(o + EV_FLAGS, flags, true);
    v.dv.setUint16(o + EV_LEN, len, true);
    v.dv.setUint32(o + EV_INDEX, index >>> 0, true);
    v.evProd = (v.evProd + 1) >>> 0;
    v.evDirty = true;
  }

  /** Publish a VI's new events and interrupt its driver if it asked to be. */
  flushEvents(v: HwVi): void {
    if (!v.evDirty) return;
    v.evDirty = false;
    Atomics.store(v.i32, W_EV_PROD, v.evProd | 0);
    this.raise(v, false);
  }

  private raise(v: HwVi, always: boolean): void {
    if (v.irqPort <= 0) return;
    if (Atomics.exchange(v.i32, W_IRQ_ARM, 0) === 1 || always) this.irqs.raise(v.irqDomid, v.irqPort);
  }

  /** After a fabric round (which may have delivered into this NIC from its peer): publish all events. */
  flushAll(): void {
    for (let i = 0; i < this.active.length; i++) this.flushEvents(this.active[i]);
  }

  stats(): Record<string, unknown> {
    return {
      name: this.spec.name,
      link: this.linkUp ? 'up' : 'down',
      ...this.c,
      filters: this.filters.size,
      filterHits: this.filters.hits,
      filterMisses: this.filters.misses,
      vis: Object.fromEntries(
        this.vis
          .filter((v) => v.running || v.c.faults > 0 || v.c.txFrames > 0 || v.c.rxFrames > 0)
          .map((v) => [v.id, { domid: v.domid, state: Atomics.load(v.i32, W_VI_STATE), fault: v.faultReason, ...v.c }]),
      ),
    };
  }
}
