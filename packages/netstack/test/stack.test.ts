import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GuestStack, inetChecksum, onesSum, parseIp, parseMac, formatMac, formatIp, udpChecksum, writeIpUdp, type StackTransport } from '../src/net/index.ts';
import { SeqTracker, SEQ_WINDOW } from '../src/traffic/index.ts';

describe('checksums', () => {
  it('matches known vectors', () => {
    // RFC 1071 example: 0001 f203 f4f5 f6f7 sums to ddf2.
    expect(onesSum(Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0, 8)).toBe(0xddf2);
    const hdr = Uint8Array.from([0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7]);
    expect(inetChecksum(hdr, 0, 20)).toBe(0xb861);
  });

  it('writes IPv4 headers that verify, and UDP checksums that verify with the pseudo-header', () => {
    const b = new Uint8Array(100);
    writeIpUdp(b, 0, parseIp('10.0.0.1'), parseIp('10.0.0.2'), 7, 1234, 80, 12);
    expect(onesSum(b, 0, 20)).toBe(0xffff);
    b.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 28);
    const c = udpChecksum(b, 0);
    b[26] = c >> 8;
    b[27] = c & 255;
    // With the checksum in place the pseudo-header sum over the datagram is all ones.
    const pseudo = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + 20;
    expect(onesSum(b, 20, 20, pseudo)).toBe(0xffff);
  });

  it('parses and formats addresses', () => {
    expect(formatMac(parseMac('00:16:3E:0a:01:01'))).toBe('00:16:3e:0a:01:01');
    expect(formatIp(parseIp('10.0.255.7'))).toBe('10.0.255.7');
    expect(() => parseMac('00:16:3e')).toThrow(/bad MAC/);
    expect(() => parseIp('10.0.0.256')).toThrow(/bad IPv4/);
  });
});

/** Two stacks wired back to back through an in-memory transport. */
function pair() {
  const wire: Uint8Array[] = [];
  const mk = (): StackTransport & { out: Uint8Array[] } => {
    const out: Uint8Array[] = [];
    let cur = new Uint8Array(0);
    return {
      out,
      reserve: (len) => {
        cur = new Uint8Array(len + 10);
        return { buf: cur, off: 10 };
      },
      commit: (len) => {
        out.push(cur.slice(10, 10 + len));
      },
    };
  };
  const ta = mk();
  const tb = mk();
  const a = new GuestStack({ mac: parseMac('00:16:3e:00:00:0a'), ip: parseIp('10.0.0.10'), transport: ta, mtu: 9000 });
  const b = new GuestStack({ mac: parseMac('00:16:3e:00:00:0b'), ip: parseIp('10.0.0.11'), transport: tb, mtu: 9000 });
  const pump = () => {
    let moved = true;
    while (moved) {
      moved = false;
      for (const [src, dst] of [
        [ta, b],
        [tb, a],
      ] as const) {
        while (src.out.length) {
          const f = src.out.shift()!;
          wire.push(f);
          dst.receive(f, 0, f.length);
          moved = true;
        }
      }
    }
  };
  return { a, b, pump, wire };
}

