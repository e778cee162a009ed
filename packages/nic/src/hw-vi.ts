/**
 * The NIC's private state for one VI: counters for its life, and, while a
 * driver is attached, where that attachment's rings are (resolved once through
 * the buffer table at vi_init), its doorbell, its interrupt, and the NIC's own
 * indices. None of this is in memory a driver holds, except the doorbell
 * words the NIC reads (TX_PROD, RX_PROD, EV_CONS, IRQ_ARM) and the two it
 * reports (STATUS, NIC_ASLEEP).
 */
import { declareCounters, offTap, tracer, type Counters, type DeviceIrq, type Tap } from '@xsim/hypervisor';
import {
  DOORBELL_BYTES,
  EVQ_OFFSET,
  EV_FLAGS,
  EV_INDEX,
  EV_LEN,
  EV_SEQ,
  EV_SIZE,
  EV_TYPE,
  VI_EVQ_SIZE,
  VI_STATE_FAULTED,
  VI_STATE_RESET,
  VI_STATE_RUNNING,
  W_EV_CONS,
  W_IRQ_ARM,
  W_STATUS,
} from './layout.ts';
import type { TsoFrame } from './tso-engine.ts';

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
  rxUnreadAtFini: { kind: 'drop', help: "delivered into the driver's buffers, but the VI was torn down before the driver read the events" },
  attachments: { kind: 'event', help: 'times a driver was attached (vi_init)' },
  txCsumOffloaded: { kind: 'event', help: 'frames sent whose partial TCP or UDP checksum the NIC completed (TX checksum offload)' },
  txCsumBad: {
    kind: 'drop',
    help: 'frames asking for checksum completion that the NIC could not complete (no IPv4 TCP or UDP frame, or a function without checksum offload): dropped, never sent partial',
  },
  rxCsumGood: { kind: 'event', help: 'frames received whose TCP or UDP checksum the NIC checked good (reported to the driver with the frame)' },
  txTsoFrames: { kind: 'event', help: 'TCP frames the NIC cut into segments (TX TSO, TXD_TSO): each segment is counted in txFrames' },
  txTsoSegments: { kind: 'event', help: 'segments those frames made' },
  txTsoBad: {
    kind: 'drop',
    help: 'frames asking for TSO that the NIC could not cut (not IPv4 TCP, an MSS of 0 or over the MTU, a length that disagrees with its IP header, or a VI without TSO): dropped whole',
  },
});

export type ViCounters = Counters<typeof VI_COUNTERS.decls>;

/** One attachment of a driver to the VI. */
export interface Attachment {
  domid: number;
  /** The doorbell made for this attachment. */
  doorbell: SharedArrayBuffer;
  db: Int32Array;
  /** The driver's RAM and the byte offset of its ring pages there. */
  ram: Uint8Array;
  dv: DataView;
  i32: Int32Array;
  ring: number;
  irq: DeviceIrq | null;
  /** MACs this VI may send from; null = any (VI 0 bridges everyone's frames). */
  macs: Set<number> | null;
  /** The driver enabled checksum offload (vi_init's csum): TX completion and RX checking. Absent: off. */
  csum?: boolean;
  /** The driver enabled TCP segmentation offload (vi_init's tso). Absent: off. */
  tso?: boolean;
}

/** A TSO frame the line had no room for all of: the NIC's private copy, how it splits, the next segment to send. */
export interface TsoInFlight {
  frame: Uint8Array;
  f: TsoFrame;
  next: number;
}

export class HwVi {
  a: Attachment | null = null;
  txCons = 0;
  rxCons = 0;
  evProd = 0;
  running = false;
  evDirty = false;
  faultReason = 0;
  readonly c: ViCounters = VI_COUNTERS.zero();
  /** Segments of a TSO frame still waiting for the line (null: none). */
  tsoLeft: TsoInFlight | null = null;
  /** Capture point (`host/nic/viN`): what the VI sends (outbound) and receives (inbound), from its owner's side. */
  tap: Tap = offTap();

  constructor(readonly id: number) {}

  get domid(): number {
    return this.a?.domid ?? -1;
  }

  attach(a: Attachment): void {
    this.a = a;
    this.txCons = this.rxCons = this.evProd = 0;
    this.faultReason = 0;
    this.evDirty = false;
    this.running = true;
    this.c.attachments++;
    this.setStatus(VI_STATE_RUNNING, 0);
  }

  setStatus(state: number, fault: number): void {
    if (this.a) Atomics.store(this.a.db, W_STATUS, state | (fault << 8));
  }

  fault(reason: number): void {
    this.running = false;
    this.faultReason = reason;
    this.c.faults++;
    this.setStatus(VI_STATE_FAULTED, reason);
  }

  /** The attachment is over: its memory is never touched again. */
  detach(): void {
    // Segments of a TSO frame the line never took: the driver was told the frame went (its TX completion).
    if (this.tsoLeft) this.c.txDiscardedAtFini += this.tsoLeft.f.count - this.tsoLeft.next;
    this.tsoLeft = null;
    this.setStatus(VI_STATE_RESET, 0);
    this.running = false;
    this.a = null;
  }

  /** Events the queue can still take without overwriting one the driver has not read. */
  evSpace(): number {
    const used = (this.evProd - (Atomics.load(this.a!.db, W_EV_CONS) >>> 0)) >>> 0;
    // A consumer index past what we produced is the driver's garbage: no room (its loss, counted).
    return used > VI_EVQ_SIZE ? 0 : VI_EVQ_SIZE - used;
  }

  /** Write one event into the driver's queue; its seq, written last, makes it visible. */
  writeEvent(type: number, flags: number, len: number, index: number): void {
    const a = this.a!;
    const o = a.ring + EVQ_OFFSET + (this.evProd & (VI_EVQ_SIZE - 1)) * EV_SIZE;
    a.dv.setUint16(o + EV_TYPE, type, true);
    a.dv.setUint16(o + EV_FLAGS, flags, true);
    a.dv.setUint16(o + EV_LEN, len, true);
    a.dv.setUint32(o + EV_INDEX, index >>> 0, true);
    this.evProd = (this.evProd + 1) >>> 0;
    Atomics.store(a.i32, (o + EV_SEQ) >> 2, this.evProd | 0);
    this.evDirty = true;
  }

  /** Interrupt the VI's driver if it asked to be (events written since the last flush); `host` names it in a trace. */
  flushEvents(host: string): void {
    if (!this.evDirty || !this.a) return;
    this.evDirty = false;
    if (Atomics.exchange(this.a.db, W_IRQ_ARM, 0) === 1) {
      if (tracer.on) tracer.instant(`VI ${this.id} interrupt`, { host, domid: this.a.domid });
      this.a.irq?.raise();
    }
  }

  static newDoorbell(): SharedArrayBuffer {
    return new SharedArrayBuffer(DOORBELL_BYTES);
  }
}
