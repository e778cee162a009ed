/**
 * Checksum offload helpers (src/net/csum.ts): completing a CHECKSUM_PARTIAL
 * frame gives the checksum computed from scratch, which the receive check
 * accepts; malformed frames (every truncation, a bad IHL, fragments, other
 * protocols) are answered false or with a reason, untouched, never thrown on.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ETH_HLEN,
  ETH_P_8021Q,
  ETH_P_IP,
  IPPROTO_UDP,
  IP_HLEN,
  completeL4Checksum,
  computeL4Checksum,
  inetChecksum,
  l4Frame,
  readU16,
  verifyL4Checksum,
  writePartialL4Checksum,
  writeU16,
  writeU32,
} from '../src/net/index.ts';

const TCP = 6;

/** An Ethernet + IPv4 (+ options) + TCP or UDP frame with `data`, its L4 checksum field 0; `pad` zero octets after it. */
function frame(o: { proto: number; data: Uint8Array; optWords?: number; vlan?: boolean; pad?: number; src?: number; dst?: number }): Uint8Array {
  const opt = (o.optWords ?? 0) * 4;
  const l4h = o.proto === TCP ? 20 : 8;
  const eth = ETH_HLEN + (o.vlan ? 4 : 0);
  const total = IP_HLEN + opt + l4h + o.data.length;
  const b = new Uint8Array(eth + total + (o.pad ?? 0));
  b.fill(0xaa, 0, 12);
  if (o.vlan) {
    writeU16(b, 12, ETH_P_8021Q);
    writeU16(b, 14, 7);
    writeU16(b, 16, ETH_P_IP);
  } else writeU16(b, 12, ETH_P_IP);
  const ip = eth;
  b[ip] = 0x40 | ((IP_HLEN + opt) >> 2);
  writeU16(b, ip + 2, total);
  writeU16(b, ip + 6, 0x4000);
  b[ip + 8] = 64;
  b[ip + 9] = o.proto;
  writeU32(b, ip + 12, o.src ?? 0x0a000001);
  writeU32(b, ip + 16, o.dst ?? 0x0a000002);
  for (let i = 0; i < opt; i++) b[ip + IP_HLEN + i] = 1; // NOP options
  writeU16(b, ip + 10, inetChecksum(b, ip, IP_HLEN + opt));
  const l4 = ip + IP_HLEN + opt;
  writeU16(b, l4, 1234);
  writeU16(b, l4 + 2, 80);
  if (o.proto === TCP) b[l4 + 12] = 5 << 4;
  else writeU16(b, l4 + 4, l4h + o.data.length);
  b.set(o.data, l4 + l4h);
  return b;
}

const arbFrame = fc.record({
  proto: fc.constantFrom(TCP, IPPROTO_UDP),
  data: fc.uint8Array({ maxLength: 1500 }),
  optWords: fc.integer({ min: 0, max: 10 }),
  vlan: fc.boolean(),
  pad: fc.integer({ min: 0, max: 40 }),
  src: fc.integer({ min: 0, max: 0xffffffff }),
  dst: fc.integer({ min: 0, max: 0xffffffff }),
});

