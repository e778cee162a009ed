/**
 * ICMP in the guest stack (RFC 792, RFC 1122 §3.2.2): an echo request is
 * answered with its identifier, sequence and data; an echo reply reaches
 * whoever pings with its identifier; a UDP datagram nobody listens for is
 * answered port unreachable and an unknown protocol protocol unreachable,
 * both quoting the offending header and rate-limited; every ICMP message
 * not taken is counted by reason; arbitrary bytes never throw.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GuestStack,
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_ECHO_REPLY,
  ICMP_PORT_UNREACH,
  ICMP_PROT_UNREACH,
  IcmpRateLimit,
  IPPROTO_ICMP,
  onesSum,
  parseIp,
  parseMac,
  writeIcmpEcho,
  writeIpHeader,
  writeIpUdp,
  writeMac,
  writeU16,
  type StackTransport,
} from '../src/net/index.ts';

const ME = { mac: parseMac('00:16:3e:00:00:0b'), ip: parseIp('10.0.0.11') };
const PEER = { mac: parseMac('00:16:3e:00:00:0a'), ip: parseIp('10.0.0.10') };

/** A stack whose sent frames are kept, on a clock the test moves. */
function stack(mtu = 1500) {
  const out: Uint8Array[] = [];
  let cur = new Uint8Array(0);
  const t: StackTransport = {
    reserve: (len) => {
      cur = new Uint8Array(len);
      return { buf: cur, off: 0 };
    },
    commit: (len) => void out.push(cur.slice(0, len)),
  };
  const clock = { t: 1000 };
  const s = new GuestStack({ ...ME, transport: t, mtu, now: () => clock.t });
  return { s, out, clock };
}

/** An IPv4 frame from PEER to us carrying `payload` of protocol `proto`. */
function ipFrame(proto: number, payload: Uint8Array, o: { flagsFrag?: number } = {}): Uint8Array {
  const f = new Uint8Array(Math.max(60, 34 + payload.length));
  writeMac(f, 0, ME.mac);
  writeMac(f, 6, PEER.mac);
  writeU16(f, 12, 0x0800);
  writeIpHeader(f, 14, PEER.ip, ME.ip, 1, proto, payload.length);
  if (o.flagsFrag !== undefined) {
    writeU16(f, 20, o.flagsFrag);
    writeU16(f, 24, 0);
    writeU16(f, 24, ~onesSum(f, 14, 20) & 0xffff);
  }
  f.set(payload, 34);
  return f;
}

function echo(type: number, id: number, seq: number, data: number[]): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m.set(data, 8);
  writeIcmpEcho(m, 0, type, id, seq, data.length);
  return m;
}

const udpTo = (port: number, data = 4) => {
  const f = new Uint8Array(Math.max(60, 42 + data));
  writeMac(f, 0, ME.mac);
  writeMac(f, 6, PEER.mac);
  writeU16(f, 12, 0x0800);
  writeIpUdp(f, 14, PEER.ip, ME.ip, 9, 5555, port, data);
  return f;
};

