/**
 * The NIC's buffer table (its IOMMU): entries map a buffer id to one 4 KiB
 * page of one domain's RAM and name the VI allowed to use it. Only dom0 fills
 * it, through MCDI; the datapath resolves every descriptor through it, so a VI
 * can DMA nowhere but into pages registered for it.
 */
import { BUFFER_PAGE, FAULT_BUFFER_OWNER, FAULT_BUFFER_RANGE } from './layout.ts';

export class BufferTable {
  private readonly owner: Int32Array;
  private readonly domid: Int32Array;
  private readonly frame: Int32Array;
  private next = 0;
  private readonly freeRuns: { base: number; count: number }[] = [];
  /** Result of the last successful resolve(): which domain's RAM. */
  lastDomid = -1;

  constructor(readonly capacity: number) {
    this.owner = new Int32Array(capacity).fill(-1);
    this.domid = new Int32Array(capacity).fill(-1);
    this.frame = new Int32Array(capacity).fill(-1);
  }

  /** Register `frames` (of domain `domid`) for VI `vi`; returns the first of a run of contiguous ids. */
  alloc(vi: number, domid: number, frames: number[]): number {
    const n = frames.length;
    if (n === 0) throw new Error('buffer_table_alloc: no frames');
    let base = -1;
    const run = this.freeRuns.findIndex((r) => r.count >= n);
    if (run >= 0) {
      base = this.freeRuns[run].base;
      this.freeRuns[run].base += n;
      this.freeRuns[run].count -= n;
      if (this.freeRuns[run].count === 0) this.freeRuns.splice(run, 1);
    } else {
      if (this.next + n > this.capacity) throw new Error(`buffer table full (${this.capacity} entries)`);
      base = this.next;
      this.next += n;
    }
    for (let i = 0; i < n; i++) {
      this.owner[base + i] = vi;
      this.domid[base + i] = domid;
      this.frame[base + i] = frames[i];
    }
    return base;
  }

  free(vi: number, base: number, count: number): void {
    for (let i = base; i < base + count; i++) {
      if (this.owner[i] !== vi) throw new Error(`buffer_table_free: entry ${i} is not owned by VI ${vi}`);
    }
    this.owner.fill(-1, base, base + count);
    this.domid.fill(-1, base, base + count);
    this.frame.fill(-1, base, base + count);
    this.freeRuns.push({ base, count });
  }

  /** Drop every entry of a VI (vi_fini, NIC reset). */
  freeVi(vi: number): number {
    let n = 0;
    for (let i = 0; i < this.next; i++) {
      if (this.owner[i] === vi) {
        this.owner[i] = -1;
        this.domid[i] = -1;
        this.frame[i] = -1;
        this.freeRuns.push({ base: i, count: 1 });
        n++;
      }
    }
    return n;
  }

  /**
   * The byte address in the owning domain's RAM of [off, off+len) of buffer
   * `bufId`, or a negative FAULT_* code. A range may run on into the next
   * buffer ids only if they are the VI's too and the pages are contiguous.
   * On success lastDomid says whose RAM.
   */
  resolve(vi: number, bufId: number, off: number, len: number): number {
    const first = bufId + Math.floor(off / BUFFER_PAGE);
    const last = bufId + Math.floor((off + Math.max(len, 1) - 1) / BUFFER_PAGE);
    if (!(bufId >= 0) || last >= this.capacity) return -FAULT_BUFFER_OWNER;
    if (this.owner[first] !== vi) return -FAULT_BUFFER_OWNER;
    const dom = this.domid[first];
    const f0 = this.frame[first];
    for (let k = first + 1; k <= last; k++) {
      if (this.owner[k] !== vi) return -FAULT_BUFFER_OWNER;
      if (this.domid[k] !== dom || this.frame[k] !== f0 + (k - first)) return -FAULT_BUFFER_RANGE;
    }
    this.lastDomid = dom;
    return f0 * BUFFER_PAGE + (off % BUFFER_PAGE);
  }

  entries(vi: number): number {
    let n = 0;
    for (let i = 0; i < this.next; i++) if (this.owner[i] === vi) n++;
    return n;
  }
}
