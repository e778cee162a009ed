/**
 * The virtio NIC's private state for one function: counters for its life,
 * and, while a driver is attached (fn_start), where its two queues' areas are
 * in the driver's RAM (translated once through the IOMMU at fn_start), its
 * notify area, its interrupt and the device's own indices. None of this is
 * in memory a driver holds, except the words the device reads (avail.idx,
 * ring entries, descriptors, used_event, the notify area's RX_SEEN) and those
 * it writes (used entries, used.idx, avail_event, STATUS).
 */
import { offTap, tracer, type DeviceIrq, type Tap } from '@xsim/hypervisor';
import { VI_COUNTERS, type ViCounters } from './hw-vi.ts';
import type { Ram } from './nic-port.ts';
import {
  NOTIFY_BYTES,
  N_STATUS,
  VIRTIO_STATUS_DRIVER_OK,
  VIRTIO_STATUS_NEEDS_RESET,
  VQA_IDX,
  VQA_RING,
  VQU_IDX,
  VQU_RING,
  VQU_ELEM_SIZE,
  vqAvailEventOffset,
  vqUsedEventOffset,
  vringNeedEvent,
} from './vq-layout.ts';

/** One queue as the device keeps it: RAM offsets of its areas and the device's indices (u16). */
export class DeviceQueue {
  lastAvail = 0;
  usedIdx = 0;
  /** used.idx at the last interrupt decision (vring_need_event's old). */
  private signalled = 0;
  private readonly u16: Uint16Array;

  constructor(
    private readonly ram: Ram,
    readonly size: number,
    /** RAM byte offsets of the descriptor table, available ring and used ring. */
    readonly desc: number,
    readonly avail: number,
    readonly used: number,
  ) {
    this.u16 = new Uint16Array(ram.u8.buffer, ram.u8.byteOffset, ram.u8.byteLength >> 1);
  }

  /** The driver's available index, read once per call. */
  availIdx(): number {
    return Atomics.load(this.u16, (this.avail + VQA_IDX) >> 1);
  }

  /** Chains the driver made available that the device has not taken. */
  pending(): number {
    return (this.availIdx() - this.lastAvail) & 0xffff;
  }

  /** The head of the available entry `idx`. */
  head(idx: number): number {
    return this.ram.dv.getUint16(this.avail + VQA_RING + 2 * (idx & (this.size - 1)), true);
  }

  /** Write a used entry; not visible to the driver until publish(). */
  putUsed(head: number, len: number): void {
    const o = this.used + VQU_RING + (this.usedIdx & (this.size - 1)) * VQU_ELEM_SIZE;
    this.ram.dv.setUint32(o, head, true);
    this.ram.dv.setUint32(o + 4, len, true);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
  }

  /** Make used entries visible: used.idx, written last. */
  publish(): void {
    Atomics.store(this.u16, (this.used + VQU_IDX) >> 1, this.usedIdx);
  }

  /** Does the driver want an interrupt for the used entries since the last decision (used_event)? */
  wantsInterrupt(): boolean {
    if (this.usedIdx === this.signalled) return false;
    const event = Atomics.load(this.u16, (this.avail + vqUsedEventOffset(this.size)) >> 1);
    const want = vringNeedEvent(event, this.usedIdx, this.signalled);
    this.signalled = this.usedIdx;
    return want;
  }

  /** Ask the driver to kick at its next available entry (avail_event := what we consumed). */
  askForKick(): void {
    Atomics.store(this.u16, (this.used + vqAvailEventOffset(this.size)) >> 1, this.lastAvail);
  }
}

/** One attachment of a driver to a function (fn_start .. fn_stop). */
export interface VqAttachment {
  domid: number;
  ram: Ram;
  notify: SharedArrayBuffer;
  nw: Int32Array;
  rx: DeviceQueue;
  tx: DeviceQueue;
  irq: DeviceIrq | null;
  /** MACs this function may send from; null = any (function 0 bridges everyone's frames). */
  macs: Set<number> | null;
  /** virtio-net features negotiated (VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM); absent: none. */
  features?: number;
}

export class VqFn {
  a: VqAttachment | null = null;
  running = false;
  dirty = false;
  faultReason = 0;
  readonly c: ViCounters = VI_COUNTERS.zero();
  tap: Tap = offTap();

  constructor(readonly id: number) {}

  get domid(): number {
    return this.a?.domid ?? -1;
  }

  attach(a: VqAttachment): void {
    this.a = a;
    this.faultReason = 0;
    this.dirty = false;
    this.running = true;
    this.c.attachments++;
    Atomics.store(a.nw, N_STATUS, VIRTIO_STATUS_DRIVER_OK);
  }

  /** A bad chain or index from the driver: the function stops and says it needs a reset (virtio 1.2 §2.1.2). */
  fault(reason: number): void {
    this.running = false;
    this.faultReason = reason;
    this.c.faults++;
    if (!this.a) return;
    Atomics.store(this.a.nw, N_STATUS, VIRTIO_STATUS_NEEDS_RESET | (reason << 8));
    // Tell the driver (it may be asleep waiting for completions that will never come).
    this.a.irq?.raise();
  }

  detach(): void {
    if (this.a) Atomics.store(this.a.nw, N_STATUS, 0);
    this.running = false;
    this.a = null;
  }

  /** Interrupt the driver if either queue's used_event asks for it; `host` names it in a trace. */
  flush(host: string): void {
    if (!this.dirty || !this.a) return;
    this.dirty = false;
    const rx = this.a.rx.wantsInterrupt();
    const tx = this.a.tx.wantsInterrupt();
    if (rx || tx) {
      if (tracer.on) tracer.instant(`virtio fn ${this.id} interrupt`, { host, domid: this.a.domid });
      this.a.irq?.raise();
    }
  }

  static newNotifyArea(): SharedArrayBuffer {
    return new SharedArrayBuffer(NOTIFY_BYTES);
  }
}
