/**
 * Congestion control (RFC 5681, RFC 6928) and loss recovery (fast
 * retransmit, NewReno fast recovery per RFC 6582, limited transmit per RFC
 * 3042): the window arithmetic on its own, then a TCB driven by a scripted
 * peer (initial window, slow start, three duplicate ACKs, partial and full
 * ACKs, the timeout's loss window, restart after idle), then a property over
 * a lossy, reordering, duplicating channel.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NewReno, SSTHRESH_INITIAL, TCP_ACK, TCP_FIN, TCP_SYN, initialWindow, type CcName } from '../src/tcp/index.ts';
import { ackChecker, countsAddUp, lossy, pair, pattern, same, scripted, transfer } from './tcp-harness.ts';

const A = TCP_ACK;
const MSS = 1460;

describe('NewReno windows (RFC 5681)', () => {
  it('initial window per RFC 6928: ten segments up to an SMSS of 1460, then 14600 octets but at least two segments', () => {
    expect(initialWindow(1460)).toBe(14600);
    expect(initialWindow(536)).toBe(5360);
    expect(initialWindow(4000)).toBe(14600);
    expect(initialWindow(9000)).toBe(18000);
  });

  it('slow start adds min(N, 2*SMSS) per ACK; congestion avoidance one SMSS per cwnd of octets ACKed', () => {
    const cc = new NewReno();
    cc.init(14600, 0);
    expect(cc.ssthresh).toBe(SSTHRESH_INITIAL);
    cc.onAck(1460, MSS, true, 0, 10);
    expect(cc.cwnd).toBe(16060);
    cc.onAck(10_000, MSS, true, 0, 10);
    expect(cc.cwnd).toBe(16060 + 2 * MSS);
    cc.onAck(1460, MSS, false, 0, 10); // not cwnd-limited: no growth
    expect(cc.cwnd).toBe(16060 + 2 * MSS);
    cc.onLoss(20_000, MSS, 0);
    expect(cc.ssthresh).toBe(10_000);
    cc.cwnd = 10_000;
    for (let i = 0; i < 6; i++) cc.onAck(1460, MSS, true, 0, 10); // 8760 < cwnd
    expect(cc.cwnd).toBe(10_000);
    cc.onAck(1460, MSS, true, 0, 10); // 10220 >= 10000: one SMSS more
    expect(cc.cwnd).toBe(10_000 + MSS);
  });

  it('ssthresh = max(FlightSize/2, 2*SMSS); a timeout sets the loss window, lowering ssthresh only the first time', () => {
    const cc = new NewReno();
    cc.init(14600, 0);
    cc.onLoss(2000, MSS, 0);
    expect(cc.ssthresh).toBe(2 * MSS);
    cc.onTimeout(40_000, MSS, true, 0);
    expect([cc.cwnd, cc.ssthresh]).toEqual([MSS, 20_000]);
    cc.onTimeout(MSS, MSS, false, 0);
    expect([cc.cwnd, cc.ssthresh]).toEqual([MSS, 20_000]);
  });
});

/** Established with NewReno, `n` octets queued (sent as the windows allow). */
function sending(n: number, o: Parameters<typeof scripted>[0] = {}) {
  const h = scripted({ cc: 'newreno', sndBuf: 1 << 20, ...o });
  h.establish();
  h.tcb.send(new Uint8Array(n), 0, n, 0);
  return h;
}

