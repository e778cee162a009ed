/**
 * TCP segmentation offload on the sending side (tsoMax): new data leaves as
 * one segment of up to floor(tsoMax / SMSS) * SMSS octets with gsoSize =
 * SMSS, within the peer's window and cwnd (whole segments of it), never an
 * IP datagram over 65535 octets; a segment of one MSS or less has gsoSize 0;
 * retransmissions are one MSS. Then a property over a lossy channel whose
 * "NIC" cuts the TSO segments before loss, reordering and duplication.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TCP_ACK, TCP_SYN, seqGeq, type CcName } from '../src/tcp/index.ts';
import { ackChecker, countsAddUp, gsoSplit, lossy, pair, pattern, same, scripted, transfer } from './tcp-harness.ts';

const A = TCP_ACK;
const MSS = 1460;

/** Established without timestamps (SMSS 1460), `n` octets queued. */
function tso(tsoMax: number, n: number, peer: { window?: number } = {}) {
  const h = scripted({ tsoMax, cc: 'newreno', sndBuf: 1 << 21 });
  h.establish(peer);
  h.tcb.send(new Uint8Array(n), 0, n, 0);
  return h;
}

describe('TSO (tsoMax)', () => {
  it('the initial window leaves as one 10-MSS segment with gsoSize = SMSS; an ACK lets the next, larger one go', () => {
    const h = tso(65536, 200_000);
    expect(h.sent).toEqual([expect.objectContaining({ len: 10 * MSS, gso: MSS })]);
    expect(h.tcb.counters.tcpTxTsoSegments).toBe(1);
    h.peer(A, h.R(0), h.S(2 * MSS));
    expect(h.sent[1]).toMatchObject({ seq: h.S(10 * MSS), len: 4 * MSS, gso: MSS }); // cwnd 14600 + 2920, 8 MSS still out
  });

  it('a segment is at most floor(tsoMax / SMSS) * SMSS octets', () => {
    const h = tso(10_000, 200_000);
    expect(h.sent.map((s) => s.len)).toEqual([6 * MSS, 4 * MSS]);
  });

  it("never more than the peer's window; one MSS or less goes with gsoSize 0", () => {
    const h = tso(65536, 200_000, { window: 5000 });
    expect(h.sent).toEqual([expect.objectContaining({ len: 5000, gso: MSS })]);
    const small = tso(65536, 1000);
    expect(small.sent).toEqual([expect.objectContaining({ len: 1000, gso: 0 })]);
  });

  it('never an IP datagram over 65535 octets, whatever tsoMax and the windows', () => {
    const h = scripted({ tsoMax: 1 << 20, sndBuf: 1 << 21, cc: 'newreno' });
    h.tcb.connect(0);
    h.peer(TCP_SYN | A, h.R(-1), h.S(0), 0, { mss: 1460 });
    h.tcb.cc.cwnd = 1 << 20;
    h.sent.length = 0;
    h.tcb.send(new Uint8Array(1 << 20), 0, 1 << 20, 0);
    h.peer(A, h.R(0), h.S(0), 0, { window: 65535 });
    for (const s of h.sent) expect(20 + 20 + s.len).toBeLessThanOrEqual(65535);
    expect(Math.max(...h.sent.map((s) => s.len))).toBe(65535 - 40);
  });

  it("tsoMax may change on a live connection (the interface's offloads changed)", () => {
    const h = tso(0, 200_000);
    expect(h.sent.every((s) => s.len === MSS && s.gso === 0)).toBe(true);
    h.tcb.tsoMax = 65536;
    h.sent.length = 0;
    h.peer(A, h.R(0), h.S(10 * MSS));
    expect(h.sent).toEqual([expect.objectContaining({ len: 12 * MSS, gso: MSS })]); // cwnd 10 + 2 MSS
    h.tcb.tsoMax = 0;
    h.sent.length = 0;
    h.peer(A, h.R(0), h.tcb.sndMax);
    expect(h.sent.length).toBeGreaterThan(1);
    expect(h.sent.every((s) => s.len === MSS && s.gso === 0)).toBe(true);
  });

  it('retransmissions are one MSS, with gsoSize 0', () => {
    const h = tso(65536, 100_000);
    h.sent.length = 0;
    h.clock.t = h.tcb.nextTimer();
    h.tcb.tick(h.clock.t);
    expect(h.sent).toEqual([expect.objectContaining({ seq: h.S(0), len: MSS, gso: 0 })]);
    for (let i = 0; i < 4; i++) h.peer(A, h.R(0), h.S(MSS)); // duplicate ACKs after the first is ACKed
    expect(h.sent.filter((s) => s.seq < h.S(10 * MSS)).every((s) => s.len <= MSS && s.gso === 0)).toBe(true);
  });

  it('the split a NIC makes carries the same octets, sequence numbers and a valid checksum', () => {
    let pieces = 0;
    const p = pair({
      a: { tsoMax: 65536, sndBuf: 1 << 20 },
      gsoSplit: true,
      tap: (_from, seg, len, gso) => void (gso && (pieces += gsoSplit(seg, len, 1, 2, gso).length)),
    });
    const d = pattern(1 << 20);
    transfer(p, d);
    expect(same(p.received(), d)).toBe(true);
    expect(p.a.counters.tcpTxTsoSegments).toBeGreaterThan(0);
    expect(pieces).toBeGreaterThan(p.a.counters.tcpTxTsoSegments * 2);
  });
});

describe('TSO over a lossy, reordering, duplicating channel (property)', () => {
  it('every octet once and in order; TSO segments only for new data, within floor(tsoMax/SMSS)*SMSS (100 runs)', () => {
    let tsoSegs = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300_000 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 1, max: 70_000 }),
        fc.constantFrom<CcName>('newreno', 'cubic'),
        fc.boolean(),
        fc.integer(),
        (size, lossPct, maxJitter, dupPct, tsoMax, cc, sack, seed) => {
          const check = ackChecker(() => p);
          const p = pair({
            ...lossy(seed, lossPct, maxJitter, dupPct),
            gsoSplit: true,
            tap: (from, seg, len, gso) => {
              check(from, seg, len);
              if (!gso) return;
              const hlen = (seg[12] >>> 4) * 4;
              expect(from).toBe('a');
              expect(gso).toBe(p.a.sendMss);
              expect(len - hlen).toBeGreaterThan(gso);
              expect(len - hlen).toBeLessThanOrEqual(Math.floor(tsoMax / gso) * gso);
              expect(20 + len).toBeLessThanOrEqual(65535);
              const seq = ((seg[4] << 24) | (seg[5] << 16) | (seg[6] << 8) | seg[7]) >>> 0;
              expect(seq).toBe(p.a.sndNxt);
              expect(seqGeq(seq, p.a.sndMax)).toBe(true); // new data only
              tsoSegs++;
            },
            a: { cc, sack, tsoMax, maxRetries: 50, synRetries: 50, sndBuf: 256 * 1024 },
            b: { cc, sack, maxRetries: 50, synRetries: 50 },
          });
          const data = pattern(size);
          transfer(p, data, 100_000_000);
          expect(p.b.delivered).toBe(size);
          expect(same(p.received(), data)).toBe(true);
          countsAddUp(p.a);
          countsAddUp(p.b);
        },
      ),
      { numRuns: 100 },
    );
    expect(tsoSegs).toBeGreaterThan(100);
    console.log(`tcp tso channel property: 100 runs, ${tsoSegs} TSO segments`);
  });
});
