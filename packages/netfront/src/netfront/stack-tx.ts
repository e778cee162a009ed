/**
 * netfront's TX as its stack sees it (xennet_start_xmit's front half): a
 * buffer reserved for the next frame (the accelerator's own DMA buffer when
 * it lends one, else a chunk of the TX pool, a big one for a TSO frame),
 * then the built frame's checksum handled (offload.ts), offered to the
 * accelerator, else queued on the TX ring of the queue its flow hashes to.
 */
import { DIR_OUTBOUND, XEN_NETIF_MAX_TX_SIZE, type Tap } from '@xsim/hypervisor';
import { ETH_HLEN, tapFrame } from '@xsim/netstack';
import type { AccelFrontend } from '../accel-api.ts';
import type { NetfrontCounters, NetfrontDeps } from './common.ts';
import { TX_CSUM_FLAGS, txCsum } from './offload.ts';
import type { QueueSet } from './queues.ts';

/** What the stack's TX needs of its device. */
export interface StackTxHost {
  readonly connected: boolean;
  readonly accel: AccelFrontend | null;
  readonly own: NetfrontCounters;
  readonly tap: Tap;
  readonly csumOffload: boolean;
}

export class StackTx {
  /** The accelerator's TX buffer the reserved frame is being built in (its txBuffer), or -1. */
  private accelBuf = -1;

  constructor(
    private readonly d: NetfrontDeps,
    private readonly qs: QueueSet,
    private readonly h: StackTxHost,
  ) {}

  /**
   * Reserve a TX buffer for a frame of `len` bytes: the byte offset in guest
   * RAM to write it at, or -1 if there is no room now (retry after poll()).
   * One reservation at a time: commit it before reserving again.
   */
  reserve(len: number): number {
    if (!this.h.connected) return -1;
    // An attached accelerator out of fast-path room stops the queue (as Xen's
    // netfront does until checkReady): diverting to the slow path would reorder flows.
    if (this.h.accel && !this.h.accel.checkReady()) {
      this.h.own.txBusy++;
      return -1;
    }
    // The queue is picked from the frame once it is built: every queue must have room for it.
    const at = this.qs.reserve(len);
    if (at < 0) {
      this.h.own.txBusy++;
      return at;
    }
    // The frame is built where the fast path sends it from, if the accelerator offers that buffer;
    // the slow path's buffer stays reserved for a frame it declines.
    this.accelBuf = this.h.accel?.txBuffer?.(len) ?? -1;
    return this.accelBuf >= 0 ? this.accelBuf : at;
  }

  /**
   * Send the reserved frame: offered to the accelerator first, else queued on
   * the TX ring of the queue its flow hashes to. `csumPartial`: its TCP or
   * UDP checksum is partial (offload.ts).
   */
  commit(len: number, csumPartial = false, gsoSize = 0): void {
    const pool = this.qs.pool;
    const chunk = pool.takeReserved();
    if (chunk < 0) throw new Error('netfront: txCommit without txReserve');
    if (gsoSize > 0 || pool.isBig(chunk)) return this.gso(chunk, len, gsoSize);
    const at = pool.chunkAddr(chunk);
    const built = this.accelBuf;
    this.accelBuf = -1;
    const src = built >= 0 ? built : at;
    const ram = this.d.mem.u8;
    if (this.h.tap.on) tapFrame(this.h.tap, ram, src, len, DIR_OUTBOUND, csumPartial);
    const accel = this.h.accel;
    const flags = txCsum(this.h.own, ram, src, len, csumPartial, this.h.csumOffload && (accel === null || accel.csumOffload?.() === true));
    if (flags < 0) {
      pool.giveBack(chunk);
      return;
    }
    if (accel && accel.startXmit(ram, src, len, flags !== 0)) {
      pool.giveBack(chunk);
      this.h.own.txAccel++;
      if (built >= 0) this.h.own.txAccelInPlace++;
      return;
    }
    // Declined (or the accelerator failed) after the stack built it in the accelerator's buffer: one copy to ours.
    if (built >= 0) {
      ram.copyWithin(at, built, built + len);
      this.h.own.txAccelDeclinedCopies++;
    }
    this.qs.queue(chunk, len, ram, flags);
  }

  /**
   * A TCPv4 GSO frame (built in a big chunk): to an accelerator whose
   * hardware segments it (tsoMax, plugin API 1.5), else to the TX ring with
   * its GSO slot and a partial checksum, for netback to segment; without GSO
   * negotiated, with gso_size 0, or too big for the accelerator attached, it
   * is dropped and counted.
   */
  private gso(chunk: number, len: number, gsoSize: number): void {
    const pool = this.qs.pool;
    const ram = this.d.mem.u8;
    const at = pool.chunkAddr(chunk);
    // A frame small enough for the accelerator's buffer was built there (its txBuffer), not in our chunk.
    const built = this.accelBuf;
    this.accelBuf = -1;
    const src = built >= 0 ? built : at;
    const accel = this.h.accel;
    const accelTso = accel === null ? 0 : (accel.tsoMax?.() ?? 0);
    if (!this.qs.gso || gsoSize <= 0 || (accel !== null && len - ETH_HLEN > accelTso)) {
      pool.giveBack(chunk);
      this.h.own.txGsoRefused++;
      return;
    }
    if (this.h.tap.on) tapFrame(this.h.tap, ram, src, len, DIR_OUTBOUND, true);
    if (accel !== null && accel.startXmit(ram, src, len, true, gsoSize)) {
      pool.giveBack(chunk);
      this.h.own.txAccel++;
      this.h.own.txAccelTso++;
      // A GSO frame's checksum is partial too (CHECKSUM_PARTIAL): the accelerator's NIC completes it per segment.
      this.h.own.txCsumPartial++;
      return;
    }
    if (built >= 0) {
      ram.copyWithin(at, built, built + len);
      this.h.own.txAccelDeclinedCopies++;
    }
    this.h.own.txCsumPartial++;
    this.qs.queue(chunk, len, ram, TX_CSUM_FLAGS, gsoSize);
  }

  /**
   * The largest IP datagram the stack may hand down as one TCP frame with its
   * MSS (TSO: StackOffloads.tsoMax), 0 for none: GSO negotiated (a frame the
   * accelerator declines goes to netback whole), and an accelerator attached
   * segments it too (its tsoMax). The frame, its Ethernet header and a VLAN
   * tag included, stays within XEN_NETIF_MAX_TX_SIZE.
   */
  get tsoMax(): number {
    if (!this.qs.gso) return 0;
    const own = Math.min(this.qs.pool.maxFrame, XEN_NETIF_MAX_TX_SIZE) - ETH_HLEN - 4;
    return this.h.accel ? Math.min(own, this.h.accel.tsoMax?.() ?? 0) : own;
  }
}
