/**
 * The per-thread tracer in process: off it records nothing; on, it coalesces a
 * domain's busy turns into spans, keeps at most its limit (counting the rest),
 * and recognises a sampled frame of a UDP stream by its payload (and nothing
 * else: one test per frame it must pass over).
 */
import { describe, expect, it } from 'vitest';
import { EV_HOP, EV_SPAN, Tracer, VirtualClock, streamFrameId } from '@xsim/hypervisor';

/** An Ethernet/IPv4/UDP frame whose payload is seq, stream id (big-endian) and `extra` more octets. */
function udpFrame(seq: number, stream: number, extra = 4): Uint8Array {
  const payload = 8 + extra;
  const f = new Uint8Array(14 + 20 + 8 + payload);
  const dv = new DataView(f.buffer);
  dv.setUint16(12, 0x0800);
  f[14] = 0x45;
  f[14 + 9] = 17;
  dv.setUint16(14 + 20 + 4, 8 + payload);
  dv.setUint32(42, seq);
  dv.setUint32(46, stream);
  return f;
}

describe('tracer', () => {
  const clock = new VirtualClock();
  const started = () => {
    const t = new Tracer();
    t.start({ clock, limit: 4, sample: 8 });
    return t;
  };

  it('records nothing until started, and stops', () => {
    const t = new Tracer();
    expect(t.on).toBe(false);
    t.start({ clock });
    t.instant('x');
    expect(t.stop().events).toHaveLength(1);
    expect(t.on).toBe(false);
  });

  it("joins a domain's busy turns a short gap apart into one run span", () => {
    const t = started();
    const at = (ms: number) => clock.advanceTo(ms);
    at(1);
    const s = t.now();
    at(1.005);
    t.busy(7, s); // 1000..1005 us after the start
    const s2 = t.now();
    at(1.01);
    t.busy(7, s2); // 10 us later: joined
    const s3 = (at(2), t.now());
    at(2.001);
    t.busy(7, s3); // a gap of 990 us: a new span
    const spans = t.drain().events.filter((e) => e[0] === EV_SPAN);
    // Microseconds since the start (the virtual clock read 0 then).
    expect(spans.map((e) => [Math.round(e[1]), Math.round(e[2])])).toEqual([
      [1000, 10],
      [2000, 1],
    ]);
  });

  it('keeps at most its limit and counts the rest', () => {
    const t = started();
    for (let i = 0; i < 10; i++) t.instant(`e${i}`);
    const b = t.drain();
    expect([b.events.length, b.dropped]).toEqual([4, 6]);
  });

  it('records the hops of sampled stream frames only', () => {
    const t = started();
    t.hop('host-a/vif1.0', udpFrame(16, 3), 0, 58, 1);
    t.hop('host-a/vif1.0', udpFrame(17, 3), 0, 58, 1);
    const hops = t.drain().events.filter((e) => e[0] === EV_HOP);
    expect(hops.map((e) => [e[4], e[6]])).toEqual([['host-a/vif1.0', '3/16']]);
  });
});

describe('stream frame ids', () => {
  it('reads seq and stream from a UDP payload', () => expect(streamFrameId(udpFrame(64, 9), 0, 58, 64)).toBe('9/64'));
  it('passes over an unsampled frame', () => expect(streamFrameId(udpFrame(65, 9), 0, 58, 64)).toBeNull());
  it('passes over a credit (an 8-octet payload)', () => expect(streamFrameId(udpFrame(64, 9, 0), 0, 50, 1)).toBeNull());
  it('passes over a frame that is not IPv4', () => {
    const f = udpFrame(0, 1);
    f[12] = 0x86;
    f[13] = 0xdd;
    expect(streamFrameId(f, 0, f.length, 1)).toBeNull();
  });
  it('passes over a protocol that is not UDP', () => {
    const f = udpFrame(0, 1);
    f[14 + 9] = 6;
    expect(streamFrameId(f, 0, f.length, 1)).toBeNull();
  });
  it('passes over a frame shorter than its headers', () => expect(streamFrameId(udpFrame(0, 1), 0, 40, 1)).toBeNull());
  it('passes over a bad IP header length', () => {
    const f = udpFrame(0, 1);
    f[14] = 0x41;
    expect(streamFrameId(f, 0, f.length, 1)).toBeNull();
  });
  it('passes over a UDP length that claims more than the frame holds', () => {
    const f = udpFrame(0, 1);
    new DataView(f.buffer).setUint16(14 + 20 + 4, 8);
    expect(streamFrameId(f, 0, f.length, 1)).toBeNull();
  });
});