describe('a TCB under congestion control', () => {
  it('sends the initial window of ten segments, then two per ACK of one in slow start', () => {
    const h = sending(100_000);
    expect(h.sent.map((s) => s.len)).toEqual(Array(10).fill(MSS));
    expect(h.tcb.cwnd).toBe(14600);
    h.sent.length = 0;
    h.peer(A, h.R(0), h.S(MSS));
    expect(h.tcb.cwnd).toBe(16060);
    expect(h.sent.map((s) => s.seq)).toEqual([h.S(10 * MSS), h.S(11 * MSS)]);
  });

  it('three duplicate ACKs: limited transmit on the first two, then fast retransmit and recovery (RFC 5681 §3.2, RFC 3042)', () => {
    const h = sending(100_000);
    h.peer(A, h.R(0), h.S(MSS)); // 11 outstanding after it, cwnd 16060
    h.sent.length = 0;
    h.peer(A, h.R(0), h.S(MSS));
    h.peer(A, h.R(0), h.S(MSS));
    expect(h.sent.map((s) => s.seq)).toEqual([h.S(12 * MSS), h.S(13 * MSS)]); // limited transmit, new data
    const flight = h.tcb.sndMax - h.tcb.sndUna;
    h.peer(A, h.R(0), h.S(MSS));
    expect(h.sent[2]).toMatchObject({ seq: h.S(MSS), len: MSS });
    expect(h.tcb.counters.tcpTxFastRetransmits).toBe(1);
    expect(h.tcb.counters.tcpFastRecoveries).toBe(1);
    expect(h.tcb.inRecovery).toBe(true);
    expect(h.tcb.ssthresh).toBe(Math.floor(flight / 2));
    expect(h.tcb.cwnd).toBe(h.tcb.ssthresh + 3 * MSS);
  });

  it('in recovery each further duplicate ACK inflates cwnd by one SMSS and may let new data out', () => {
    const h = sending(200_000);
    for (let i = 0; i < 4; i++) h.peer(A, h.R(0), h.S(MSS));
    const cwnd = h.tcb.cwnd;
    h.peer(A, h.R(0), h.S(MSS));
    expect(h.tcb.cwnd).toBe(cwnd + MSS);
  });

  it('a partial ACK retransmits the next hole at once and deflates; a full ACK ends recovery with cwnd =< ssthresh (RFC 6582)', () => {
    const h = sending(100_000);
    for (let i = 0; i < 4; i++) h.peer(A, h.R(0), h.S(MSS));
    const recover = h.tcb.sndMax;
    h.sent.length = 0;
    const before = h.tcb.cwnd;
    h.peer(A, h.R(0), h.S(3 * MSS)); // partial: two segments ACKed, the one at 3*MSS lost too
    expect(h.sent[0]).toMatchObject({ seq: h.S(3 * MSS), len: MSS });
    expect(h.tcb.counters.tcpTxFastRetransmits).toBe(2);
    expect(h.tcb.cwnd).toBe(before - 2 * MSS + MSS);
    expect(h.tcb.inRecovery).toBe(true);
    h.peer(A, h.R(0), recover);
    expect(h.tcb.inRecovery).toBe(false);
    expect(h.tcb.cwnd).toBeLessThanOrEqual(h.tcb.ssthresh);
    expect(h.tcb.counters.tcpFastRecoveries).toBe(1);
  });

  it('a timeout: ssthresh = FlightSize/2, cwnd one segment, go-back-N; duplicate ACKs for data sent before it start no recovery', () => {
    const h = sending(100_000);
    const flight = h.tcb.sndMax - h.tcb.sndUna;
    h.sent.length = 0;
    h.clock.t = h.tcb.nextTimer();
    h.tcb.tick(h.clock.t);
    expect(h.tcb.cwnd).toBe(MSS);
    expect(h.tcb.ssthresh).toBe(flight / 2);
    expect(h.sent).toEqual([expect.objectContaining({ seq: h.S(0), len: MSS })]);
    h.peer(A, h.R(0), h.S(MSS));
    expect(h.sent.slice(1).map((s) => s.seq)).toEqual([h.S(MSS), h.S(2 * MSS)]); // slow start again from the loss window
    for (let i = 0; i < 5; i++) h.peer(A, h.R(0), h.S(MSS));
    expect(h.tcb.counters.tcpFastRecoveries).toBe(0);
  });

  it('a lost SYN leaves an initial window of one segment (RFC 5681 §3.1)', () => {
    const h = scripted({ cc: 'newreno' });
    h.tcb.connect(0);
    h.clock.t = 1000;
    h.tcb.tick(1000);
    h.peer(TCP_SYN | A, h.R(-1), h.S(0), 0, { mss: 1460 });
    expect(h.tcb.state).toBe('ESTABLISHED');
    expect(h.tcb.cwnd).toBe(MSS);
  });

  it('after an idle period longer than the RTO, cwnd restarts from at most the initial window (RFC 5681 §4.1)', () => {
    const h = sending(30 * MSS);
    while (h.tcb.sndUna !== h.tcb.sndMax) h.peer(A, h.R(0), h.tcb.sndMax);
    expect(h.tcb.cwnd).toBeGreaterThan(14600);
    h.clock.t = 5000;
    h.sent.length = 0;
    h.tcb.send(new Uint8Array(100_000), 0, 100_000, h.clock.t);
    expect(h.tcb.cwnd).toBe(14600);
    expect(h.sent).toHaveLength(10);
  });

  it('an application that sends little does not grow cwnd (not cwnd-limited)', () => {
    const h = sending(100);
    for (let i = 0; i < 50; i++) {
      h.peer(A, h.R(0), h.tcb.sndMax);
      h.tcb.send(new Uint8Array(100), 0, 100, 0);
    }
    expect(h.tcb.cwnd).toBe(14600);
  });

  it('the FIN is retransmitted by a partial ACK when it is the next hole', () => {
    const h = sending(3 * MSS);
    h.tcb.close(0);
    for (let i = 0; i < 4; i++) h.peer(A, h.R(0), h.S(0));
    expect(h.tcb.counters.tcpFastRecoveries).toBe(1);
    h.sent.length = 0;
    h.peer(A, h.R(0), h.S(3 * MSS));
    expect(h.sent[0]).toMatchObject({ flags: TCP_FIN | A, seq: h.S(3 * MSS) });
  });
});