describe('checksum offload helpers', () => {
  it('completing a partial checksum equals the checksum computed from scratch, and verifies', () => {
    fc.assert(
      fc.property(arbFrame, (o) => {
        const b = frame(o);
        const f = l4Frame(b, 0, b.length);
        expect(typeof f).toBe('object');
        const field = typeof f === 'object' ? f.csum : -1;
        const want = computeL4Checksum(b, 0, b.length);
        expect(want).toBeGreaterThanOrEqual(0);
        expect(writePartialL4Checksum(b, 0, b.length)).toBe(true);
        expect(completeL4Checksum(b, 0, b.length)).toBe(true);
        expect(readU16(b, field)).toBe(want);
        expect(verifyL4Checksum(b, 0, b.length)).toBe(true);
        // One bit flipped in the data or headers past the IP header is caught.
        if (o.data.length > 0) {
          const at = b.length - (o.pad ?? 0) - 1;
          b[at] ^= 1;
          expect(verifyL4Checksum(b, 0, b.length)).toBe(false);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a UDP checksum that computes to 0 is sent as 0xffff; a UDP checksum of 0 is "none" and passes', () => {
    // Search a payload whose checksum is 0 by adjusting two octets: the sum must be 0xffff.
    const b = frame({ proto: IPPROTO_UDP, data: new Uint8Array(2) });
    const l4 = ETH_HLEN + IP_HLEN;
    writePartialL4Checksum(b, 0, b.length);
    const partial = readU16(b, l4 + 6);
    writeU16(b, l4 + 6, 0);
    const s = 0xffff - computeSum(b, l4, 10, partial);
    writeU16(b, l4 + 8, s);
    writeU16(b, l4 + 6, partial);
    expect(completeL4Checksum(b, 0, b.length)).toBe(true);
    expect(readU16(b, l4 + 6)).toBe(0xffff);
    expect(verifyL4Checksum(b, 0, b.length)).toBe(true);
    writeU16(b, l4 + 6, 0);
    expect(verifyL4Checksum(b, 0, b.length)).toBe(true);
  });

  it('every truncation of a frame is answered false, untouched, and never throws', () => {
    fc.assert(
      fc.property(arbFrame, fc.nat(), (o, cut) => {
        const whole = frame({ ...o, pad: 0 });
        const len = cut % whole.length;
        const b = whole.slice();
        writePartialL4Checksum(b, 0, b.length);
        const before = b.slice();
        expect(completeL4Checksum(b, 0, len)).toBe(false);
        expect(b).toEqual(before);
        expect(verifyL4Checksum(b, 0, len)).toBe(false);
        expect(computeL4Checksum(b, 0, len)).toBe(-1);
        expect(l4Frame(b, 0, len)).toBeTypeOf('string');
      }),
      { numRuns: 300 },
    );
  });

  it('a bad IHL, a bad total length, fragments, other protocols and non-IPv4 frames are refused untouched, with their reason', () => {
    const cases: [string, (b: Uint8Array) => void][] = [
      ['bad-ihl', (b) => (b[ETH_HLEN] = 0x44)],
      ['not-ipv4', (b) => (b[ETH_HLEN] = 0x65)],
      ['bad-length', (b) => writeU16(b, ETH_HLEN + 2, 19)],
      ['truncated', (b) => writeU16(b, ETH_HLEN + 2, b.length)],
      ['fragment', (b) => writeU16(b, ETH_HLEN + 6, 0x2000)],
      ['fragment', (b) => writeU16(b, ETH_HLEN + 6, 0x0010)],
      ['not-tcp-udp', (b) => (b[ETH_HLEN + 9] = 1)],
      ['not-ipv4', (b) => writeU16(b, 12, 0x86dd)],
      ['truncated', (b) => writeU16(b, ETH_HLEN + 2, IP_HLEN + 7)],
    ];
    for (const proto of [TCP, IPPROTO_UDP]) {
      for (const [why, spoil] of cases) {
        const b = frame({ proto, data: new Uint8Array(40).fill(3) });
        spoil(b);
        const before = b.slice();
        expect(l4Frame(b, 0, b.length), `${why} (proto ${proto})`).toBe(why);
        expect(completeL4Checksum(b, 0, b.length)).toBe(false);
        expect(b).toEqual(before);
      }
    }
    // A TCP header of 19 octets is truncated; an IHL past the frame's end too.
    const t = frame({ proto: TCP, data: new Uint8Array(0) });
    writeU16(t, ETH_HLEN + 2, IP_HLEN + 19);
    expect(l4Frame(t, 0, t.length)).toBe('truncated');
    const u = frame({ proto: IPPROTO_UDP, data: new Uint8Array(0) });
    u[ETH_HLEN] = 0x4f;
    expect(l4Frame(u, 0, u.length)).toBe('truncated');
  });

  it('arbitrary bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: -5, max: 210 }), fc.integer({ min: -5, max: 210 }), (b, off, len) => {
        completeL4Checksum(b, off, len);
        verifyL4Checksum(b, off, len);
        computeL4Checksum(b, off, len);
        writePartialL4Checksum(b, off, len);
      }),
      { numRuns: 500 },
    );
  });
});

/** One's-complement sum of [off, off+len) plus `initial`, folded. */
function computeSum(b: Uint8Array, off: number, len: number, initial: number): number {
  let s = initial;
  for (let i = 0; i < len; i += 2) s += (b[off + i] << 8) | (b[off + i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
