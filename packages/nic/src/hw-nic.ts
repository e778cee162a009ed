/**
 * One simulated NIC: VIs, buffer table, filter table, internal switch, one
 * port to a wire. Runs inside the NIC worker. Every frame it takes from a TX
 * ring ends in exactly one place: delivered to one or more VIs, sent on the
 * wire, or a named drop counter.
 *
 * Everything a driver wrote is read once: each TX descriptor is copied out of
 * the ring, each frame gathered into the NIC's FIFO before the anti-spoofing
 * check, the filter lookup and the DMA read it, each RX descriptor copied
 * once for the room check and the DMA. A VI's rings are the driver's memory,
 * resolved through the buffer table when the driver attaches; the NIC reads
 * them only while that attachment lives.
 */
import { DIR_INBOUND, DIR_OUTBOUND, DeviceIrq, type Clock } from '@xsim/hypervisor';
import { BufferTable } from './buffer-table.ts';
import type { NicSpec } from './nic-spec.ts';
import { HwVi } from './hw-vi.ts';
import { NicPort, type NicStats } from './nic-port.ts';
import { nicCompleteCsum, nicCsumGood } from './csum-engine.ts';
import { tsoParse, tsoSegment } from './tso-engine.ts';
import {
  BUFFER_PAGE,
  DESC_SIZE,
  EVQ_OFFSET,
  EV_FLAGS,
  EV_RX,
  EV_RX_CONT,
  EV_RX_CSUM_OK,
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
  TXD_CSUM,
  TXD_FLAGS,
  TXD_LEN,
  TXD_MSS,
  TXD_OFF,
  TXD_TSO,
  TXQ_OFFSET,
  TX_MAX_CHAIN,
  VI_EVQ_SIZE,
  VI_RING_PAGES,
  VI_RXQ_SIZE,
  VI_TXQ_SIZE,
  W_EV_CONS,
  W_NIC_ASLEEP,
  W_RX_PROD,
  W_TX_PROD,
} from './layout.ts';

const TX_BUDGET = 64;

export class HwNic extends NicPort<HwVi> {
  readonly vis: HwVi[];
  readonly buffers: BufferTable;
  /** The TX FIFO: every frame a VI sends is gathered here once before it is checked or sent. */
  private readonly staging: Uint8Array;
  /** Where the TSO engine builds each segment before it is sent. */
  private readonly segBuf: Uint8Array;
  // Private copies of the descriptors of the frame in hand (TX) and of the RX buffers it needs.
  private readonly dBuf = new Uint32Array(TX_MAX_CHAIN);
  private readonly dOff = new Uint16Array(TX_MAX_CHAIN);
  private readonly dLen = new Uint16Array(TX_MAX_CHAIN);
  private readonly rBuf = new Uint32Array(TX_MAX_CHAIN);
  private readonly rOff = new Uint16Array(TX_MAX_CHAIN);
  private readonly rLen = new Uint16Array(TX_MAX_CHAIN);
  private readonly active: HwVi[] = [];

  constructor(spec: NicSpec, rams: Map<number, Uint8Array>, clock?: Clock) {
    super(spec, rams, clock);
    this.vis = Array.from({ length: spec.vis }, (_, i) => new HwVi(i));
    this.buffers = new BufferTable(1 << 18);
    // The largest frame a driver may chain: a 64 KiB IPv4 datagram behind an Ethernet header and a VLAN tag (TSO).
    this.staging = new Uint8Array(65535 + 18);
    this.segBuf = new Uint8Array(65535 + 18);
  }

  get fns(): readonly HwVi[] {
    return this.vis;
  }

  protected attached(v: HwVi): boolean {
    return v.a !== null;
  }

  /** buffer_table_alloc: pages of a domain whose RAM the NIC holds, for a VI that exists (an id out of range is refused). */
  bufferAlloc(vi: number, domid: number, frames: number[]): number {
    this.vi(vi);
    return this.buffers.alloc(vi, domid, frames, (d) => {
      const r = this.rams.get(d);
      return r ? Math.floor(r.u8.byteLength / BUFFER_PAGE) : undefined;
    });
  }

  /** The domain is gone: its VIs must already be finalised; its buffers go. */
  removeDomain(domid: number): void {
    for (const v of this.vis) if (v.domid === domid) this.viFini(v.id, true);
    this.rams.delete(domid);
  }

