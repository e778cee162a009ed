/**
 * Grant tables (v1). One table per domain, in shared memory so the granting
 * guest and the hypervisor-side code run by dom0 see the same entries.
 *
 * The shared memory is exactly the guest-visible ABI: an array of 8-byte
 * grant_entry_v1. The pin counts behind it (Xen's active grant entries, which
 * let a mapping and a copy overlap without one clearing the other's
 * GTF_reading/GTF_writing bit) are hypervisor-private: they live with the
 * grantee's grant operations, never in memory the granting guest holds.
 */
import {
  GRANT_ENTRY_V1_SIZE,
  GRANT_ENTRIES_PER_FRAME,
  GRANT_FRAMES,
  GNTTAB_NR_RESERVED_ENTRIES,
  GTF_permit_access,
  GTF_readonly,
  GTF_reading,
  GTF_type_mask,
  GTF_writing,
  GNTST_bad_gntref,
  GNTST_permission_denied,
} from './abi/grant-table.ts';

export interface GrantEntry {
  flags: number;
  domid: number;
  frame: number;
}

const READ_PIN = 1;
const WRITE_PIN = 1 << 16;

export class GrantTable {
  readonly sab: SharedArrayBuffer;
  readonly nrEntries: number;
  /** (flags | domid << 16) per entry, for atomic check-and-set as Xen does on the combined word. */
  private readonly combo: Int32Array;
  private readonly frames: Uint32Array;
  /** Hypervisor-private pin counts (low 16 bits readers, high 16 bits writers); null in a guest's own view. */
  private readonly pins: Int32Array | null;

  /**
   * @param sab  the table's entries
   * @param pins private pin counts, one per entry: only the hypervisor's view of
   *             a table (a grantee's grant operations) has them; the guest's own
   *             view has none and cannot acquire.
   */
  constructor(sab: SharedArrayBuffer, pins?: Int32Array) {
    if (sab.byteLength % GRANT_ENTRY_V1_SIZE !== 0) throw new RangeError(`grant table buffer of ${sab.byteLength} bytes is not a whole number of entries`);
    this.sab = sab;
    this.nrEntries = sab.byteLength / GRANT_ENTRY_V1_SIZE;
    this.combo = new Int32Array(sab, 0, this.nrEntries * 2);
    this.frames = new Uint32Array(sab, 0, this.nrEntries * 2);
    if (pins && pins.length !== this.nrEntries) throw new RangeError(`pin counts for ${pins.length} entries, table has ${this.nrEntries}`);
    this.pins = pins ?? null;
  }

  static create(nrEntries = GRANT_FRAMES * GRANT_ENTRIES_PER_FRAME): GrantTable {
    return new GrantTable(new SharedArrayBuffer(nrEntries * GRANT_ENTRY_V1_SIZE));
  }

  /** The hypervisor's view of a guest's table: the same entries, with pin counts of its own. */
  static hypervisorView(sab: SharedArrayBuffer): GrantTable {
    return new GrantTable(sab, new Int32Array(sab.byteLength / GRANT_ENTRY_V1_SIZE));
  }

  /** The guest-visible entries only, byte-for-byte the v1 ABI (for tests and dumps). */
  entryBytes(): Uint8Array {
    return new Uint8Array(this.sab, 0, this.nrEntries * GRANT_ENTRY_V1_SIZE);
  }

  validRef(ref: number): boolean {
    return Number.isInteger(ref) && ref >= 0 && ref < this.nrEntries;
  }

  read(ref: number): GrantEntry {
    this.checkRef(ref);
    const w = Atomics.load(this.combo, ref * 2);
    return { flags: w & 0xffff, domid: w >>> 16, frame: this.frames[ref * 2 + 1] };
  }

  // ---- guest side (the granting domain writes its own table) ----

