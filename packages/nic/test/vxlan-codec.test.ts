/**
 * VXLAN's header (RFC 7348 section 5) as xsim's tunnels write and parse it:
 * one test per kind of malformed datagram, each refused under its own
 * counter's name, and a property over arbitrary datagrams (peer bytes): the
 * parser never throws and accepts exactly the well-formed ones.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VNI_MAX, VXLAN_HEADER, VXLAN_PORT, formatUdpAddr, parseUdpAddr, parseVxlan, writeVxlanHeader } from '../src/index.ts';

/** A well-formed datagram: the header for `vni` and `frame`. */
function datagram(vni: number, frame: Uint8Array): Uint8Array {
  const d = new Uint8Array(VXLAN_HEADER + frame.length);
  writeVxlanHeader(d, 0, vni);
  d.set(frame, VXLAN_HEADER);
  return d;
}

const FRAME = Uint8Array.from({ length: 60 }, (_, i) => i + 1);

describe('VXLAN header', () => {
  it('is written as RFC 7348 lays it out: flags 0x08, 24 reserved bits, the VNI in 24 bits, 8 reserved bits', () => {
    const d = new Uint8Array(8).fill(0xee);
    writeVxlanHeader(d, 0, 0x123456);
    expect([...d]).toEqual([0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
    writeVxlanHeader(d, 0, VNI_MAX);
    expect([...d.subarray(4)]).toEqual([0xff, 0xff, 0xff, 0]);
    expect(() => writeVxlanHeader(d, 0, VNI_MAX + 1)).toThrow(/VNI/);
    expect(() => writeVxlanHeader(d, 0, -1)).toThrow(/VNI/);
  });

  it('a well-formed datagram parses to its VNI and inner frame', () => {
    const p = parseVxlan(datagram(42, FRAME));
    expect(p).toEqual({ ok: true, vni: 42, frameOff: 8, frameLen: 60 });
  });

  it('an empty datagram is short', () => {
    expect(parseVxlan(new Uint8Array(0))).toEqual({ ok: false, why: 'vxlanRxShort' });
  });

  it('a datagram of 7 octets (less than the header) is short', () => {
    expect(parseVxlan(datagram(1, FRAME).subarray(0, 7))).toEqual({ ok: false, why: 'vxlanRxShort' });
  });

  it('a length past the buffer is short, never read beyond it', () => {
    expect(parseVxlan(datagram(1, FRAME), 200)).toEqual({ ok: false, why: 'vxlanRxShort' });
  });

  it('the I flag clear (flags 0x00) is a bad header', () => {
    const d = datagram(7, FRAME);
    d[0] = 0;
    expect(parseVxlan(d)).toEqual({ ok: false, why: 'vxlanRxBadHeader' });
  });

  it('another flag beside I (0x88: an extension we do not speak, e.g. GBP) is a bad header', () => {
    const d = datagram(7, FRAME);
    d[0] = 0x88;
    expect(parseVxlan(d)).toEqual({ ok: false, why: 'vxlanRxBadHeader' });
  });

  it('a bit set in the 24 reserved bits after the flags (GPE next-protocol, GBP group) is a bad header', () => {
    for (const i of [1, 2, 3]) {
      const d = datagram(7, FRAME);
      d[i] = 0x01;
      expect(parseVxlan(d)).toEqual({ ok: false, why: 'vxlanRxBadHeader' });
    }
  });

  it('the reserved octet after the VNI set is a bad header (Linux drops it as unprocessed too)', () => {
    const d = datagram(7, FRAME);
    d[7] = 0x80;
    expect(parseVxlan(d)).toEqual({ ok: false, why: 'vxlanRxBadHeader' });
  });

  it('a header with no frame, or less than an Ethernet header behind it, is a runt', () => {
    expect(parseVxlan(datagram(7, new Uint8Array(0)))).toEqual({ ok: false, why: 'vxlanRxRunt' });
    expect(parseVxlan(datagram(7, new Uint8Array(13)))).toEqual({ ok: false, why: 'vxlanRxRunt' });
    expect(parseVxlan(datagram(7, new Uint8Array(14)))).toMatchObject({ ok: true, frameLen: 14 });
  });

  it('property: arbitrary datagrams never throw, and are accepted exactly when well-formed', () => {
    const wellFormed = (d: Uint8Array) => d.length >= 22 && d[0] === 0x08 && d[1] === 0 && d[2] === 0 && d[3] === 0 && d[7] === 0;
    // Half the cases start from a valid header, so the accepting branch is exercised as often as the refusing ones.
    const arb = fc.oneof(
      fc.uint8Array({ maxLength: 128 }),
      fc
        .tuple(fc.integer({ min: 0, max: VNI_MAX }), fc.uint8Array({ maxLength: 100 }), fc.nat(7), fc.integer({ min: 0, max: 255 }), fc.boolean())
        .map(([vni, frame, at, v, flip]) => {
          const d = datagram(vni, frame);
          if (flip) d[at] = v;
          return d;
        }),
    );
    fc.assert(
      fc.property(arb, (d) => {
        const p = parseVxlan(d);
        expect(p.ok).toBe(wellFormed(d));
        if (p.ok) {
          expect(p.vni).toBe((d[4] << 16) | (d[5] << 8) | d[6]);
          expect(p.frameOff + p.frameLen).toBe(d.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('tunnel addresses', () => {
  it('ADDR:PORT, and ADDR alone for 4789', () => {
    expect(parseUdpAddr('10.1.2.3:14789')).toEqual({ addr: '10.1.2.3', port: 14789 });
    expect(parseUdpAddr('10.1.2.3')).toEqual({ addr: '10.1.2.3', port: VXLAN_PORT });
    expect(formatUdpAddr({ addr: '127.0.0.1', port: 4789 })).toBe('127.0.0.1:4789');
  });

  it('refuses what is not one, saying why', () => {
    expect(parseUdpAddr('10.1.2:4789')).toMatch(/not an IPv4 address/);
    expect(parseUdpAddr('10.01.2.3:4789')).toMatch(/leading zeros/);
    expect(parseUdpAddr('10.1.2.3:0')).toMatch(/port "0"/);
    expect(parseUdpAddr('10.1.2.3:65536')).toMatch(/port "65536"/);
    expect(parseUdpAddr('10.1.2.3:04789')).toMatch(/leading zeros/);
    expect(parseUdpAddr('host:4789')).toMatch(/not an IPv4 address/);
    expect(parseUdpAddr('[::1]:4789')).toMatch(/not ADDR:PORT|not an IPv4/);
  });
});