describe('guest stack', () => {
  it('resolves ARP first, then delivers 1000 datagrams in order', () => {
    const { a, b, pump } = pair();
    const got: number[] = [];
    b.bind(9, (buf, off, len, srcIp, srcPort) => {
      expect(srcIp).toBe(a.ip);
      expect(srcPort).toBe(5000);
      expect(len).toBe(100);
      got.push(new DataView(buf.buffer, buf.byteOffset + off).getUint32(0));
    });
    expect(a.sendUdp(b.ip, 5000, 9, 100, () => {})).toBe(false); // no MAC yet: an ARP request goes out
    expect(a.counters.txArp).toBe(1);
    pump();
    expect(a.arp.lookup(b.ip)).toBe(b.mac);
    expect(b.arp.lookup(a.ip)).toBe(a.mac); // learnt from the request aimed at b
    for (let i = 0; i < 1000; i++)
      expect(a.sendUdp(b.ip, 5000, 9, 100, (buf, off) => new DataView(buf.buffer, buf.byteOffset + off).setUint32(0, i))).toBe(true);
    pump();
    expect(got).toEqual([...Array(1000).keys()]);
    expect(b.counters.rxUdp).toBe(1000);
  });

  it('counts what it drops: other hosts, bad checksums, closed ports, ARP for someone else', () => {
    const { a, b, pump, wire } = pair();
    a.resolve(b.ip);
    pump();
    a.sendUdp(b.ip, 1, 4444, 10, () => {});
    pump();
    expect(b.counters.rxNoSocket).toBe(1);
    // b answered port unreachable (the last frame on the wire), and a heard it.
    expect(a.counters.rxIcmpUnreach).toBe(1);
    const udp = wire.at(-2)!;
    expect(udp[23]).toBe(17);
    const f = udp.slice();
    f[14 + 10] ^= 0xff; // corrupt the IP checksum
    b.receive(f, 0, f.length);
    expect(b.counters.rxBadChecksum).toBe(1);
    const g = udp.slice();
    g[0] = 0x02; // unicast to another MAC
    b.receive(g, 0, g.length);
    expect(b.counters.rxNotForUs).toBe(1);
    a.resolve(parseIp('10.0.0.99'));
    pump();
    expect(b.counters.rxNotForUs).toBe(2);
    expect(b.arp.lookup(parseIp('10.0.0.99'))).toBeUndefined();
  });

  it('never throws on arbitrary bytes (property)', () => {
    const { b } = pair();
    b.bind(9, () => {});
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, forUs) => {
        const f = bytes.slice();
        if (forUs && f.length >= 14) {
          f.set([0x00, 0x16, 0x3e, 0, 0, 0x0b], 0);
          f[12] = 8;
          f[13] = 0;
        }
        b.receive(f, 0, f.length);
      }),
    );
  });

  it('round-trips random UDP datagrams of any size (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 8972 }), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }), (len, sp, dp) => {
        const { a, b, pump } = pair();
        let seen = -1;
        b.bind(dp, (_buf, _off, l, _ip, port) => {
          seen = l;
          expect(port).toBe(sp);
        });
        a.resolve(b.ip);
        pump();
        expect(a.sendUdp(b.ip, sp, dp, len, () => {})).toBe(true);
        pump();
        expect(seen).toBe(len);
      }),
      { numRuns: 50 },
    );
  });
});

describe('the MTU', () => {
  it('refuses to build a frame over the MTU with a clear error, and sends nothing', () => {
    const { a, b, pump } = pair();
    a.resolve(b.ip);
    pump();
    // 8972 bytes of payload + 42 of headers = 9014 = MTU 9000 + 14: the largest frame.
    expect(a.sendUdp(b.ip, 1, 2, 8972, () => {})).toBe(true);
    const sent = a.counters.txFrames;
    expect(() => a.sendUdp(b.ip, 1, 2, 8973, () => {})).toThrow(/UDP payload of 8973 bytes makes a 9015-byte frame, over this interface's MTU 9000/);
    expect(a.counters.txFrames).toBe(sent);
  });
});

describe('sequence tracking', () => {
  it('agrees with a Set model on permutations with duplicates and gaps (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 400 }), (seqs) => {
        const t = new SeqTracker();
        const seen = new Set<number>();
        let highest = -1;
        let reord = 0;
        let dup = 0;
        for (const s of seqs) {
          if (seen.has(s)) dup++;
          else if (s < highest) reord++;
          seen.add(s);
          highest = Math.max(highest, s);
          t.add(s);
        }
        const st = t.stats(301);
        expect(st.delivered).toBe(seen.size);
        expect(st.duplicated).toBe(dup);
        expect(st.reordered).toBe(reord);
        expect(st.delivered + st.lost).toBe(301);
      }),
    );
  });

  it('keeps memory bounded: arrivals older than the window are counted tooOld', () => {
    const t = new SeqTracker();
    t.add(0);
    t.add(SEQ_WINDOW + 5);
    t.add(1);
    expect(t.stats().tooOld).toBe(1);
    t.add(SEQ_WINDOW + 5);
    expect(t.stats().duplicated).toBe(1);
  });
});
