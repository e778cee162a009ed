/** The NIC's private state for one VI: its rings (shared with the driver) and counters. */
import { declareCounters, type Counters } from '@xsim/hypervisor';
import { VI_STATE_RESET, W_EV_PROD, W_RX_CONS, W_TX_CONS, W_VI_STATE } from './layout.ts';

export const VI_COUNTERS = declareCounters('nic VI', {
  txFrames: { kind: 'event', help: 'frames this VI sent' },
  txBytes: { kind: 'event', help: 'bytes of those frames' },
  rxFrames: { kind: 'event', help: "frames DMAed into this VI's RX buffers" },
  rxBytes: { kind: 'event', help: 'bytes of those frames' },
  txSpoofDrops: { kind: 'drop', help: 'sent with a source MAC this VI does not own (anti-spoofing)' },
  txOversize: { kind: 'drop', help: 'sent longer than the MTU allows, or shorter than an Ethernet header' },
  rxNoDesc: { kind: 'drop', help: 'received while the VI had too few RX descriptors posted (or no event-queue room)' },
  txSwitchedLocal: { kind: 'event', help: 'frames delivered to another VI of the same NIC without touching the wire' },
  faults: { kind: 'event', help: 'times the VI faulted on a bad descriptor' },
  txDiscardedAtFini: { kind: 'drop', help: 'posted by the driver but never sent: the VI was torn down first (a faulted VI: its driver counts them)' },
  rxUnreadAtFini: { kind: 'drop', help: 'delivered into the driver\'s buffers, but the VI was torn down before the driver read the events' },
});

export type ViCounters = Counters<typeof VI_COUNTERS.decls>;

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
  readonly c: ViCounters = VI_COUNTERS.zero();

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
