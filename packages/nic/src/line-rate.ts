/**
 * A NIC port's line rate: what the NIC sends leaves at most as fast as the
 * wire's bit rate allows. Each frame occupies the line for its bytes plus
 * Ethernet's per-frame overhead (preamble and start delimiter 8, FCS 4,
 * inter-frame gap 12: 24 octets, since the frames xsim carries exclude the
 * FCS), one after the other; it reaches the far end when its last bit has
 * been sent (no propagation delay). Frames wait in the port's TX FIFO, a
 * byte ring of fixed size, copied there once as a NIC's TX DMA does; a full
 * FIFO stops the NIC taking frames from its TX queues (they wait in the
 * drivers' rings: backpressure, never a drop).
 */

/** Octets a frame occupies on the line beyond its own: preamble + SFD (8), FCS (4), inter-frame gap (12). */
export const ETH_LINE_OVERHEAD = 24;
/** The port's TX FIFO, octets (room for 43 standard frames, 7 jumbo ones: half a millisecond at 1 Gbit/s). */
export const LINE_FIFO_BYTES = 64 * 1024;

export class LineRate {
  private readonly fifo: Uint8Array;
  /** Queued frames, oldest first: offset in the FIFO, length, when their last bit leaves (ms). */
  private readonly off: number[] = [];
  private readonly len: number[] = [];
  private readonly at: number[] = [];
  private head = 0;
  /** Where the next frame is written, and the oldest queued frame's offset (the ring's used span). */
  private tail = 0;
  private used = 0;
  /** When the line is free again (ms, the NIC's clock). */
  private busyUntil = 0;
  /** ms per octet on the line. */
  private readonly msPerOctet: number;
  /** Frames and octets sent on the line. */
  framesSent = 0;
  octetsSent = 0;

  constructor(
    readonly gbps: number,
    private readonly now: () => number,
    fifoBytes = LINE_FIFO_BYTES,
  ) {
    if (!(gbps > 0) || !Number.isFinite(gbps)) throw new RangeError(`a line rate must be a positive number of Gbit/s, got ${gbps}`);
    this.fifo = new Uint8Array(fifoBytes);
    this.msPerOctet = 8 / (gbps * 1e6);
  }

  /** Frames queued and not yet sent. */
  get queued(): number {
    return this.off.length - this.head;
  }

  get queuedOctets(): number {
    return this.used;
  }

  /** Is there room for a frame of `len` octets (the NIC asks before it takes one from a TX queue)? */
  room(len: number): boolean {
    if (this.queued === 0) return len <= this.fifo.length;
    const oldest = this.off[this.head];
    // Contiguous room after the tail, or (wrapping) before the oldest frame.
    if (this.tail >= oldest) return this.fifo.length - this.tail >= len || oldest >= len;
    return oldest - this.tail >= len;
  }

  /** Queue a frame (room() said yes): copied into the FIFO, due when the line has sent it. */
  push(src: Uint8Array, addr: number, len: number): void {
    let at = this.queued === 0 ? 0 : this.tail;
    if (at + len > this.fifo.length) at = 0;
    this.fifo.set(src.subarray(addr, addr + len), at);
    const start = Math.max(this.now(), this.busyUntil);
    this.busyUntil = start + (len + ETH_LINE_OVERHEAD) * this.msPerOctet;
    this.off.push(at);
    this.len.push(len);
    this.at.push(this.busyUntil);
    this.tail = at + len;
    this.used += len;
  }

  /** When the oldest queued frame is due (Infinity with none). */
  nextDue(): number {
    return this.queued > 0 ? this.at[this.head] : Infinity;
  }

  /** Hand every frame whose last bit has left to `out`, oldest first; returns how many. */
  due(out: (ram: Uint8Array, addr: number, len: number) => void): number {
    const now = this.now();
    let n = 0;
    while (this.head < this.off.length && this.at[this.head] <= now) {
      const o = this.off[this.head];
      const l = this.len[this.head];
      this.head++;
      this.used -= l;
      this.framesSent++;
      this.octetsSent += l;
      n++;
      out(this.fifo, o, l);
    }
    if (this.head > 1024 && this.head * 2 > this.off.length) {
      this.off.splice(0, this.head);
      this.len.splice(0, this.head);
      this.at.splice(0, this.head);
      this.head = 0;
    }
    if (this.queued === 0) this.tail = 0;
    return n;
  }
}
