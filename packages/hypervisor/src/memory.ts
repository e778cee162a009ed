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
 */
export class FrameAllocator {
  private readonly free: number[] = [];

  constructor(mem: GuestMemory, firstFrame = 0) {
    for (let f = mem.pages - 1; f >= firstFrame; f--) this.free.push(f);
  }

  get available(): number {
    return this.free.length;
  }

  alloc(): number {
    const f = this.free.pop();
    if (f === undefined) throw new Error('out of guest memory: no free frames');
    return f;
  }

  release(gfn: number): void {
    this.free.push(gfn);
  }

  /**
   * Take these frames out of the free list (a resumed kernel: the frames its
   * predecessor left data in, until it has read them). A frame that is not
   * free is an error: two owners for one frame.
   */
  take(gfns: readonly number[]): void {
    const want = new Set(gfns);
    const rest = this.free.filter((f) => !want.has(f));
    if (this.free.length - rest.length !== want.size) throw new Error(`frames ${[...want].filter((f) => !this.free.includes(f)).join(', ')} are not free`);
    this.free.length = 0;
    this.free.push(...rest);
  }

  /**
   * `n` physically contiguous frames (a multi-page buffer: jumbo frames, DMA
   * areas). Returns the first frame. Meant for set-up time: it sorts the list.
   */
  allocRange(n: number): number {
    if (n === 1) return this.alloc();
    const sorted = [...this.free].sort((a, b) => a - b);
    for (let i = 0; i + n <= sorted.length; i++) {
      if (sorted[i + n - 1] - sorted[i] === n - 1) {
        const first = sorted[i];
        const taken = new Set<number>();
        for (let k = 0; k < n; k++) taken.add(first + k);
        const rest = this.free.filter((f) => !taken.has(f));
        this.free.length = 0;
        this.free.push(...rest);
        return first;
      }
    }
    throw new Error(`out of guest memory: no ${n} contiguous free frames`);
  }
}
