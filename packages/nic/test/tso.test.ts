/**
 * The VI NIC's TCP segmentation offload: the engine (tso-engine.ts) cuts an
 * IPv4 TCP frame into MSS segments with their headers and checksums as
 * Linux's tcp_gso_segment does, refuses one test per malformed frame, and a
 * property checks arbitrary frames; then through a VI in process: a
 * TXD_TSO frame over chained descriptors leaves as segments on a VI that
 * enabled TSO, is dropped and counted on one that did not, and waits for the
 * line (a line rate) segment by segment without losing one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtualClock, WithShared, onesSum } from '@xsim/hypervisor';
import { HwNic, TXD_CONT, TXD_CSUM, TXD_TSO, VI_RING_PAGES, ViQueues, handleMcdi } from '../src/index.ts';
import { tsoParse, tsoSegment } from '../src/tso-engine.ts';

const PAGE = 4096;
const MAC_A = 0x00163e0a0101;
const MAC_REMOTE = 0x00163e0b0101;
const SRC_IP = [10, 0, 1, 1];
const DST_IP = [10, 0, 2, 1];
const FIN = 0x01;
const PSH = 0x08;
const ACK = 0x10;
const CWR = 0x80;

const macBytes = (mac: number): number[] => [5, 4, 3, 2, 1, 0].map((i) => Math.floor(mac / 2 ** (8 * i)) % 256);
const payloadByte = (i: number) => (i * 7 + 3) & 0xff;

/** An IPv4 TCP frame with `payload` octets, `optLen` octets of TCP options (NOPs), the given flags; its checksum partial (garbage: the engine must not need it). */
function tcpFrame(payload: number, o: { optLen?: number; flags?: number; vlan?: boolean; seq?: number; id?: number } = {}): Uint8Array {
  const optLen = o.optLen ?? 12;
  const l3 = o.vlan ? 18 : 14;
  const thl = 20 + optLen;
  const len = l3 + 20 + thl + payload;
  const b = new Uint8Array(len);
  b.set([...macBytes(MAC_REMOTE), ...macBytes(MAC_A)], 0);
  if (o.vlan) b.set([0x81, 0x00, 0x00, 0x05], 12);
  b.set([0x08, 0x00], l3 - 2);
  const ipLen = 20 + thl + payload;
  b.set([0x45, 0, ipLen >> 8, ipLen & 0xff, (o.id ?? 0x1234) >> 8, (o.id ?? 0x1234) & 0xff, 0x40, 0, 64, 6, 0xde, 0xad, ...SRC_IP, ...DST_IP], l3);
  const t = l3 + 20;
  const seq = o.seq ?? 0xfffff000; // wraps within a 64 KiB frame
  b.set([0x9c, 0x40, 0x14, 0x51, seq >>> 24, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff, 0, 0, 0, 1], t);
  b[t + 12] = (thl / 4) << 4;
  b[t + 13] = o.flags ?? ACK | PSH;
  b.set([0xff, 0xff, 0xbe, 0xef, 0, 0], t + 14);
  b.fill(1, t + 20, t + thl); // NOP options
  for (let i = 0; i < payload; i++) b[t + thl + i] = payloadByte(i);
  return b;
}

const u16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const u32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/** Check one segment's headers and checksums; returns its payload. */
function checkSegment(seg: Uint8Array, l3: number): { payload: Uint8Array; seq: number; flags: number; id: number } {
  expect(onesSum(seg, l3, 20)).toBe(0xffff); // IPv4 header checksum good
  expect(u16(seg, l3 + 2)).toBe(seg.length - l3);
  const t = l3 + 20;
  const tcpLen = seg.length - t;
  expect(onesSum(seg, t, tcpLen, onesSum(seg, l3 + 12, 8, 6 + tcpLen))).toBe(0xffff); // TCP checksum good
  const thl = (seg[t + 12] >> 4) * 4;
  return { payload: seg.subarray(t + thl), seq: u32(seg, t + 4), flags: seg[t + 13], id: u16(seg, l3 + 4) };
}

function cut(frame: Uint8Array, mss: number, maxFrame = 1514): Uint8Array[] {
  const f = tsoParse(frame, frame.length, mss, maxFrame);
  if (!f) throw new Error('refused');
  const out = new Uint8Array(70_000);
  return Array.from({ length: f.count }, (_, i) => out.slice(0, tsoSegment(frame, f, i, out)));
}

