/**
 * CUBIC (RFC 9438) on its own, on a virtual clock: the reduction by β = 0.7,
 * K, the concave climb back to W_max and the convex probe beyond it
 * (W_cubic(t) = C(t - K)^3 + W_max), fast convergence, the Reno-friendly
 * region on a short RTT, the timeout; and CUBIC as the TCB's default.
 */
import { describe, expect, it } from 'vitest';
import { CUBIC_ALPHA, CUBIC_BETA, CUBIC_C, Cubic, NewReno, type CongestionControl } from '../src/tcp/index.ts';
import { scripted } from './tcp-harness.ts';

const MSS = 1000;
const seg = (n: number) => n * MSS;

/** A cwnd-limited sender for `ms` of virtual time: each RTT the whole window is ACKed, one segment at a time. */
function run(cc: CongestionControl, from: number, ms: number, rtt: number): number[] {
  const perRtt: number[] = [];
  for (let t = from; t < from + ms; t += rtt) {
    const w = cc.cwnd;
    for (let acked = 0; acked < w; acked += MSS) cc.onAck(MSS, MSS, true, t, rtt);
    perRtt.push(cc.cwnd);
  }
  return perRtt;
}

/** A CUBIC in congestion avoidance right after a loss at a window of `w` octets (all in flight). */
function afterLoss(w: number): Cubic {
  const cc = new Cubic();
  cc.init(10 * MSS, 0);
  cc.cwnd = w;
  cc.onLoss(w, MSS, 0);
  cc.cwnd = cc.ssthresh;
  return cc;
}

describe('CUBIC (RFC 9438)', () => {
  it('constants: C = 0.4, β = 0.7, α = 3(1-β)/(1+β)', () => {
    expect([CUBIC_C, CUBIC_BETA]).toEqual([0.4, 0.7]);
    expect(CUBIC_ALPHA).toBeCloseTo(0.9 / 1.7, 10);
  });

  it('a loss: ssthresh = 0.7 * FlightSize, W_max = cwnd, and K = cbrt(W_max(1-β)/C) at the epoch start', () => {
    const cc = afterLoss(seg(100));
    expect(cc.ssthresh).toBe(seg(70));
    expect(cc.wMax).toBe(seg(100));
    cc.onAck(MSS, MSS, true, 1000, 100);
    expect(cc.k).toBeCloseTo(Math.cbrt((100 - 70) / 0.4), 6);
  });

  it('climbs concave back to W_max around K, plateaus, then probes convex beyond it, following W_cubic', () => {
    const cc = afterLoss(seg(100));
    const rtt = 100;
    const w = run(cc, 1000, 8000, rtt); // epoch starts at 1000 ms
    const K = Math.cbrt((100 - 70) / 0.4);
    const at = (s: number) => w[Math.round((s * 1000) / rtt) - 1] / MSS;
    // Concave: fast at first, slow near W_max.
    expect(at(1) - at(0.1)).toBeGreaterThan(at(K) - at(K - 0.9));
    expect(at(K)).toBeGreaterThan(97);
    expect(at(K)).toBeLessThan(103);
    // Convex beyond: the growth speeds up again, and stays near the curve (one RTT ahead, the target's horizon).
    expect(at(5.6) - at(4.6)).toBeGreaterThan(at(K + 0.5) - at(K - 0.5));
    for (const t of [1, 2, 3, K, 5, 5.5]) {
      const curve = CUBIC_C * (t + rtt / 1000 - K) ** 3 + 100;
      expect(Math.abs(at(t) - curve) / curve).toBeLessThan(0.03);
    }
    // Past W_max the Reno-friendly estimate grows one segment per RTT (α = 1) and overtakes the curve on this 100 ms RTT.
    expect(at(7.5) - at(6.5)).toBeGreaterThan(9);
    expect(at(7.5) - at(6.5)).toBeLessThan(11);
    expect(at(7.5)).toBeGreaterThan(CUBIC_C * (7.5 - K) ** 3 + 100);
  });

  it('fast convergence: a loss below the previous W_max sets W_max = cwnd * (1 + β) / 2', () => {
    const cc = afterLoss(seg(100));
    cc.cwnd = seg(80);
    cc.onLoss(seg(80), MSS, 5000);
    expect(cc.wMax).toBe(seg(80) * 0.85);
    expect(cc.ssthresh).toBe(seg(56));
  });

  it('the Reno-friendly region: on a 1 ms RTT cwnd follows W_est, above W_cubic', () => {
    const cc = afterLoss(seg(20));
    const w = run(cc, 1000, 200, 1); // 200 RTTs in 0.2 s
    expect(cc.wEst).toBeGreaterThan(seg(14 + 100));
    expect(w.at(-1)).toBeGreaterThanOrEqual(Math.floor(cc.wEst) - MSS);
    const t = 0.2;
    expect(w.at(-1)).toBeGreaterThan((CUBIC_C * (t - cc.k) ** 3 + 20) * MSS);
  });

  it('a timeout: ssthresh = 0.7 * FlightSize, cwnd one segment, W_max the window before', () => {
    const cc = new Cubic();
    cc.init(seg(50), 0);
    cc.onTimeout(seg(50), MSS, true, 100);
    expect([cc.cwnd, cc.ssthresh, cc.wMax]).toEqual([MSS, seg(35), seg(50)]);
  });

  it('on a long RTT CUBIC regains the window faster than NewReno after the same loss', () => {
    const cubic = afterLoss(seg(200));
    const reno = new NewReno();
    reno.init(seg(10), 0);
    reno.cwnd = seg(200);
    reno.onLoss(seg(200), MSS, 0);
    reno.cwnd = reno.ssthresh;
    run(cubic, 0, 5000, 100);
    run(reno, 0, 5000, 100);
    expect(cubic.cwnd).toBeGreaterThan(seg(195));
    expect(reno.cwnd).toBeLessThan(seg(160));
  });

  it('in a TCB: three duplicate ACKs set ssthresh to 0.7 of the flight and W_max to the window', () => {
    const h = scripted({ sndBuf: 1 << 20 });
    h.establish();
    h.tcb.send(new Uint8Array(100_000), 0, 100_000, 0);
    const cwnd = h.tcb.cwnd;
    for (let i = 0; i < 4; i++) h.peer(0x10, h.R(0), h.S(1460));
    const flight = h.tcb.sndMax - h.tcb.sndUna; // at the loss (limited transmit's two included); the recovery sent nothing new yet
    expect(h.tcb.inRecovery).toBe(true);
    expect(h.tcb.ssthresh).toBe(Math.floor(flight * 0.7));
    expect((h.tcb.cc as Cubic).wMax).toBe(cwnd + 1460);
  });

  it('is the TCB default; cc: newreno chooses NewReno', () => {
    expect(scripted().tcb.cc.name).toBe('cubic');
    expect(scripted({ cc: 'newreno' }).tcb.cc.name).toBe('newreno');
  });
});
