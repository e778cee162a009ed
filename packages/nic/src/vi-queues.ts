/**
 * A VI's rings as the driver sees them (dom0's primary driver for VI 0, a
 * guest's accelerator plugin for its own VI). The NIC side reads the same
 * memory through the same layout constants.
 */
import {
  DESC_SIZE,
  EVQ_OFFSET,
  EV_SIZE,
  FABRIC_ASLEEP,
  FABRIC_WAKE,
  RXD_BUF,
  RXD_LEN,
  RXD_OFF,
  RXQ_OFFSET,
  TXD_BUF,
  TXD_FLAGS,
  TXD_LEN,
  TXD_OFF,
  TXQ_OFFSET,
  VI_BYTES,
  VI_EVQ_SIZE,
  VI_RXQ_SIZE,
  VI_TXQ_SIZE,
  W_EV_CONS,
  W_EV_PROD,
  W_IRQ_ARM,
  W_RX_CONS,
  W_RX_PROD,
  W_TX_CONS,
  W_TX_PROD,
  W_VI_STATE,
  W_FAULT,
} from './layout.ts';

export class ViQueues {
  readonly i32: Int32Array;
  readonly dv: DataView;
  txProdPvt: number;
  rxProdPvt: number;
  evCons: number;
  private readonly fabric: Int32Array;

  constructor(sab: SharedArrayBuffer, fabricWake: { sab: SharedArrayBuffer; offset: number }) {
    if (sab.byteLength < VI_BYTES) throw new RangeError(`VI buffer of ${sab.byteLength} bytes is smaller than ${VI_BYTES}`);
    this.i32 = new Int32Array(sab, 0, 16);
    this.dv = new DataView(sab);
    this.fabric = new Int32Array(fabricWake.sab, fabricWake.offset, 2);
    this.txProdPvt = Atomics.load(this.i32, W_TX_PROD) >>> 0;
    this.rxProdPvt = Atomics.load(this.i32, W_RX_PROD) >>> 0;
    this.evCons = Atomics.load(this.i32, W_EV_CONS) >>> 0;
  }

  get state(): number {
    return Atomics.load(this.i32, W_VI_STATE);
  }
  get fault(): number {
    return Atomics.load(this.i32, W_FAULT);
  }

  txSpace(): number {
    return VI_TXQ_SIZE - ((this.txProdPvt - (Atomics.load(this.i32, W_TX_CONS) >>> 0)) >>> 0);
  }

  /** Queue a TX descriptor (not yet visible to the NIC: see pushTx). Returns its ring index. */
  postTx(bufId: number, off: number, len: number, flags: number): number {
    const idx = this.txProdPvt;
    const o = TXQ_OFFSET + (idx & (VI_TXQ_SIZE - 1)) * DESC_SIZE;
    this.dv.setUint32(o + TXD_BUF, bufId, true);
    this.dv.setUint16(o + TXD_OFF, off, true);
    this.dv.setUint16(o + TXD_LEN, len, true);
    this.dv.setUint16(o + TXD_FLAGS, flags, true);
    this.txProdPvt = (idx + 1) >>> 0;
    return idx;
  }

  /** Ring the TX doorbell; kick the fabric only if it is asleep. */
  pushTx(): void {
    Atomics.store(this.i32, W_TX_PROD, this.txProdPvt | 0);
    this.kickIfAsleep();
  }

  rxSpace(): number {
    return VI_RXQ_SIZE - ((this.rxProdPvt - (Atomics.load(this.i32, W_RX_CONS) >>> 0)) >>> 0);
  }

  postRx(bufId: number, off: number, len: number): number {
    const idx = this.rxProdPvt;
    const o = RXQ_OFFSET + (idx & (VI_RXQ_SIZE - 1)) * DESC_SIZE;
    this.dv.setUint32(o + RXD_BUF, bufId, true);
    this.dv.setUint16(o + RXD_OFF, off, true);
    this.dv.setUint16(o + RXD_LEN, len, true);
    this.rxProdPvt = (idx + 1) >>> 0;
    return idx;
  }

  /** RX buffers need no kick: the NIC only looks for them when a frame arrives. */
  pushRx(): void {
    Atomics.store(this.i32, W_RX_PROD, this.rxProdPvt | 0);
  }

  evPending(): number {
    return ((Atomics.load(this.i32, W_EV_PROD) >>> 0) - this.evCons) >>> 0;
  }

  /** Byte offset of event `i` (free-running index). */
  evOffset(i: number): number {
    return EVQ_OFFSET + (i & (VI_EVQ_SIZE - 1)) * EV_SIZE;
  }

  /** Hand consumed events back to the NIC. */
  publishEvCons(): void {
    Atomics.store(this.i32, W_EV_CONS, this.evCons | 0);
  }

  /**
   * Ask for an interrupt at the next event, then look once more: an event
   * that landed before the arm would otherwise raise nothing. True if one did.
   */
  armIrq(): boolean {
    Atomics.store(this.i32, W_IRQ_ARM, 1);
    return this.evPending() > 0;
  }

  private kickIfAsleep(): void {
    if (Atomics.load(this.fabric, FABRIC_ASLEEP) === 1) {
      Atomics.add(this.fabric, FABRIC_WAKE, 1);
      Atomics.notify(this.fabric, FABRIC_WAKE);
    }
  }
}