describe('TSO engine', () => {
  it('cuts a frame into MSS segments: lengths, IDs, sequence numbers, flags and both checksums as Linux does', () => {
    const frame = tcpFrame(5000, { flags: ACK | PSH | FIN | CWR });
    const segs = cut(frame, 1448);
    expect(segs.map((s) => s.length)).toEqual([1448, 1448, 1448, 656].map((n) => 14 + 20 + 32 + n));
    const parts = segs.map((s) => checkSegment(s, 14));
    expect(parts.map((p) => p.id)).toEqual([0x1234, 0x1235, 0x1236, 0x1237]);
    expect(parts.map((p) => p.seq)).toEqual([0, 1448, 2896, 4344].map((o) => (0xfffff000 + o) >>> 0));
    expect(parts.map((p) => p.flags)).toEqual([ACK | CWR, ACK, ACK, ACK | PSH | FIN]);
    const whole = Uint8Array.from(parts.flatMap((p) => [...p.payload]));
    expect(whole).toEqual(frame.subarray(14 + 20 + 32));
  });

  it('keeps an 802.1Q tag on every segment', () => {
    const segs = cut(tcpFrame(3000, { vlan: true }), 1000, 1518);
    expect(segs).toHaveLength(3);
    for (const s of segs) {
      expect([s[12], s[13]]).toEqual([0x81, 0x00]);
      checkSegment(s, 18);
    }
  });

  it('a frame within one MSS is one segment, its checksum completed', () => {
    const segs = cut(tcpFrame(100), 1448);
    expect(segs).toHaveLength(1);
    expect(checkSegment(segs[0], 14).payload).toHaveLength(100);
  });

  describe('refuses what it cannot cut (one test per malformed frame)', () => {
    const refused = (b: Uint8Array, mss = 1448, len = b.length) => expect(tsoParse(b, len, mss, 1514)).toBeNull();
    it('not IPv4 (an ARP ethertype)', () => {
      const b = tcpFrame(3000);
      b[12] = 0x08;
      b[13] = 0x06;
      refused(b);
    });
    it('not TCP (UDP)', () => {
      const b = tcpFrame(3000);
      b[14 + 9] = 17;
      refused(b);
    });
    it('an IP fragment', () => {
      const b = tcpFrame(3000);
      b[14 + 6] = 0x20; // MF
      refused(b);
    });
    it('an IP total length that disagrees with the frame', () => {
      const b = tcpFrame(3000);
      refused(b, 1448, b.length - 1);
    });
    it('an IP header length under 20', () => {
      const b = tcpFrame(3000);
      b[14] = 0x44;
      refused(b);
    });
    it('a TCP header length under 20, or running past the frame', () => {
      const b = tcpFrame(3000);
      b[14 + 20 + 12] = 4 << 4;
      refused(b);
      const c = tcpFrame(0, { optLen: 0 });
      c[14 + 20 + 12] = 15 << 4;
      refused(c);
    });
    it('no payload to cut', () => refused(tcpFrame(0)));
    it('an MSS of 0', () => refused(tcpFrame(3000), 0));
    it('an MSS making segments longer than the port takes', () => refused(tcpFrame(3000), 1500));
    it('a runt', () => refused(tcpFrame(3000).subarray(0, 40)));
  });

  it('any frame: the segments carry its payload once, in order, each under the MSS and the port, checksums good', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65535 - 20 - 60 }), fc.integer({ min: 200, max: 1460 }), fc.integer({ min: 0, max: 10 }), (payload, mss, opts) => {
        const optLen = opts * 4;
        const frame = tcpFrame(payload, { optLen, flags: ACK | PSH | FIN });
        const maxFrame = 14 + 20 + 20 + optLen + mss;
        const segs = cut(frame, mss, maxFrame);
        expect(segs).toHaveLength(Math.ceil(payload / mss));
        let at = 0;
        segs.forEach((s, i) => {
          expect(s.length).toBeLessThanOrEqual(maxFrame);
          const p = checkSegment(s, 14);
          expect(p.seq).toBe((0xfffff000 + at) >>> 0);
          expect((p.flags & FIN) !== 0).toBe(i === segs.length - 1);
          for (let k = 0; k < p.payload.length; k++) if (p.payload[k] !== payloadByte(at + k)) throw new Error(`octet ${at + k}`);
          at += p.payload.length;
        });
        expect(at).toBe(payload);
      }),
      { numRuns: 100 },
    );
  });
});

