/**
 * TCP's sequence arithmetic modulo 2^32 and its header (RFC 9293 §3.1,
 * §3.4): written and read back, the checksum over the IPv4 pseudo-header,
 * and one test per malformed field, each a reason, never a throw.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TCP_ACK, TCP_HLEN, TCP_SYN, emptySegment, parseTcp, tcpChecksum, tcpPseudoSum, writeTcp } from '../src/tcp/segment.ts';
import { seqAdd, seqDiff, seqGeq, seqGt, seqInRange, seqLeq, seqLt, seqMax } from '../src/tcp/seq.ts';
import { onesSum, readU16, writeU16 } from '../src/net/index.ts';

const SRC = 0x0a00000a;
const DST = 0x0a00000b;

describe('sequence numbers modulo 2^32', () => {
  it('orders across the wrap', () => {
    expect(seqLt(0xffffffff, 0)).toBe(true);
    expect(seqLt(0, 0xffffffff)).toBe(false);
    expect(seqGt(5, 0xfffffff0)).toBe(true);
    expect(seqLeq(7, 7)).toBe(true);
    expect(seqGeq(7, 7)).toBe(true);
    expect(seqLt(7, 7)).toBe(false);
    expect(seqDiff(3, 0xfffffffe)).toBe(5);
    expect(seqDiff(0xfffffffe, 3)).toBe(-5);
    expect(seqAdd(0xffffffff, 2)).toBe(1);
    expect(seqMax(0xfffffff0, 4)).toBe(4);
    expect(seqInRange(1, 0xfffffff0, 0x10)).toBe(true);
    expect(seqInRange(0x10, 0xfffffff0, 0x10)).toBe(false);
    expect(seqInRange(5, 5, 5)).toBe(false);
  });

  it('seqDiff(seqAdd(a, n), a) = n for |n| < 2^31, and the orders agree with it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: -(2 ** 31) + 1, max: 2 ** 31 - 1 }), (a, n) => {
        const b = seqAdd(a, n);
        expect(b).toBeGreaterThanOrEqual(0);
        expect(b).toBeLessThanOrEqual(0xffffffff);
        expect(seqDiff(b, a)).toBe(n);
        expect(seqLt(a, b)).toBe(n > 0);
        expect(seqLeq(a, b)).toBe(n >= 0);
        expect(seqGt(a, b)).toBe(n < 0);
      }),
      { numRuns: 500 },
    );
  });
});

/** A segment written with these fields and `data`. */
function segment(o: { flags?: number; mss?: number; data?: number[] } = {}): Uint8Array {
  const data = o.data ?? [1, 2, 3];
  const hlen = o.mss ? 24 : 20;
  const b = new Uint8Array(hlen + data.length);
  b.set(data, hlen);
  const len = writeTcp(
    b,
    0,
    { srcPort: 1234, dstPort: 80, seq: 0xfffffffe, ack: 77, flags: o.flags ?? TCP_ACK, window: 4096, mss: o.mss ?? 0 },
    data.length,
    SRC,
    DST,
  );
  expect(len).toBe(b.length);
  return b;
}

/** Put the checksum right again after a field was broken on purpose. */
function fixChecksum(b: Uint8Array): void {
  writeU16(b, 16, 0);
  writeU16(b, 16, tcpChecksum(b, 0, b.length, SRC, DST));
}

