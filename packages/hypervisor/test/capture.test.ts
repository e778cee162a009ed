/**
 * Capture in process: the pcapng blocks xsim writes read back field for
 * field; the reader refuses malformed files with a PcapngError (one test per
 * malformed input, and a property over arbitrary bytes: nothing else is ever
 * thrown); a tap point costs a flag test when off, keeps at most the snap
 * length, counts what a full buffer could not keep, names its drops, and a
 * point that appears while a capture runs is captured when the specs select it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BT_EPB,
  CaptureSink,
  DIR_INBOUND,
  DIR_OUTBOUND,
  PcapngError,
  batchData,
  captureBlocks,
  type CaptureBatch,
  enhancedPacket,
  interfaceDescription,
  interfaceStatistics,
  readPcapng,
  sectionHeader,
  tapPattern,
} from '@xsim/hypervisor';

/** The blocks back to back in an array of their own (offset 0: the tests edit it through DataViews). */
const cat = (...bs: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(bs));

const frame = (n: number, fill = 0xab): Uint8Array => new Uint8Array(n).fill(fill);

function sample(): Uint8Array {
  return cat(
    sectionHeader('xsim'),
    interfaceDescription('host-a/vif1.0', 65535),
    interfaceDescription('host-b/nic/vi3', 128),
    enhancedPacket(0, 1_700_000_000_123_456_789n, frame(61), 61, DIR_INBOUND),
    enhancedPacket(1, 1_700_000_000_123_456_790n, frame(128, 1), 1514, DIR_OUTBOUND, 'dropped: host-b/dom0.bridge.dropSamePort'),
    interfaceStatistics(0, 1_700_000_001_000_000_000n, { start: 1n, end: 2n, recv: 5, drop: 2 }),
  );
}

describe('pcapng', () => {
  it('writes blocks that read back field for field', () => {
    const f = readPcapng(sample());
    expect(f.interfaces).toEqual([
      { name: 'host-a/vif1.0', snaplen: 65535, tsresol: 9 },
      { name: 'host-b/nic/vi3', snaplen: 128, tsresol: 9 },
    ]);
    expect(f.packets).toHaveLength(2);
    expect(f.packets[0]).toMatchObject({ ifId: 0, tsNs: 1_700_000_000_123_456_789n, origLen: 61, dir: DIR_INBOUND });
    expect(f.packets[0].data).toEqual(frame(61));
    expect(f.packets[1]).toMatchObject({ ifId: 1, origLen: 1514, dir: DIR_OUTBOUND, comment: 'dropped: host-b/dom0.bridge.dropSamePort' });
    expect(f.packets[1].data.length).toBe(128);
    expect(f.stats).toEqual([{ ifId: 0, recv: 5n, drop: 2n }]);
  });

  it('pads every block to 32 bits and repeats its length at the end', () => {
    for (const n of [0, 1, 2, 3, 4, 61]) {
      const b = enhancedPacket(0, 0n, frame(n), n, 0);
      const dv = new DataView(b.buffer);
      expect(b.length % 4).toBe(0);
      expect(dv.getUint32(0, true)).toBe(BT_EPB);
      expect(dv.getUint32(4, true)).toBe(b.length);
      expect(dv.getUint32(b.length - 4, true)).toBe(b.length);
    }
  });

  const bad: [string, (b: Uint8Array) => Uint8Array, RegExp][] = [
    ['an empty file', () => new Uint8Array(0), /empty file/],
    ['no section header first', (b) => b.slice(sectionHeader('xsim').length), /no Section Header Block first/],
    ['a big-endian (or foreign) byte-order magic', (b) => (b.set([0x1a, 0x2b, 0x3c, 0x4d], 8), b), /not a little-endian section header/],
    ['a block length that is not a multiple of 4', (b) => (new DataView(b.buffer).setUint32(4, 30, true), b), /bad total length 30/],
    ['a block length past the end', (b) => (new DataView(b.buffer).setUint32(4, 1 << 20, true), b), /bad total length/],
    ['a trailing length that differs', (b) => (new DataView(b.buffer).setUint32(b.length - 4, 12, true), b), /trailing length differs/],
    ['a truncated file', (b) => b.slice(0, b.length - 6), /octets left|bad total length/],
  ];
  for (const [what, mangle, msg] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => readPcapng(mangle(sample()))).toThrow(PcapngError);
      expect(() => readPcapng(mangle(sample()))).toThrow(msg);
    });
  }

  it('refuses a packet on an interface never described', () => {
    const b = cat(sectionHeader('x'), enhancedPacket(0, 0n, frame(20), 20, 0));
    expect(() => readPcapng(b)).toThrow(/interface 0 was never described/);
  });

  it('refuses a captured length over the block or over the original length', () => {
    const p = enhancedPacket(0, 0n, frame(20), 20, 0);
    new DataView(p.buffer).setUint32(20, 400, true);
    expect(() => readPcapng(cat(sectionHeader('x'), interfaceDescription('i', 100), p))).toThrow(/captured length 400 runs past the block/);
    const q = enhancedPacket(0, 0n, frame(20), 10, 0);
    expect(() => readPcapng(cat(sectionHeader('x'), interfaceDescription('i', 100), q))).toThrow(/captured length 20 over the original 10/);
  });

  it('refuses an option that runs past its block', () => {
    const i = interfaceDescription('host-a/uplink', 100);
    new DataView(i.buffer).setUint16(18, 900, true); // if_name's length
    expect(() => readPcapng(cat(sectionHeader('x'), i))).toThrow(/option 2 of 900 octets runs past the block/);
  });

  it('throws nothing but PcapngError, whatever the bytes (a valid start, then anything)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(400), (junk, cut) => {
        const s = sample();
        const b = cat(s.slice(0, Math.min(cut, s.length)), junk);
        try {
          readPcapng(b);
        } catch (e) {
          if (!(e instanceof PcapngError)) throw e;
        }
      }),
    );
  });
});

