/**
 * The grant-table hypercalls a backend domain makes: GNTTABOP_copy and
 * GNTTABOP_map_grant_ref / unmap. In xsim dom0 is handed the RAM and grant
 * table of its host's guests (as the privileged domain), and every access to
 * another domain's memory goes through these checks first.
 */
import {
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTST_bad_copy_arg,
  GNTST_bad_domain,
  GNTST_bad_handle,
  GNTST_bad_page,
  GNTST_okay,
} from './abi/grant-table.ts';
import type { GrantTable } from './grant-table.ts';
import { PAGE_SIZE, type GuestMemory } from './memory.ts';

/**
 * xen.h: domids from DOMID_FIRST_RESERVED (0x7FF0) up name no domain but a
 * special meaning in hypercall arguments (DOMID_SELF, DOMID_IO, DOMID_XEN,
 * DOMID_COW, DOMID_INVALID, DOMID_IDLE): a domain's id is at most 0x7FEF.
 */
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_MAX = DOMID_FIRST_RESERVED - 1;
/** DOMID_SELF from xen.h: "the calling domain" in hypercall arguments. */
export const DOMID_SELF = 0x7ff0;

export interface DomainHandle {
  readonly domid: number;
  readonly mem: GuestMemory;
  readonly gnttab: GrantTable;
}

export interface GrantMapping {
  /** Negative GNTST_* on failure; the other fields are then meaningless. */
  status: number;
  handle: number;
  /** The mapped page of the granting domain (a view, not a copy). */
  page: Uint8Array;
  /** Guest frame behind the grant; lets the backend hand it to the NIC's buffer table. */
  frame: number;
}

interface ActiveMap {
  dom: DomainHandle;
  ref: number;
  write: boolean;
}

const EMPTY = new Uint8Array(0);

export class GrantOps {
  private readonly maps = new Map<number, ActiveMap>();
  private nextHandle = 1;
  /** Counters of failed operations by status, for dom0's stats. */
  readonly failures = new Map<number, number>();

  constructor(
    readonly self: DomainHandle,
    private readonly lookup: (domid: number) => DomainHandle | undefined,
  ) {}

  private domain(domid: number): DomainHandle | undefined {
    if (domid === DOMID_SELF || domid === this.self.domid) return this.self;
    return this.lookup(domid);
  }

  private fail(status: number): number {
    this.failures.set(status, (this.failures.get(status) ?? 0) + 1);
    return status;
  }

  /**
   * GNTTABOP_copy for one segment. A side flagged as gref names a grant in
   * `domid`'s table that must grant this (calling) domain access; an unflagged
   * side is a frame of the caller's own RAM. Offsets and length must stay
   * within one page on both sides, as in Xen.
   */
  copy(flags: number, srcDomid: number, src: number, srcOffset: number, dstDomid: number, dst: number, dstOffset: number, len: number): number {
    if (!(len >= 0 && srcOffset >= 0 && dstOffset >= 0) || srcOffset + len > PAGE_SIZE || dstOffset + len > PAGE_SIZE) {
      return this.fail(GNTST_bad_copy_arg);
    }
    const srcGref = (flags & GNTCOPY_source_gref) !== 0;
    const dstGref = (flags & GNTCOPY_dest_gref) !== 0;
    const sdom = srcGref ? this.domain(srcDomid) : srcDomid === DOMID_SELF || srcDomid === this.self.domid ? this.self : undefined;
    const ddom = dstGref ? this.domain(dstDomid) : dstDomid === DOMID_SELF || dstDomid === this.self.domid ? this.self : undefined;
    if (!sdom || !ddom) return this.fail(GNTST_bad_domain);

    let sframe = src;
    if (srcGref) {
      sframe = sdom.gnttab.acquire(src, this.self.domid, false);
      if (sframe < 0) return this.fail(sframe);
    }
    let dframe = dst;
    if (dstGref) {
      dframe = ddom.gnttab.acquire(dst, this.self.domid, true);
      if (dframe < 0) {
        if (srcGref) sdom.gnttab.release(src, false);
        return this.fail(dframe);
      }
    }
    let status = GNTST_okay;
    if (!sdom.mem.validFrame(sframe) || !ddom.mem.validFrame(dframe)) {
      status = GNTST_bad_page;
    } else if (len > 0) {
      const s = sframe * PAGE_SIZE + srcOffset;
      const d = dframe * PAGE_SIZE + dstOffset;
      if (sdom.mem === ddom.mem) ddom.mem.u8.copyWithin(d, s, s + len);
      else ddom.mem.u8.set(sdom.mem.u8.subarray(s, s + len), d);
    }
    if (srcGref) sdom.gnttab.release(src, false);
    if (dstGref) ddom.gnttab.release(dst, true);
    return status === GNTST_okay ? status : this.fail(status);
  }

  /** GNTTABOP_map_grant_ref: a long-lived view of a granted page (shared rings). */
  map(domid: number, ref: number, readonly: boolean): GrantMapping {
    const dom = this.lookup(domid);
    if (!dom) return { status: this.fail(GNTST_bad_domain), handle: -1, page: EMPTY, frame: -1 };
    const frame = dom.gnttab.acquire(ref, this.self.domid, !readonly);
    if (frame < 0) return { status: this.fail(frame), handle: -1, page: EMPTY, frame: -1 };
    if (!dom.mem.validFrame(frame)) {
      dom.gnttab.release(ref, !readonly);
      return { status: this.fail(GNTST_bad_page), handle: -1, page: EMPTY, frame: -1 };
    }
    const handle = this.nextHandle++;
    this.maps.set(handle, { dom, ref, write: !readonly });
    return { status: GNTST_okay, handle, page: dom.mem.page(frame), frame };
  }

  /** GNTTABOP_unmap_grant_ref. */
  unmap(handle: number): number {
    const m = this.maps.get(handle);
    if (!m) return this.fail(GNTST_bad_handle);
    this.maps.delete(handle);
    m.dom.gnttab.release(m.ref, m.write);
    return GNTST_okay;
  }

  get activeMappings(): number {
    return this.maps.size;
  }
}
