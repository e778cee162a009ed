/**
 * Live migration's memory side on its own: the dirty log (a page written
 * after its copy was sent is sent again; one rewritten with the same bytes
 * need not be), and the save image: Xen's migration v2 stream, checked octet
 * by octet against libxc's definitions (xg_sr_stream_format.h, written out
 * here as numbers, not taken from the code under test), and one test per
 * malformed input.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  GuestMemory,
  PAGE_SIZE,
  PAGES_PER_RECORD,
  PageMirror,
  REC_TYPE_OPTIONAL,
  REC_TYPE_XSIM_ACCEL_STATE,
  REC_TYPE_XSIM_DOMAIN,
  REC_TYPE_XSIM_PRODUCER,
  decodeSaveStream,
  encodeSaveStream,
  pageDataEntry,
  type SavedDomain,
} from '../src/index.ts';

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

function ram(): GuestMemory {
  const mem = GuestMemory.allocate(16);
  mem.page(5).fill(9);
  mem.page(15)[4095] = 1;
  return mem;
}

function image(): { mem: GuestMemory; bytes: Buffer } {
  const mem = ram();
  return { mem, bytes: encodeSaveStream(dom(), mem, { producer: 'xsim test' }).bytes };
}

// Xen's numbers, from xg_sr_stream_format.h and public/domctl.h.
const XEN = {
  IHDR_MARKER: 0xffffffffffffffffn,
  IHDR_ID: 0x58454e46,
  IHDR_VERSION: 3,
  DHDR_TYPE_X86_HVM: 2,
  REC_TYPE_END: 0,
  REC_TYPE_PAGE_DATA: 1,
  REC_TYPE_X86_PV_INFO: 2,
  REC_TYPE_STATIC_DATA_END: 0x10,
  /** XEN_DOMCTL_PFINFO_* >> 28, as PAGE_DATA carries them in bits 60-63. */
  NOTAB: 0x0,
  L1TAB: 0x1,
  XTAB: 0xf,
};
/** Image header + domain header. */
const HEADERS = 40;

interface Rec {
  type: number;
  body: Buffer;
}

/** Records of a stream as a libxc reader would walk them: header at 8-octet boundaries, body padded to 8. */
function split(b: Buffer): { head: Buffer; recs: (Rec & { at: number; pad: Buffer })[] } {
  const recs: (Rec & { at: number; pad: Buffer })[] = [];
  let at = HEADERS;
  for (;;) {
    const type = b.readUInt32LE(at);
    const len = b.readUInt32LE(at + 4);
    const end = at + 8 + ((len + 7) & ~7);
    recs.push({ type, at, body: b.subarray(at + 8, at + 8 + len), pad: b.subarray(at + 8 + len, end) });
    at = end;
    if (type === XEN.REC_TYPE_END) break;
  }
  expect(at).toBe(b.length);
  return { head: b.subarray(0, HEADERS), recs };
}

function join(head: Buffer, recs: Rec[]): Buffer {
  return Buffer.concat([
    head,
    ...recs.map((r) => {
      const out = Buffer.alloc(8 + ((r.body.length + 7) & ~7));
      out.writeUInt32LE(r.type >>> 0, 0);
      out.writeUInt32LE(r.body.length, 4);
      r.body.copy(out, 8);
      return out;
    }),
  ]);
}

/** A PAGE_DATA body: count, _res1, the pfn entries, then the pages given. */
function pageData(entries: bigint[], pages: Buffer[]): Buffer {
  const b = Buffer.alloc(8 + entries.length * 8 + pages.length * PAGE_SIZE);
  b.writeUInt32LE(entries.length, 0);
  entries.forEach((e, k) => b.writeBigUInt64LE(e, 8 + k * 8));
  pages.forEach((p, k) => p.copy(b, 8 + entries.length * 8 + k * PAGE_SIZE));
  return b;
}