/** A drained batch read back as a file would hold it (its interface ids are still the taps' indexes). */
const packets = (b: CaptureBatch) => readPcapng(cat(sectionHeader('t'), ...b.taps.map((n) => interfaceDescription(n, 262_144)), batchData(b))).packets;

describe('tap points', () => {
  let t = 0;
  const sink = (): CaptureSink => new CaptureSink(() => ++t);

  it('records nothing while off; on, every frame once, cut to the snap length, with its direction', () => {
    const s = sink();
    const tap = s.tap('host-a/vif1.0');
    expect(tap.on).toBe(false);
    expect(batchData(s.drain()).length).toBe(0);
    expect(s.start(['host-a/vif1.0'], 16)).toEqual(['host-a/vif1.0']);
    expect(tap.on).toBe(true);
    tap.frame(frame(100, 7), 10, 60, DIR_OUTBOUND);
    const recs = packets(s.drain());
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ ifId: tap.index, dir: DIR_OUTBOUND, origLen: 60 });
    expect(recs[0].comment).toBeUndefined();
    expect(recs[0].data).toEqual(frame(16, 7));
    expect(batchData(s.drain()).length).toBe(0);
    s.stop();
    expect(tap.on).toBe(false);
  });

  it('names a drop by its counter', () => {
    const s = sink();
    const tap = s.tap('host-b/bridge');
    s.start(['host-b'], 1500, undefined, { prefix: 'host-b/dom0.' });
    tap.drop(frame(60), 0, 60, DIR_INBOUND, 'bridge.dropSamePort');
    tap.frame(frame(60), 0, 60, DIR_INBOUND);
    const b = s.drain();
    expect(packets(b).map((p) => p.comment)).toEqual(['dropped: host-b/dom0.bridge.dropSamePort', undefined]);
    expect([b.kept[tap.index], b.drops[tap.index]]).toEqual([2, 1]);
  });

  it('counts the frames a full buffer could not keep, per tap point', () => {
    const s = sink();
    const tap = s.tap('x');
    // Four blocks of 28 + 1000 + 8 (epb_flags) + 4 (end of options) + 4 (length) octets fill 4176 exactly.
    s.start(['x'], 1500, 4 * 1044);
    for (let i = 0; i < 10; i++) tap.frame(frame(1000), 0, 1000, DIR_INBOUND);
    const b = s.drain();
    expect(captureBlocks(batchData(b)).n).toBe(4);
    expect(b.kept[tap.index]).toBe(4);
    expect(b.seen[tap.index]).toBe(10);
    expect(b.lost[tap.index]).toBe(6);
    // kept counts a batch's blocks; seen and lost the whole capture.
    tap.frame(frame(1000), 0, 1000, DIR_INBOUND);
    const b2 = s.drain();
    expect([b2.kept[tap.index], b2.seen[tap.index], b2.lost[tap.index]]).toEqual([1, 11, 6]);
  });

  it('timestamps from the epoch with the offset the toolstack gives, in time order', () => {
    const s = new CaptureSink(() => 5);
    const tap = s.tap('x');
    s.start(['x'], 1500, undefined, { offsetNs: 1_764_000_000_000_000_000n });
    tap.frame(frame(60), 0, 60, DIR_INBOUND);
    expect(packets(s.drain())[0].tsNs).toBe(1_764_000_000_000_000_005n);
    // The low half carries into the high one.
    s.start(['x'], 1500, undefined, { offsetNs: 2n ** 32n - 2n });
    tap.frame(frame(60), 0, 60, DIR_INBOUND);
    expect(packets(s.drain())[0].tsNs).toBe(2n ** 32n + 3n);
    expect(() => s.start(['x'], 1500, undefined, { offsetNs: -1n })).toThrow(/negative/);
  });

  it('refuses a batch that is not Enhanced Packet Blocks back to back', () => {
    const s = sink();
    const tap = s.tap('x');
    s.start(['x'], 1500);
    tap.frame(frame(60), 0, 60, DIR_INBOUND);
    const good = batchData(s.drain());
    expect(captureBlocks(good).n).toBe(1);
    expect(() => captureBlocks(good.subarray(0, good.length - 4))).toThrow(/no Enhanced Packet Block at 0|not a block/);
    const wrongType = good.slice();
    wrongType[0] = 5;
    expect(() => captureBlocks(wrongType)).toThrow(/no Enhanced Packet Block at 0/);
    expect(() => captureBlocks(cat(good, new Uint8Array(8)))).toThrow(/8 octets at \d+ are not a block/);
  });

  it('captures a point that appears while a capture runs, when the specs select it', () => {
    const s = sink();
    s.start(['host-b/nic/*'], 1500);
    expect(s.tap('host-b/nic/vi3').on).toBe(true);
    expect(s.tap('host-a/nic/vi3').on).toBe(false);
  });

  it('selects by name, glob or prefix, nothing else', () => {
    const names = ['host-a/vif1.0', 'host-a/a1/vif0', 'host-ab/uplink', 'tor0/port1'];
    const sel = (spec: string) => names.filter((n) => tapPattern(spec).test(n));
    expect(sel('host-a')).toEqual(['host-a/vif1.0', 'host-a/a1/vif0']);
    expect(sel('host-a/a1')).toEqual(['host-a/a1/vif0']);
    expect(sel('*/vif*')).toEqual(['host-a/vif1.0', 'host-a/a1/vif0']);
    expect(sel('tor0/port1')).toEqual(['tor0/port1']);
    expect(sel('host-a/vif1.')).toEqual([]);
    expect(sel('host-a.*')).toEqual([]);
  });
});
