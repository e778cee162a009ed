/**
 * The datagram ring between the fabric and the VXLAN I/O thread: records come
 * out as they went in, in order, across the wrap; a full ring refuses (the
 * caller counts the drop) without writing; a corrupt length is reported,
 * never read past.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DatagramRing, ringBuffer, type RingRecord } from '../src/vxlan/ring.ts';

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

  it('peek reads records in place from a cursor past the head; release gives them back oldest first', () => {
    const r = new DatagramRing(ringBuffer(4096));
    const rec: RingRecord = { at: 0, len: 0, next: 0 };
    expect(r.peek(r.head, rec)).toBe(false);
    for (const n of [1000, 1000, 1000, 1000]) expect(r.push(bytes(n, n / 100), 0, n, Uint8Array.of(1, 2))).toBe(true);
    expect(r.push(bytes(1000, 0), 0, 1000)).toBe(false);
    // Two read in place: still on the ring, so no room yet.
    let cur = r.head;
    const seen: number[] = [];
    for (let i = 0; i < 2; i++) {
      expect(r.peek(cur, rec)).toBe(true);
      expect(rec.len).toBe(1002);
      expect([...r.bytes(rec.at, 2)]).toEqual([1, 2]);
      expect(r.bytes(rec.at + 2, 1000)).toEqual(bytes(1000, 10));
      seen.push(rec.next);
      cur = rec.next;
    }
    expect(r.push(bytes(1000, 0), 0, 1000)).toBe(false);
    expect(r.nextLength()).toBe(1002);
    // The first released: room for one more, which goes in behind the wrap; the second is still the oldest.
    r.release(seen[0]);
    expect(r.push(bytes(900, 7), 0, 900)).toBe(true);
    expect(r.head).toBe(seen[0]);
    r.release(seen[1]);
    for (let i = 0; i < 2; i++) {
      expect(r.peek(cur, rec)).toBe(true);
      cur = rec.next;
    }
    expect(r.peek(cur, rec)).toBe(true);
    expect(rec.len).toBe(900);
    expect(r.bytes(rec.at, 900)).toEqual(bytes(900, 7));
    expect(r.hasAt(rec.next)).toBe(false);
    r.release(rec.next);
    expect(r.empty).toBe(true);
  });

  it('peek reports a corrupt length or a wrap mark with nothing after it, never reads past', () => {
    const rec: RingRecord = { at: 0, len: 0, next: 0 };
    const sab = ringBuffer(4096);
    const r = new DatagramRing(sab);
    r.push(bytes(10, 0), 0, 10);
    new DataView(sab, 8).setUint32(0, 5000, true);
    expect(() => r.peek(r.head, rec)).toThrow(/corrupt/);
    const sab2 = ringBuffer(4096);
    const r2 = new DatagramRing(sab2);
    r2.push(bytes(10, 0), 0, 10);
    new DataView(sab2, 8).setUint32(0, 0xffffffff, true);
    // The wrap mark sends the reader back to 0, where the same mark says 4 GiB: out of bounds.
    expect(() => r2.peek(r2.head, rec)).toThrow(/corrupt/);
  });

  it('property: records read in place and released in order are the records accepted, never written over while held', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 1500 }), fc.constantFrom('peek', 'release')), { maxLength: 400 }), (ops) => {
        const r = new DatagramRing(ringBuffer(8192));
        const rec: RingRecord = { at: 0, len: 0, next: 0 };
        const queued: Uint8Array[] = [];
        /** Read in place and not released: the view and the copy taken when it was read. */
        const held: { view: Uint8Array; copy: Uint8Array; next: number }[] = [];
        let cursor = r.head;
        let seed = 0;
        for (const op of ops) {
          if (op === 'peek') {
            const want = queued.shift();
            expect(r.peek(cursor, rec)).toBe(want !== undefined);
            if (!want) continue;
            const view = r.bytes(rec.at, rec.len);
            expect(view).toEqual(want);
            held.push({ view, copy: view.slice(), next: rec.next });
            cursor = rec.next;
          } else if (op === 'release') {
            const h = held.shift();
            if (h) r.release(h.next);
          } else {
            const b = bytes(op, seed++);
            if (r.push(b, 0, op)) queued.push(b);
          }
          // Nothing held was written over by a later push.
          for (const h of held) expect(h.view).toEqual(h.copy);
        }
      }),
      { numRuns: 300 },
    );
  });
});
