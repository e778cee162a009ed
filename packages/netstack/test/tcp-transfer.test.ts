/**
 * Two TCBs back to back through an in-memory channel on a virtual clock:
 * the three-way handshake, 1 MB in order, FIN both ways; a lossy channel
 * (every Nth segment dropped) still delivers every byte once and in order
 * by retransmission; the RTO follows RFC 6298.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RTO_INITIAL, RTO_MAX, RTO_MIN, RtoEstimator, TCP_SYN } from '../src/tcp/index.ts';
import { A_IP, pair, pattern, same, transfer } from './tcp-harness.ts';

describe('TCP back to back', () => {
  it('handshakes, moves 1 MB in order, and closes both ways into TIME-WAIT then CLOSED', () => {
    const p = pair();
    const data = pattern(1 << 20);
    transfer(p, data);
    expect(same(p.received(), data)).toBe(true);
    expect(p.b.delivered).toBe(data.length);
    expect(p.a.history.map((h) => h.to)).toEqual(['SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED']);
    expect(p.b.history.map((h) => h.to)).toEqual(['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED']);
    expect(p.a.counters.tcpTxRetransmits).toBe(0);
    expect(p.b.counters.tcpRxOutOfWindow).toBe(0);
    // The sequence space wrapped (ISS 0xfffff000): arithmetic modulo 2^32 held.
    expect(p.a.sndUna).toBe((0xfffff000 + 1 + data.length + 1) >>> 0);
  });

  it.each([7, 10, 23])('a channel dropping every %ith segment still delivers every byte once and in order', (nth) => {
    const p = pair({ drop: (n) => n % nth === nth - 1 });
    const data = pattern(256 * 1024);
    transfer(p, data);
    expect(p.b.delivered).toBe(data.length);
    expect(same(p.received(), data)).toBe(true);
    expect(p.a.counters.tcpTxRetransmits).toBeGreaterThan(0);
    expect(p.a.counters.tcpTimeouts + p.a.counters.tcpFastRecoveries).toBeGreaterThan(0);
    expect(p.b.counters.tcpRxOutOfOrder).toBeGreaterThan(0);
    expect(p.a.state).toBe('CLOSED');
    expect(p.b.state).toBe('CLOSED');
  });

  it('announces its MSS on the SYN and sends no larger segment', () => {
    const sizes: number[] = [];
    const p = pair({
      a: { mss: 1000 },
      drop: (_n, s, len) => {
        if (s[13] & TCP_SYN) expect([s[20], s[21]]).toEqual([2, 4]);
        sizes.push(len);
        return false;
      },
    });
    transfer(p, pattern(20_000));
    // The timestamps' 12 octets come off each segment's payload (RFC 6691): the segment still fits 20 + the MSS.
    expect(p.a.sendMss).toBe(1000 - 12);
    expect(p.b.sendMss).toBe(1000 - 12);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(20 + 1000);
  });
});

describe('retransmission timeout (RFC 6298)', () => {
  it('starts at 1 s, doubles on each expiry of a lost SYN, and gives up after the SYN retries', () => {
    const synTimes: number[] = [];
    const p = pair({
      drop: (_n, s) => {
        if (s[13] & TCP_SYN) synTimes.push(p0.clock.t);
        return true;
      },
    });
    const p0 = p;
    p.a.connect(0);
    p.run();
    expect(synTimes).toEqual([0, 1000, 3000, 7000, 15000, 31000, 63000]);
    expect(p.a.state).toBe('CLOSED');
    expect(p.a.counters.tcpGiveUps).toBe(1);
    expect(p.a.history.at(-1)?.event).toBe('giveUp');
  });

  it('takes SRTT from the handshake and keeps the RTO at its 200 ms floor on a fast channel', () => {
    const p = pair({ delay: 1 });
    expect(p.a.rto.rto).toBe(RTO_INITIAL);
    transfer(p, pattern(10_000));
    expect(p.a.rto.sampled).toBe(true);
    expect(p.a.rto.srtt).toBeGreaterThanOrEqual(2);
    expect(p.a.rto.rto).toBe(RTO_MIN);
  });

  it('uses 3 s once established when the SYN had to be sent again (§5.7), without timestamps', () => {
    let first = true;
    const p = pair({
      a: { timestamps: false },
      drop: (_n, s) => {
        if (s[13] & TCP_SYN && first) {
          first = false;
          return true;
        }
        return false;
      },
    });
    p.b.listen(0);
    p.a.connect(0);
    p.run(5000);
    expect(p.a.state).toBe('ESTABLISHED');
    expect(p.a.rto.sampled).toBe(false); // Karn: the retransmitted SYN gives no sample
    expect(p.a.rto.rto).toBe(3000);
  });

  it('with timestamps the SYN,ACK echoing the retransmitted SYN gives an RTT sample (RFC 7323 §4)', () => {
    let first = true;
    const p = pair({
      drop: (_n, s) => {
        if (s[13] & TCP_SYN && first) {
          first = false;
          return true;
        }
        return false;
      },
    });
    p.b.listen(0);
    p.a.connect(0);
    p.run(5000);
    expect(p.a.state).toBe('ESTABLISHED');
    expect(p.a.rto.sampled).toBe(true);
    expect(p.a.rto.srtt).toBe(10);
  });
});

describe('both ends at once', () => {
  it('simultaneous open: SYN-SENT → SYN-RECEIVED → ESTABLISHED on both sides', () => {
    const p = pair({ b: { remoteIp: A_IP, remotePort: 40000 } });
    p.a.connect(0);
    p.b.connect(0);
    p.run(1000);
    for (const t of [p.a, p.b]) expect(t.history.map((h) => h.to)).toEqual(['SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED']);
    p.a.send(pattern(3000), 0, 3000, p.clock.t);
    p.run(2000);
    expect(p.b.delivered).toBe(3000);
  });

  it('simultaneous close: FIN-WAIT-1 → CLOSING → TIME-WAIT → CLOSED on both sides', () => {
    const p = pair();
    p.b.listen(0);
    p.a.connect(0);
    p.run(1000);
    p.a.close(p.clock.t);
    p.b.close(p.clock.t);
    p.run();
    for (const t of [p.a, p.b]) expect(t.history.slice(-4).map((h) => h.to)).toEqual(['FIN-WAIT-1', 'CLOSING', 'TIME-WAIT', 'CLOSED']);
  });
});

describe('RtoEstimator (RFC 6298 §2, §5.5)', () => {
  it('first sample: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4*RTTVAR; then α = 1/8, β = 1/4', () => {
    const r = new RtoEstimator();
    r.sample(400);
    expect([r.srtt, r.rttvar, r.rto]).toEqual([400, 200, 1200]);
    r.sample(200);
    expect(r.rttvar).toBe(0.75 * 200 + 0.25 * 200);
    expect(r.srtt).toBe(0.875 * 400 + 0.125 * 200);
    expect(r.rto).toBe(r.srtt + 4 * r.rttvar);
  });

  it('clamps to [200 ms, 120 s] and doubles on backoff', () => {
    const r = new RtoEstimator();
    r.sample(1);
    expect(r.rto).toBe(RTO_MIN);
    r.backoff();
    expect(r.rto).toBe(2 * RTO_MIN);
    for (let i = 0; i < 20; i++) r.backoff();
    expect(r.rto).toBe(RTO_MAX);
  });
});

describe('lossy, reordering, duplicating channel (property)', () => {
  it('every octet arrives once and in order, whatever is dropped, delayed or duplicated', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40_000 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer(),
        (size, lossPct, maxJitter, dupPct, seed) => {
          // Each segment's fate from a hash of (seed, its number): no period for the TCB to fall in step with.
          const h = (n: number, salt: number) => (Math.imul(n ^ seed, 0x9e3779b1) ^ Math.imul(salt, 0x85ebca6b)) >>> 0;
          const p = pair({
            drop: (n) => h(n, 1) % 100 < lossPct,
            jitter: (n) => h(n, 2) % (maxJitter + 1),
            dup: (n) => h(n, 3) % 100 < dupPct,
            a: { maxRetries: 50, synRetries: 50 },
            b: { maxRetries: 50, synRetries: 50 },
          });
          const data = pattern(size);
          transfer(p, data, 100_000_000);
          expect(p.b.delivered).toBe(size);
          expect(same(p.received(), data)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });
});
