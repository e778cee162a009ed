/**
 * A bounded single-producer single-consumer queue of datagrams in a
 * SharedArrayBuffer, between the fabric thread and the VXLAN I/O thread (one
 * each way). Records are a 4-octet length and the bytes, padded to 4, never
 * split across the end: a record that would not fit before the end leaves a
 * wrap mark (length 0xffffffff) and starts again at 0. A full ring refuses a
 * push (the caller counts the drop): nothing blocks.
 *
 * Header (Int32): [0] head, [1] tail (free-running octet positions, mod
 * 2^32). The producer writes the bytes, then publishes the tail with
 * Atomics.store; the consumer reads the tail with Atomics.load, copies the
 * record out once into its own memory (pop), then publishes the head. A
 * consumer that hands records to the kernel as they lie (the I/O thread's
 * sends) reads them in place instead (peek, from a cursor of its own past the
 * head) and releases them, oldest first, once the kernel has them: until
 * then the producer cannot write over them.
 *
 * The two ends trust each other no more than they must: the consumer checks
 * every length it reads against the ring's bounds, and a length out of them
 * (a bug, never a peer's datagram: those are only ever bytes inside a record)
 * is reported as a corrupt ring rather than read past.
 */
// No imports: the I/O thread loads this module without the whole hypervisor package.

const HEAD = 0;
const TAIL = 1;
const HEADER_BYTES = 8;
const WRAP = 0xffffffff;

const pad4 = (n: number) => (n + 3) & ~3;

/** The SharedArrayBuffer for a ring of `capacity` octets of records (a power of two, at least 4 KiB). */
export function ringBuffer(capacity: number): SharedArrayBuffer {
  if (!(capacity >= 4096 && (capacity & (capacity - 1)) === 0)) throw new RangeError(`ring capacity ${capacity} is not a power of two >= 4096`);
  return new SharedArrayBuffer(HEADER_BYTES + capacity);
}

/** Where peek() found a record: its octets at `at` (in the ring's data), `len` of them, and the cursor after it. */
export interface RingRecord {
  at: number;
  len: number;
  next: number;
}

export class DatagramRing {
  readonly i32: Int32Array;
  private readonly data: Uint8Array;
  private readonly dv: DataView;
  readonly capacity: number;
  /** The largest record this ring takes: half its capacity, so one always fits after a wrap. */
  readonly maxRecord: number;

  constructor(sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab, 0, HEADER_BYTES / 4);
    this.capacity = sab.byteLength - HEADER_BYTES;
    if (!(this.capacity >= 4096 && (this.capacity & (this.capacity - 1)) === 0)) throw new RangeError(`not a ring buffer (${sab.byteLength} octets)`);
    this.data = new Uint8Array(sab, HEADER_BYTES, this.capacity);
    this.dv = new DataView(sab, HEADER_BYTES, this.capacity);
    this.maxRecord = this.capacity / 2 - 4;
  }

  /** Octets in use (records and wrap marks not yet consumed). */
  get used(): number {
    return (Atomics.load(this.i32, TAIL) - Atomics.load(this.i32, HEAD)) >>> 0;
  }

  get empty(): boolean {
    return Atomics.load(this.i32, TAIL) === Atomics.load(this.i32, HEAD);
  }

  /**
   * Producer: queue `len` octets of `src` at `off`, behind `prefix` (written
   * first, e.g. a VXLAN header). False when the ring has no room (or the
   * record is larger than maxRecord): nothing was written.
   */
  push(src: Uint8Array, off: number, len: number, prefix?: Uint8Array): boolean {
    const total = len + (prefix?.length ?? 0);
    if (total > this.maxRecord) return false;
    const need = 4 + pad4(total);
    const tail = Atomics.load(this.i32, TAIL) >>> 0;
    const head = Atomics.load(this.i32, HEAD) >>> 0;
    const used = (tail - head) >>> 0;
    let at = tail & (this.capacity - 1);
    const skip = this.capacity - at < need ? this.capacity - at : 0;
    if (used + skip + need > this.capacity) return false;
    if (skip) {
      this.dv.setUint32(at, WRAP, true);
      at = 0;
    }
    this.dv.setUint32(at, total, true);
    let w = at + 4;
    if (prefix) {
      this.data.set(prefix, w);
      w += prefix.length;
    }
    this.data.set(src.subarray(off, off + len), w);
    Atomics.store(this.i32, TAIL, (tail + skip + need) | 0);
    return true;
  }

  /** Consumer: the length of the oldest record (-1: empty), to size the buffer pop() copies it into. */
  nextLength(): number {
    return this.peek(Atomics.load(this.i32, HEAD) >>> 0, this.scratch) ? this.scratch.len : -1;
  }

  /**
   * Consumer: copy the oldest record into `into` (private memory) and take it
   * off the ring; returns its length, -1 if the ring is empty. Throws if the
   * ring is corrupt or `into` is too small for a record (it must hold maxRecord).
   */
  pop(into: Uint8Array): number {
    const r = this.scratch;
    if (!this.peek(Atomics.load(this.i32, HEAD) >>> 0, r)) return -1;
    if (into.length < r.len) throw new RangeError(`pop: a buffer of ${into.length} octets for a record of ${r.len}`);
    into.set(this.data.subarray(r.at, r.at + r.len));
    this.release(r.next);
    return r.len;
  }

  /** Consumer: the position of the oldest record not yet taken off (where a cursor for peek() starts). */
  get head(): number {
    return Atomics.load(this.i32, HEAD) >>> 0;
  }

  /** Consumer: is there a record at or after `pos` (a cursor from head or a previous peek's `next`)? */
  hasAt(pos: number): boolean {
    return Atomics.load(this.i32, TAIL) >>> 0 !== pos >>> 0;
  }

  /**
   * Consumer, in place: the record at cursor `pos` (head, or a previous
   * record's `next`), left on the ring. Fills `out` (its octets are
   * bytes(out.at, out.len); `next` is the cursor after it) and returns true,
   * or false at the tail. Its octets stay the consumer's until release()
   * passes them. Throws if the ring is corrupt.
   */
  peek(pos: number, out: RingRecord): boolean {
    const tail = Atomics.load(this.i32, TAIL) >>> 0;
    let p = pos >>> 0;
    if (p === tail) return false;
    let at = p & (this.capacity - 1);
    let len = this.dv.getUint32(at, true);
    if (len === WRAP) {
      p = (p + (this.capacity - at)) >>> 0;
      at = 0;
      if (p === tail) throw new Error('datagram ring corrupt: a wrap mark with nothing after it');
      len = this.dv.getUint32(0, true);
    }
    const need = 4 + pad4(len);
    if (len > this.maxRecord || at + need > this.capacity || need > (tail - p) >>> 0)
      throw new Error(`datagram ring corrupt: a record of ${len} octets at ${at} (capacity ${this.capacity})`);
    out.at = at + 4;
    out.len = len;
    out.next = (p + need) >>> 0;
    return true;
  }

  /** The octets of a record peek() found: a view of the ring's shared memory, valid until it is released. */
  bytes(at: number, len: number): Uint8Array {
    return this.data.subarray(at, at + len);
  }

  /** Consumer: give the producer back every record before cursor `pos` (a peek's `next`). */
  release(pos: number): void {
    Atomics.store(this.i32, HEAD, pos | 0);
  }

  private readonly scratch: RingRecord = { at: 0, len: 0, next: 0 };
}