/** The channel property, run for one congestion control. */
function channelProperty(cc: CcName, sack: boolean, runs: number): { recoveries: number; timeouts: number; sackRtx: number } {
  const seen = { recoveries: 0, timeouts: 0, sackRtx: 0 };
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200_000 }),
      fc.integer({ min: 0, max: 20 }),
      fc.integer({ min: 0, max: 30 }),
      fc.integer({ min: 0, max: 10 }),
      fc.integer(),
      (size, lossPct, maxJitter, dupPct, seed) => {
        const p = pair({
          ...lossy(seed, lossPct, maxJitter, dupPct),
          tap: ackChecker(() => p),
          a: { cc, sack, maxRetries: 50, synRetries: 50, sndBuf: 64 * 1024 },
          b: { cc, sack, maxRetries: 50, synRetries: 50 },
        });
        const data = pattern(size);
        let off = 0;
        p.b.listen(0);
        p.a.connect(0);
        p.run(100_000_000, 2_000_000, () => {
          const a = p.a;
          if (a.state === 'ESTABLISHED') {
            expect(a.cwnd).toBeGreaterThanOrEqual(a.sendMss);
            expect(a.ssthresh).toBeGreaterThanOrEqual(2 * a.sendMss);
          }
          if (off < size && a.state === 'ESTABLISHED') off += a.send(data, off, size - off, p.clock.t);
          if (off === size && a.state === 'ESTABLISHED') a.close(p.clock.t);
          if (p.b.state === 'CLOSE-WAIT') p.b.close(p.clock.t);
        });
        expect(p.b.delivered).toBe(size);
        expect(same(p.received(), data)).toBe(true);
        countsAddUp(p.a);
        countsAddUp(p.b);
        seen.recoveries += p.a.counters.tcpFastRecoveries;
        seen.timeouts += p.a.counters.tcpTimeouts;
        seen.sackRtx += p.a.counters.tcpTxSackRetransmits;
        if (!sack) expect(p.a.counters.tcpTxSackRetransmits + p.b.counters.tcpRxSackBlocks).toBe(0);
      },
    ),
    { numRuns: runs },
  );
  return seen;
}

describe('congestion control over a lossy, reordering, duplicating channel (property)', () => {
  it.each([
    ['newreno', false],
    ['newreno', true],
    ['cubic', false],
    ['cubic', true],
  ] as [CcName, boolean][])('%s, SACK %s: every octet once and in order, no ACK of unsent data, cwnd >= SMSS, ssthresh >= 2*SMSS (100 runs)', (cc, sack) => {
    const seen = channelProperty(cc, sack, 100);
    expect(seen.recoveries).toBeGreaterThan(0);
    if (sack) expect(seen.sackRtx).toBeGreaterThan(0);
    console.log(
      `tcp ${cc} sack=${sack} channel property: 100 runs, ${seen.recoveries} fast recoveries, ${seen.sackRtx} SACK retransmissions, ${seen.timeouts} timeouts`,
    );
  });

  it('a clean 1 MB transfer: no retransmission, cwnd grew past the initial window', () => {
    const p = pair({ a: { cc: 'newreno', sndBuf: 1 << 20 }, b: { rcvWnd: 65535 } });
    transfer(p, pattern(1 << 20));
    expect(p.b.delivered).toBe(1 << 20);
    expect(p.a.counters.tcpTxRetransmits).toBe(0);
    expect(p.a.cwnd).toBeGreaterThan(14600);
  });
});
