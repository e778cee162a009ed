/**
 * The TCP section without a simulation: its topology (offloads off on the
 * off ends only), the cells a run visits, and the ratios paired per
 * repetition. test/bench-smoke.test.ts runs it for real.
 */
import { describe, expect, it } from 'vitest';
import { tcpCell, tcpEnds, tcpPlan, tcpRatios, tcpTopology, type TcpRep } from '../src/index.ts';

const rep = (gbps: number, udpGbps: number, tps: number): TcpRep => ({
  udp: { sent: 10, delivered: 10, conserved: true, gbps: udpGbps },
  stream: { bytes: 1000, elapsedMs: 1, gbps, complete: true, corrupt: 0, retransmits: 0, failed: {}, sender: {}, receiver: {} },
  rr: { transactions: 10, tps, p50Us: 100, p99Us: 200, complete: true, failed: {} },
  fastPathShare: 1,
  ackFastPathShare: 1,
  csumPartialShare: 1,
  ok: true,
});

describe('TCP section', () => {
  it('the off ends (a3, a4, b3, b4) have their offloads off, the on ends none', () => {
    const t = tcpTopology();
    const off = t.hosts.flatMap((h) => h.domUs.filter((d) => d.vifs[0].offloads).map((d) => [d.name, d.vifs[0].offloads]));
    expect(off).toEqual([
      ['a3', { csum: false, gso: false }],
      ['a4', { csum: false, gso: false }],
      ['b3', { csum: false, gso: false }],
      ['b4', { csum: false, gso: false }],
    ]);
    expect(tcpEnds({ path: 'unaccel', placement: 'same', offloads: 'off' })).toEqual({
      from: { host: 'host-a', domain: 'a3' },
      to: { host: 'host-a', domain: 'a4' },
    });
  });

  it('dom0 is measured across hosts with offloads on only', () => {
    const plan = tcpPlan({ paths: ['vnic', 'dom0', 'unaccel'], placements: ['cross', 'same'], offloads: ['on', 'off'] });
    expect(plan.map((k) => `${k.path} ${k.placement} ${k.offloads}`)).toEqual([
      'unaccel cross on',
      'unaccel same on',
      'unaccel cross off',
      'unaccel same off',
      'dom0 cross on',
      'vnic cross on',
      'vnic same on',
      'vnic cross off',
      'vnic same off',
    ]);
  });

  it('ratios pair repetition i with repetition i, then take the median', () => {
    const u = tcpCell({ path: 'unaccel', placement: 'cross', offloads: 'on' }, [rep(1, 2, 100), rep(2, 2, 100), rep(4, 2, 100)], []);
    const v = tcpCell({ path: 'vnic', placement: 'cross', offloads: 'on' }, [rep(3, 6, 300), rep(2, 6, 500), rep(4, 6, 100)], []);
    expect([u.median.gbps, u.spread.minGbps, u.spread.maxGbps]).toEqual([2, 1, 4]);
    const r = tcpRatios([u, v], { placements: ['cross'], offloads: ['on'] });
    const get = (name: string) => r.find((x) => x.name === name)!;
    // 3/1, 2/2, 4/4: median 1 (unpaired medians would give 3/2).
    expect(get('tcp-stream vnic/unaccel')).toMatchObject({ median: 1, min: 1, max: 3, values: [3, 1, 1] });
    expect(get('tcp-rr vnic/unaccel')).toMatchObject({ median: 3, values: [3, 5, 1] });
    expect(r.filter((x) => x.name === 'tcp/udp vnic').map((x) => x.values)).toEqual([[0.5, 2 / 6, 4 / 6]]);
    // No off cells, no dom0: no on/off or vnic/dom0 ratio.
    expect(r.map((x) => x.name)).toEqual(['tcp-stream vnic/unaccel', 'tcp-rr vnic/unaccel', 'tcp/udp unaccel', 'tcp/udp vnic']);
  });
});