  /**
   * gnttab_grant_foreign_access_ref: frame and domid first, then flags with a
   * sequentially-consistent store so the grantee never sees the flag before
   * the frame.
   */
  grantAccess(ref: number, domid: number, frame: number, readonly: boolean): void {
    this.checkRef(ref);
    this.frames[ref * 2 + 1] = frame >>> 0;
    const flags = GTF_permit_access | (readonly ? GTF_readonly : 0);
    Atomics.store(this.combo, ref * 2, flags | ((domid & 0xffff) << 16) | 0);
  }

  /**
   * gnttab_end_foreign_access_ref: revoke unless the grantee is reading or
   * writing through it right now. Returns false while still in use.
   */
  endAccess(ref: number): boolean {
    this.checkRef(ref);
    for (;;) {
      const w = Atomics.load(this.combo, ref * 2);
      if (w & (GTF_reading | GTF_writing)) return false;
      if (Atomics.compareExchange(this.combo, ref * 2, w, 0) === w) return true;
    }
  }

  // ---- hypervisor side (run by dom0 on a guest's behalf, always checked) ----

  /**
   * Pin entry `ref` for access by `grantee`. Returns the granted frame (>= 0)
   * or a negative GNTST_* code. Every successful acquire must be released.
   *
   * Races are only with the granting guest (grant/end access): one dom0 thread
   * is the hypervisor actor for each table, so the pin counts need no CAS loop.
   * Once our busy bit is set the guest's endAccess fails, so the entry is stable.
   */
  acquire(ref: number, grantee: number, write: boolean): number {
    const pins = this.pins;
    if (!pins) throw new Error("grant table: only the hypervisor's view of a table can acquire");
    if (!(ref >= 0 && ref < this.nrEntries) || (ref | 0) !== ref) return GNTST_bad_gntref;
    const idx = ref * 2;
    const busy = write ? GTF_reading | GTF_writing : GTF_reading;
    for (;;) {
      const w = Atomics.load(this.combo, idx);
      if ((w & GTF_type_mask) !== GTF_permit_access || w >>> 16 !== grantee) return GNTST_permission_denied;
      if (write && w & GTF_readonly) return GNTST_permission_denied;
      if ((w & busy) === busy || Atomics.compareExchange(this.combo, idx, w, w | busy) === w) {
        pins[ref] += write ? WRITE_PIN : READ_PIN;
        return this.frames[idx + 1];
      }
    }
  }

  release(ref: number, write: boolean): void {
    const now = (this.pins![ref] -= write ? WRITE_PIN : READ_PIN);
    // Xen keeps GTF_reading while any pin remains and GTF_writing while a write pin does.
    let clear = 0;
    if (now >>> 16 === 0) clear |= GTF_writing;
    if (now === 0) clear |= GTF_reading;
    if (clear) Atomics.and(this.combo, ref * 2, ~clear);
  }

  private checkRef(ref: number): void {
    if (!this.validRef(ref)) throw new RangeError(`grant ref ${ref} outside table of ${this.nrEntries} entries`);
  }
}

/** Guest-local free list of grant refs (Linux's gnttab_alloc_grant_references). */
export class GrantRefAllocator {
  /** References given back, the last on top: handed out again first. */
  private readonly free: number[] = [];
  /** The lowest reference never handed out; every one from it to the table's end is free. */
  private fresh = GNTTAB_NR_RESERVED_ENTRIES;
  private readonly end: number;

  /**
   * The order is a stack's: what was released last comes back first, else the
   * lowest reference never used (a guest's 16,384 entries are not listed one
   * by one at boot: that cost each of a rack's guests a loop of 16,384 pushes).
   */
  constructor(table: GrantTable) {
    this.end = table.nrEntries;
  }

  get available(): number {
    return this.free.length + Math.max(0, this.end - this.fresh);
  }

  alloc(): number {
    const r = this.free.pop();
    if (r !== undefined) return r;
    if (this.fresh >= this.end) throw new Error('grant table full: no free grant references');
    return this.fresh++;
  }

  release(ref: number): void {
    this.free.push(ref);
  }
}
