/**
 * Delayed ACKs (RFC 9293 §3.8.6.3, RFC 1122 §4.2.3.2, RFC 5681 §4.2): an
 * ACK for in-order data may wait for more data or for data of ours to ride
 * on, but no longer than the delay (Linux's 40 ms minimum, TCP_DELACK_MIN),
 * and at least every second full-sized segment is ACKed at once: here as
 * Linux, once more than one receive MSS (the largest segment seen, Linux's
 * rcv_mss estimate) of data waits. Out-of-order data, data filling a hole,
 * a FIN, and anything unacceptable are ACKed at once by the TCB, which
 * never asks this then.
 */
export const DELACK_MS = 40;

/**
 * With stretch ACKs on (a kernel that receives in batches, as Linux's GRO
 * hands TCP one segment of up to 64 KiB per flow and NAPI poll): the ACK
 * owed for in-order data goes once the batch is over (its timer due at
 * once, run when the kernel's apps poll after its drivers), or as soon as
 * this many octets wait.
 */
export const STRETCH_ACK_MAX = 65536;

export class DelayedAck {
  /** When the delayed ACK is due, or -1. */
  at = -1;
  /** In-order octets received and not yet ACKed. */
  private pending = 0;
  /** The largest segment received so far, at most our MSS (starting at 536 as Linux's TCP_MSS_DEFAULT). */
  private rcvMss: number;
  /** The ACK due at `at` is owed for more than a full segment (a stretch ACK at the batch's end), not a delayed one. */
  stretch = false;

  constructor(
    private readonly delayMs: number,
    private readonly maxMss: number,
    /** Stretch ACKs: the most octets an ACK waits for to the end of the receive batch (STRETCH_ACK_MAX), 0: off. */
    private readonly stretchMax = 0,
  ) {
    this.rcvMss = Math.min(maxMss, 536);
  }

  /** `len` in-order octets arrived at `now`: true when the ACK must go at once, else it waits (at most delayMs, or to the batch's end). */
  data(len: number, now: number): boolean {
    if (len > this.rcvMss) this.rcvMss = Math.min(len, this.maxMss);
    this.pending += len;
    if (this.delayMs <= 0) return true;
    if (this.pending > this.rcvMss) {
      if (this.pending >= this.stretchMax) return true;
      this.at = this.at < 0 ? now : Math.min(this.at, now);
      this.stretch = true;
      return false;
    }
    if (this.at < 0) this.at = now + this.delayMs;
    return false;
  }

  /** An ACK left (on its own or with data): nothing waits any more. */
  sent(): void {
    this.pending = 0;
    this.at = -1;
    this.stretch = false;
  }
}
