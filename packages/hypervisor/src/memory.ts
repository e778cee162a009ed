/**
 * A domain's pseudo-physical RAM: one SharedArrayBuffer of 4 KiB pages.
 * A guest worker holds only its own GuestMemory; dom0 and the NIC may be
 * handed others', and reach them only through checked operations (grant
 * table, buffer table).
 */
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

export class GuestMemory {
  readonly sab: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly pages: number;

  constructor(sab: SharedArrayBuffer) {
    if (sab.byteLength === 0 || sab.byteLength % PAGE_SIZE !== 0) {
      throw new RangeError(`guest RAM must be a whole number of ${PAGE_SIZE}-byte pages, got ${sab.byteLength} bytes`);
    }
    this.sab = sab;
    this.u8 = new Uint8Array(sab);
    this.pages = sab.byteLength / PAGE_SIZE;
  }

  static allocate(pages: number): GuestMemory {
    if (!Number.isInteger(pages) || pages <= 0) throw new RangeError(`bad page count ${pages}`);
    return new GuestMemory(new SharedArrayBuffer(pages * PAGE_SIZE));
  }

  /** Byte offset of frame `gfn` in this RAM. */
  frameOffset(gfn: number): number {
    if (!this.validFrame(gfn)) throw new RangeError(`frame ${gfn} outside RAM of ${this.pages} pages`);
    return gfn * PAGE_SIZE;
  }

  validFrame(gfn: number): boolean {
    return Number.isInteger(gfn) && gfn >= 0 && gfn < this.pages;
  }

  /** A view of one whole page (no copy). */
  page(gfn: number): Uint8Array {
    const off = this.frameOffset(gfn);
    return this.u8.subarray(off, off + PAGE_SIZE);
  }
}

/**
 * Hands out free frames of a domain's own RAM. Lives in the owning domain only:
 * it is that kernel's page allocator, not shared state.
 *
 * Always the lowest free frames, whatever was freed last: where a buffer
 * lands depends only on which frames are in use, never on the order they
 * were given back. (A last-freed-first-reused list put a resumed kernel's
 * ring page in the middle of the hole a plugin's DMA area had just left, so
 * the area no longer fitted after every other migration.)
 */
export class FrameAllocator {
  /** 1 = free, by frame. */
  private readonly free: Uint8Array;
  private count = 0;
  /** No frame below this one is free. */
  private low: number;

  constructor(mem: GuestMemory, firstFrame = 0) {
    this.free = new Uint8Array(mem.pages);
    this.low = Math.max(0, firstFrame);
    for (let f = this.low; f < mem.pages; f++) this.free[f] = 1;
    this.count = Math.max(0, mem.pages - this.low);
  }

  get available(): number {
    return this.count;
  }

  /** The lowest free frame. */
  alloc(): number {
    const { free } = this;
    let f = this.low;
    while (f < free.length && free[f] === 0) f++;
    if (f === free.length) throw new Error('out of guest memory: no free frames');
    free[f] = 0;
    this.count--;
    this.low = f + 1;
    return f;
  }

  /** Give a frame back. Releasing one that is free already (two owners gave it back) is an error. */
  release(gfn: number): void {
    if (!Number.isInteger(gfn) || gfn < 0 || gfn >= this.free.length) throw new RangeError(`frame ${gfn} outside RAM of ${this.free.length} pages`);
    if (this.free[gfn] === 1) throw new Error(`frame ${gfn} released twice`);
    this.free[gfn] = 1;
    this.count++;
    if (gfn < this.low) this.low = gfn;
  }

  /**
   * Take these frames out of the free list (a resumed kernel: the frames its
   * predecessor left data in, until it has read them). A frame that is not
   * free is an error: two owners for one frame.
   */
  take(gfns: readonly number[]): void {
    const want = [...new Set(gfns)];
    const busy = want.filter((f) => !(Number.isInteger(f) && f >= 0 && f < this.free.length && this.free[f] === 1));
    if (busy.length > 0) throw new Error(`frames ${busy.join(', ')} are not free`);
    for (const f of want) this.free[f] = 0;
    this.count -= want.length;
  }

  /**
   * `n` physically contiguous frames (a multi-page buffer: jumbo frames, DMA
   * areas): the lowest run that fits. Returns the first frame.
   */
  allocRange(n: number): number {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`bad frame count ${n}`);
    if (n === 1) return this.alloc();
    const { free } = this;
    let run = 0;
    for (let f = this.low; f < free.length; f++) {
      run = free[f] === 1 ? run + 1 : 0;
      if (run === n) {
        const first = f - n + 1;
        free.fill(0, first, f + 1);
        this.count -= n;
        if (first === this.low) this.low = f + 1;
        return first;
      }
    }
    throw new Error(`out of guest memory: no ${n} contiguous free frames`);
  }

  /**
   * `n` contiguous frames from the top of RAM: the highest run that fits.
   * For what a kernel leaves behind for its successor (a suspend record),
   * out of the way of the buffers the successor sets up from the bottom.
   */
  allocRangeHigh(n: number): number {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`bad frame count ${n}`);
    const { free } = this;
    let run = 0;
    for (let f = free.length - 1; f >= this.low; f--) {
      run = free[f] === 1 ? run + 1 : 0;
      if (run === n) {
        free.fill(0, f, f + n);
        this.count -= n;
        if (f === this.low) this.low = f + n;
        return f;
      }
    }
    throw new Error(`out of guest memory: no ${n} contiguous free frames`);
  }
}
