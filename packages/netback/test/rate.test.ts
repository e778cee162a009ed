/**
 * A vif's TX rate limit, after Linux xen-netback: the credit algorithm on its
 * own (tx_add_credit, tx_credit_exceeded, xen_net_rate_changed) against a
 * clock the test moves, then the TX path of a real vif: frames over the
 * credit stay in the ring, unanswered, until the credit timer, and a long
 * stream goes out at the limit, nothing dropped. One test per malformed
 * rate node.
 */
import { describe, expect, it } from 'vitest';
import { NETIF_RSP_OKAY, VIF_KEY } from '@xsim/hypervisor';
import { CREDIT_MAX_BURST, TxCredit, parseRate } from '@xsim/netback';
import { NetbackHarness } from '../../../test/fixtures/netback-harness.ts';
import { frameIn, publish, txResponses } from './rig.ts';

function clock(t = 0) {
  return {
    t,
    now(): number {
      return this.t;
    },
  };
}

describe('the rate node (xen_net_read_rate)', () => {
  it('"BYTES,USEC"', () => {
    expect(parseRate('25000,20000')).toEqual({ rate: { bytes: 25000, usec: 20000 } });
    expect(parseRate(undefined)).toEqual({ rate: null });
  });

  it.each(['10Mb/s@20ms', '25000', '25000,', ',20000', '25000;20000', ' 25000,20000', '25000,20000 ', '-1,20000', '0x10,20000', ''])(
    'malformed %j: unlimited, with the reason',
    (v) => {
      const r = parseRate(v);
      expect(r.rate).toBeNull();
      expect(r.error).toMatch(/is not BYTES,USEC: traffic unlimited/);
    },
  );
});

describe('the credit (tx_add_credit, tx_credit_exceeded)', () => {
  it('unlimited: every frame goes', () => {
    const c = new TxCredit(clock());
    c.start(null);
    for (let i = 0; i < 1000; i++) expect(c.take(65535)).toBe(true);
    expect(c.timerAt).toBe(Infinity);
  });

  it('BYTES per window: what does not fit waits for the timer at the next window, which adds BYTES', () => {
    const k = clock(1000);
    const c = new TxCredit(k);
    c.start({ bytes: 25000, usec: 20000 });
    let sent = 0;
    while (c.take(1514)) sent++;
    expect(sent).toBe(16); // 16 * 1514 = 24224 of 25000
    expect(c.timerAt).toBe(1020);
    k.t = 1019;
    expect(c.fire()).toBe(false);
    expect(c.take(1514)).toBe(false);
    k.t = 1020;
    expect(c.fire()).toBe(true);
    expect(c.remaining).toBe(776 + 25000);
    sent = 0;
    while (c.take(1514)) sent++;
    expect(sent).toBe(17);
    expect(c.timerAt).toBe(1040);
  });

  it('a guest idle for many windows gets one window of credit more, not one per window missed', () => {
    const k = clock(0);
    const c = new TxCredit(k);
    c.start({ bytes: 10000, usec: 10000 });
    expect(c.take(10000)).toBe(true);
    k.t = 1000;
    expect(c.take(10001)).toBe(false); // 0 + 10000 after the refill: one byte short
    expect(c.remaining).toBe(10000);
  });

  it('credit carries over up to the 128 KiB burst allowance, so a frame larger than BYTES still goes', () => {
    const k = clock(0);
    const c = new TxCredit(k);
    c.start({ bytes: 1000, usec: 1000 });
    let waited = 0;
    while (!c.take(9000)) {
      k.t = c.timerAt;
      c.fire();
      waited++;
    }
    expect(waited).toBe(8);
    // Never more than max(128 KiB, BYTES): a frame of 128 KiB + 1 would wait for ever.
    for (let i = 0; i < 200; i++) {
      expect(c.take(CREDIT_MAX_BURST + 1)).toBe(false);
      k.t = c.timerAt;
      c.fire();
    }
    expect(c.remaining).toBe(CREDIT_MAX_BURST);
    expect(c.take(CREDIT_MAX_BURST)).toBe(true);
  });

  it('above 128 KiB a refill tops up to BYTES, without carrying over', () => {
    const k = clock(0);
    const c = new TxCredit(k);
    c.start({ bytes: 200000, usec: 1000 });
    expect(c.take(150000)).toBe(true);
    k.t = 1;
    expect(c.take(60000)).toBe(true); // 50000 left, 60000 asked: the window passed, refilled to min(250000, 200000)
    expect(c.remaining).toBe(140000);
  });

  it('a rate changed while the timer is pending: the timer fires at once, at the new rate', () => {
    const k = clock(0);
    const c = new TxCredit(k);
    c.start({ bytes: 1000, usec: 50000 });
    expect(c.take(1514)).toBe(false);
    expect(c.timerAt).toBe(50);
    k.t = 5;
    c.change({ bytes: 100000, usec: 50000 });
    expect(c.timerAt).toBe(5);
    expect(c.fire()).toBe(true);
    expect(c.remaining).toBe(101000);
  });

  it('a rate lowered with no timer pending: credit above the new BYTES is cut to it; unlimited lifts it', () => {
    const c = new TxCredit(clock());
    c.start({ bytes: 100000, usec: 50000 });
    c.change({ bytes: 3000, usec: 50000 });
    expect(c.remaining).toBe(3000);
    expect(c.take(3001)).toBe(false);
    c.change(null);
    expect(c.unlimited).toBe(true);
  });

  it('a rate of 0 bytes lets nothing through, and re-arms at most once a jiffy (1 ms)', () => {
    const k = clock(0);
    const c = new TxCredit(k);
    c.start({ bytes: 0, usec: 0 });
    for (let i = 0; i < 10; i++) {
      expect(c.take(64)).toBe(false);
      expect(c.timerAt).toBe(k.t + 1);
      k.t = c.timerAt;
      c.fire();
    }
  });
});

