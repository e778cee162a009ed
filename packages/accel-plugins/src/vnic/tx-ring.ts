/**
 * vnic's TX pages as a ring: every frame, an MTU-sized one or a TCP frame of
 * up to 64 KiB for the NIC to cut (TSO), takes the pages it needs, contiguous,
 * at the head; the VI completes TX descriptors in order, so the pages come
 * back in the order they were taken and the free pages are always one run
 * from the head (wrapping). A frame that does not fit before the end starts
 * at page 0, and the pages it skipped are charged to it. Contiguous, a frame
 * can be built by the stack in place (txBuffer lends where the next one will
 * go) however large it is, and as many 64 KiB frames are in flight as the
 * pages hold, where dedicated 64 KiB buffers allowed two.
 */

export class TxRing {
  /** Where the next frame starts. */
  private head = 0;
  /** Pages not charged to a frame in flight: the run from head, wrapping. */
  free: number;

  constructor(readonly pages: number) {
    this.free = pages;
  }

  /** Every page free (a new attachment). */
  reset(): void {
    this.head = 0;
    this.free = this.pages;
  }

  /** Where a frame of `n` pages would start now (the head, or page 0 if it does not fit before the end), or -1 if there is no room. */
  fit(n: number): number {
    if (n < 1 || n > this.pages) return -1;
    if (this.head + n <= this.pages) return this.free >= n ? this.head : -1;
    return this.free >= this.pages - this.head + n ? 0 : -1;
  }

  /**
   * Take `n` pages from `at` (a place fit answered since the last take:
   * completions in between only add room): the pages charged (those
   * skipped at the end included), to give back when the frame completes;
   * -1 if `at` is not where a frame of `n` pages may start now.
   */
  take(at: number, n: number): number {
    let charged = n;
    if (n < 1) return -1;
    if (at === this.head) {
      if (at + n > this.pages || this.free < n) return -1;
    } else {
      if (at !== 0) return -1;
      charged += this.pages - this.head;
      if (this.free < charged) return -1;
    }
    this.free -= charged;
    this.head = at + n === this.pages ? 0 : at + n;
    return charged;
  }

  /** Nothing in flight: start over at page 0, so the next frames find the whole ring in one run (not while a place fit gave is still to be taken). */
  rewind(): void {
    if (this.free === this.pages) this.head = 0;
  }

  /** A frame's pages back (its descriptors completed): what take charged it. */
  give(charged: number): void {
    this.free += charged;
  }
}