  // ---------------- control (MCDI) ----------------

  /**
   * Attach a driver to a VI: its rings are the VI's buffers from `ringBase`
   * (VI_RING_PAGES contiguous pages registered for it), its interrupt a
   * device binding; `csum`: the driver enables checksum offload (TX
   * completion, RX checking); `tso`: TCP segmentation offload (TXD_TSO).
   * Returns the doorbell made for this attachment.
   */
  viInit(
    vi: number,
    domid: number,
    ringBase: number,
    irq: { binding: SharedArrayBuffer; doorbell: SharedArrayBuffer } | null,
    macs: number[] | null,
    csum = false,
    tso = false,
  ): SharedArrayBuffer {
    const v = this.vi(vi);
    if (v.running || v.a) throw new Error(`VI ${vi} is already initialised`);
    const ram = this.rams.get(domid);
    if (!ram) throw new Error(`no domain ${domid} on host ${this.spec.host}`);
    const at = this.buffers.resolve(vi, ringBase, 0, VI_RING_PAGES * BUFFER_PAGE);
    if (at < 0 || this.buffers.lastDomid !== domid)
      throw new Error(
        `VI ${vi}: buffers ${ringBase}..${ringBase + VI_RING_PAGES - 1} are not ${VI_RING_PAGES} contiguous pages of domain ${domid} registered for this VI`,
      );
    const doorbell = HwVi.newDoorbell();
    v.attach({
      domid,
      doorbell,
      db: new Int32Array(doorbell),
      ram: ram.u8,
      dv: ram.dv,
      i32: ram.i32,
      ring: at,
      irq: irq ? new DeviceIrq(irq.binding, irq.doorbell) : null,
      macs: macs === null ? null : new Set(macs),
      csum,
      tso,
    });
    if (!this.active.includes(v)) this.active.push(v);
    this.tapFn(v);
    return doorbell;
  }

