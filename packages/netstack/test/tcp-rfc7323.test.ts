/**
 * TCP options on the wire (MSS, Window Scale, SACK-Permitted, SACK,
 * Timestamps: written as Linux lays them out, read back, malformed ones
 * rejected) and what RFC 7323 makes of them in a TCB: the SYNs' negotiation
 * (each option on only if both SYNs carried it), scaled windows up to about
 * 1 GiB, TSval from the caller's clock and TSecr from TS.Recent (§4.3), RTT
 * from the echo (§4.1), PAWS (§5), and the MSS less the option's 12 octets.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { writeU16 } from '../src/net/index.ts';
import {
  RCV_WND_MAX,
  TCP_ACK,
  TCP_RST,
  TCP_SYN,
  Tcb,
  emptySegment,
  parseTcp,
  tcpChecksum,
  tcpHeaderLen,
  writeTcp,
  type TcbOptions,
  type TcpHeaderFields,
  type TcpSegment,
} from '../src/tcp/index.ts';
import { A_IP, B_IP, pair, pattern, same, transfer } from './tcp-harness.ts';

const A = TCP_ACK;
const SRC = 0x0a000001;
const DST = 0x0a000002;

function hdr(o: Partial<TcpHeaderFields>): TcpHeaderFields {
  return { srcPort: 1, dstPort: 2, seq: 100, ack: 200, flags: A, window: 1000, mss: 0, ...o };
}

function roundTrip(h: TcpHeaderFields, data = 0): { b: Uint8Array; s: TcpSegment } {
  const b = new Uint8Array(tcpHeaderLen(h) + data);
  writeTcp(b, 0, h, data, SRC, DST);
  const s = emptySegment();
  expect(parseTcp(b, 0, b.length, SRC, DST, s)).toBeNull();
  return { b, s };
}

/** Replace the options of a 20 + opts.length header and fix the checksum. */
function withOptions(opts: number[]): Uint8Array {
  const b = new Uint8Array(20 + opts.length);
  b[12] = ((20 + opts.length) / 4) << 4;
  b[13] = A;
  b.set(opts, 20);
  writeU16(b, 16, tcpChecksum(b, 0, b.length, SRC, DST));
  return b;
}

