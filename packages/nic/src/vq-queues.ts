/**
 * A split virtqueue as its driver sees it (dom0's primary driver for function
 * 0 of the virtio NIC, a guest's accelerator plugin for its own function):
 * the three areas in the driver's own memory, written through the offsets of
 * vq-layout.ts, and the function's notify area. The device reads the same
 * memory through the same constants (vq-nic.ts).
 *
 * The driver keeps its own state private (free descriptors, the next
 * available index, the used index it consumed up to) and reads the used ring
 * once per entry, checking the id the device names is a chain it posted.
 */
import {
  NOTIFY_BYTES,
  N_KICKS,
  N_NOTIFY,
  N_RX_SEEN,
  N_STATUS,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VQA_FLAGS,
  VQA_IDX,
  VQA_RING,
  VQD_ADDR,
  VQD_FLAGS,
  VQD_LEN,
  VQD_NEXT,
  VQU_IDX,
  VQU_RING,
  VQU_ELEM_SIZE,
  VQ_DESC_SIZE,
  VQ_PAGE,
  vqAvailEventOffset,
  vqStatus,
  vqUsedEventOffset,
  vringNeedEvent,
} from './vq-layout.ts';

/** Where a queue's three areas are in the driver's RAM (byte offsets, page-aligned). */
export interface VqArea {
  desc: number;
  avail: number;
  used: number;
}

/** A used-ring entry the driver took back: the chain's head (its token) and the bytes the device wrote. */
export interface VqUsed {
  head: number;
  len: number;
}

export class Virtqueue {
  private readonly dv: DataView;
  private readonly u16: Uint16Array;
  private readonly freeNext: Int16Array;
  private freeHead = 0;
  private freeCount: number;
  /** Descriptors each posted chain holds (by head), 0 for a head not posted. */
  private readonly chainLen: Uint16Array;
  /** Each posted descriptor's successor in its chain, as we wrote it (never read back from shared memory). */
  private readonly linkNext: Uint16Array;
  availIdx = 0;
  lastUsed = 0;
  /** The available index at our last kick decision (vring_need_event's old). */
  private kickedAt = 0;
  /** Used entries the device named that we had not posted: ignored, counted. */
  bogusUsed = 0;

  /**
   * @param ram   the driver's RAM
   * @param area  the queue's areas (RAM offsets; the device sees them at IOVAs dom0 mapped)
   * @param size  entries, a power of two (VQ_SIZE)
   * @param kick  tells the device of new available entries (called only when avail_event asks for it)
   */
  constructor(
    ram: SharedArrayBuffer,
    readonly area: VqArea,
    readonly size: number,
    private readonly kick: () => void,
  ) {
    if (size < 2 || size > 32768 || (size & (size - 1)) !== 0) throw new RangeError(`a virtqueue of ${size} entries (a power of two from 2 to 32768)`);
    for (const [k, o] of Object.entries(area))
      if (o % VQ_PAGE !== 0 || o + VQ_PAGE > ram.byteLength) throw new RangeError(`virtqueue ${k} area at ${o} is not a page of the driver's RAM`);
    this.dv = new DataView(ram);
    this.u16 = new Uint16Array(ram);
    this.freeNext = new Int16Array(size);
    for (let i = 0; i < size; i++) this.freeNext[i] = i + 1 < size ? i + 1 : -1;
    this.freeCount = size;
    this.chainLen = new Uint16Array(size);
    this.linkNext = new Uint16Array(size);
  }

  /** Zero a queue's areas before the device is told of them: stale memory must not look like entries. */
  static clear(ram: Uint8Array, area: VqArea): void {
    for (const o of [area.desc, area.avail, area.used]) ram.fill(0, o, o + VQ_PAGE);
  }

  /** Descriptors free for new chains. */
  get free(): number {
    return this.freeCount;
  }

