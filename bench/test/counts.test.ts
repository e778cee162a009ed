/**
 * What the bench counts of itself, on synthetic snapshots (no simulation):
 * the sender's fast-path share, every thread's wake-ups, and the copies of a
 * frame at each counted site.
 */
import { describe, expect, it } from 'vitest';
import type { StatsTree } from '@xsim/toolstack';
import { COPY_SITES, RAW_COPIES, UNCOUNTED_COPIES, copyDelta, fastPathShare, fastPathTaken, threadSleeps, wakeDelta } from '../src/index.ts';

/** A stats tree with the counters the bench reads, everything else left out. */
function tree(o: {
  taken?: number;
  backTx?: number;
  backRx?: number;
  fragmented?: number;
  viTx?: number;
  viRx?: number;
  wireTx?: number;
  line?: boolean;
  vnicTaken?: number;
  vdpaRx?: number;
}): StatsTree {
  const vif = (accel: Record<string, unknown> | null, rxFragmented = 0) => ({ handle: 0, rxFragmented, accel });
  return {
    'host-a/dom0': { bridge: {}, vifs: { 'vif1.0': { txPackets: o.backTx ?? 0, rxPackets: 0 }, 'vif2.0': { txPackets: 0, rxPackets: o.backRx ?? 0 } } },
    'host-a/a1': {
      vifs: [
        vif({ txTaken: o.taken ?? 0, totals: { vnic: { taken: 1000, txCopied: o.vnicTaken ?? 0 }, vdpa: { vdpaRxFrames: o.vdpaRx ?? 0 } } }, o.fragmented ?? 0),
      ],
    },
    'host-b/b1': { vifs: [vif(null)] },
    'host-b/b2': { crashed: 'boom', pcpu: 1 },
    fabric: {
      nics: [
        {
          wireTx: o.wireTx ?? 0,
          ...(o.line ? { line: { gbps: 10 } } : {}),
          vis: { 0: { txFrames: o.viTx ?? 0, rxFrames: 0 }, 1: { txFrames: 0, rxFrames: o.viRx ?? 0 } },
        },
      ],
    },
  } as unknown as StatsTree;
}

const a1 = { host: 'host-a', domain: 'a1' };

describe('the fast-path share', () => {
  it("is the growth of the sender's accel host txTaken over the frames sent", () => {
    expect(fastPathTaken(tree({ taken: 7 }), a1)).toBe(7);
    expect(fastPathShare(tree({ taken: 100 }), tree({ taken: 1090 }), a1, 1000)).toBeCloseTo(0.99);
    expect(fastPathShare(tree({ taken: 5 }), tree({ taken: 5 }), a1, 1000)).toBe(0);
    // A dom0 or a guest without an accel host takes nothing; nothing sent is a share of 0.
    expect(fastPathTaken(tree({ taken: 7 }), { host: 'host-a', domain: 'dom0' })).toBe(0);
    expect(fastPathTaken(tree({ taken: 7 }), { host: 'host-b', domain: 'b1' })).toBe(0);
    expect(fastPathTaken(tree({ taken: 7 }), { host: 'host-b', domain: 'b2' })).toBe(0);
    expect(fastPathShare(tree({}), tree({ taken: 9 }), a1, 0)).toBe(0);
  });
});

describe('wake-ups', () => {
  it("sum every thread's sleeps over the interval, the NIC thread (last) included", () => {
    const before = threadSleeps([{ sleeps: 10 }, { sleeps: 4 }, { sleeps: 100 }]);
    expect([...before]).toEqual([
      ['pcpu0', 10],
      ['pcpu1', 4],
      ['nic', 100],
    ]);
    const after = threadSleeps([{ sleeps: 15 }, { error: 'timeout' }, { sleeps: 130 }]);
    expect(wakeDelta(before, after)).toEqual({ total: 35, perThread: { pcpu0: 5, nic: 30 } });
  });
});

describe('copies of a frame', () => {
  it('each counted site grows by its own counter; sites that did not move are left out', () => {
    const before = tree({});
    const after = tree({ backTx: 10, backRx: 20, fragmented: 3, viTx: 40, viRx: 50, wireTx: 40, vnicTaken: 60, vdpaRx: 70 });
    expect(copyDelta(before, after)).toEqual({
      'netback TX grant copy': 10,
      'netback RX grant copy': 20,
      'netfront RX gather': 3,
      'NIC TX DMA': 40,
      'NIC RX DMA': 50,
      'vnic TX copy into VI slot': 60,
      'vdpa RX out of receiveq buffer': 70,
    });
    // The line FIFO copies only on a port with a line rate.
    expect(copyDelta(tree({ line: true }), tree({ line: true, wireTx: 40 }))).toEqual({ 'line FIFO': 40 });
    expect(copyDelta(after, after)).toEqual({});
  });

  it('every site has a distinct name, the raw rings copy by construction, and the uncounted sites are named', () => {
    expect(new Set(COPY_SITES.map((s) => s.name)).size).toBe(COPY_SITES.length);
    expect(Object.values(RAW_COPIES.raw).reduce((a, b) => a + b, 0)).toBe(2);
    expect(Object.values(RAW_COPIES.raw3).reduce((a, b) => a + b, 0)).toBe(3);
    expect(UNCOUNTED_COPIES.length).toBeGreaterThan(0);
  });
});
