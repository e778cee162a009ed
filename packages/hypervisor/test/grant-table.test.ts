import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTST_bad_copy_arg,
  GNTST_bad_domain,
  GNTST_bad_gntref,
  GNTST_bad_handle,
  GNTST_okay,
  GNTST_permission_denied,
  GRANT_ENTRY_V1_SIZE,
  GTF_permit_access,
  GTF_readonly,
  GTF_reading,
  GTF_writing,
  GrantOps,
  GrantRefAllocator,
  GrantTable,
  GuestMemory,
  type DomainHandle,
} from '../src/index.ts';

function world() {
  const dom0: DomainHandle = { domid: 0, mem: GuestMemory.allocate(8), gnttab: GrantTable.create(64) };
  const g1: DomainHandle = { domid: 1, mem: GuestMemory.allocate(8), gnttab: GrantTable.create(64) };
  const g2: DomainHandle = { domid: 2, mem: GuestMemory.allocate(8), gnttab: GrantTable.create(64) };
  // dom0's grant operations see each guest's table through a hypervisor view of its own (with private pin counts).
  const all = new Map([g1, g2].map((d) => [d.domid, { ...d, gnttab: GrantTable.hypervisorView(d.gnttab.sab) }]));
  const ops = new GrantOps(dom0, (d) => all.get(d));
  return { dom0, g1, g2, ops };
}

describe('grant table v1 layout', () => {
  it('writes 8-byte entries: flags u16, domid u16, frame u32', () => {
    const t = GrantTable.create(16);
    t.grantAccess(9, 0x1234, 0xdeadbeef, true);
    const b = t.entryBytes();
    expect(GRANT_ENTRY_V1_SIZE).toBe(8);
    const dv = new DataView(b.buffer, b.byteOffset);
    expect(dv.getUint16(9 * 8, true)).toBe(GTF_permit_access | GTF_readonly);
    expect(dv.getUint16(9 * 8 + 2, true)).toBe(0x1234);
    expect(dv.getUint32(9 * 8 + 4, true)).toBe(0xdeadbeef);
  });
});

