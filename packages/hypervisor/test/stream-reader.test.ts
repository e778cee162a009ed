/**
 * The stream reader taken chunk by chunk (a migration over TCP): any cut of a
 * stream reads as the whole does, a live stream (pages round after round,
 * the domain's state after them) builds the last copy of every page, and one
 * test per way a live stream can be malformed.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  GuestMemory,
  REC_LENGTH_MAX,
  REC_TYPE_PAGE_DATA,
  SaveStreamError,
  SaveStreamReader,
  closingRecords,
  decodeSaveStream,
  domainRecord,
  encodeSaveStream,
  pageDataRecords,
  staticDataEndRecord,
  streamStart,
  type SavedDomain,
} from '../src/index.ts';

const PAGES = 16;

function domain(memPages = PAGES): SavedDomain {
  return {
    name: 'g1',
    memPages,
    from: { host: 'host-a', domid: 3 },
    vifs: [{ handle: 0, mac: '00:16:3e:00:00:01', ip: '10.0.1.1', mtu: 1500 }],
    kernel: { frame: 2, len: 100 },
    accel: [{ handle: 0, plugin: 'vnic', state: { filters: [1, 2] } }],
    suspendedAt: 1,
  };
}

function ram(fill: Record<number, number>): GuestMemory {
  const m = GuestMemory.allocate(PAGES);
  for (const [p, v] of Object.entries(fill)) m.page(Number(p)).fill(v);
  return m;
}

/** A live stream: round 1 sends pages 1..3, round 2 sends page 2 again (written meanwhile), then the state. */
function liveStream(dom = domain()): { bytes: Buffer; final: GuestMemory } {
  const r1 = ram({ 1: 1, 2: 2, 3: 3 });
  const r2 = ram({ 1: 1, 2: 9, 3: 3 });
  const bytes = Buffer.concat([
    ...streamStart({ producer: 'xsim test' }),
    staticDataEndRecord(),
    ...pageDataRecords(r1, [1, 2, 3]),
    ...pageDataRecords(r2, [2]),
    domainRecord(dom),
    ...closingRecords(dom.accel),
  ]);
  return { bytes, final: r2 };
}

function readIn(bytes: Buffer, cuts: number[], o: { maxPages: number; memPages?: number }) {
  const r = new SaveStreamReader(o);
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    r.push(bytes.subarray(at, Math.max(at, c)));
    at = Math.max(at, c);
  }
  r.push(bytes.subarray(at));
  return r.result();
}

