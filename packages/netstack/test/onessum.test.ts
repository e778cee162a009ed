/**
 * The word-at-a-time one's-complement sum (wire.ts onesSum) against the plain
 * pair-by-pair sum of RFC 1071, over arbitrary bytes, offsets, lengths,
 * initial values and views at any byte offset of an ArrayBuffer or a
 * SharedArrayBuffer (the fast path reads native words only where aligned).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { onesSum } from '../src/net/wire.ts';

function plain(b: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  if (len & 1) sum += b[off + len - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

describe('onesSum', () => {
  it('equals the pair-by-pair sum for any bytes, view offset, range and initial value (fast-check, 2000 runs)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.nat(7),
        fc.nat(3000),
        fc.nat(3000),
        fc.nat(0x3ffff),
        fc.boolean(),
        (bytes, viewOff, a, n, initial, shared) => {
          const buf = shared ? new SharedArrayBuffer(bytes.length + 8) : new ArrayBuffer(bytes.length + 8);
          const view = new Uint8Array(buf, viewOff, bytes.length);
          view.set(bytes);
          const off = Math.min(a, bytes.length);
          const len = Math.min(n, bytes.length - off);
          expect(onesSum(view, off, len, initial)).toBe(plain(view, off, len, initial));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('all ones over a long range: the carries fold (RFC 1071 §2(C))', () => {
    const b = new Uint8Array(65536).fill(0xff);
    expect(onesSum(b, 0, b.length)).toBe(0xffff);
    expect(onesSum(b, 2, 60000)).toBe(plain(b, 2, 60000));
    const c = new Uint8Array(4096).map((_, i) => (i * 37 + 11) & 0xff);
    for (const off of [0, 1, 2, 3, 4, 34, 54]) expect(onesSum(c, off, 3000), `at ${off}`).toBe(plain(c, off, 3000));
  });
});
