/**
 * The send buffer: a ring of the octets the application gave and the peer
 * has not acknowledged yet, the first of them at sequence number `seq`.
 * Allocated once; send() copies in, ack() frees, copyOut() reads for a segment.
 */
import { seqAdd } from './seq.ts';

export class SendBuffer {
  private readonly ring: Uint8Array;
  private head = 0;
  /** Octets held. */
  len = 0;
  /** The sequence number of the first octet held. */
  seq = 0;

  constructor(capacity: number) {
    this.ring = new Uint8Array(capacity);
  }

  get free(): number {
    return this.ring.length - this.len;
  }

  /** Copy in as much of `len` octets at `off` as fits; returns how many. */
  write(b: Uint8Array, off: number, len: number): number {
    const n = Math.min(len, this.free);
    const cap = this.ring.length;
    let tail = (this.head + this.len) % cap;
    let done = 0;
    while (done < n) {
      const chunk = Math.min(n - done, cap - tail);
      this.ring.set(b.subarray(off + done, off + done + chunk), tail);
      done += chunk;
      tail = (tail + chunk) % cap;
    }
    this.len += n;
    return n;
  }

  /** The first `n` octets were acknowledged. */
  ack(n: number): void {
    n = Math.min(n, this.len);
    this.head = (this.head + n) % this.ring.length;
    this.len -= n;
    this.seq = seqAdd(this.seq, n);
  }

  /** Copy `n` octets starting `from` octets in into `b` at `off`. */
  copyOut(from: number, n: number, b: Uint8Array, off: number): void {
    const cap = this.ring.length;
    let src = (this.head + from) % cap;
    let done = 0;
    while (done < n) {
      const chunk = Math.min(n - done, cap - src);
      b.set(this.ring.subarray(src, src + chunk), off + done);
      done += chunk;
      src = (src + chunk) % cap;
    }
  }
}
