/**
 * `--partitions local`'s counters (partitions/merge.ts, traffic.ts): every
 * partition's stats tree merged into one, the datagrams still in UDP between
 * partitions, and a stream's accounting across them (sent = delivered +
 * counted drops + in UDP), on trees built by hand.
 */
import { describe, expect, it } from 'vitest';
import { mergeStats, udpInFlight } from '../src/partitions/merge.ts';
import { crossAccount } from '../src/partitions/traffic.ts';
import type { StatsTree } from '../src/stats.ts';

const socket = (o: Record<string, number> = {}) => ({
  local: '127.0.0.1:14789',
  bound: true,
  vxlanRxDatagrams: 0,
  vxlanRxRingFull: 0,
  vxlanRxShort: 0,
  vxlanRxBadHeader: 0,
  vxlanRxRunt: 0,
  vxlanRxUnknownVni: 0,
  vxlanRxErrors: 0,
  vxlanRxKernelDrops: 0,
  ...o,
});
const tunnel = (o: Record<string, number> = {}) => ({ vni: 10000, up: true, vxlanTxSent: 0, vxlanRxFrames: 0, vxlanTxRingFull: 0, ...o });

/** One partition's tree: a guest with a drop counter, and a fabric with one NIC, one tunnel and its socket. */
function partition(host: string, o: { notForUs?: number; tx?: number; rx?: number; kernelDrops?: number; ringFull?: number } = {}): StatsTree {
  return {
    [`${host}/g1`]: { endpoint: { stack: { rxNotForUs: o.notForUs ?? 0, rxUdp: 1 } } },
    fabric: {
      nics: [{ name: `${host}-nic`, wireTx: o.tx ?? 0, wireRx: o.rx ?? 0 }],
      switches: [],
      core: { busyTurns: 1 },
      vxlan: {
        ioThread: true,
        sockets: [socket({ vxlanRxKernelDrops: o.kernelDrops ?? 0 })],
        tunnels: [tunnel({ vxlanTxSent: o.tx ?? 0, vxlanRxFrames: o.rx ?? 0, vxlanTxRingFull: o.ringFull ?? 0 })],
      },
    },
  } as unknown as StatsTree;
}

describe('mergeStats', () => {
  it('domains side by side; the fabrics as one: arrays joined in partition order, counters summed, the rest from the first', () => {
    const m = mergeStats([partition('host-a', { tx: 5 }), partition('host-b', { rx: 4 })]) as unknown as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(Object.keys(m)).toEqual(['host-a/g1', 'host-b/g1', 'fabric']);
    expect(m.fabric.nics.map((n: { name: string }) => n.name)).toEqual(['host-a-nic', 'host-b-nic']);
    expect(m.fabric.core.busyTurns).toBe(2);
    expect(m.fabric.vxlan.ioThread).toBe(true);
    expect(m.fabric.vxlan.tunnels).toHaveLength(2);
    expect(m.fabric.vxlan.sockets).toHaveLength(2);
  });

  it('a domain in two partitions is refused', () => {
    expect(() => mergeStats([partition('host-a'), partition('host-a')])).toThrow('host-a/g1 is in two partitions');
  });
});

describe('udpInFlight and crossAccount', () => {
  it('datagrams sent by one partition that no tunnel has passed on and no socket counted dropped are in flight', () => {
    // p0 sent 105, p1 sent 3; p0 took 3 off the tunnel, p1 90; p1's kernel dropped 2: 105 + 3 - 93 - 2 = 13.
    const m = mergeStats([partition('host-a', { tx: 105, rx: 3 }), partition('host-b', { tx: 3, rx: 90, kernelDrops: 2 })]);
    expect(udpInFlight(m)).toBe(13);
    expect(udpInFlight({ fabric: { nics: [], switches: [] } } as unknown as StatsTree)).toBe(0);
  });

  it('a stream is conserved when delivered + drops of any partition + in UDP make up what was sent, and not when a frame is missing', () => {
    const before = mergeStats([partition('host-a'), partition('host-b')]);
    // 100 frames sent: 3 refused by p0's full tunnel ring, 2 dropped by p1's kernel, 5 still in UDP, 90 delivered.
    const after = mergeStats([partition('host-a', { tx: 97, ringFull: 3 }), partition('host-b', { rx: 90, kernelDrops: 2 })]);
    const a = crossAccount(before, after, { sent: 100, delivered: 90, duplicated: 0, tooOld: 0 });
    expect(a).toMatchObject({ sent: 100, delivered: 90, dropped: 5, inUdp: 5, conserved: true });
    expect(a.drops).toEqual({ 'fabric.vxlan.sockets.1.vxlanRxKernelDrops': 2, 'fabric.vxlan.tunnels.0.vxlanTxRingFull': 3 });
    expect(crossAccount(before, after, { sent: 101, delivered: 90, duplicated: 0, tooOld: 0 }).conserved).toBe(false);
    expect(crossAccount(before, after, { sent: 100, delivered: 90, duplicated: 1, tooOld: 0 }).conserved).toBe(false);
  });
});
