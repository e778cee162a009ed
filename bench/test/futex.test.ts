/**
 * The futex round trip the bench records at its start: two worker threads
 * really ping-pong (finite, positive times, as many as asked, the p99 not
 * under the median). No speed is asserted: the machines are shared.
 */
import { describe, expect, it } from 'vitest';
import { futexRoundTrip } from '../src/index.ts';

describe('futex round trip', () => {
  it('measures the round trips asked for, each a finite positive time', async () => {
    const r = await futexRoundTrip(500, { warmup: 50 });
    expect(r.roundTrips).toBe(500);
    expect(Number.isFinite(r.medianUs) && r.medianUs > 0).toBe(true);
    expect(Number.isFinite(r.p99Us)).toBe(true);
    expect(r.p99Us).toBeGreaterThanOrEqual(r.medianUs);
    expect(r.noSleep).toBeGreaterThanOrEqual(0);
    expect(r.noSleep).toBeLessThanOrEqual(550);
  });

  it('bounds the count it is given', async () => {
    expect((await futexRoundTrip(0, { warmup: 0 })).roundTrips).toBe(1);
  });
});
