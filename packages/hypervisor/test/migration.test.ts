/**
 * Live migration's memory side on its own: the dirty log (a page written
 * after its copy was sent is sent again; one rewritten with the same bytes
 * need not be), and the save-image format, one test per malformed input.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GuestMemory, PAGE_SIZE, PAGES_PER_RECORD, PageMirror, SAVE_MAGIC, decodeSaveStream, encodeSaveStream, type SavedDomain } from '../src/index.ts';

const clock = (): number => 0;

describe('pre-copy dirty log', () => {
  it('round 1 sends every page that is not zero, round 2 only the page written after its copy', () => {
    const src = GuestMemory.allocate(64);
    const dst = GuestMemory.allocate(64);
    src.page(3).fill(7);
    src.page(40)[100] = 1;
    const m = new PageMirror(src, dst, clock);
    expect(m.round()).toEqual([3, 40]);
    expect(m.dirty()).toEqual([]);
    src.page(40)[101] = 2;
    src.page(3)[0] = 7; // the same byte again: nothing to send
    expect(m.round()).toEqual([40]);
    expect(m.rounds.map((r) => r.pages)).toEqual([2, 1]);
    expect(m.pagesSent).toBe(3);
    expect(Buffer.compare(Buffer.from(src.sab), Buffer.from(dst.sab))).toBe(0);
  });

  it('a page written between rounds is sent again, and after the last round the copy is exact (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.tuple(fc.nat(31), fc.nat(PAGE_SIZE - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 20 }), { minLength: 1, maxLength: 6 }),
        (rounds) => {
          const src = GuestMemory.allocate(32);
          const dst = GuestMemory.allocate(32);
          const m = new PageMirror(src, dst, clock);
          for (const writes of rounds) {
            const changed = new Set<number>();
            for (const [page, off, v] of writes) {
              const before = Buffer.from(dst.page(page));
              src.page(page)[off] = v;
              if (Buffer.compare(Buffer.from(src.page(page)), before) !== 0) changed.add(page);
              else changed.delete(page);
            }
            // Exactly the pages that now differ from what was sent go out.
            expect(m.round()).toEqual([...changed].sort((a, b) => a - b));
          }
          expect(Buffer.compare(Buffer.from(src.sab), Buffer.from(dst.sab))).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses RAMs of different sizes', () => {
    expect(() => new PageMirror(GuestMemory.allocate(2), GuestMemory.allocate(3), clock)).toThrow(/2 and 3 pages/);
  });
});

const dom = (o: Partial<SavedDomain> = {}): SavedDomain => ({
  name: 'g1',
  memPages: 16,
  from: { host: 'host-a', domid: 3 },
  vifs: [{ handle: 0, mac: '00:16:3e:00:00:01', ip: '10.0.10.9', mtu: 1500 }],
  kernel: { frame: 5, len: 100 },
  accel: [{ handle: 0, plugin: 'vnic', state: { flows: [[17, 5001]] } }],
  suspendedAt: 1,
  ...o,
});

function image(): { mem: GuestMemory; bytes: Buffer } {
  const mem = GuestMemory.allocate(16);
  mem.page(5).fill(9);
  mem.page(15)[4095] = 1;
  return { mem, bytes: encodeSaveStream(dom(), mem).bytes };
}

describe('save image (migration stream format)', () => {
  it('round-trips a domain and its pages, leaving out pages of zeros', () => {
    const { mem, bytes } = image();
    const r = decodeSaveStream(bytes, 1024);
    expect(r.pages).toBe(2);
    expect(r.dom).toEqual(dom());
    expect(Buffer.compare(Buffer.from(r.mem.sab), Buffer.from(mem.sab))).toBe(0);
  });

  it('splits pages into records of at most PAGES_PER_RECORD', () => {
    const mem = GuestMemory.allocate(PAGES_PER_RECORD + 10);
    for (let p = 0; p < mem.pages; p++) mem.page(p)[0] = 1;
    const r = decodeSaveStream(encodeSaveStream(dom({ memPages: mem.pages }), mem).bytes, 1 << 20);
    expect(r.pages).toBe(mem.pages);
  });

  const broken: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['no magic', (b) => Buffer.concat([Buffer.from('NOTSAVED'), b.subarray(8)]), new RegExp(`no "${SAVE_MAGIC}" header`)],
    ['another version', (b) => (b.writeUInt32LE(9, 8), b), /version 9/],
    ['truncated', (b) => b.subarray(0, b.length - 20), /runs past the end|no END record/],
    ['no END record', (b) => b.subarray(0, b.length - 8), /no END record/],
    ['an unknown record', (b) => (b.writeUInt32LE(77, 16), b), /unknown record type 77/],
    ['a page frame outside RAM', (b) => (b.writeUInt32LE(999, b.indexOf(Buffer.from([2, 0, 0, 0]), 16) + 16), b), /page frame 999 outside/],
    ['a DOMAIN that does not decode', (b) => (b.fill(0xc1, 24, 40), b), /does not decode|DOMAIN|memPages|name/],
  ];
  for (const [what, mangle, why] of broken) {
    it(`refuses an image with ${what}`, () => {
      expect(() => decodeSaveStream(mangle(Buffer.from(image().bytes)), 1024)).toThrow(why);
    });
  }

  it('refuses a domain larger than the host allows, and a kernel record outside RAM', () => {
    const mem = GuestMemory.allocate(16);
    expect(() => decodeSaveStream(encodeSaveStream(dom(), mem).bytes, 8)).toThrow(/memPages 16 outside 1..8/);
    expect(() => decodeSaveStream(encodeSaveStream(dom({ kernel: { frame: 16, len: 1 } }), mem).bytes, 1024)).toThrow(/outside the domain's RAM/);
  });

  it('never throws anything but a clear error on arbitrary bytes after a valid header (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (tail) => {
        const head = Buffer.from(image().bytes.subarray(0, 16));
        try {
          decodeSaveStream(Buffer.concat([head, Buffer.from(tail)]), 1024);
        } catch (e) {
          expect((e as Error).message).toMatch(/not a usable xsim save image/);
        }
      }),
      { numRuns: 500 },
    );
  });
});
