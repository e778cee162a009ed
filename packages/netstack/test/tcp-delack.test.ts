/**
 * Delayed ACKs (RFC 9293 §3.8.6.3, RFC 1122 §4.2.3.2, RFC 5681 §4.2): an
 * in-order segment's ACK waits up to 40 ms, the second full-sized one is
 * ACKed at once, and out-of-order data, a hole filled, old data again and a
 * FIN are ACKed at once; data of ours takes the ACK along.
 */
import { describe, expect, it } from 'vitest';
import { TCP_ACK, TCP_FIN } from '../src/tcp/index.ts';
import { pair, pattern, same, scripted, transfer } from './tcp-harness.ts';

const A = TCP_ACK;
const MSS = 1460;

function receiving(o: Parameters<typeof scripted>[0] = {}) {
  const h = scripted(o);
  h.establish();
  return h;
}

describe('delayed ACKs', () => {
  it('one full-sized segment: no ACK until the 40 ms timer, which nextTimer() shows and tick() runs', () => {
    const h = receiving();
    h.clock.t = 100;
    h.peer(A, h.R(0), h.S(0), MSS);
    expect(h.sent).toEqual([]);
    expect(h.tcb.nextTimer()).toBe(140);
    h.tcb.tick(139);
    expect(h.sent).toEqual([]);
    h.tcb.tick(140);
    expect(h.sent).toEqual([expect.objectContaining({ flags: A, ack: h.R(MSS) })]);
    expect(h.tcb.counters.tcpDelayedAcks).toBe(1);
    expect(h.tcb.nextTimer()).toBe(-1);
  });

  it('the second full-sized segment is ACKed at once, and the timer stops', () => {
    const h = receiving();
    h.peer(A, h.R(0), h.S(0), MSS);
    h.peer(A, h.R(MSS), h.S(0), MSS);
    expect(h.sent.map((s) => s.ack)).toEqual([h.R(2 * MSS)]);
    expect(h.tcb.nextTimer()).toBe(-1);
    expect(h.tcb.counters.tcpDelayedAcks).toBe(0);
  });

  it('small segments wait until more than one receive MSS is unACKed', () => {
    const h = receiving();
    for (let i = 0; i < 5; i++) h.peer(A, h.R(100 * i), h.S(0), 100);
    expect(h.sent).toEqual([]);
    h.peer(A, h.R(500), h.S(0), 100);
    expect(h.sent.map((s) => s.ack)).toEqual([h.R(600)]); // 600 > 536, the initial estimate
  });

  it('out-of-order data and the segment filling the hole are ACKed at once', () => {
    const h = receiving();
    h.peer(A, h.R(MSS), h.S(0), MSS);
    expect(h.sent.map((s) => s.ack)).toEqual([h.R(0)]);
    h.peer(A, h.R(0), h.S(0), MSS);
    expect(h.sent.map((s) => s.ack)).toEqual([h.R(0), h.R(2 * MSS)]);
  });

  it('old data again is ACKed at once', () => {
    const h = receiving();
    h.peer(A, h.R(0), h.S(0), 100);
    h.peer(A, h.R(0), h.S(0), 100);
    expect(h.sent.map((s) => s.ack)).toEqual([h.R(100)]);
  });

  it('a FIN is ACKed at once, with the data before it', () => {
    const h = receiving();
    h.peer(A, h.R(0), h.S(0), 100);
    h.peer(TCP_FIN | A, h.R(100), h.S(0));
    expect(h.sent.map((s) => s.ack)).toEqual([h.R(101)]);
  });

  it('data of ours takes the ACK along and the timer stops', () => {
    const h = receiving();
    h.peer(A, h.R(0), h.S(0), 100);
    h.tcb.send(new Uint8Array(10), 0, 10, 0);
    expect(h.sent).toEqual([expect.objectContaining({ ack: h.R(100), len: 10 })]);
    h.tcb.tick(40);
    expect(h.sent).toHaveLength(1);
  });

  it('delAckMs 0 ACKs every segment at once', () => {
    const h = receiving({ delAckMs: 0 });
    h.peer(A, h.R(0), h.S(0), 100);
    h.peer(A, h.R(100), h.S(0), 100);
    expect(h.sent.map((s) => s.ack)).toEqual([h.R(100), h.R(200)]);
  });

  it('delAckMs sets the delay', () => {
    const h = receiving({ delAckMs: 200 });
    h.peer(A, h.R(0), h.S(0), 100);
    expect(h.tcb.nextTimer()).toBe(200);
  });

  it('a bulk transfer sends about one ACK per two segments', () => {
    let acks = 0;
    let data = 0;
    const p = pair({
      tap: (from, seg, len) => {
        const hlen = (seg[12] >>> 4) * 4;
        if (from === 'b' && len === hlen) acks++;
        if (from === 'a' && len > hlen) data++;
      },
    });
    const d = pattern(1 << 20);
    transfer(p, d);
    expect(same(p.received(), d)).toBe(true);
    expect(acks).toBeLessThan(data * 0.6);
    expect(acks).toBeGreaterThan(data * 0.4);
  });
});

describe('stretch ACKs (a kernel that receives in batches, as Linux with GRO)', () => {
  it('a batch of full-sized segments gets one ACK, when the batch is over (its timer due at once)', () => {
    const h = receiving({ stretchAcks: true });
    h.clock.t = 100;
    for (let i = 0; i < 10; i++) h.peer(A, h.R(i * MSS), h.S(0), MSS);
    expect(h.sent).toEqual([]);
    expect(h.tcb.nextTimer()).toBe(100);
    h.tcb.tick(100);
    expect(h.sent).toEqual([expect.objectContaining({ flags: A, ack: h.R(10 * MSS) })]);
    expect(h.tcb.counters.tcpStretchAcks).toBe(1);
    expect(h.tcb.counters.tcpDelayedAcks).toBe(0);
    expect(h.tcb.nextTimer()).toBe(-1);
  });

  it('no ACK waits for more than 64 KiB; one segment alone still waits the 40 ms of a delayed ACK', () => {
    const h = receiving({ stretchAcks: true });
    for (let i = 0; i < 46; i++) h.peer(A, h.R(i * MSS), h.S(0), MSS);
    // 45 segments are 65700 octets: ACKed at once on the 45th; the 46th alone waits.
    expect(h.sent.map((x) => x.ack)).toEqual([h.R(45 * MSS)]);
    expect(h.tcb.nextTimer()).toBe(40);
    h.tcb.tick(40);
    expect(h.tcb.counters.tcpDelayedAcks).toBe(1);
  });

  it('out-of-order data is still ACKed at once (a duplicate ACK for the sender to count)', () => {
    const h = receiving({ stretchAcks: true });
    h.peer(A, h.R(0), h.S(0), MSS);
    h.peer(A, h.R(2 * MSS), h.S(0), MSS);
    expect(h.sent.map((x) => x.ack)).toEqual([h.R(MSS)]);
  });
});
