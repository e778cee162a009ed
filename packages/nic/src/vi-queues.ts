/**
 * A VI as its driver sees it (dom0's primary driver for VI 0, a guest's
 * accelerator plugin for its own VI): the rings in the driver's own memory,
 * and the attachment's doorbell. The NIC side reads the same memory through
 * the same layout constants (layout.ts).
 */
import { tracer, traceRingPush } from '@xsim/hypervisor';
import {
  DESC_SIZE,
  DOORBELL_BYTES,
  EVQ_OFFSET,
  EV_SEQ,
  EV_SIZE,
  RXD_BUF,
  RXD_LEN,
  RXD_OFF,
  RXQ_OFFSET,
  TXD_BUF,
  TXD_FLAGS,
  TXD_MSS,
  TXD_LEN,
  TXD_OFF,
  TXQ_OFFSET,
  VI_EVQ_SIZE,
  VI_RING_BYTES,
  VI_RXQ_SIZE,
  VI_TXQ_SIZE,
  W_EV_CONS,
  W_IRQ_ARM,
  W_NIC_ASLEEP,
  W_RX_PROD,
  W_STATUS,
  W_TX_PROD,
  viStatus,
} from './layout.ts';

export class ViQueues {
  /** The attachment's doorbell (shared with the NIC only). */
  readonly db: Int32Array;
  /** The driver's RAM, where the rings are. */
  readonly dv: DataView;
  private readonly i32: Int32Array;
  /** Byte offset of the ring pages in the driver's RAM. */
  readonly ring: number;
  txProdPvt = 0;
  rxProdPvt = 0;
  evCons = 0;
  readonly #wakeNic: () => void;

  /**
   * @param doorbell the doorbell the NIC made for this attachment (vi_init's answer)
   * @param ram      the driver's RAM (a SharedArrayBuffer) and the byte offset of its ring pages
   * @param wakeNic  wakes the NIC (called only when it says it sleeps): dom0 rings the NIC's
   *                 wake line; a guest asks the platform (DomainEnv.kickDevice)
   */
  constructor(doorbell: SharedArrayBuffer, ram: SharedArrayBuffer, ringOffset: number, wakeNic: () => void) {
    if (doorbell.byteLength < DOORBELL_BYTES) throw new RangeError(`a doorbell of ${doorbell.byteLength} bytes is smaller than ${DOORBELL_BYTES}`);
    if (ringOffset % 4096 !== 0 || ringOffset + VI_RING_BYTES > ram.byteLength) throw new RangeError(`VI rings at ${ringOffset} do not fit the driver's RAM`);
    this.db = new Int32Array(doorbell, 0, DOORBELL_BYTES / 4);
    this.dv = new DataView(ram);
    this.i32 = new Int32Array(ram);
    this.ring = ringOffset;
    this.#wakeNic = wakeNic;
  }

  /** Zero the event queue before the attachment starts: stale memory must not look like events. */
  static clearRings(ram: Uint8Array, ringOffset: number): void {
    ram.fill(0, ringOffset, ringOffset + VI_RING_BYTES);
  }

  get state(): number {
    return viStatus(Atomics.load(this.db, W_STATUS)).state;
  }
  get fault(): number {
    return viStatus(Atomics.load(this.db, W_STATUS)).fault;
  }

  /** Queue a TX descriptor (not yet visible to the NIC: see pushTx), `mss` for a TXD_TSO frame's first. Returns its ring index. */
  postTx(bufId: number, off: number, len: number, flags: number, mss = 0): number {
    const idx = this.txProdPvt;
    const o = this.ring + TXQ_OFFSET + (idx & (VI_TXQ_SIZE - 1)) * DESC_SIZE;
    this.dv.setUint32(o + TXD_BUF, bufId, true);
    this.dv.setUint16(o + TXD_OFF, off, true);
    this.dv.setUint16(o + TXD_LEN, len, true);
    this.dv.setUint16(o + TXD_FLAGS, flags, true);
    this.dv.setUint16(o + TXD_MSS, mss, true);
    this.txProdPvt = (idx + 1) >>> 0;
    return idx;
  }

  /** Ring the TX doorbell; ring the NIC's wake line only if it says it sleeps. */
  pushTx(): void {
    this.publishTx();
    this.wakeIfAsleep();
  }

  /**
   * Make the descriptors posted so far visible to the NIC (it takes them
   * while it is awake, and counts them if the VI ends under them), without
   * waking it: a driver sending a burst publishes each frame and wakes the
   * NIC once at its end (wakeIfAsleep).
   */
  publishTx(): void {
    Atomics.store(this.db, W_TX_PROD, this.txProdPvt | 0);
  }

  /** The end of a burst: wake the NIC only if it says it sleeps (it then finds what publishTx made visible). */
  wakeIfAsleep(): void {
    const asleep = Atomics.load(this.db, W_NIC_ASLEEP) !== 0;
    // Traced when it wakes the NIC (a notification); a doorbell per frame otherwise would swamp a trace.
    if (asleep) {
      if (tracer.on) traceRingPush('VI TX doorbell, NIC woken', this.txProdPvt, true);
      this.#wakeNic();
    }
  }

  postRx(bufId: number, off: number, len: number): number {
    const idx = this.rxProdPvt;
    const o = this.ring + RXQ_OFFSET + (idx & (VI_RXQ_SIZE - 1)) * DESC_SIZE;
    this.dv.setUint32(o + RXD_BUF, bufId, true);
    this.dv.setUint16(o + RXD_OFF, off, true);
    this.dv.setUint16(o + RXD_LEN, len, true);
    this.rxProdPvt = (idx + 1) >>> 0;
    return idx;
  }

  /** RX buffers need no kick: the NIC only looks for them when a frame arrives. */
  pushRx(): void {
    Atomics.store(this.db, W_RX_PROD, this.rxProdPvt | 0);
  }

  /** Byte offset (in the driver's RAM) of the next event, or -1 if the NIC has not written it yet. */
  nextEvent(): number {
    const o = this.ring + EVQ_OFFSET + (this.evCons & (VI_EVQ_SIZE - 1)) * EV_SIZE;
    return Atomics.load(this.i32, (o + EV_SEQ) >> 2) === ((this.evCons + 1) | 0) ? o : -1;
  }

  /** The event at nextEvent() is consumed. */
  takeEvent(): void {
    this.evCons = (this.evCons + 1) >>> 0;
  }

  evPending(): boolean {
    return this.nextEvent() >= 0;
  }

  /** Hand consumed events back to the NIC. */
  publishEvCons(): void {
    Atomics.store(this.db, W_EV_CONS, this.evCons | 0);
  }

  /**
   * Ask for an interrupt at the next event, then look once more: an event
   * that landed before the arm would otherwise raise nothing. True if one did.
   */
  armIrq(): boolean {
    Atomics.store(this.db, W_IRQ_ARM, 1);
    return this.evPending();
  }
}