describe('options on the wire', () => {
  it('a SYN with everything: MSS, SACK-Permitted + Timestamps, NOP + Window Scale, 20 octets as Linux', () => {
    const { b, s } = roundTrip(hdr({ flags: TCP_SYN, mss: 1460, wscale: 7, sackOk: true, ts: true, tsVal: 0xdeadbeef, tsEcr: 0 }));
    expect([...b.subarray(20, 40)]).toEqual([2, 4, 5, 180, 4, 2, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 1, 3, 3, 7]);
    expect(s).toMatchObject({ mss: 1460, wscale: 7, sackOk: true, hasTs: true, tsVal: 0xdeadbeef, tsEcr: 0, sackCount: 0 });
  });

  it('timestamps alone take 12 octets; with three SACK blocks the options are the full 40', () => {
    const sack = [1, 2, 3, 4, 0xfffffff0, 5];
    const { b, s } = roundTrip(hdr({ ts: true, tsVal: 7, tsEcr: 9, sack, sackCount: 3 }), 3);
    expect(b[12] >>> 4).toBe(15);
    expect(s).toMatchObject({ hasTs: true, tsVal: 7, tsEcr: 9, sackCount: 3, dataLen: 3, wscale: -1, sackOk: false });
    expect(s.sack.slice(0, 6)).toEqual(sack);
    const four = roundTrip(hdr({ sack: [1, 2, 3, 4, 5, 6, 7, 8], sackCount: 4 })).s;
    expect(four.sackCount).toBe(4);
    expect(four.sack).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('a Window Scale over 14 is read as 14 (RFC 7323 §2.3)', () => {
    const s = emptySegment();
    expect(parseTcp(withOptions([1, 3, 3, 15]), 0, 24, SRC, DST, s)).toBeNull();
    expect(s.wscale).toBe(14);
  });

  it.each([
    ['Window Scale of length 4', [3, 4, 1, 0]],
    ['SACK-Permitted of length 3', [4, 3, 0, 1]],
    ['Timestamps of length 8', [8, 8, 0, 0, 0, 0, 0, 0]],
    ['SACK of length 9', [5, 9, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]],
    ['SACK without a block', [5, 2, 1, 1]],
    ['SACK running past the header', [5, 18, ...Array(10).fill(0)]],
  ])('%s is malformed', (_name, opts) => {
    const b = withOptions(opts);
    expect(parseTcp(b, 0, b.length, SRC, DST, emptySegment())).toBe('badOption');
  });

  it('whatever options are written, they read back the same (property)', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.integer({ min: 0, max: 65535 }),
        fc.integer({ min: -1, max: 14 }),
        fc.boolean(),
        fc.option(fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }))),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 8 }),
        (syn, mss, wscale, sackOk, ts, edges) => {
          const n = Math.min(Math.floor(edges.length / 2), ts ? 3 : 4, syn ? 0 : 4);
          const h = hdr({
            flags: syn ? TCP_SYN : A,
            mss: syn ? mss : 0,
            wscale: syn ? wscale : -1,
            sackOk: syn && sackOk,
            ts: ts !== null,
            tsVal: ts?.[0],
            tsEcr: ts?.[1],
            sack: edges,
            sackCount: n,
          });
          if (tcpHeaderLen(h) > 60) return;
          const { s } = roundTrip(h);
          expect(s.mss).toBe(syn ? mss : 0);
          expect(s.wscale).toBe(syn ? wscale : -1);
          expect(s.sackOk).toBe(syn && sackOk);
          expect(s.hasTs).toBe(ts !== null);
          if (ts) expect([s.tsVal, s.tsEcr]).toEqual(ts);
          expect(s.sackCount).toBe(n);
          expect(s.sack.slice(0, 2 * n)).toEqual(edges.slice(0, 2 * n));
        },
      ),
      { numRuns: 500 },
    );
  });
});

interface Seen {
  flags: number;
  seq: number;
  ack: number;
  window: number;
  s: TcpSegment;
}

/** A TCB and a scripted peer that may send options. */
function h7323(o: Partial<TcbOptions> = {}) {
  const sent: Seen[] = [];
  const clock = { t: 0 };
  const tcb = new Tcb({
    localIp: A_IP,
    localPort: 80,
    remoteIp: B_IP,
    remotePort: 5555,
    iss: 1000,
    tsOffset: 100_000,
    delAckMs: 0,
    emit: (b, len, src, dst) => {
      const s = emptySegment();
      expect(parseTcp(b, 0, len, src, dst, s)).toBeNull();
      sent.push({ flags: s.flags, seq: s.seq, ack: s.ack, window: s.window, s: { ...s, sack: [...s.sack] } });
    },
    ...o,
  });
  function peer(h: Partial<TcpHeaderFields>, data = 0): void {
    const f = { srcPort: 5555, dstPort: 80, seq: 5001, ack: 1001, flags: A, window: 65535, mss: 0, ...h };
    const b = new Uint8Array(tcpHeaderLen(f) + data);
    writeTcp(b, 0, f, data, B_IP, A_IP);
    tcb.input(b, 0, b.length, B_IP, A_IP, clock.t);
  }
  const last = () => sent[sent.length - 1];
  return { tcb, sent, clock, peer, last };
}

const ALL = { wscale: 7, sackOk: true, ts: true, tsVal: 5000, tsEcr: 100_000 };

