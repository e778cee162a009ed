/**
 * The buffer table's free space comes back whole (issue 19's reference work
 * found vi_fini giving entries back one at a time, never merged: 661 cycles
 * of vnic's 396 pages filled a 262,144-entry table with none in use), and
 * an allocation names only pages of the domain's RAM.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BufferTable } from '../src/index.ts';

const frames = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('buffer table space', () => {
  it('a VI allocated and finalised 2000 times at vnic size never fills a table 662 times smaller than the total', () => {
    const t = new BufferTable(1 << 18);
    for (let k = 0; k < 2000; k++) {
      const vi = 1 + (k % 7);
      t.alloc(vi, 1, frames(396));
      expect(t.freeVi(vi)).toBe(396);
    }
    expect(t.inUse()).toBe(0);
    expect(t.fragments).toBe(0);
  });

  it('freeing in any order merges neighbours; what is free can be allocated as one run', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 30 }), fc.func(fc.integer()), (sizes, order) => {
        const t = new BufferTable(4096);
        const held = sizes.map((n, i) => ({ vi: i % 60, base: t.alloc(i % 60, 1, frames(n)), n }));
        const shuffled = [...held].sort((a, b) => order(a.base) - order(b.base) || a.base - b.base);
        for (const h of shuffled) t.free(h.vi, h.base, h.n);
        expect(t.inUse()).toBe(0);
        expect(t.fragments).toBe(0);
        // All of it is one run again: the whole table in one allocation.
        expect(t.alloc(0, 1, frames(4096))).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it("freeVi gives back a VI's scattered entries, merged with free neighbours", () => {
    const t = new BufferTable(64);
    const a = t.alloc(1, 1, frames(4));
    const b = t.alloc(2, 1, frames(4));
    const c = t.alloc(1, 1, frames(4));
    t.alloc(3, 1, frames(4));
    expect(t.freeVi(1)).toBe(8);
    t.free(2, b, 4);
    expect(t.fragments).toBe(1);
    expect(t.alloc(4, 1, frames(12))).toBe(a);
    expect(c).toBe(8);
  });
});

describe('buffer_table_alloc arguments', () => {
  const pagesOf = (d: number) => (d === 1 ? 16 : undefined);
  it('refuses a domain whose RAM the NIC does not hold', () => {
    expect(() => new BufferTable(64).alloc(1, 9, [0], pagesOf)).toThrow(/holds no RAM of domain 9/);
  });
  it('refuses a frame past the end of the RAM', () => {
    expect(() => new BufferTable(64).alloc(1, 1, [3, 16], pagesOf)).toThrow(/frames\[1\] = 16 is not a page of domain 1's RAM \(0\.\.15\)/);
  });
  it('refuses a negative or fractional frame', () => {
    expect(() => new BufferTable(64).alloc(1, 1, [-1], pagesOf)).toThrow(/frames\[0\] = -1/);
    expect(() => new BufferTable(64).alloc(1, 1, [1.5], pagesOf)).toThrow(/frames\[0\] = 1.5/);
  });
  it('refuses a free of entries never allocated', () => {
    const t = new BufferTable(64);
    t.alloc(1, 1, [0, 1]);
    expect(() => t.free(1, 2, 4)).toThrow(/is not a range of allocated entries/);
  });
  it('says how much is in use when full', () => {
    const t = new BufferTable(8);
    t.alloc(1, 1, frames(6));
    expect(() => t.alloc(1, 1, frames(3))).toThrow(/buffer table full \(8 entries, 6 in use\)/);
  });
});
