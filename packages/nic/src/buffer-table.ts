/**
 * The NIC's buffer table (its IOMMU): entries map a buffer id to one 4 KiB
 * page of one domain's RAM and name the VI allowed to use it. Only dom0 fills
 * it, through MCDI; the datapath resolves every descriptor through it, so a VI
 * can DMA nowhere but into pages registered for it.
 */
import { BUFFER_PAGE, FAULT_BUFFER_OWNER, FAULT_BUFFER_RANGE } from './layout.ts';

export class BufferTable {
  /** The owning VI + 1 per entry, 0 for a free one: a fresh table is all zeros, so the OS hands its pages over only as they are used. */
  private readonly owner: Int32Array;
  private readonly domid: Int32Array;
  private readonly frame: Int32Array;
  private next = 0;
  private readonly freeRuns: { base: number; count: number }[] = [];
  /** Result of the last successful resolve(): which domain's RAM. */
  lastDomid = -1;

  constructor(readonly capacity: number) {
    // Not filled: every NIC's 2^18 entries written at construction cost a rack of 64 NICs 200 MB and seconds of its boot.
    this.owner = new Int32Array(capacity);
    this.domid = new Int32Array(capacity);
    this.frame = new Int32Array(capacity);
  }

  /**
   * Register `frames` (of domain `domid`) for VI `vi`; returns the first of a
   * run of contiguous ids. Every frame must be a page of the domain's RAM
   * (`pagesOf`: how many pages the NIC holds of it; unknown domain: none).
   */
  alloc(vi: number, domid: number, frames: number[], pagesOf: (domid: number) => number | undefined = () => Infinity): number {
    const n = frames.length;
    if (n === 0) throw new Error('buffer_table_alloc: no frames');
    const pages = pagesOf(domid);
    if (pages === undefined) throw new Error(`buffer_table_alloc: the NIC holds no RAM of domain ${domid}`);
    const bad = frames.findIndex((f) => !(Number.isInteger(f) && f >= 0 && f < pages));
    if (bad >= 0) throw new Error(`buffer_table_alloc: frames[${bad}] = ${frames[bad]} is not a page of domain ${domid}'s RAM (0..${pages - 1})`);
    const base = this.take(n);
    for (let i = 0; i < n; i++) {
      this.owner[base + i] = vi + 1;
      this.domid[base + i] = domid;
      this.frame[base + i] = frames[i];
    }
    return base;
  }

  /** The first of `n` free contiguous ids: the lowest free run that fits, else past the high-water mark. */
  private take(n: number): number {
    const run = this.freeRuns.findIndex((r) => r.count >= n);
    if (run >= 0) {
      const r = this.freeRuns[run];
      const base = r.base;
      r.base += n;
      r.count -= n;
      if (r.count === 0) this.freeRuns.splice(run, 1);
      return base;
    }
    if (this.next + n > this.capacity) throw new Error(`buffer table full (${this.capacity} entries, ${this.inUse()} in use)`);
    const base = this.next;
    this.next += n;
    return base;
  }

  /**
   * Ids [base, base+count) are free again: kept sorted and merged with their
   * neighbours (so space freed a page at a time comes back whole), and a run
   * reaching the high-water mark lowers it.
   */
  private give(base: number, count: number): void {
    const runs = this.freeRuns;
    let i = 0;
    while (i < runs.length && runs[i].base < base) i++;
    runs.splice(i, 0, { base, count });
    if (i + 1 < runs.length && runs[i].base + runs[i].count === runs[i + 1].base) {
      runs[i].count += runs[i + 1].count;
      runs.splice(i + 1, 1);
    }
    if (i > 0 && runs[i - 1].base + runs[i - 1].count === runs[i].base) {
      runs[i - 1].count += runs[i].count;
      runs.splice(i, 1);
      i--;
    }
    const last = runs[runs.length - 1];
    if (last && last.base + last.count === this.next) {
      this.next = last.base;
      runs.pop();
    }
  }

  free(vi: number, base: number, count: number): void {
    if (!(Number.isInteger(base) && Number.isInteger(count) && count > 0 && base >= 0 && base + count <= this.next))
      throw new Error(`buffer_table_free: ${base}+${count} is not a range of allocated entries`);
    for (let i = base; i < base + count; i++) {
      if (this.owner[i] !== vi + 1) throw new Error(`buffer_table_free: entry ${i} is not owned by VI ${vi}`);
    }
    this.owner.fill(0, base, base + count);
    this.domid.fill(-1, base, base + count);
    this.frame.fill(-1, base, base + count);
    this.give(base, count);
  }

  /** Drop every entry of a VI (vi_fini, NIC reset), a contiguous run at a time. */
  freeVi(vi: number): number {
    let n = 0;
    for (let i = 0; i < this.next;) {
      if (this.owner[i] !== vi + 1) {
        i++;
        continue;
      }
      let j = i;
      while (j < this.next && this.owner[j] === vi + 1) j++;
      this.owner.fill(0, i, j);
      this.domid.fill(-1, i, j);
      this.frame.fill(-1, i, j);
      n += j - i;
      const end = j;
      this.give(i, j - i);
      i = Math.min(end, this.next);
    }
    return n;
  }

  /** Entries owned by any VI. */
  inUse(): number {
    let free = 0;
    for (const r of this.freeRuns) free += r.count;
    return this.next - free;
  }

  /** Free runs below the high-water mark (1 when the free space is one piece; 0 when it all lies above). */
  get fragments(): number {
    return this.freeRuns.length;
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
    // vi < 0 is no VI: its "+ 1" would be a free entry's 0.
    if (!(bufId >= 0) || last >= this.capacity || !(vi >= 0)) return -FAULT_BUFFER_OWNER;
    const own = vi + 1;
    if (this.owner[first] !== own) return -FAULT_BUFFER_OWNER;
    const dom = this.domid[first];
    const f0 = this.frame[first];
    for (let k = first + 1; k <= last; k++) {
      if (this.owner[k] !== own) return -FAULT_BUFFER_OWNER;
      if (this.domid[k] !== dom || this.frame[k] !== f0 + (k - first)) return -FAULT_BUFFER_RANGE;
    }
    this.lastDomid = dom;
    return f0 * BUFFER_PAGE + (off % BUFFER_PAGE);
  }

  entries(vi: number): number {
    let n = 0;
    for (let i = 0; i < this.next; i++) if (this.owner[i] === vi + 1) n++;
    return n;
  }
}