/** The guest keeps its TX ring full of `size`-byte frames; dom0 runs, and its clock jumps to the credit timer when it has nothing to do. */
function stream(h: NetbackHarness, frames: number, size: number): { times: number[]; polls: number } {
  frameIn(h, 0, size);
  const times: number[] = [];
  let published = 0;
  let polls = 0;
  while (h.sink.frames.length < frames) {
    const free = h.tx.size - (h.tx.reqProd - h.tx.rspProd);
    const n = Math.min(free, frames - published);
    if (n > 0)
      publish(
        h,
        Array.from({ length: n }, () => ({ gref: h.dataRefs[0], size })),
      );
    published += n;
    const before = h.sink.frames.length;
    polls++;
    if (h.vif.poll() === 0) {
      const t = h.vif.nextDeadline();
      if (t === Infinity) throw new Error(`stalled with no timer after ${before} frames`);
      h.clock.t = t;
    }
    for (let i = before; i < h.sink.frames.length; i++) times.push(h.clock.t);
  }
  return { times, polls };
}

describe('a rate-limited vif (netback TX)', () => {
  it('frames over the credit stay in the ring unanswered until the credit timer; none is dropped', () => {
    const h = new NetbackHarness({ rate: '5000,10000' });
    frameIn(h, 0, 1000);
    publish(
      h,
      Array.from({ length: 12 }, () => ({ gref: h.dataRefs[0], size: 1000 })),
    );
    h.vif.poll();
    expect(txResponses(h)).toHaveLength(5);
    expect(h.sink.frames).toHaveLength(5);
    expect(h.vif.c.txCreditStalls).toBe(1);
    // Polling before the timer changes nothing, and counts no new stall.
    h.clock.t += 9;
    h.vif.poll();
    expect(txResponses(h)).toHaveLength(5);
    expect(h.vif.c.txCreditStalls).toBe(1);
    expect(h.vif.nextDeadline()).toBe(h.clock.t + 1);
    h.clock.t += 1;
    h.vif.poll();
    expect(txResponses(h)).toHaveLength(10);
    h.clock.t = h.vif.nextDeadline();
    h.vif.poll();
    expect(txResponses(h).map((r) => r.status)).toEqual(Array(12).fill(NETIF_RSP_OKAY));
    expect(h.sink.frames).toHaveLength(12);
    expect(h.vif.c.txCreditStalls).toBe(2);
    expect(h.vif.stats().rate).toBe('5000,10000');
  });

  it('a long stream goes out at the limit (xl rate=10Mb/s@20ms: 25000 bytes every 20 ms), within 1 %', () => {
    const h = new NetbackHarness({ rate: '25000,20000' });
    const t0 = h.clock.t;
    const { times } = stream(h, 4000, 1514);
    const bytes = 4000 * 1514;
    const elapsed = times.at(-1)! - t0;
    const achieved = (bytes / elapsed) * 1000; // bytes per second
    expect(achieved / 1_250_000).toBeGreaterThan(0.99);
    expect(achieved / 1_250_000).toBeLessThan(1.01);
    // Never ahead of the credit: by time t, at most one window's credit per window begun, plus the first.
    times.forEach((t, i) => expect((i + 1) * 1514).toBeLessThanOrEqual(25000 * (1 + Math.floor((t - t0) / 20))));
    expect(txResponses(h).every((r) => r.status === NETIF_RSP_OKAY)).toBe(true);
    expect(h.vif.c.txErrResponses).toBe(0);
  });

  it('the rate node changed while connected applies at once (xen_net_rate_changed)', () => {
    const h = new NetbackHarness({ rate: '1000,100000' });
    frameIn(h, 0, 1000);
    publish(
      h,
      Array.from({ length: 4 }, () => ({ gref: h.dataRefs[0], size: 1000 })),
    );
    h.vif.poll();
    expect(h.sink.frames).toHaveLength(1);
    expect(h.vif.nextDeadline()).toBe(h.clock.t + 100);
    h.store.write(0, `${h.be}/${VIF_KEY.rate}`, '1000000,100000');
    expect(h.vif.nextDeadline()).toBe(h.clock.t);
    h.vif.poll();
    expect(h.sink.frames).toHaveLength(4);
    h.store.rm(0, `${h.be}/${VIF_KEY.rate}`);
    expect(h.vif.stats().rate).toBeNull();
  });

  it('a malformed rate node: warned once, traffic unlimited', () => {
    const h = new NetbackHarness({ rate: '10Mb/s@20ms' });
    expect(h.vif.stats().rate).toBeNull();
    expect(h.log.filter((l) => l.includes('rate "10Mb/s@20ms" is not BYTES,USEC: traffic unlimited'))).toHaveLength(1);
    frameIn(h, 0, 1500);
    publish(
      h,
      Array.from({ length: 200 }, () => ({ gref: h.dataRefs[0], size: 1500 })),
    );
    h.vif.poll();
    h.vif.poll();
    h.vif.poll();
    h.vif.poll();
    expect(h.sink.frames).toHaveLength(200);
  });
});