describe('ICMP in the guest stack', () => {
  it('answers an echo request with the same identifier, sequence and data, checksums valid, to the sender', () => {
    const { s, out } = stack();
    const req = ipFrame(IPPROTO_ICMP, echo(ICMP_ECHO, 0x1234, 7, [1, 2, 3, 4, 5]));
    s.receive(req, 0, req.length);
    expect(out).toHaveLength(1);
    const r = out[0];
    expect(Array.from(r.subarray(0, 6))).toEqual(Array.from(req.subarray(6, 12))); // to the request's source MAC
    expect(r[23]).toBe(IPPROTO_ICMP);
    expect(onesSum(r, 14, 20)).toBe(0xffff);
    expect(Array.from(r.subarray(30, 34))).toEqual(Array.from(req.subarray(26, 30))); // to its source IP
    expect(r[34]).toBe(ICMP_ECHO_REPLY);
    expect(onesSum(r, 34, 8 + 5)).toBe(0xffff);
    expect([(r[38] << 8) | r[39], (r[40] << 8) | r[41]]).toEqual([0x1234, 7]);
    expect(Array.from(r.subarray(42, 47))).toEqual([1, 2, 3, 4, 5]);
    expect(s.counters).toMatchObject({ rxIcmpEcho: 1, txIcmp: 1 });
  });

  it('hands an echo reply to whoever pings with its identifier; one for nobody is counted', () => {
    const { s } = stack();
    const got: [number, number, number[]][] = [];
    s.bindEcho(42, (buf, off, len, seq, src) => got.push([seq, src, Array.from(buf.subarray(off, off + len))]));
    const rep = ipFrame(IPPROTO_ICMP, echo(ICMP_ECHO_REPLY, 42, 3, [9, 8]));
    s.receive(rep, 0, rep.length);
    expect(got).toEqual([[3, PEER.ip, [9, 8]]]);
    const other = ipFrame(IPPROTO_ICMP, echo(ICMP_ECHO_REPLY, 43, 3, [9, 8]));
    s.receive(other, 0, other.length);
    expect(s.counters).toMatchObject({ rxIcmpEchoReply: 1, rxIcmpUnmatched: 1 });
    expect(() => s.bindEcho(42, () => {})).toThrow(/identifier 42 already in use/);
  });

  it('sends an echo request that a second stack answers', () => {
    const a = stack();
    const b = stack();
    a.s.arp.learn(ME.ip, ME.mac, 0); // a pings b's address (both stacks share it here: only the bytes matter)
    expect(a.s.sendEcho(ME.ip, 5, 1, 16, (buf, off) => buf.fill(0xab, off, off + 16))).toBe(true);
    const req = a.out[0];
    // Seen from b, it comes from a peer: rewrite the source so b answers it.
    writeMac(req, 6, PEER.mac);
    b.s.receive(req, 0, req.length);
    expect(b.out).toHaveLength(1);
    expect(b.out[0][34]).toBe(ICMP_ECHO_REPLY);
    expect(Array.from(b.out[0].subarray(42, 58))).toEqual(new Array(16).fill(0xab));
  });

  it('drops a message with a wrong checksum or shorter than its header, counted', () => {
    const { s, out } = stack();
    const bad = echo(ICMP_ECHO, 1, 1, [1, 2]);
    bad[9] ^= 0xff;
    const f = ipFrame(IPPROTO_ICMP, bad);
    s.receive(f, 0, f.length);
    const short = ipFrame(IPPROTO_ICMP, new Uint8Array(4));
    s.receive(short, 0, short.length);
    expect(s.counters.rxBadIcmp).toBe(2);
    expect(out).toHaveLength(0);
  });

  it('answers a UDP datagram for a closed port with port unreachable, quoting its IP header and 8 octets', () => {
    const { s, out } = stack();
    const f = udpTo(9999);
    s.receive(f, 0, f.length);
    expect(s.counters.rxNoSocket).toBe(1);
    expect(out).toHaveLength(1);
    const e = out[0];
    expect([e[34], e[35]]).toEqual([ICMP_DEST_UNREACH, ICMP_PORT_UNREACH]);
    const msgLen = 8 + 20 + 8;
    expect(onesSum(e, 34, msgLen)).toBe(0xffff);
    expect(Array.from(e.subarray(42, 42 + 28))).toEqual(Array.from(f.subarray(14, 42)));
  });

  it('answers an unknown protocol with protocol unreachable; not a later fragment', () => {
    const { s, out } = stack();
    const f = ipFrame(99, new Uint8Array(12));
    s.receive(f, 0, f.length);
    expect([out[0][34], out[0][35]]).toEqual([ICMP_DEST_UNREACH, ICMP_PROT_UNREACH]);
    const frag = ipFrame(99, new Uint8Array(12), { flagsFrag: 0x0010 }); // offset 16 octets: a later fragment
    s.receive(frag, 0, frag.length);
    expect(out).toHaveLength(1);
    expect(s.counters.rxNotUdp).toBe(2);
  });

  it('rate-limits errors: a burst of 50, then 1000 a second', () => {
    const { s, out, clock } = stack();
    const f = udpTo(9999);
    for (let i = 0; i < 80; i++) s.receive(f, 0, f.length);
    expect(out).toHaveLength(50);
    expect(s.counters.txIcmpRateLimited).toBe(30);
    clock.t += 10; // 10 tokens later
    for (let i = 0; i < 20; i++) s.receive(f, 0, f.length);
    expect(out).toHaveLength(60);
    const l = new IcmpRateLimit(1000, 2);
    expect([l.allow(0), l.allow(0), l.allow(0), l.allow(1)]).toEqual([true, true, false, true]);
  });

  it('does not answer an echo whose reply would not fit its MTU (a peer with a larger one)', () => {
    const { s, out } = stack(576);
    const req = ipFrame(IPPROTO_ICMP, echo(ICMP_ECHO, 1, 1, new Array(1000).fill(1)));
    s.receive(req, 0, req.length);
    expect(out).toHaveLength(0);
    expect(s.counters.txIcmpTooBig).toBe(1);
  });

  it('never throws on arbitrary bytes after an IPv4 header with protocol ICMP, and counts every frame once', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (payload) => {
        const { s } = stack();
        const f = ipFrame(IPPROTO_ICMP, payload);
        s.receive(f, 0, f.length);
        const c = s.counters;
        expect(c.rxFrames).toBe(1);
        expect(c.rxIcmpEcho + c.rxIcmpEchoReply + c.rxIcmpUnreach + c.rxBadIcmp + c.rxIcmpUnmatched).toBe(1);
      }),
      { numRuns: 500 },
    );
  });
});