describe('save stream reader, chunk by chunk', () => {
  it('reads a save file cut anywhere as it reads the whole (property)', () => {
    const mem = ram({ 0: 5, 7: 6, 15: 7 });
    const { bytes } = encodeSaveStream(domain(), mem, { producer: 'xsim test' });
    const whole = decodeSaveStream(bytes, 1 << 20);
    fc.assert(
      fc.property(fc.array(fc.nat(bytes.length), { maxLength: 12 }), (cuts) => {
        const d = readIn(bytes, cuts, { maxPages: 1 << 20 });
        expect(d.dom).toEqual(whole.dom);
        expect(d.pages).toBe(whole.pages);
        expect(Buffer.compare(Buffer.from(d.mem.sab), Buffer.from(mem.sab))).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('reads a live stream: the last round of each page wins, the state after the pages, cut anywhere (property)', () => {
    const { bytes, final } = liveStream();
    fc.assert(
      fc.property(fc.array(fc.nat(bytes.length), { maxLength: 12 }), (cuts) => {
        const d = readIn(bytes, cuts, { maxPages: 1 << 20, memPages: PAGES });
        expect(d.pages).toBe(4);
        expect(d.dom.accel).toEqual(domain().accel);
        expect(d.producer).toBe('xsim test');
        expect(Buffer.compare(Buffer.from(d.mem.sab), Buffer.from(final.sab))).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('reports done at END and reads nothing after it', () => {
    const { bytes } = liveStream();
    const r = new SaveStreamReader({ maxPages: 1 << 20, memPages: PAGES });
    expect(r.push(bytes.subarray(0, bytes.length - 8))).toBe(false);
    expect(r.done).toBe(false);
    expect(r.push(Buffer.concat([bytes.subarray(bytes.length - 8), Buffer.from('the next message')]))).toBe(true);
    expect(r.result().dom.name).toBe('g1');
    expect(r.trailing().toString()).toBe('the next message');
  });
});

describe('save stream reader: malformed live streams', () => {
  /** Calls `f` once (a reader is not read again after a fault) and checks what it threw. */
  const refused = (f: () => unknown, msg: RegExp) => {
    let err: unknown = null;
    try {
      f();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SaveStreamError);
    expect((err as Error).message).toMatch(msg);
  };

  it('refuses pages before XSIM_DOMAIN when no size was announced (a save file must say it first)', () => {
    const { bytes } = liveStream();
    refused(() => decodeSaveStream(bytes, 1 << 20), /STATIC_DATA_END \(0x00000010\) record at octet \d+ before XSIM_DOMAIN/);
  });

  it('refuses an XSIM_DOMAIN whose memPages is not the size announced', () => {
    const { bytes } = liveStream(domain(PAGES * 2));
    refused(() => readIn(bytes, [], { maxPages: 1 << 20, memPages: PAGES }), /memPages 32, but the migration announced 16/);
  });

  it('refuses PAGE_DATA after the domain state in a live stream', () => {
    const dom = domain();
    const bytes = Buffer.concat([...streamStart(), staticDataEndRecord(), domainRecord(dom), ...pageDataRecords(ram({ 1: 1 }), [1]), ...closingRecords([])]);
    refused(() => readIn(bytes, [], { maxPages: 1 << 20, memPages: PAGES }), /PAGE_DATA \(0x00000001\) record at octet \d+ after XSIM_DOMAIN/);
  });

  it('refuses a size announced outside 1..maxPages before reading anything', () => {
    refused(() => new SaveStreamReader({ maxPages: 8, memPages: PAGES }), /announced memPages 16 outside 1\.\.8/);
    refused(() => new SaveStreamReader({ maxPages: 8, memPages: 0 }), /announced memPages 0 outside 1\.\.8/);
  });

  it('refuses an over-long record at its header, before its body is sent', () => {
    const hdr = Buffer.alloc(8);
    hdr.writeUInt32LE(REC_TYPE_PAGE_DATA, 0);
    hdr.writeUInt32LE(REC_LENGTH_MAX + 8, 4);
    const r = new SaveStreamReader({ maxPages: 1 << 20, memPages: PAGES });
    r.push(Buffer.concat([...streamStart(), staticDataEndRecord()]));
    refused(() => r.push(hdr), /length 134217736 exceeds REC_LENGTH_MAX/);
  });

  it('names a stream that stopped in a record body, and one that stopped between records', () => {
    const { bytes } = liveStream();
    const mid = new SaveStreamReader({ maxPages: 1 << 20, memPages: PAGES });
    mid.push(bytes.subarray(0, 100));
    refused(() => mid.result(), /record at octet \d+ runs past the end/);
    const between = new SaveStreamReader({ maxPages: 1 << 20, memPages: PAGES });
    between.push(Buffer.concat([...streamStart(), staticDataEndRecord()]));
    refused(() => between.result(), /truncated at octet \d+: 0 octets left where a record header needs 8 \(no END record\)/);
  });

  it('refuses a pfn outside the announced size', () => {
    const big = GuestMemory.allocate(PAGES * 2);
    big.page(PAGES + 1).fill(1);
    const bytes = Buffer.concat([...streamStart(), staticDataEndRecord(), ...pageDataRecords(big, [PAGES + 1])]);
    const r = new SaveStreamReader({ maxPages: 1 << 20, memPages: PAGES });
    refused(() => r.push(bytes), /pfn 17 \(index 0\) outside the domain's 16 pages/);
  });
});