/** A NIC with guest A on VI 1 (TSO on or off), its wire ending in a probe that keeps what it carries. */
function rig(tso: boolean, gbps?: number) {
  const ramPages = 8 + VI_RING_PAGES + 20;
  const rams = new Map<number, Uint8Array>([[1, new Uint8Array(new SharedArrayBuffer(ramPages * PAGE))]]);
  const clock = new VirtualClock();
  const nic = new HwNic({ name: 'nic-a', host: 'nic-a', mac: 0x000f53000000, mtu: 1500, vendor: '1924', device: '0803', vis: 2 }, rams, clock);
  const seen: Uint8Array[] = [];
  nic.wire = (ram, addr, len) => void seen.push(ram.slice(addr, addr + len));
  if (gbps !== undefined) nic.setLineRate(gbps);
  const frames = Array.from({ length: ramPages }, (_, f) => f);
  const base = handleMcdi(nic, 'buffer_table_alloc', { vi: 1, domid: 1, frames }) as number;
  const r = handleMcdi(nic, 'vi_init', { vi: 1, domid: 1, rings: base + 8, irq: false, macs: [MAC_A], csum: true, tso }) as WithShared;
  const q = new ViQueues(r.shared[0], rams.get(1)!.buffer as SharedArrayBuffer, 8 * PAGE, () => {});
  /** Put `frame` in A's RAM after its rings and post it as a TSO frame over 4 KiB descriptors. */
  const sendTso = (frame: Uint8Array, mss: number) => {
    const at = (8 + VI_RING_PAGES) * PAGE;
    rams.get(1)!.set(frame, at);
    const pieces = Math.ceil(frame.length / PAGE);
    for (let i = 0; i < pieces; i++) {
      const len = Math.min(PAGE, frame.length - i * PAGE);
      const flags = (i === 0 ? TXD_TSO | TXD_CSUM : 0) | (i < pieces - 1 ? TXD_CONT : 0);
      q.postTx(base + 8 + VI_RING_PAGES + i, 0, len, flags, i === 0 ? mss : 0);
    }
    q.pushTx();
  };
  return { nic, sendTso, seen, clock };
}

describe('TSO through a VI', () => {
  it('a TXD_TSO frame over chained descriptors leaves as MSS segments, each on the wire with good checksums', () => {
    const r = rig(true);
    const frame = tcpFrame(30_000);
    r.sendTso(frame, 1448);
    r.nic.poll();
    expect(r.nic.vi(1).c).toMatchObject({ txTsoFrames: 1, txTsoSegments: 21, txFrames: 21, txTsoBad: 0 });
    expect(r.nic.c.wireTx).toBe(21);
    expect(r.seen).toHaveLength(21);
    const got = Uint8Array.from(r.seen.flatMap((x) => [...checkSegment(x, 14).payload]));
    expect(got).toEqual(frame.subarray(14 + 20 + 32));
  });

  it('a VI whose driver did not enable TSO drops the frame whole, counted txTsoBad; so does an MSS of 0', () => {
    const off = rig(false);
    off.sendTso(tcpFrame(30_000), 1448);
    off.nic.poll();
    expect(off.nic.vi(1).c).toMatchObject({ txTsoBad: 1, txFrames: 0 });
    expect(off.nic.c.wireTx).toBe(0);
    const zero = rig(true);
    zero.sendTso(tcpFrame(30_000), 0);
    zero.nic.poll();
    expect(zero.nic.vi(1).c).toMatchObject({ txTsoBad: 1, txFrames: 0 });
  });

  it('with a line rate the segments wait for the line on the VI, none lost, all in order', () => {
    const r = rig(true, 0.001);
    // 45 segments of 1514 octets: more than the port's 64 KiB FIFO holds at once.
    const first = tcpFrame(65_000);
    r.sendTso(first, 1448);
    r.nic.poll();
    const taken = r.nic.vi(1).c.txTsoSegments;
    expect(taken).toBeLessThan(45);
    expect(r.nic.txPending()).toBe(false); // the line is full: TX work waits for it, not for a doorbell
    // Run the NIC as the fabric does, jumping the clock to each departure.
    for (let i = 0; i < 10_000 && r.seen.length < 45; i++) {
      r.clock.advanceTo(Math.max(r.clock.now(), r.nic.nextLineDue()));
      r.nic.drainLine();
      r.nic.poll();
    }
    expect(r.nic.vi(1).c).toMatchObject({ txTsoFrames: 1, txTsoSegments: 45, txFrames: 45 });
    expect(r.seen).toHaveLength(45);
    const got = Uint8Array.from(r.seen.flatMap((x) => [...checkSegment(x, 14).payload]));
    expect(got).toEqual(first.subarray(14 + 20 + 32));
  });

  it('a VI torn down with segments still waiting for the line counts them (txDiscardedAtFini), never loses them silently', () => {
    const r = rig(true, 0.001);
    r.sendTso(tcpFrame(65_000), 1448);
    r.nic.poll();
    const left = 45 - r.nic.vi(1).c.txTsoSegments;
    expect(left).toBeGreaterThan(0);
    handleMcdi(r.nic, 'vi_fini', { vi: 1 });
    expect(r.nic.vi(1).c.txDiscardedAtFini).toBe(left);
  });
});
