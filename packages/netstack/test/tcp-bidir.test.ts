/**
 * Both ends sending at once over a lossy, reordering, duplicating channel,
 * with the options each may or may not offer (timestamps, window scaling,
 * SACK), MSS, receive windows from 1000 octets to 1 MiB, delayed ACKs on or
 * off, TSO, and either congestion control: data segments then carry ACKs
 * and SACK blocks, both directions recover at once. Every octet must arrive
 * once and in order both ways, every segment fit the MTU its MSS implies
 * (20 + 20 + MSS, the SACK blocks taken off the payload) unless it is a TSO
 * one, and no ACK name what the other side never sent.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CcName, type TcbOptions } from '../src/tcp/index.ts';
import { ackChecker, countsAddUp, lossy, pair, pattern, same } from './tcp-harness.ts';

const RUNS = 150;

const sideArb = fc.record({
  cc: fc.constantFrom<CcName>('newreno', 'cubic'),
  timestamps: fc.boolean(),
  windowScaling: fc.boolean(),
  sack: fc.boolean(),
  mss: fc.constantFrom(536, 1000, 1460),
  rcvWnd: fc.oneof(fc.integer({ min: 1000, max: 65535 }), fc.integer({ min: 65536, max: 1 << 20 })),
  delAckMs: fc.constantFrom(0, 40, 200),
  tsoMax: fc.constantFrom(0, 0, 16_384, 65_536),
});

describe('both directions at once (property)', () => {
  it(`every octet once and in order both ways; segments within the MTU; no ACK of unsent data (${RUNS} runs)`, () => {
    const seen = { sackBlocksOnData: 0, recoveries: 0, runs: 0 };
    fc.assert(
      fc.property(
        sideArb,
        sideArb,
        fc.integer({ min: 0, max: 120_000 }),
        fc.integer({ min: 0, max: 120_000 }),
        fc.integer({ min: 0, max: 15 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer(),
        (oa, ob, sizeA, sizeB, lossPct, maxJitter, dupPct, seed) => {
          const check = ackChecker(() => p);
          const common: Partial<TcbOptions> = { maxRetries: 60, synRetries: 60, sndBuf: 64 * 1024 };
          const p = pair({
            ...lossy(seed, lossPct, maxJitter, dupPct),
            gsoSplit: true,
            tap: (from, seg, len, gso) => {
              check(from, seg, len);
              const me = from === 'a' ? oa : ob;
              const hlen = (seg[12] >>> 4) * 4;
              if (!gso) expect(len).toBeLessThanOrEqual(20 + me.mss);
              // A data segment with more than the timestamps' options carries SACK blocks.
              if (len > hlen && !(seg[13] & 0x02) && hlen > 32) seen.sackBlocksOnData++;
            },
            a: { ...common, ...oa },
            b: { ...common, ...ob },
          });
          const da = pattern(sizeA);
          const db = pattern(sizeB).reverse();
          let offA = 0;
          let offB = 0;
          p.b.listen(0);
          p.a.connect(0);
          p.run(100_000_000, 3_000_000, () => {
            const { a, b } = p;
            const t = p.clock.t;
            if (a.state === 'ESTABLISHED' || a.state === 'CLOSE-WAIT') {
              if (offA < sizeA) offA += a.send(da, offA, sizeA - offA, t);
              else a.close(t);
            }
            if (b.state === 'ESTABLISHED' || b.state === 'CLOSE-WAIT') {
              if (offB < sizeB) offB += b.send(db, offB, sizeB - offB, t);
              else b.close(t);
            }
          });
          expect(same(p.received(), da)).toBe(true);
          expect(same(p.received(true), db)).toBe(true);
          expect(p.a.state).toBe('CLOSED');
          expect(p.b.state).toBe('CLOSED');
          countsAddUp(p.a);
          countsAddUp(p.b);
          seen.recoveries += p.a.counters.tcpFastRecoveries + p.b.counters.tcpFastRecoveries;
          seen.runs++;
        },
      ),
      { numRuns: RUNS },
    );
    expect(seen.recoveries).toBeGreaterThan(0);
    console.log(
      `tcp bidirectional property: ${seen.runs} runs, ${seen.recoveries} fast recoveries, ${seen.sackBlocksOnData} data segments carrying SACK blocks`,
    );
  });
});
