/**
 * The xs_wire codec (xs_wire.h): messages survive any chunking of the byte
 * stream, and no byte sequence from a peer makes the decoder throw or hand
 * out a payload over XENSTORE_PAYLOAD_MAX.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { XENSTORE_PAYLOAD_MAX, XS_HEADER_BYTES, XsType, XsWireDecoder, encodeXsWire, nulTerminated, payloadStrings } from '../src/index.ts';

const message = fc.record({
  type: fc.integer({ min: 0, max: 22 }),
  reqId: fc.nat(),
  txId: fc.nat(),
  payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
});

describe('xs_wire', () => {
  it('lays the header out as xsd_sockmsg: type, req_id, tx_id, len, then the payload', () => {
    const b = encodeXsWire({ type: XsType.READ, reqId: 0x01020304, txId: 9, payload: '/local\0' });
    expect(b.length).toBe(XS_HEADER_BYTES + 7);
    expect([b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12)]).toEqual([2, 0x01020304, 9, 7]);
    expect(b.subarray(16).toString()).toBe('/local\0');
  });

  it('splits and joins nul-separated strings as the daemon and the tools do', () => {
    expect(payloadStrings(Buffer.from('a\0b\0'))).toEqual(['a', 'b']);
    expect(payloadStrings(Buffer.from('/path\0value'))).toEqual(['/path', 'value']);
    expect(nulTerminated(['n0', 'r1'])).toBe('n0\0r1\0');
  });

  it('any message sequence, cut into any chunks, decodes to the same messages (property)', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }), (msgs, cuts) => {
        const stream = Buffer.concat(msgs.map((m) => encodeXsWire(m)));
        const d = new XsWireDecoder();
        const got = [];
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const n = cuts[i % cuts.length];
          got.push(...d.push(stream.subarray(at, at + n)));
          at += n;
        }
        expect(d.error).toBe('');
        expect(got).toEqual(msgs);
      }),
      { numRuns: 500 },
    );
  });

  it('whatever bytes a peer sends, the decoder never throws and never yields a payload over the maximum (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 30 }), (chunks) => {
        const d = new XsWireDecoder();
        for (const c of chunks) for (const m of d.push(Buffer.from(c))) expect(m.payload.length).toBeLessThanOrEqual(XENSTORE_PAYLOAD_MAX);
      }),
      { numRuns: 1000 },
    );
  });

  it('a header announcing more than XENSTORE_PAYLOAD_MAX stops the stream with a reason', () => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(XENSTORE_PAYLOAD_MAX + 1, 12);
    const d = new XsWireDecoder();
    expect(d.push(h)).toEqual([]);
    expect(d.error).toMatch(/4097 bytes/);
    expect(d.push(encodeXsWire({ type: 2, reqId: 1, txId: 0, payload: 'x' }))).toEqual([]);
  });
});
