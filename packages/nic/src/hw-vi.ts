/** The NIC's private state for one VI: its rings (shared with the driver) and counters. */
import { VI_STATE_RESET, W_EV_PROD, W_RX_CONS, W_TX_CONS, W_VI_STATE } from './layout.ts';

export interface ViCounters {
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
  /** Sent with a source MAC this VI does not own. */
  txSpoofDrops: number;
  /** Longer than the MTU allows. */
  txOversize: number;
  /** Received while the VI had no RX descriptor posted. */
  rxNoDesc: number;
  /** Frames delivered to another VI of the same NIC without touching the wire. */
  txSwitchedLocal: number;
  faults: number;
  /** Posted by the driver but never sent: the VI was torn down first (not counted for a faulted VI: its driver counts those). */
  txDiscardedAtFini: number;
  /** Delivered into the driver's buffers, but the VI was torn down before the driver read the events. */
  rxUnreadAtFini: number;
}

export class HwVi {
  readonly i32: Int32Array;
  readonly dv: DataView;
  domid = -1;
  irqDomid = -1;
  irqPort = 0;
  /** MACs this VI may send from; null = any (VI 0 bridges everyone's frames). */
  macs: Set<number> | null = null;
  txCons = 0;
  rxCons = 0;
  evProd = 0;
  running = false;
  evDirty = false;
  faultReason = 0;
  readonly c: ViCounters = { txFrames: 0, txBytes: 0, rxFrames: 0, rxBytes: 0, txSpoofDrops: 0, txOversize: 0, rxNoDesc: 0, txSwitchedLocal: 0, faults: 0, txDiscardedAtFini: 0, rxUnreadAtFini: 0 };

  constructor(
    readonly id: number,
    readonly sab: SharedArrayBuffer,
  ) {
    this.i32 = new Int32Array(sab, 0, 16);
    this.dv = new DataView(sab);
  }

  /** Start from the indices the driver sees now (a fresh VI has all zero). */
  reset(): void {
    this.txCons = Atomics.load(this.i32, W_TX_CONS) >>> 0;
    this.rxCons = Atomics.load(this.i32, W_RX_CONS) >>> 0;
    this.evProd = Atomics.load(this.i32, W_EV_PROD) >>> 0;
    this.running = false;
    this.faultReason = 0;
    this.evDirty = false;
    Atomics.store(this.i32, W_VI_STATE, VI_STATE_RESET);
  }
}
