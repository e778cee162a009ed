/**
 * The virtio NIC's IOMMU: one IO address space per function (vhost-vdpa's
 * IOTLB), each page an IOVA mapped to one page of one domain's RAM. Only dom0
 * maps (iotlb_map, through the admin channel); every address a function's
 * driver writes into a descriptor or a queue's setup is translated here, page
 * by page, so a function can DMA nowhere but into pages mapped for it. All of
 * a function's pages belong to one domain (its IOMMU domain).
 */
import { VQ_PAGE } from './vq-layout.ts';

interface FnSpace {
  domid: number;
  /** IOVA page number -> RAM page (frame) of the domain. */
  pages: Map<number, number>;
}

export class Iommu {
  private readonly spaces = new Map<number, FnSpace>();
  /** Domain of the last successful translation (the RAM the caller DMAs). */
  lastDomid = -1;

  /** Map `frames` of `domid` at iova, iova+4096, …; every frame must be a page of the domain's RAM (`pages`). */
  map(fn: number, domid: number, iova: number, frames: readonly number[], pages: number | undefined): number {
    if (pages === undefined) throw new Error(`iotlb_map: the NIC holds no RAM of domain ${domid}`);
    if (iova % VQ_PAGE !== 0) throw new Error(`iotlb_map: iova ${iova} is not page-aligned`);
    const bad = frames.findIndex((f) => !(Number.isInteger(f) && f >= 0 && f < pages));
    if (bad >= 0) throw new Error(`iotlb_map: frames[${bad}] = ${frames[bad]} is not a page of domain ${domid}'s RAM (0..${pages - 1})`);
    let s = this.spaces.get(fn);
    if (s && s.pages.size > 0 && s.domid !== domid)
      throw new Error(`iotlb_map: function ${fn}'s IOMMU domain is domain ${s.domid}'s; unmap its ${s.pages.size} pages before mapping domain ${domid}'s`);
    if (!s || s.pages.size === 0) {
      s = { domid, pages: new Map() };
      this.spaces.set(fn, s);
    }
    const first = Math.floor(iova / VQ_PAGE);
    for (let i = 0; i < frames.length; i++)
      if (s.pages.has(first + i)) throw new Error(`iotlb_map: iova ${(first + i) * VQ_PAGE} of function ${fn} is already mapped (unmap it first)`);
    for (let i = 0; i < frames.length; i++) s.pages.set(first + i, frames[i]);
    return frames.length;
  }

  /** Unmap `count` pages from iova; returns how many were mapped. */
  unmap(fn: number, iova: number, count: number): number {
    const s = this.spaces.get(fn);
    if (!s) return 0;
    const first = Math.floor(iova / VQ_PAGE);
    let n = 0;
    for (let i = 0; i < count; i++) if (s.pages.delete(first + i)) n++;
    return n;
  }

  /** Unmap everything of a function (it stopped, or its domain went). */
  clear(fn: number): number {
    const n = this.spaces.get(fn)?.pages.size ?? 0;
    this.spaces.delete(fn);
    return n;
  }

  domainOf(fn: number): number {
    const s = this.spaces.get(fn);
    return s && s.pages.size > 0 ? s.domid : -1;
  }

  mapped(fn: number): number {
    return this.spaces.get(fn)?.pages.size ?? 0;
  }

  /** Is the IOVA page mapped for the function? */
  has(fn: number, iova: number): boolean {
    return this.spaces.get(fn)?.pages.has(Math.floor(iova / VQ_PAGE)) ?? false;
  }

  /**
   * The RAM byte offset of [iova, iova+len) if it lies in one mapped page (a
   * queue's area, a buffer that does not cross a page), else -1. Sets lastDomid.
   */
  translate(fn: number, iova: number, len: number): number {
    const s = this.spaces.get(fn);
    if (!s || len < 0) return -1;
    const page = Math.floor(iova / VQ_PAGE);
    const off = iova - page * VQ_PAGE;
    if (off + len > VQ_PAGE) return -1;
    const frame = s.pages.get(page);
    if (frame === undefined) return -1;
    this.lastDomid = s.domid;
    return frame * VQ_PAGE + off;
  }

  /**
   * Copy [iova, iova+len) of the function's space into dst at dstOff, page by
   * page (a buffer may span pages mapped to frames that are not contiguous).
   * False if any page is not mapped: nothing is to be used then.
   */
  read(fn: number, ram: Uint8Array, iova: number, len: number, dst: Uint8Array, dstOff: number): boolean {
    let done = 0;
    while (done < len) {
      const at = iova + done;
      const n = Math.min(len - done, VQ_PAGE - (at % VQ_PAGE));
      const src = this.translate(fn, at, n);
      if (src < 0) return false;
      dst.set(ram.subarray(src, src + n), dstOff + done);
      done += n;
    }
    return true;
  }

  /** Copy src[srcOff, srcOff+len) into the function's space at iova, page by page; false at the first unmapped page. */
  write(fn: number, ram: Uint8Array, iova: number, src: Uint8Array, srcOff: number, len: number): boolean {
    let done = 0;
    while (done < len) {
      const at = iova + done;
      const n = Math.min(len - done, VQ_PAGE - (at % VQ_PAGE));
      const dst = this.translate(fn, at, n);
      if (dst < 0) return false;
      ram.set(src.subarray(srcOff + done, srcOff + done + n), dst);
      done += n;
    }
    return true;
  }
}