/** The image with its records changed by `f`. */
function withRecords(f: (recs: Rec[]) => Rec[]): Buffer {
  const { head, recs } = split(Buffer.from(image().bytes));
  return join(Buffer.from(head), f(recs.map((r) => ({ type: r.type, body: Buffer.from(r.body) }))));
}

const decode = (b: Buffer) => decodeSaveStream(b, 1024);

describe('save image (Xen migration v2 stream)', () => {
  it('round-trips a domain and its pages, leaving out pages of zeros', () => {
    const { mem, bytes } = image();
    const r = decode(bytes);
    expect(r.pages).toBe(2);
    expect(r.dom).toEqual(dom());
    expect(r.producer).toBe('xsim test');
    expect(r.xen).toEqual({ major: 4, minor: 17 });
    expect(Buffer.compare(Buffer.from(r.mem.sab), Buffer.from(mem.sab))).toBe(0);
  });

  it('splits pages into PAGE_DATA records of at most PAGES_PER_RECORD', () => {
    const mem = GuestMemory.allocate(PAGES_PER_RECORD + 10);
    for (let p = 0; p < mem.pages; p++) mem.page(p)[0] = 1;
    const bytes = encodeSaveStream(dom({ memPages: mem.pages }), mem).bytes;
    const counts = split(bytes)
      .recs.filter((r) => r.type === XEN.REC_TYPE_PAGE_DATA)
      .map((r) => r.body.readUInt32LE(0));
    expect(counts).toEqual([PAGES_PER_RECORD, 10]);
    expect(decodeSaveStream(bytes, 1 << 20).pages).toBe(mem.pages);
  });

  it("begins with Xen's image header (big-endian: marker, XENF, version 3, little-endian option) and an x86 HVM domain header", () => {
    const b = image().bytes;
    expect(b.subarray(0, 24).toString('hex')).toBe(
      'ffffffffffffffff' + '58454e46' + '00000003' + '0000' + '0000' + '00000000', // marker, id, version, options, _res1, _res2
    );
    expect(b.readBigUInt64BE(0)).toBe(XEN.IHDR_MARKER);
    expect(b.readUInt32BE(8)).toBe(XEN.IHDR_ID);
    expect(b.toString('latin1', 8, 12)).toBe('XENF');
    expect(b.readUInt32BE(12)).toBe(XEN.IHDR_VERSION);
    expect(b.readUInt16BE(16) & 1).toBe(0); // IHDR_OPT_LITTLE_ENDIAN
    // struct xc_sr_dhdr, in the records' (little-endian) order.
    expect(b.subarray(24, 40).toString('hex')).toBe('02000000' + '0c00' + '0000' + '04000000' + '11000000'); // type, page_shift, _res1, 4.17
    expect(b.readUInt32LE(24)).toBe(XEN.DHDR_TYPE_X86_HVM);
    expect(b.readUInt16LE(28)).toBe(12);
  });

  it("carries Xen's records under Xen's numbers and xsim's in its private block, each aligned to 8 with zero padding, END last", () => {
    const { recs } = split(image().bytes);
    expect(recs.map((r) => r.type >>> 0)).toEqual([
      0xd8530002, // XSIM_PRODUCER (optional)
      0x58530001, // XSIM_DOMAIN (mandatory)
      XEN.REC_TYPE_STATIC_DATA_END,
      XEN.REC_TYPE_PAGE_DATA,
      0xd8530003, // XSIM_ACCEL_STATE (optional)
      XEN.REC_TYPE_END,
    ]);
    expect([REC_TYPE_XSIM_PRODUCER, REC_TYPE_XSIM_DOMAIN, REC_TYPE_XSIM_ACCEL_STATE]).toEqual([0xd8530002, 0x58530001, 0xd8530003]);
    // The optional bit (REC_TYPE_OPTIONAL, bit 31) is set on exactly the records a reader may skip.
    expect(REC_TYPE_OPTIONAL).toBe(0x80000000);
    expect(recs.map((r) => (r.type >>> 31) & 1)).toEqual([1, 0, 0, 0, 1, 0]);
    for (const r of recs) {
      expect(r.at % 8).toBe(0);
      expect(r.pad.every((x) => x === 0)).toBe(true);
    }
    expect(recs[2].body.length).toBe(0);
    expect(recs[5].body.length).toBe(0);
    expect(recs[0].body.toString('utf8')).toBe('xsim test');
  });

  it("writes PAGE_DATA as Xen's: count, reserved, 64-bit pfns with the NOTAB type in bits 60-63, then the pages in pfn order", () => {
    const { mem, bytes } = image();
    const pd = split(bytes).recs.find((r) => r.type === XEN.REC_TYPE_PAGE_DATA)!;
    const c = pd.body;
    expect(c.readUInt32LE(0)).toBe(2); // count
    expect(c.readUInt32LE(4)).toBe(0); // _res1
    const pfns = [c.readBigUInt64LE(8), c.readBigUInt64LE(16)];
    expect(pfns.map((e) => Number(e & 0x000fffffffffffffn))).toEqual([5, 15]);
    expect(pfns.map((e) => Number(e >> 60n))).toEqual([XEN.NOTAB, XEN.NOTAB]);
    expect(pfns.map((e) => (e >> 52n) & 0xffn)).toEqual([0n, 0n]); // reserved bits 52-59
    expect(c.length).toBe(8 + 2 * 8 + 2 * PAGE_SIZE);
    expect(Buffer.compare(c.subarray(24, 24 + PAGE_SIZE), Buffer.from(mem.page(5)))).toBe(0);
    expect(Buffer.compare(c.subarray(24 + PAGE_SIZE), Buffer.from(mem.page(15)))).toBe(0);
    expect(pageDataEntry(7, 0xf0000000)).toBe((0xfn << 60n) | 7n); // XEN_DOMCTL_PFINFO_XTAB shifted by 32
  });

  it('reads pfns of types without data (XTAB) as frames holding nothing', () => {
    const page = Buffer.alloc(PAGE_SIZE, 3);
    const b = withRecords((recs) =>
      recs.map((r) =>
        r.type === XEN.REC_TYPE_PAGE_DATA ? { type: r.type, body: pageData([(BigInt(XEN.XTAB) << 60n) | 5n, BigInt(XEN.NOTAB) | 15n], [page]) } : r,
      ),
    );
    const r = decode(b);
    expect(r.pages).toBe(1);
    expect(r.mem.page(5).every((x) => x === 0)).toBe(true);
    expect(r.mem.page(15).every((x) => x === 3)).toBe(true);
  });

  it('skips an optional record it does not know, as the spec allows', () => {
    const b = withRecords((recs) => [{ type: 0x80001234, body: Buffer.from('anything at all') }, ...recs]);
    expect(decode(b).dom).toEqual(dom());
  });

  it('reads a version 2 stream, which has no STATIC_DATA_END (libxc infers it at the first PAGE_DATA)', () => {
    const b = withRecords((recs) => recs.filter((r) => r.type !== XEN.REC_TYPE_STATIC_DATA_END));
    b.writeUInt32BE(2, 12);
    expect(decode(b).pages).toBe(2);
  });

  const at = (b: Buffer, f: (b: Buffer) => void): Buffer => (f(b), b);
  const firstPageData = (recs: Rec[]): Rec => recs.find((r) => r.type === XEN.REC_TYPE_PAGE_DATA)!;
  const broken: [string, () => Buffer, RegExp][] = [
    ['a wrong marker', () => at(image().bytes, (b) => b.writeUInt32BE(0x7fffffff, 0)), /marker 0x7fffffffffffffff, expected 0xffffffffffffffff/],
    ['a wrong id', () => at(image().bytes, (b) => b.write('XENG', 8, 'latin1')), /id 0x58454e47, expected 0x58454e46 \("XENF"\)/],
    ['an unsupported version (4)', () => at(image().bytes, (b) => b.writeUInt32BE(4, 12)), /version 4, this xsim reads versions 2 to 3/],
    ['an unsupported version (1)', () => at(image().bytes, (b) => b.writeUInt32BE(1, 12)), /version 1, this xsim reads versions 2 to 3/],
    ['the big-endian option', () => at(image().bytes, (b) => b.writeUInt16BE(1, 16)), /options 0x0001: a big-endian stream/],
    [
      'an x86 PV domain header',
      () => at(image().bytes, (b) => b.writeUInt32LE(1, 24)),
      /domain header type 1 \(x86 PV\), xsim reads x86 HVM images \(type 2\) only/,
    ],
    ['a page_shift other than 12', () => at(image().bytes, (b) => b.writeUInt16LE(13, 28)), /page_shift 13/],
    ['headers cut short', () => image().bytes.subarray(0, 30), /30 octets: shorter than the image and domain headers \(40\)/],
    [
      'a truncated record (header cut)',
      () => image().bytes.subarray(0, image().bytes.length - 4),
      /truncated at octet \d+: 4 octets left where a record header needs 8 \(no END record\)/,
    ],
    ['no END record', () => image().bytes.subarray(0, image().bytes.length - 8), /truncated at octet \d+: 0 octets left/],
    [
      'a record length past the end',
      () => at(image().bytes, (b) => b.writeUInt32LE(1 << 20, split(b).recs[3].at + 4)),
      /PAGE_DATA \(0x00000001\) record at octet \d+ runs past the end: 1048576 octets of body/,
    ],
    ['a body cut short', () => image().bytes.subarray(0, 2000), /PAGE_DATA \(0x00000001\) record at octet \d+ runs past the end: 8216 octets of body/],
    [
      'a length over REC_LENGTH_MAX',
      () => at(image().bytes, (b) => b.writeUInt32LE((128 << 20) + 1, split(b).recs[3].at + 4)),
      /length 134217729 exceeds REC_LENGTH_MAX \(134217728\)/,
    ],
    [
      'a PAGE_DATA count that does not match its length',
      () => withRecords((recs) => (firstPageData(recs).body.writeUInt32LE(1, 0), recs)),
      /PAGE_DATA \(0x00000001\) record at octet \d+: length 8216, but count 1 with 1 pages of data makes 8 \+ 8×1 \+ 4096×1 = 4112/,
    ],
    ['a PAGE_DATA count of 0', () => withRecords((recs) => (firstPageData(recs).body.writeUInt32LE(0, 0), recs)), /count 0/],
    [
      'a PAGE_DATA too short for its pfns',
      () => withRecords((recs) => [...recs.slice(0, 3), { type: XEN.REC_TYPE_PAGE_DATA, body: pageData([5n, 6n], []).subarray(0, 16) }, recs[recs.length - 1]]),
      /16 octets cannot hold 2 pfns/,
    ],
    [
      'a pfn outside RAM',
      () => withRecords((recs) => (firstPageData(recs).body.writeBigUInt64LE(999n, 8), recs)),
      /pfn 999 \(index 0\) outside the domain's 16 pages/,
    ],
    [
      'a page-table page (L1TAB)',
      () => withRecords((recs) => (firstPageData(recs).body.writeBigUInt64LE((BigInt(XEN.L1TAB) << 60n) | 5n, 8), recs)),
      /pfn 5 \(index 0\) has page type L1TAB/,
    ],
    [
      'a reserved page type (5)',
      () => withRecords((recs) => (firstPageData(recs).body.writeBigUInt64LE((5n << 60n) | 5n, 8), recs)),
      /pfn 5 \(index 0\) has unknown page type 0x5/,
    ],
    [
      'an unknown mandatory record',
      () => withRecords((recs) => [{ type: 0x13, body: Buffer.alloc(0) }, ...recs]),
      /0x00000013 record at octet 40: a mandatory record xsim does not handle/,
    ],
    [
      'a Xen record xsim has no use for (X86_PV_INFO)',
      () => withRecords((recs) => [{ type: XEN.REC_TYPE_X86_PV_INFO, body: Buffer.from([8, 4, 0, 0, 0, 0, 0, 0]) }, ...recs]),
      /X86_PV_INFO \(0x00000002\) record at octet 40: a mandatory record xsim does not handle/,
    ],
    [
      'PAGE_DATA before STATIC_DATA_END',
      () => withRecords((recs) => recs.filter((r) => r.type !== XEN.REC_TYPE_STATIC_DATA_END)),
      /PAGE_DATA \(0x00000001\) record at octet \d+ before STATIC_DATA_END/,
    ],
    ['two STATIC_DATA_END records', () => withRecords((recs) => [...recs.slice(0, 3), recs[2], ...recs.slice(3)]), /a second STATIC_DATA_END/],
    [
      'no XSIM_DOMAIN record',
      () => withRecords((recs) => recs.filter((r) => r.type !== REC_TYPE_XSIM_DOMAIN)),
      /STATIC_DATA_END \(0x00000010\) record at octet \d+ before XSIM_DOMAIN/,
    ],
    [
      'an END with a body',
      () => withRecords((recs) => [...recs.slice(0, -1), { type: XEN.REC_TYPE_END, body: Buffer.alloc(8) }]),
      /END \(0x00000000\) record at octet \d+ has a body of 8 octets/,
    ],
    [
      'an XSIM_DOMAIN that does not decode',
      () => withRecords((recs) => recs.map((r) => (r.type === REC_TYPE_XSIM_DOMAIN ? { type: r.type, body: Buffer.alloc(16, 0xc1) } : r))),
      /XSIM_DOMAIN \(0x58530001\) record at octet \d+ does not decode/,
    ],
    [
      "a plugin's state for a vif the domain lacks",
      () =>
        withRecords((recs) =>
          recs.map((r) =>
            r.type === REC_TYPE_XSIM_ACCEL_STATE
              ? { type: r.type, body: Buffer.from([0x82, 0xa6, ...Buffer.from('handle'), 7, 0xa6, ...Buffer.from('plugin'), 0xa4, ...Buffer.from('vnic')]) }
              : r,
          ),
        ),
      /XSIM_ACCEL_STATE \(0xd8530003\) record at octet \d+: handle 7 is none of the domain's vifs/,
    ],
    [
      'an image in the old XSIMSAV1 format',
      () => Buffer.concat([Buffer.from('XSIMSAV1'), Buffer.alloc(40)]),
      /xsim's earlier "XSIMSAV1" format, which this xsim does not read/,
    ],
  ];
  for (const [what, make, why] of broken) {
    it(`refuses an image with ${what}`, () => {
      expect(() => decode(make())).toThrow(why);
    });
  }

  it('refuses a domain larger than the host allows, and a kernel record outside RAM', () => {
    const mem = GuestMemory.allocate(16);
    expect(() => decodeSaveStream(encodeSaveStream(dom(), mem).bytes, 8)).toThrow(/memPages 16 outside 1..8/);
    expect(() => decode(encodeSaveStream(dom({ kernel: { frame: 16, len: 1 } }), mem).bytes)).toThrow(/outside the domain's RAM/);
  });

  it('never throws anything but a clear error on arbitrary bytes after valid headers (property)', () => {
    const head = Buffer.from(image().bytes.subarray(0, HEADERS));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (tail) => {
        try {
          decode(Buffer.concat([head, Buffer.from(tail)]));
        } catch (e) {
          expect((e as Error).message).toMatch(/not a usable xsim save image/);
        }
      }),
      { numRuns: 500 },
    );
  });
});