  /**
   * Stop a VI and end its attachment. Events already written are left for a
   * driver that is still alive; with `countStranded` (the default) the frames
   * left on the VI are counted here, for a driver that is gone; without it
   * the driver is alive and accounts for them itself (it sees the VI reset).
   */
  viFini(vi: number, countStranded = true): { filters: number; buffers: number } {
    const v = this.vi(vi);
    if (v.a) {
      v.flushEvents(this.spec.host);
      if (countStranded) this.countStranded(v);
      v.detach();
      v.tap.release();
    }
    v.running = false;
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
    const a = v.a!;
    if (v.faultReason === 0) {
      const prod = Atomics.load(a.db, W_TX_PROD) >>> 0;
      const n = Math.min((prod - v.txCons) >>> 0, VI_TXQ_SIZE);
      for (let k = 0; k < n; k++) {
        const o = a.ring + TXQ_OFFSET + ((v.txCons + k) & (VI_TXQ_SIZE - 1)) * DESC_SIZE;
        if ((a.dv.getUint16(o + TXD_FLAGS, true) & TXD_CONT) === 0) v.c.txDiscardedAtFini++;
      }
    }
    const cons = Atomics.load(a.db, W_EV_CONS) >>> 0;
    const n = Math.min((v.evProd - cons) >>> 0, VI_EVQ_SIZE);
    for (let k = 0; k < n; k++) {
      const o = a.ring + EVQ_OFFSET + ((cons + k) & (VI_EVQ_SIZE - 1)) * EV_SIZE;
      if (a.dv.getUint16(o + EV_TYPE, true) === EV_RX && (a.dv.getUint16(o + EV_FLAGS, true) & EV_RX_CONT) === 0) v.c.rxUnreadAtFini++;
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

  vi(vi: number): HwVi {
    const v = this.vis[vi];
    if (!v) throw new Error(`no VI ${vi} (this NIC has ${this.vis.length})`);
    return v;
  }

  private fault(v: HwVi, reason: number): void {
    v.fault(reason);
    // Tell the driver (it may be asleep waiting for completions that will never come).
    v.a?.irq?.raise();
  }

  // ---------------- the doorbell protocol with a sleeping NIC ----------------

  /** Is there TX work on any running VI? */
  txPending(): boolean {
    if (this.lineFull()) return false;
    for (const v of this.active) if (v.running && (v.tsoLeft !== null || Atomics.load(v.a!.db, W_TX_PROD) >>> 0 !== v.txCons)) return true;
    return false;
  }

  /** About to sleep: tell every attached driver that its doorbell must ring the wake line. */
  markAsleep(asleep: boolean): void {
    for (const v of this.active) if (v.a) Atomics.store(v.a.db, W_NIC_ASLEEP, asleep ? 1 : 0);
  }

  // ---------------- datapath ----------------

  /** One round over every running VI's TX ring. Returns frames taken. */
  poll(): number {
    let n = 0;
    for (let i = 0; i < this.active.length; i++) {
      const v = this.active[i];
      if (v.running) n += this.processTx(v);
    }
    return n;
  }

  private processTx(v: HwVi): number {
    const a = v.a!;
    // Segments of a TSO frame the line had no room for go first: the frames behind it wait.
    if (v.tsoLeft !== null && !this.sendSegments(v)) return 0;
    const prod = Atomics.load(a.db, W_TX_PROD) >>> 0;
    if (prod === v.txCons) return 0;
    if ((prod - v.txCons) >>> 0 > VI_TXQ_SIZE) {
      this.fault(v, FAULT_TX_CHAIN);
      return 0;
    }
    const dv = a.dv;
    let frames = 0;
    let cons = v.txCons;
    const fifo = this.staging;
    while (cons !== prod && frames < TX_BUDGET && this.lineHasRoom()) {
      // Copy the frame's descriptors; an unfinished chain waits for the driver.
      let k = 0;
      let complete = false;
      let csum = false;
      let mss = 0;
      while ((cons + k) >>> 0 !== prod) {
        if (k >= TX_MAX_CHAIN) break;
        const o = a.ring + TXQ_OFFSET + ((cons + k) & (VI_TXQ_SIZE - 1)) * DESC_SIZE;
        this.dBuf[k] = dv.getUint32(o + TXD_BUF, true);
        this.dOff[k] = dv.getUint16(o + TXD_OFF, true);
        this.dLen[k] = dv.getUint16(o + TXD_LEN, true);
        const flags = dv.getUint16(o + TXD_FLAGS, true);
        if (k === 0) {
          csum = (flags & TXD_CSUM) !== 0;
          mss = flags & TXD_TSO ? dv.getUint16(o + TXD_MSS, true) || -1 : 0;
        }
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
      const len = this.gather(v, k, fifo);
      if (len < 0) {
        this.fault(v, -len);
        break;
      }
      cons = (cons + k) >>> 0;
      frames++;
      if (mss !== 0) {
        // TSO: cut into segments, each with its checksums (tso-engine.ts); those the line has no room for wait on the VI.
        if (!this.startTso(v, fifo, len, mss)) continue;
        if (!v.a) return frames;
        if (v.tsoLeft !== null) break;
        continue;
      }
      // TX checksum offload: completed in the FIFO, before anything (the wire, a capture, another VI) sees the frame.
      if (csum && !(a.csum === true && nicCompleteCsum(fifo, 0, len))) {
        this.fnDrop(v, fifo, 0, len, DIR_OUTBOUND, 'txCsumBad');
        continue;
      }
      if (csum) v.c.txCsumOffloaded++;
      this.transmit(v, v.a!.macs, fifo, 0, len);
      if (!v.a) return frames; // the frame's delivery tore this very VI down
    }
    if (cons !== v.txCons) {
      v.txCons = cons;
      v.writeEvent(EV_TX, 0, 0, cons);
    }
    return frames;
  }

  /** Gather the frame of the `k` copied descriptors into `fifo`, each piece through the buffer table: its length, or -(fault reason). */
  private gather(v: HwVi, k: number, fifo: Uint8Array): number {
    let len = 0;
    for (let j = 0; j < k; j++) {
      const l = this.dLen[j];
      const at = this.buffers.resolve(v.id, this.dBuf[j], this.dOff[j], l);
      if (at < 0) return at;
      if (len + l > fifo.length) return -FAULT_TX_CHAIN;
      fifo.set(this.rams.get(this.buffers.lastDomid)!.u8.subarray(at, at + l), len);
      len += l;
    }
    return len;
  }

  /** A TXD_TSO frame gathered in `fifo`: false (dropped, counted) when the engine cannot cut it or the VI has no TSO. */
  private startTso(v: HwVi, fifo: Uint8Array, len: number, mss: number): boolean {
    const f = v.a!.tso === true ? tsoParse(fifo, len, mss, this.maxFrame) : null;
    if (f === null) {
      this.fnDrop(v, fifo, 0, len, DIR_OUTBOUND, 'txTsoBad');
      return false;
    }
    v.c.txTsoFrames++;
    v.tsoLeft = { frame: fifo, f, next: 0 };
    // The FIFO is shared: what the line cannot take now is kept as the VI's own copy.
    if (!this.sendSegments(v)) v.tsoLeft = { frame: fifo.slice(0, len), f, next: v.tsoLeft.next };
    return true;
  }

  /** Send the waiting TSO frame's segments while the line has room; true when all have gone (or the VI went away). */
  private sendSegments(v: HwVi): boolean {
    const t = v.tsoLeft!;
    while (t.next < t.f.count) {
      if (t.next > 0 && !this.lineHasRoom()) return false;
      const n = tsoSegment(t.frame, t.f, t.next++, this.segBuf);
      v.c.txTsoSegments++;
      this.transmit(v, v.a!.macs, this.segBuf, 0, n);
      if (!v.a) return true; // its delivery tore this very VI down (detach counted what was left)
    }
    v.tsoLeft = null;
    return true;
  }

  /**
   * DMA a frame into the VI's posted RX buffers (scattering if it must), one
   * event per descriptor. The descriptors needed are copied out of the ring
   * once; the room check and the DMA both use the copies.
   */
  protected deliver(v: HwVi, ram: Uint8Array, addr: number, len: number): void {
    if (!v.running) return this.fnDown(v, ram, addr, len);
    const a = v.a!;
    const prod = Atomics.load(a.db, W_RX_PROD) >>> 0;
    const avail = (prod - v.rxCons) >>> 0;
    if (avail > VI_RXQ_SIZE) {
      this.fault(v, FAULT_TX_CHAIN);
      return;
    }
    const dv = a.dv;
    let room = 0;
    let need = 0;
    while (room < len && need < avail && need < TX_MAX_CHAIN) {
      const o = a.ring + RXQ_OFFSET + ((v.rxCons + need) & (VI_RXQ_SIZE - 1)) * DESC_SIZE;
      this.rBuf[need] = dv.getUint32(o + RXD_BUF, true);
      this.rOff[need] = dv.getUint16(o + RXD_OFF, true);
      this.rLen[need] = dv.getUint16(o + RXD_LEN, true);
      room += this.rLen[need];
      need++;
    }
    if (room < len || v.evSpace() < need) return this.fnDrop(v, ram, addr, len, DIR_INBOUND, 'rxNoDesc');
    // RX checksum checking, for a driver that enabled it: reported on each of the frame's events.
    const good = a.csum === true && nicCsumGood(ram, addr, len);
    if (good) v.c.rxCsumGood++;
    const csumFlag = good ? EV_RX_CSUM_OK : 0;
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
      this.rams.get(this.buffers.lastDomid)!.u8.set(ram.subarray(addr + done, addr + done + n), dst);
      done += n;
      v.writeEvent(EV_RX, (done < len ? EV_RX_CONT : 0) | csumFlag, n, idx);
    }
    v.rxCons = (v.rxCons + need) >>> 0;
    v.c.rxFrames++;
    v.c.rxBytes += len;
    if (v.tap.on) v.tap.frame(ram, addr, len, DIR_INBOUND);
  }

  /** After a round (which may have delivered into this NIC from the wire): interrupt who asked. */
  flushAll(): void {
    for (let i = 0; i < this.active.length; i++) this.active[i].flushEvents(this.spec.host);
  }

  stats(): NicStats {
    return {
      ...this.portStats(),
      model: 'vi',
      vis: Object.fromEntries(
        this.vis
          .filter((v) => v.running || v.c.faults > 0 || v.c.txFrames > 0 || v.c.rxFrames > 0 || v.c.attachments > 0)
          .map((v) => [v.id, { domid: v.domid, running: v.running, fault: v.faultReason, ...v.c }]),
      ),
    };
  }
}
