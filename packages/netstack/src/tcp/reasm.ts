/**
 * The receive side's reassembly queue: segments that arrived ahead of
 * RCV.NXT are copied and held, sorted by sequence number, until the hole
 * before them fills; then their bytes past RCV.NXT go to the application in
 * order, each once. The caller bounds what is held by its receive window.
 */
import { seqAdd, seqDiff, seqLeq, seqLt } from './seq.ts';

interface Held {
  seq: number;
  data: Uint8Array;
}

export class Reassembly {
  private readonly held: Held[] = [];
  /** The octets held (overlaps counted twice; the window accounts for them). */
  bytes = 0;

  get segments(): number {
    return this.held.length;
  }

  /** Hold a copy of `len` octets at `off` in `b`, which start at `seq` (after RCV.NXT). */
  insert(seq: number, b: Uint8Array, off: number, len: number): void {
    if (len <= 0) return;
    let i = this.held.length;
    while (i > 0 && seqLt(seq, this.held[i - 1].seq)) i--;
    const prev = this.held[i - 1];
    if (prev && prev.seq === seq && prev.data.length >= len) return; // a duplicate
    this.held.splice(i, 0, { seq, data: b.slice(off, off + len) });
    this.bytes += len;
  }

  /**
   * Deliver what now follows `rcvNxt` in order through `deliver`; returns the
   * new RCV.NXT. Segments wholly before it are dropped.
   */
  drain(rcvNxt: number, deliver: (b: Uint8Array, off: number, len: number) => void): number {
    while (this.held.length > 0 && seqLeq(this.held[0].seq, rcvNxt)) {
      const h = this.held.shift() as Held;
      this.bytes -= h.data.length;
      const skip = seqDiff(rcvNxt, h.seq);
      if (skip < h.data.length) {
        deliver(h.data, skip, h.data.length - skip);
        rcvNxt = seqAdd(rcvNxt, h.data.length - skip);
      }
    }
    return rcvNxt;
  }

  /**
   * The contiguous ranges held, merged: [left, right) pairs into `out`,
   * ascending; how many.
   */
  ranges(out: number[]): number {
    let n = 0;
    for (const h of this.held) {
      const end = seqAdd(h.seq, h.data.length);
      if (n > 0 && seqLeq(h.seq, out[2 * n - 1])) {
        if (seqLt(out[2 * n - 1], end)) out[2 * n - 1] = end;
      } else {
        out[2 * n] = h.seq;
        out[2 * n + 1] = end;
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.held.length = 0;
    this.bytes = 0;
  }
}
