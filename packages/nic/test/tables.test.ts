import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BufferTable,
  FAULT_BUFFER_OWNER,
  FAULT_BUFFER_RANGE,
  FilterTable,
  VI_RING_BYTES,
  VI_RING_PAGES,
  DOORBELL_BYTES,
  EVQ_OFFSET,
  RXQ_OFFSET,
  TXQ_OFFSET,
} from '../src/index.ts';

describe('VI memory layout', () => {
  it("lays a VI's rings out in whole pages of the driver's memory, and its doorbell in 32 bytes", () => {
    expect(TXQ_OFFSET).toBe(0);
    expect(RXQ_OFFSET).toBe(512 * 16);
    expect(EVQ_OFFSET).toBe((512 + 1024) * 16);
    expect(VI_RING_BYTES).toBe((512 + 1024) * 16 + 2048 * 16);
    expect(VI_RING_PAGES).toBe(14);
    expect(DOORBELL_BYTES).toBe(32);
  });
});

describe('buffer table', () => {
  it("resolves only a VI's own, contiguous pages", () => {
    const t = new BufferTable(64);
    const a = t.alloc(1, 5, [10, 11, 12]);
    const b = t.alloc(2, 6, [40, 99]);
    expect(t.resolve(1, a, 100, 50)).toBe(10 * 4096 + 100);
    expect(t.lastDomid).toBe(5);
    expect(t.resolve(1, a, 4000, 5000)).toBe(10 * 4096 + 4000); // spans 3 contiguous pages
    expect(t.resolve(2, a, 0, 10)).toBe(-FAULT_BUFFER_OWNER); // another VI's buffer
    expect(t.resolve(1, a + 2, 0, 5000)).toBe(-FAULT_BUFFER_OWNER); // runs into VI 2's entry
    expect(t.resolve(2, b, 0, 5000)).toBe(-FAULT_BUFFER_RANGE); // frames 40, 99 are not contiguous
    expect(t.resolve(1, 1 << 20, 0, 1)).toBe(-FAULT_BUFFER_OWNER);
    // No VI (-1) owns nothing, not even a free entry.
    expect(t.resolve(-1, 60, 0, 1)).toBe(-FAULT_BUFFER_OWNER);
    t.free(1, a, 3);
    expect(t.resolve(1, a, 0, 1)).toBe(-FAULT_BUFFER_OWNER);
    expect(() => t.free(1, b, 2)).toThrow(/not owned by VI 1/);
  });
});

function frame(dst: number, ip?: { proto: number; addr: number; port: number }): Uint8Array {
  const f = new Uint8Array(64);
  for (let i = 0; i < 6; i++) f[i] = Math.floor(dst / 2 ** (8 * (5 - i))) % 256;
  f[12] = 8;
  if (ip) {
    f[14] = 0x45;
    f[23] = ip.proto;
    new DataView(f.buffer).setUint32(30, ip.addr);
    new DataView(f.buffer).setUint16(36, ip.port);
  }
  return f;
}

describe('filter table', () => {
  it('steers with 10,000 MAC and IPv4 filters, IPv4 first, misses to -1', () => {
    const t = new FilterTable();
    for (let i = 0; i < 5000; i++) t.insert(1 + (i % 63), { kind: 'mac', mac: 0x00163e000000 + i });
    for (let i = 0; i < 5000; i++) t.insert(1 + (i % 63), { kind: 'ipv4', proto: 17, addr: 0x0a000000 + i, port: 5001 });
    expect(t.size).toBe(10_000);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4999 }), (i) => {
        expect(t.lookup(frame(0x00163e000000 + i), 0, 64)).toBe(1 + (i % 63));
        // IPv4 filter wins over the MAC filter of the same frame.
        expect(t.lookup(frame(0x00163e000000 + ((i + 1) % 5000), { proto: 17, addr: 0x0a000000 + i, port: 5001 }), 0, 64)).toBe(1 + (i % 63));
      }),
    );
    expect(t.lookup(frame(0x00163e00ffff), 0, 64)).toBe(-1);
    expect(t.lookup(frame(0x00163e00ffff, { proto: 6, addr: 0x0a000001, port: 5001 }), 0, 64)).toBe(-1);
    expect(() => t.insert(9, { kind: 'mac', mac: 0x00163e000000 })).toThrow(/exists/);
    expect(t.removeVi(1)).toBe(160);
    expect(t.lookup(frame(0x00163e000000), 0, 64)).toBe(-1);
  });
});

describe('filter match validation (MCDI input from a backend)', () => {
  it('refuses malformed matches by name and inserts nothing', () => {
    const t = new FilterTable();
    const bad: [unknown, RegExp][] = [
      [null, /must be an object/],
      [{ kind: 'ip6' }, /kind must be "mac" or "ipv4"/],
      [{ kind: 'mac', mac: -1 }, /48-bit/],
      [{ kind: 'mac', mac: 2 ** 48 }, /48-bit/],
      [{ kind: 'mac', mac: 0x00163e000001, vlan: 4096 }, /vlan/],
      [{ kind: 'ipv4', proto: 17, addr: 0x0a000001 }, /port/],
      [{ kind: 'ipv4', proto: 300, addr: 1, port: 1 }, /proto/],
      [{ kind: 'ipv4', proto: 17, addr: 1.5, port: 1 }, /addr/],
    ];
    for (const [m, re] of bad) expect(() => t.insert(1, m as never)).toThrow(re);
    expect(t.size).toBe(0);
  });
});