  /**
   * Post a chain of buffers (IOVAs): readable ones first, then writable ones,
   * as virtio requires. Not visible to the device until publish(). Returns the
   * head (the chain's token), or -1 if too few descriptors are free.
   */
  add(iovas: ArrayLike<number>, lens: ArrayLike<number>, writable: boolean, count = lens.length): number {
    if (count < 1 || count > this.freeCount) return -1;
    const head = this.freeHead;
    let d = head;
    for (let k = 0; k < count; k++) {
      const o = this.area.desc + d * VQ_DESC_SIZE;
      const next = this.freeNext[d];
      this.dv.setBigUint64(o + VQD_ADDR, BigInt(iovas[k]), true);
      this.dv.setUint32(o + VQD_LEN, lens[k], true);
      const last = k === count - 1;
      this.dv.setUint16(o + VQD_FLAGS, (writable ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT), true);
      this.dv.setUint16(o + VQD_NEXT, last ? 0 : next, true);
      this.linkNext[d] = last ? 0 : next;
      if (last) this.freeHead = next;
      d = next;
    }
    this.freeCount -= count;
    this.chainLen[head] = count;
    const slot = this.availIdx & (this.size - 1);
    this.dv.setUint16(this.area.avail + VQA_RING + 2 * slot, head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    return head;
  }

  /** Make added chains visible (the available index, written last), and kick if the device asked to be. */
  publish(): void {
    this.expose();
    this.kickIfAsked();
  }

  /**
   * Make added chains visible without the kick decision: a driver sending a
   * burst exposes each chain and decides once at its end (kickIfAsked), as
   * virtio-net does while `xmit_more` says more follow.
   */
  expose(): void {
    Atomics.store(this.u16, (this.area.avail + VQA_IDX) >> 1, this.availIdx);
  }

  /** Kick if the device asked to be told of any entry made available since the last decision (vring_need_event over the batch). */
  kickIfAsked(): void {
    const event = Atomics.load(this.u16, (this.area.used + vqAvailEventOffset(this.size)) >> 1);
    const old = this.kickedAt;
    this.kickedAt = this.availIdx;
    if (vringNeedEvent(event, this.availIdx, old)) this.kick();
  }

  /** The next used entry, its chain's descriptors freed; null when the device has returned nothing new. */
  takeUsed(): VqUsed | null {
    const usedIdx = Atomics.load(this.u16, (this.area.used + VQU_IDX) >> 1);
    while (usedIdx !== this.lastUsed) {
      const o = this.area.used + VQU_RING + (this.lastUsed & (this.size - 1)) * VQU_ELEM_SIZE;
      const head = this.dv.getUint32(o, true);
      const len = this.dv.getUint32(o + 4, true);
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
      // The device's word is checked, not trusted: a head we did not post is skipped.
      if (head >= this.size || this.chainLen[head] === 0) {
        this.bogusUsed++;
        continue;
      }
      this.release(head);
      return { head, len };
    }
    return null;
  }

  private release(head: number): void {
    let n = this.chainLen[head];
    this.chainLen[head] = 0;
    // Our own links (linkNext), never the table's next fields: the table is shared memory.
    let d = head;
    const last: number[] = [];
    while (n-- > 0) {
      last.push(d);
      d = this.linkNext[d];
    }
    for (let i = last.length - 1; i >= 0; i--) {
      this.freeNext[last[i]] = this.freeHead;
      this.freeHead = last[i];
    }
    this.freeCount += last.length;
  }

  /** Chains posted and not yet returned. */
  get outstanding(): number {
    return (this.availIdx - this.lastUsed) & 0xffff;
  }

  /**
   * Ask for an interrupt at the next used entry (used_event), then look once
   * more: an entry that landed before the write would otherwise raise nothing.
   * True if one did.
   */
  enableInterrupt(): boolean {
    Atomics.store(this.u16, (this.area.avail + vqUsedEventOffset(this.size)) >> 1, this.lastUsed);
    return Atomics.load(this.u16, (this.area.used + VQU_IDX) >> 1) !== this.lastUsed;
  }

  /** Interrupts off (VRING_AVAIL_F_NO_INTERRUPT; with EVENT_IDX the device goes by used_event, which we leave behind). */
  get availFlags(): number {
    return this.dv.getUint16(this.area.avail + VQA_FLAGS, true);
  }
}

/** A function's notify area as its driver holds it. */
export class VqNotify {
  private readonly w: Int32Array;
  constructor(area: SharedArrayBuffer) {
    if (area.byteLength < NOTIFY_BYTES) throw new RangeError(`a notify area of ${area.byteLength} bytes is smaller than ${NOTIFY_BYTES}`);
    this.w = new Int32Array(area, 0, NOTIFY_BYTES / 4);
  }
  /** Write the queue's index to the notify register (the device's thread is woken by the caller). */
  notify(q: number): void {
    Atomics.store(this.w, N_NOTIFY, q);
    Atomics.add(this.w, N_KICKS, 1);
  }
  /** Tell the device how far the driver has taken the receiveq's used entries (Virtqueue.lastUsed), after each batch. */
  rxSeen(lastUsed: number): void {
    Atomics.store(this.w, N_RX_SEEN, lastUsed & 0xffff);
  }
  get status(): number {
    return vqStatus(Atomics.load(this.w, N_STATUS)).status;
  }
  get fault(): number {
    return vqStatus(Atomics.load(this.w, N_STATUS)).fault;
  }
}