describe('grant copy checks', () => {
  it('copies through a valid grant', () => {
    const { g1, dom0, ops } = world();
    g1.mem.page(3).set([1, 2, 3, 4], 100);
    g1.gnttab.grantAccess(10, 0, 3, true);
    expect(ops.copy(GNTCOPY_source_gref, 1, 10, 100, DOMID_SELF, 2, 0, 4)).toBe(GNTST_okay);
    expect([...dom0.mem.page(2).subarray(0, 4)]).toEqual([1, 2, 3, 4]);
    // The busy bits are dropped after the copy, so the guest can revoke.
    expect(g1.gnttab.read(10).flags & (GTF_reading | GTF_writing)).toBe(0);
    expect(g1.gnttab.endAccess(10)).toBe(true);
  });

  it('rejects a bad ref', () => {
    const { ops } = world();
    expect(ops.copy(GNTCOPY_source_gref, 1, 64, 0, DOMID_SELF, 0, 0, 4)).toBe(GNTST_bad_gntref);
    expect(ops.copy(GNTCOPY_source_gref, 1, -1, 0, DOMID_SELF, 0, 0, 4)).toBe(GNTST_bad_gntref);
  });

  it('rejects a grant made to another domain, and an unknown domain', () => {
    const { g1, ops } = world();
    g1.gnttab.grantAccess(10, 2, 3, false); // granted to domain 2, not dom0
    expect(ops.copy(GNTCOPY_source_gref, 1, 10, 0, DOMID_SELF, 0, 0, 4)).toBe(GNTST_permission_denied);
    expect(ops.copy(GNTCOPY_source_gref, 7, 10, 0, DOMID_SELF, 0, 0, 4)).toBe(GNTST_bad_domain);
  });

  it('rejects a write through a read-only grant, and an ungranted ref', () => {
    const { g1, ops } = world();
    g1.gnttab.grantAccess(11, 0, 3, true);
    expect(ops.copy(GNTCOPY_dest_gref, DOMID_SELF, 0, 0, 1, 11, 0, 4)).toBe(GNTST_permission_denied);
    expect(ops.copy(GNTCOPY_dest_gref, DOMID_SELF, 0, 0, 1, 12, 0, 4)).toBe(GNTST_permission_denied);
    expect(g1.mem.page(3)[0]).toBe(0);
  });

  it('rejects a copy crossing the page end on either side', () => {
    const { g1, ops } = world();
    g1.gnttab.grantAccess(10, 0, 3, false);
    expect(ops.copy(GNTCOPY_source_gref, 1, 10, 4000, DOMID_SELF, 0, 0, 100)).toBe(GNTST_bad_copy_arg);
    expect(ops.copy(GNTCOPY_dest_gref, DOMID_SELF, 0, 4090, 1, 10, 0, 10)).toBe(GNTST_bad_copy_arg);
    expect(ops.copy(GNTCOPY_source_gref, 1, 10, 4096, DOMID_SELF, 0, 0, 0)).toBe(GNTST_okay);
  });

  it('pins a mapped grant: the guest cannot revoke until unmapped', () => {
    const { g1, ops } = world();
    g1.gnttab.grantAccess(20, 0, 5, false);
    const m = ops.map(1, 20, false);
    expect(m.status).toBe(GNTST_okay);
    m.page[0] = 42;
    expect(g1.mem.page(5)[0]).toBe(42);
    // A copy through the same grant while mapped must not drop the mapping's busy bits.
    expect(ops.copy(GNTCOPY_source_gref, 1, 20, 0, DOMID_SELF, 0, 0, 1)).toBe(GNTST_okay);
    expect(g1.gnttab.endAccess(20)).toBe(false);
    expect(ops.unmap(m.handle)).toBe(GNTST_okay);
    expect(ops.unmap(m.handle)).toBe(GNTST_bad_handle);
    expect(g1.gnttab.endAccess(20)).toBe(true);
    expect(ops.map(1, 20, false).status).toBe(GNTST_permission_denied);
  });

  it('matches a reference model on random operations (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              k: fc.constant('grant' as const),
              ref: fc.integer({ min: 0, max: 15 }),
              domid: fc.integer({ min: 0, max: 2 }),
              frame: fc.integer({ min: 0, max: 9 }),
              ro: fc.boolean(),
            }),
            fc.record({ k: fc.constant('end' as const), ref: fc.integer({ min: 0, max: 15 }) }),
            fc.record({
              k: fc.constant('copy' as const),
              ref: fc.integer({ min: -2, max: 17 }),
              write: fc.boolean(),
              off: fc.integer({ min: 0, max: 4200 }),
              len: fc.integer({ min: 0, max: 200 }),
            }),
          ),
          { maxLength: 60 },
        ),
        (steps) => {
          const { g1, ops } = world();
          const model = new Map<number, { domid: number; frame: number; ro: boolean }>();
          for (const s of steps) {
            if (s.k === 'grant') {
              g1.gnttab.grantAccess(s.ref, s.domid, s.frame, s.ro);
              model.set(s.ref, { domid: s.domid, frame: s.frame, ro: s.ro });
            } else if (s.k === 'end') {
              expect(g1.gnttab.endAccess(s.ref)).toBe(true); // nothing is ever left pinned
              model.delete(s.ref);
            } else {
              const st = s.write
                ? ops.copy(GNTCOPY_dest_gref, DOMID_SELF, 0, 0, 1, s.ref, s.off, s.len)
                : ops.copy(GNTCOPY_source_gref, 1, s.ref, s.off, DOMID_SELF, 0, 0, s.len);
              const e = model.get(s.ref);
              let want: number;
              if (s.off + s.len > 4096) want = GNTST_bad_copy_arg;
              else if (s.ref < 0 || s.ref >= 64) want = GNTST_bad_gntref;
              else if (!e || e.domid !== 0 || (s.write && e.ro)) want = GNTST_permission_denied;
              else if (e.frame >= 8)
                want = -9; // bad_page: frame outside the guest's RAM
              else want = GNTST_okay;
              expect(st).toBe(want);
            }
          }
        },
      ),
    );
  });

  it('keeps pin counts out of the memory the guest holds: its own view of the table cannot acquire', () => {
    const t = GrantTable.create(16);
    expect(t.sab.byteLength).toBe(16 * GRANT_ENTRY_V1_SIZE);
    t.grantAccess(9, 0, 3, false);
    expect(() => t.acquire(9, 0, false)).toThrow(/only the hypervisor's view/);
    const hv = GrantTable.hypervisorView(t.sab);
    expect(hv.acquire(9, 0, false)).toBe(3);
    // The guest cannot revoke a grant the hypervisor holds (GTF_reading, in the shared entry).
    expect(t.endAccess(9)).toBe(false);
    hv.release(9, false);
    expect(t.endAccess(9)).toBe(true);
  });

  it('allocates refs above the reserved ones and reports exhaustion', () => {
    const t = GrantTable.create(10);
    const a = new GrantRefAllocator(t);
    expect(a.alloc()).toBe(8);
    expect(a.alloc()).toBe(9);
    expect(() => a.alloc()).toThrow(/grant table full/);
  });

  it('hands refs out as a stack of every free one would: the last released first, else the lowest never used (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant(-1), fc.nat(63)), { maxLength: 200 }), (ops) => {
        const t = GrantTable.create(40);
        const a = new GrantRefAllocator(t);
        // The model: every free ref listed, the lowest on top.
        const model: number[] = [];
        for (let r = 39; r >= 8; r--) model.push(r);
        const held: number[] = [];
        for (const op of ops) {
          if (op === -1 || held.length === 0) {
            const want = model.pop();
            if (want === undefined) expect(() => a.alloc()).toThrow(/grant table full/);
            else {
              expect(a.alloc()).toBe(want);
              held.push(want);
            }
          } else {
            const r = held.splice(op % held.length, 1)[0];
            a.release(r);
            model.push(r);
          }
          expect(a.available).toBe(model.length);
        }
      }),
      { numRuns: 200 },
    );
  });
});