describe('RFC 7323 in a TCB', () => {
  it('our SYN offers Window Scale (the shift fitting the window), SACK-Permitted and Timestamps (TSval = now + offset, TSecr 0)', () => {
    const h = h7323();
    h.clock.t = 7;
    h.tcb.connect(7);
    expect(h.last().s).toMatchObject({ mss: 1460, wscale: 3, sackOk: true, hasTs: true, tsVal: 100_007, tsEcr: 0 });
    expect(h.last().window).toBe(65535); // a SYN's window is never scaled
  });

  it('a SYN,ACK without options: nothing is on, the window stays 65535 and unscaled, the MSS whole', () => {
    const h = h7323();
    h.tcb.connect(0);
    h.peer({ flags: TCP_SYN | A, seq: 5000, mss: 1460, window: 1000 });
    expect([h.tcb.nego.ws, h.tcb.nego.ts, h.tcb.nego.sack]).toEqual([false, false, false]);
    expect(h.tcb.rcvWnd).toBe(65535);
    expect(h.last()).toMatchObject({ flags: A, window: 65535 });
    expect(h.last().s.hasTs).toBe(false);
    expect(h.tcb.sendMss).toBe(1460);
    h.peer({ window: 1000 });
    expect(h.tcb.sndWnd).toBe(1000);
  });

  it('a SYN,ACK with all: windows scaled both ways (its SYN window not), the MSS less 12, TSecr echoing it', () => {
    const h = h7323();
    h.tcb.connect(0);
    h.peer({ flags: TCP_SYN | A, seq: 5000, mss: 1460, window: 1000, ...ALL });
    expect([h.tcb.nego.ws, h.tcb.nego.ts, h.tcb.nego.sack]).toEqual([true, true, true]);
    expect(h.tcb.sndWnd).toBe(1000);
    expect(h.tcb.rcvWnd).toBe(256 * 1024);
    expect(h.last()).toMatchObject({ flags: A, window: (256 * 1024) >>> 3 });
    expect(h.last().s).toMatchObject({ hasTs: true, tsEcr: 5000 });
    expect(h.tcb.sendMss).toBe(1448);
    h.peer({ window: 1000, ts: true, tsVal: 5001, tsEcr: 100_000 });
    expect(h.tcb.sndWnd).toBe(1000 * 128);
  });

  it('a peer naming a tiny MSS still gets segments of 48 octets (Linux TCP_MIN_SND_MSS), unless our MSS is smaller', () => {
    const h = h7323();
    h.tcb.connect(0);
    h.peer({ flags: TCP_SYN | A, seq: 5000, mss: 1, ...ALL });
    expect(h.tcb.sendMss).toBe(48);
    const g = h7323({ mss: 30 });
    g.tcb.connect(0);
    g.peer({ flags: TCP_SYN | A, seq: 5000, mss: 1, ...ALL });
    expect(g.tcb.sendMss).toBe(30);
  });

  it('rcvWnd up to 65535 << 14 picks shift 14; without window scaling it stays at most 65535', () => {
    const big = h7323({ rcvWnd: 2 ** 30 });
    expect(big.tcb.nego.rcvShiftOffer).toBe(14);
    big.tcb.connect(0);
    big.peer({ flags: TCP_SYN | A, seq: 5000, ...ALL });
    expect(big.tcb.rcvWnd).toBe(RCV_WND_MAX);
    expect(big.last().window).toBe(65535);
    const off = h7323({ windowScaling: false, rcvWnd: 1 << 20 });
    off.tcb.connect(0);
    expect(off.last().s.wscale).toBe(-1);
    off.peer({ flags: TCP_SYN | A, seq: 5000, ...ALL });
    expect(off.tcb.rcvWnd).toBe(65535);
    expect(off.tcb.nego.sndShift).toBe(0);
  });

  it('passive open: the SYN,ACK carries an option only if the SYN did', () => {
    const h = h7323({ remoteIp: undefined, remotePort: undefined });
    h.tcb.listen(0);
    h.peer({ flags: TCP_SYN, seq: 5000, ack: 0, mss: 1460, ts: true, tsVal: 77 });
    expect(h.last().s).toMatchObject({ wscale: -1, sackOk: false, hasTs: true, tsEcr: 77 });
    const g = h7323({ remoteIp: undefined, remotePort: undefined });
    g.tcb.listen(0);
    g.peer({ flags: TCP_SYN, seq: 5000, ack: 0, mss: 1460, wscale: 2, sackOk: true });
    expect(g.last().s).toMatchObject({ wscale: 3, sackOk: true, hasTs: false });
  });

  it('TS.Recent follows segments at or before Last.ACK.sent: a delayed ACK echoes the first segment of the two', () => {
    const h = h7323({ delAckMs: 40 });
    h.tcb.connect(0);
    h.peer({ flags: TCP_SYN | A, seq: 5000, mss: 1460, ...ALL });
    h.peer({ ts: true, tsVal: 6000 }, 1000);
    h.peer({ seq: 6001, ts: true, tsVal: 6001 }, 1000);
    expect(h.last().s).toMatchObject({ ack: 7001, tsEcr: 6000 });
    h.peer({ seq: 9001, ts: true, tsVal: 6002 }, 100); // out of order: beyond Last.ACK.sent
    expect(h.last().s.tsEcr).toBe(6000);
  });

  it('an ACK of new data gives the RTT from its TSecr (RFC 7323 §4.1)', () => {
    const h = h7323();
    h.tcb.connect(0);
    h.peer({ flags: TCP_SYN | A, seq: 5000, mss: 1460, ...ALL });
    h.clock.t = 1000;
    h.tcb.send(new Uint8Array(100), 0, 100, 1000);
    const tsVal = h.last().s.tsVal;
    h.clock.t = 1080;
    h.peer({ ack: 1101, ts: true, tsVal: 5001, tsEcr: tsVal });
    expect(h.tcb.rto.srtt).toBe(0.125 * 80); // the handshake's sample was 0 ms
    expect(h.tcb.rto.rttvar).toBe(0.25 * 80);
  });

  it('PAWS: a segment with a TSval before TS.Recent is dropped, counted and ACKed; an RST is not judged by it', () => {
    const h = h7323();
    h.tcb.connect(0);
    h.peer({ flags: TCP_SYN | A, seq: 5000, mss: 1460, ...ALL });
    let got = 0;
    h.peer({ ts: true, tsVal: 6000 }, 10);
    got = h.tcb.rcvNxt;
    h.sent.length = 0;
    h.peer({ seq: 5011, ts: true, tsVal: 5999 }, 10);
    expect(h.tcb.counters.tcpRxPaws).toBe(1);
    expect(h.tcb.rcvNxt).toBe(got);
    expect(h.sent).toEqual([expect.objectContaining({ flags: A, ack: got })]);
    h.peer({ flags: TCP_RST, seq: 5011, ts: true, tsVal: 1 });
    expect(h.tcb.state).toBe('CLOSED');
  });

  it('PAWS: after 24 days without an update TS.Recent no longer judges (§5.5)', () => {
    const h = h7323();
    h.tcb.connect(0);
    h.peer({ flags: TCP_SYN | A, seq: 5000, mss: 1460, ...ALL });
    h.clock.t = 25 * 24 * 3600 * 1000;
    h.peer({ ts: true, tsVal: 10 }, 10);
    expect(h.tcb.counters.tcpRxPaws).toBe(0);
    expect(h.tcb.delivered).toBe(10);
  });

  it('a window over 64 KiB is used: 4 MB over a 50 ms path with 1 MiB windows keeps more than 65535 octets in flight', () => {
    let maxFlight = 0;
    const p = pair({
      delay: 50,
      a: { sndBuf: 1 << 20, rcvWnd: 1 << 20 },
      b: { rcvWnd: 1 << 20 },
      tap: (from) => {
        if (from === 'a') maxFlight = Math.max(maxFlight, (p.a.sndMax - p.a.sndUna) >>> 0);
      },
    });
    const d = pattern(4 << 20);
    transfer(p, d);
    expect(same(p.received(), d)).toBe(true);
    expect(p.b.nego.rcvShift).toBe(5);
    expect(maxFlight).toBeGreaterThan(65535 * 4);
  });
});
