/**
 * The datagram ring between the fabric and the VXLAN I/O thread: records come
 * out as they went in, in order, across the wrap; a full ring refuses (the
 * caller counts the drop) without writing; a corrupt length is reported,
 * never read past.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DatagramRing, ringBuffer } from '../src/vxlan/ring.ts';

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

describe('DatagramRing', () => {
  it('a record comes out as it went in, with its prefix in front', () => {
    const r = new DatagramRing(ringBuffer(4096));
    expect(r.empty).toBe(true);
    expect(r.push(bytes(100, 1), 10, 50, Uint8Array.of(9, 8, 7))).toBe(true);
    expect(r.nextLength()).toBe(53);
    const out = new Uint8Array(r.maxRecord);
    expect(r.pop(out)).toBe(53);
    expect([...out.subarray(0, 3)]).toEqual([9, 8, 7]);
    expect(out.subarray(3, 53)).toEqual(bytes(100, 1).subarray(10, 60));
    expect(r.pop(out)).toBe(-1);
    expect(r.empty).toBe(true);
  });

  it('a full ring refuses a push and keeps what it holds; room comes back as records are taken', () => {
    const r = new DatagramRing(ringBuffer(4096));
    let n = 0;
    while (r.push(bytes(1000, n), 0, 1000)) n++;
    expect(n).toBe(4); // 4 x (4 + 1000) = 4016 of 4096
    const out = new Uint8Array(r.maxRecord);
    expect(r.pop(out)).toBe(1000);
    expect(out.subarray(0, 1000)).toEqual(bytes(1000, 0));
    expect(r.push(bytes(1000, 99), 0, 1000)).toBe(true);
    for (const seed of [1, 2, 3, 99]) {
      expect(r.pop(out)).toBe(1000);
      expect(out.subarray(0, 1000)).toEqual(bytes(1000, seed));
    }
  });

  it('a record larger than half the ring is refused outright', () => {
    const r = new DatagramRing(ringBuffer(4096));
    expect(r.push(new Uint8Array(2045), 0, 2045)).toBe(false);
    expect(r.push(new Uint8Array(2044), 0, 2044)).toBe(true);
  });

  it('a corrupt length is reported, not read past', () => {
    const sab = ringBuffer(4096);
    const r = new DatagramRing(sab);
    r.push(bytes(10, 0), 0, 10);
    new DataView(sab, 8).setUint32(0, 5000, true);
    expect(() => r.pop(new Uint8Array(r.maxRecord))).toThrow(/corrupt/);
  });

  it('property: any sequence of pushes and pops is a FIFO of the records accepted, across wraps', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 1500 }), fc.constant(-1)), { maxLength: 300 }), (ops) => {
        const r = new DatagramRing(ringBuffer(8192));
        const model: Uint8Array[] = [];
        const out = new Uint8Array(r.maxRecord);
        let seed = 0;
        for (const op of ops) {
          if (op < 0) {
            const len = r.pop(out);
            const want = model.shift();
            if (!want) expect(len).toBe(-1);
            else expect(out.subarray(0, len)).toEqual(want);
          } else {
            const b = bytes(op, seed++);
            const need = 4 + ((op + 3) & ~3);
            if (r.push(b, 0, op)) model.push(b);
            // Refused only when the record does not fit: what is used, the span skipped at the end (less than a record), and the record.
            else expect(r.used + 2 * need).toBeGreaterThan(r.capacity);
          }
        }
        for (const want of model) {
          const len = r.pop(out);
          expect(out.subarray(0, len)).toEqual(want);
        }
        expect(r.pop(out)).toBe(-1);
      }),
      { numRuns: 300 },
    );
  });
});