describe('TCP header', () => {
  it('writes and reads back every field, the MSS option and the payload', () => {
    const b = segment({ flags: TCP_SYN | TCP_ACK, mss: 1460, data: [9, 8] });
    const s = emptySegment();
    expect(parseTcp(b, 0, b.length, SRC, DST, s)).toBeNull();
    expect(s).toMatchObject({
      srcPort: 1234,
      dstPort: 80,
      seq: 0xfffffffe,
      ack: 77,
      flags: TCP_SYN | TCP_ACK,
      window: 4096,
      mss: 1460,
      dataOff: 24,
      dataLen: 2,
    });
    expect([...b.subarray(s.dataOff, s.dataOff + s.dataLen)]).toEqual([9, 8]);
    expect(b[12] >>> 4).toBe(6);
  });

  it('reads at an offset inside a frame, the header alone (no payload) included', () => {
    const seg = segment({ data: [] });
    const frame = new Uint8Array(34 + seg.length + 6); // Ethernet padding after the segment
    frame.set(seg, 34);
    const s = emptySegment();
    expect(parseTcp(frame, 34, seg.length, SRC, DST, s)).toBeNull();
    expect(s.dataLen).toBe(0);
    expect(s.mss).toBe(0);
  });

  it('skips no-ops and unknown options by their length, and stops at end-of-options', () => {
    const b = new Uint8Array(36);
    b[12] = 9 << 4;
    b.set([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0xff, 0xff, 0xff], 20); // NOP NOP timestamps(10) END, then junk after END
    fixChecksum(b);
    const s = emptySegment();
    expect(parseTcp(b, 0, 36, SRC, DST, s)).toBeNull();
    expect(s.dataLen).toBe(0);
  });

  it('a checksum computed over other addresses (the pseudo-header) is a bad checksum', () => {
    const b = segment();
    expect(parseTcp(b, 0, b.length, SRC, DST + 1, emptySegment())).toBe('badChecksum');
  });

  it('a flipped payload bit is a bad checksum', () => {
    const b = segment();
    b[21] ^= 0x40;
    expect(parseTcp(b, 0, b.length, SRC, DST, emptySegment())).toBe('badChecksum');
  });

  it('a segment shorter than 20 octets is short', () => {
    const b = segment();
    expect(parseTcp(b, 0, TCP_HLEN - 1, SRC, DST, emptySegment())).toBe('short');
  });

  it('a length past the end of the buffer is short', () => {
    const b = segment();
    expect(parseTcp(b, 0, b.length + 1, SRC, DST, emptySegment())).toBe('short');
  });

  it('a data offset under 5 words is a bad offset', () => {
    const b = segment();
    b[12] = 4 << 4;
    fixChecksum(b);
    expect(parseTcp(b, 0, b.length, SRC, DST, emptySegment())).toBe('badOffset');
  });

  it('a data offset beyond the segment is a bad offset', () => {
    const b = segment({ data: [1, 2, 3] });
    b[12] = 6 << 4; // 24 octets of header in a 23-octet segment
    fixChecksum(b);
    expect(parseTcp(b, 0, b.length, SRC, DST, emptySegment())).toBe('badOffset');
  });

  it('an option length under 2 is a bad option', () => {
    const b = segment({ mss: 1460 });
    b[21] = 1;
    fixChecksum(b);
    expect(parseTcp(b, 0, b.length, SRC, DST, emptySegment())).toBe('badOption');
  });

  it('an option running past the header is a bad option', () => {
    const b = segment({ mss: 1460 });
    b[20] = 30;
    b[21] = 6;
    fixChecksum(b);
    expect(parseTcp(b, 0, b.length, SRC, DST, emptySegment())).toBe('badOption');
  });

  it('an option kind with no room for its length is a bad option', () => {
    const b = segment({ mss: 1460 });
    b.set([1, 1, 1, 30], 20);
    fixChecksum(b);
    expect(parseTcp(b, 0, b.length, SRC, DST, emptySegment())).toBe('badOption');
  });

  it('an MSS option not 4 octets long is a bad option', () => {
    const b = new Uint8Array(28);
    b[12] = 7 << 4;
    b.set([2, 3, 5, 0, 0, 0, 0, 0], 20);
    fixChecksum(b);
    expect(parseTcp(b, 0, 28, SRC, DST, emptySegment())).toBe('badOption');
  });

  it('arbitrary bytes never throw and either parse or name a reason', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (bytes, fix) => {
        if (fix && bytes.length >= 20) fixChecksum(bytes);
        const r = parseTcp(bytes, 0, bytes.length, SRC, DST, emptySegment());
        expect([null, 'short', 'badOffset', 'badOption', 'badChecksum']).toContain(r);
      }),
      { numRuns: 2000 },
    );
  });
});

/** What an offload engine does with a CHECKSUM_PARTIAL segment: sum from the TCP header on (the field included), fold, complement, store. */
function complete(b: Uint8Array, off: number, len: number): void {
  writeU16(b, off + 16, ~onesSum(b, off, len) & 0xffff);
}

describe('checksum offload', () => {
  it('tcpPseudoSum is the folded, uncomplemented sum of the pseudo-header', () => {
    // 0x0a00 + 0x000a + 0x0a00 + 0x000b + 6 + 23
    expect(tcpPseudoSum(SRC, DST, 23)).toBe(0x0a00 + 0x000a + 0x0a00 + 0x000b + 6 + 23);
    expect(tcpPseudoSum(0xffffffff, 0xffffffff, 0xffff)).toBeLessThanOrEqual(0xffff);
  });

  it('a partial checksum completed over the TCP header and data equals tcpChecksum, whatever the segment (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 7 }),
        (src, dst, data, seq, pad) => {
          const b = new Uint8Array(pad + 20 + data.length);
          b.set(data, pad + 20);
          const len = writeTcp(b, pad, { srcPort: 1, dstPort: 2, seq, ack: 3, flags: TCP_ACK, window: 100, mss: 0 }, data.length, src, dst, true);
          expect(readU16(b, pad + 16)).toBe(tcpPseudoSum(src, dst, len));
          complete(b, pad, len);
          const field = readU16(b, pad + 16);
          writeU16(b, pad + 16, 0);
          expect(field).toBe(tcpChecksum(b, pad, len, src, dst));
          writeU16(b, pad + 16, field);
          expect(parseTcp(b, pad, len, src, dst, emptySegment())).toBeNull();
        },
      ),
      { numRuns: 500 },
    );
  });

  it('csumValidated skips the checksum, and only it: a wrong checksum parses, a bad offset still does not', () => {
    const b = segment();
    b[21] ^= 0x40;
    expect(parseTcp(b, 0, b.length, SRC, DST, emptySegment(), true)).toBeNull();
    b[12] = 4 << 4;
    expect(parseTcp(b, 0, b.length, SRC, DST, emptySegment(), true)).toBe('badOffset');
  });
});
