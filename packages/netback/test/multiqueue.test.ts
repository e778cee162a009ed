/**
 * netback's multi-queue vif, in process against a scripted frontend (Linux
 * xen-netback's connect, connect_data_rings, xenvif_select_queue): queues
 * from queue-N keys, the flat layout for one, the refusals (too many, none,
 * a missing queue key), each queue served on its own with its own counters,
 * and RX steering without a hash (the flow hash scaled into the queues).
 */
import { describe, expect, it } from 'vitest';
import { VIF_KEY, XenbusState, reciprocalScale } from '@xsim/hypervisor';
import { MqHarness, deliverUdp } from './mq-rig.ts';
import { NetbackHarness } from '../../../test/fixtures/netback-harness.ts';

function refused(h: NetbackHarness, reason: RegExp): void {
  expect(h.vif.connected).toBe(false);
  expect(h.vif.state).toBe(XenbusState.Closing);
  expect(h.vif.fatalReason).toMatch(reason);
}

describe('queues from the frontend (connect, connect_data_rings)', () => {
  it('multi-queue-num-queues 4 with queue-0..3/ keys: four queues, each its rings and split channels bound in order', () => {
    const m = new MqHarness(4);
    const h = m.h;
    expect(h.vif.connected).toBe(true);
    expect(h.vif.numQueues).toBe(4);
    expect(h.bound.map((b) => b.remote)).toEqual([10, 11, 12, 13, 14, 15, 16, 17]);
    expect(h.vif.stats().queues.map((q) => q.splitEventChannels)).toEqual([true, true, true, true]);
  });

  it('each queue is served on its own: a frame on queue 2 is taken from its ring, answered on its TX port, counted in its counters and the totals', () => {
    const m = new MqHarness(4);
    const h = m.h;
    // Local ports: queue q's TX is 3 + 2q, RX 4 + 2q.
    m.send(2, 0, 200);
    m.send(2, 1, 300);
    m.send(0, 2, 100);
    h.vif.poll();
    expect(h.sink.frames.map((f) => f.length)).toEqual([100, 200, 300]);
    expect(h.notifies.ports).toEqual([3, 7]);
    const qs = h.vif.stats().queues;
    expect(qs.map((q) => q.txPackets)).toEqual([1, 0, 2, 0]);
    expect(qs[2].txBytes).toBe(500);
    expect(h.vif.c.txPackets).toBe(3);
    expect(m.rings[2].tx.rspProd).toBe(2);
    expect(m.rings[1].tx.rspProd).toBe(0);
  });

  it('no multi-queue-num-queues: one queue from the flat keys (a frontend that knows nothing of queues)', () => {
    const h = new NetbackHarness();
    expect(h.vif.numQueues).toBe(1);
    expect(h.bound).toEqual([{ remote: 5, local: 3 }]);
  });

  it('multi-queue-num-queues 1: the flat keys too, queue-0/ is not looked at', () => {
    const h = new NetbackHarness({ frontend: { [VIF_KEY.multiQueueNumQueues]: '1', [`queue-0/${VIF_KEY.txRingRef}`]: '77' } });
    expect(h.vif.numQueues).toBe(1);
    expect(h.bound).toEqual([{ remote: 5, local: 3 }]);
  });

  it.each([
    ['5, over max_queues 4', 5, {}, /guest requested 5 queues, but valid range is 1 - 4\./],
    ['3, over max_queues 2', 3, { maxQueues: 2 }, /guest requested 3 queues, but valid range is 1 - 2\./],
    ['0', 0, {}, /guest requested 0 queues, but valid range is 1 - 4\./],
  ])('multi-queue-num-queues %s: refused as Linux refuses it (xenbus_dev_fatal), nothing mapped or bound', (_what, n, params, reason) => {
    const m = new MqHarness(Math.max(n, 1), { refused: true, params, frontend: { [VIF_KEY.multiQueueNumQueues]: String(n) } });
    refused(m.h, reason);
    expect(m.h.bound).toEqual([]);
    expect(m.h.ops.activeMappings).toBe(0);
  });

  it("a missing queue-2/rx-ring-ref: refused naming the queue's directory; queues 0 and 1 are unmapped and their ports closed again", () => {
    const m = new MqHarness(4, { refused: true, keys: (q) => (q === 2 ? { 'rx-ring-ref': null } : {}) });
    refused(m.h, /reading .*\/queue-2\/ring-ref/);
    expect(m.h.ops.activeMappings).toBe(0);
    expect(m.h.closed.sort()).toEqual(m.h.bound.map((b) => b.local).sort());
    expect(m.h.bound).toHaveLength(4);
  });

  it('queue keys written flat although 2 queues are asked for: refused (queue-0/ has none)', () => {
    const h = new NetbackHarness({ refused: true, frontend: { [VIF_KEY.multiQueueNumQueues]: '2' } });
    refused(h, /reading .*\/queue-0\/ring-ref/);
  });

  it("a queue's event channels: split, or the single event-channel in its directory", () => {
    const m = new MqHarness(2, { keys: (q) => (q === 1 ? { 'event-channel-tx': null, 'event-channel-rx': null, 'event-channel': '30' } : {}) });
    expect(m.h.bound.map((b) => b.remote)).toEqual([10, 11, 30]);
    expect(m.h.vif.stats().queues.map((q) => q.splitEventChannels)).toEqual([true, false]);
  });

  it("disconnect: every queue's rings and ports given back, its counters kept in the vif's totals", () => {
    const m = new MqHarness(3);
    m.send(1, 0, 200);
    m.h.vif.poll();
    m.h.vif.remove();
    expect(m.h.ops.activeMappings).toBe(0);
    expect(m.h.closed.sort((a, b) => a - b)).toEqual([3, 4, 5, 6, 7, 8]);
    expect(m.h.vif.c.txPackets).toBe(1);
    expect(m.h.vif.stats().queues).toEqual([]);
  });

  it("the rate applies to each queue (xen_net_rate_changed sets every queue's credit): two queues may each send the rate's bytes", () => {
    const m = new MqHarness(2, { rate: '1000,1000000' });
    // The first window's credit: 1000 bytes per queue; a 600-byte frame fits once on each.
    for (const q of [0, 0, 1, 1]) m.send(q, 0, 600);
    m.h.vif.poll();
    expect(m.h.vif.stats().queues.map((q) => q.txPackets)).toEqual([1, 1]);
  });
});

describe('RX steering without a hash (xenvif_select_queue: netdev_pick_tx)', () => {
  it("each frame goes to reciprocal_scale(skb_get_hash, queues): flows spread, a flow's frames stay on one queue", () => {
    const m = new MqHarness(4);
    for (let q = 0; q < 4; q++) m.post(q, 20);
    const want = [0, 0, 0, 0];
    for (let f = 0; f < 16; f++) {
      const hash = deliverUdp(m.h, 40000 + f);
      deliverUdp(m.h, 40000 + f);
      want[reciprocalScale(hash, 4)] += 2;
    }
    m.h.vif.poll();
    expect(m.h.vif.stats().queues.map((q) => q.rxPackets)).toEqual(want);
    expect(want.filter((n) => n > 0).length).toBeGreaterThan(1);
    // No hash configured: no HASH extra-info slot with the frames.
    expect(m.h.vif.c.rxHashExtras).toBe(0);
    expect(m.rxResponses(0).every((r) => r.status > 0)).toBe(true);
  });
});
