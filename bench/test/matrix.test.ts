/**
 * The bench's topology and ratios without streaming anything: a run without
 * vdpa keeps the two-host topology every earlier result was measured on; a
 * run with it adds the virtio NIC's hosts (and the switch connectivity
 * demands); the vdpa ratios pair the right cells; the text report shows the
 * vdpa columns only when there is something in them.
 */
import { describe, expect, it } from 'vitest';
import { validateTopology } from '@xsim/toolstack';
import {
  BENCH_SWITCH,
  benchRatios,
  benchTopology,
  cellValidity,
  ratiosAcrossRuns,
  report,
  type BenchCell,
  type BenchJson,
  type BenchPath,
  type Placement,
} from '../src/index.ts';

/** benchTopology as it was before the vdpa path (commit aa3a00d), written out. */
function before(size: number) {
  const mtu = size - 14 > 1500 ? 9000 : 1500;
  const host = (x: 'a' | 'b', n: number) => ({
    name: `host-${x}`,
    nic: { vendor: '1924', device: '0803', mac: `00:0f:53:00:0${x}:00`, vis: 8, mtu },
    dom0: { ip: `10.0.0.${n}` },
    domUs: [1, 2].map((i) => ({ name: `${x}${i}`, vifs: [{ mac: `00:16:3e:0${x}:0${i}:01`, ip: `10.0.${9 + n}.${i}` }] })),
  });
  return validateTopology({ name: `bench-${size}`, hosts: [host('a', 1), host('b', 2)], wires: [{ a: 'host-a', b: 'host-b' }] });
}

describe('bench topology', () => {
  it('without vdpa is what it was: host-a and host-b with the VI NIC, wired to each other', () => {
    for (const size of [64, 1500, 1514, 1515, 9000]) expect(benchTopology(size), String(size)).toEqual(before(size));
  });

  it('with vdpa adds host-c and host-d with the virtio NIC, and joins all four through one switch', () => {
    for (const size of [1500, 9000]) {
      const t = benchTopology(size, { virtio: true });
      const mtu = size === 9000 ? 9000 : 1500;
      expect(t.hosts.map((h) => [h.name, `${h.nic.vendor}:${h.nic.device}`, h.nic.mac, h.nic.vis, h.nic.mtu])).toEqual([
        ['host-a', '1924:0803', '00:0f:53:00:0a:00', 8, mtu],
        ['host-b', '1924:0803', '00:0f:53:00:0b:00', 8, mtu],
        ['host-c', '1af4:1041', '52:54:00:00:0c:00', 8, mtu],
        ['host-d', '1af4:1041', '52:54:00:00:0d:00', 8, mtu],
      ]);
      expect(t.hosts.slice(2).map((h) => [h.dom0.ip, ...h.domUs.map((d) => `${d.name} ${d.vifs[0].mac} ${d.vifs[0].ip}`)])).toEqual([
        ['10.0.0.3', 'c1 00:16:3e:0c:01:01 10.0.12.1', 'c2 00:16:3e:0c:02:01 10.0.12.2'],
        ['10.0.0.4', 'd1 00:16:3e:0d:01:01 10.0.13.1', 'd2 00:16:3e:0d:02:01 10.0.13.2'],
      ]);
      // host-a and host-b themselves are unchanged; only how they are wired differs.
      expect(t.hosts.slice(0, 2)).toEqual(before(size).hosts);
      expect(t.switches).toEqual([{ name: BENCH_SWITCH, ports: 4 }]);
      expect(t.wires).toEqual(['host-a', 'host-b', 'host-c', 'host-d'].map((h) => ({ a: h, b: BENCH_SWITCH })));
    }
  });

  it('--wire-gbps puts the line rate on every wire, and only then', () => {
    expect(benchTopology(1500, { gbps: 10 }).wires).toEqual([{ a: 'host-a', b: 'host-b', gbps: 10 }]);
    expect(benchTopology(1500, { virtio: true, gbps: 2.5 }).wires.map((w) => w.gbps)).toEqual([2.5, 2.5, 2.5, 2.5]);
    expect(benchTopology(1500, { gbps: undefined })).toEqual(before(1500));
    expect(() => benchTopology(1500, { gbps: 1000 })).toThrow(/line rate in Gbit\/s from 0\.001 to 400/);
  });

  it('two separate wire pairs are refused (every host must be reachable), which is why the switch', () => {
    const t = benchTopology(1500, { virtio: true });
    expect(() =>
      validateTopology({
        name: 'pairs',
        hosts: t.hosts,
        wires: [
          { a: 'host-a', b: 'host-b' },
          { a: 'host-c', b: 'host-d' },
        ],
      }),
    ).toThrow(/host\(s\) host-c, host-d cannot be reached from host-a/);
  });
});

function cell(path: BenchPath, placement: Placement, size: number, gbps: number[]): BenchCell {
  return {
    path,
    placement,
    size,
    reps: gbps.map((g) => ({ sent: 10, delivered: 10, dropsCounted: 0, conserved: true, pps: g, gbps: g })),
    median: { pps: 0, gbps: 0 },
    spread: { minGbps: Math.min(...gbps), maxGbps: Math.max(...gbps) },
    lossRate: 0,
    rtt: null,
    fastPathShare: path === 'vnic' || path === 'vdpa' ? 1 : 0,
    valid: true,
  };
}

describe('bench ratios', () => {
  it('vdpa over vnic and over unaccel (the VI hosts), paired per repetition, same placement and size', () => {
    const cells = [
      cell('raw', 'cross', 1500, [40, 40, 40]),
      cell('unaccel', 'cross', 1500, [5, 10, 4]),
      cell('vnic', 'cross', 1500, [10, 20, 16]),
      cell('vdpa', 'cross', 1500, [20, 10, 8]),
      cell('unaccel', 'same', 1500, [10, 10, 10]),
      cell('vnic', 'same', 1500, [9, 9, 9]),
      cell('vdpa', 'same', 1500, [12, 12, 12]),
    ];
    const [cross, same] = benchRatios(cells, { sizes: [1500], placements: ['cross', 'same'] });
    // Per repetition 2, 0.5, 0.5 (a median of ratios, not a ratio of medians: that would be 10/16).
    expect(cross).toMatchObject({ size: 1500, placement: 'cross', vdpaOverVnic: 0.5, vdpaOverUnaccel: 2, accelOverUnaccel: 2 });
    expect(cross.overRaw).toEqual({ unaccel: 0.125, vnic: 0.4, vdpa: 0.25 });
    expect(same).toMatchObject({ placement: 'same', vdpaOverVnic: 12 / 9, vdpaOverUnaccel: 1.2, accelOverDom0: null });
    // A run without vdpa: its ratios are null and it has no overRaw.vdpa.
    const none = benchRatios(
      cells.filter((c) => c.path !== 'vdpa'),
      { sizes: [1500], placements: ['cross'] },
    )[0];
    expect([none.vdpaOverVnic, none.vdpaOverUnaccel, 'vdpa' in none.overRaw]).toEqual([null, null, false]);
  });

  it('the report shows the vdpa columns only in a run that measured vdpa', () => {
    const r = (paths: BenchPath[]) => {
      const cells = [cell('unaccel', 'cross', 64, [1]), cell('vnic', 'cross', 64, [2]), cell('vdpa', 'cross', 64, [3])].filter((c) => paths.includes(c.path));
      return { machine: { cores: 2 }, threads: {}, cells, ratios: benchRatios(cells, { sizes: [64], placements: ['cross'] }) } as unknown as BenchJson;
    };
    const header = (text: string) =>
      text
        .split('\n')
        .find((l) => l.startsWith('bytes'))!
        .split(/\s+/);
    expect(header(report(r(['unaccel', 'vnic', 'vdpa'])))).toEqual([
      'bytes',
      'placement',
      'vnic/unaccel',
      'vnic/dom0',
      'vdpa/vnic',
      'vdpa/unaccel',
      'unaccel/raw',
      'vnic/raw',
      'vdpa/raw',
      'null/raw',
      'dom0/raw',
    ]);
    expect(report(r(['unaccel', 'vnic', 'vdpa']))).toMatch(/\n64 +cross +2 +- +1\.50 +3 +- /);
    expect(header(report(r(['unaccel', 'vnic'])))).not.toContain('vdpa/vnic');
  });
});

describe('a benchmark that checks itself: the fast-path share', () => {
  it('an accelerated cell under 99 % on the fast path is not valid, and says why; unaccelerated paths are valid at 0', () => {
    expect(cellValidity('vnic', [{ fastPathShare: 1 }, { fastPathShare: 0.995 }, { fastPathShare: 0.999 }])).toEqual({ fastPathShare: 0.999, valid: true });
    const bad = cellValidity('vnic', [{ fastPathShare: 0.5 }, { fastPathShare: 0.4 }, { fastPathShare: 1 }]);
    expect(bad).toMatchObject({ fastPathShare: 0.5, valid: false });
    expect(bad.invalid).toMatch(
      /^vnic: the sender's frontend took 50\.0% of the stream on the fast path \(median; repetitions 50\.0%, 40\.0%, 100\.0%\), under 99\.0%/,
    );
    expect(cellValidity('vdpa', [{ fastPathShare: 0.98 }]).valid).toBe(false);
    for (const p of ['unaccel', 'null', 'dom0', 'raw'] as BenchPath[])
      expect(cellValidity(p, [{ fastPathShare: 0 }]), p).toEqual({ fastPathShare: 0, valid: true });
  });

  it('a ratio pairing an invalid cell is null and names the cell; the others stand', () => {
    const fellBack = { ...cell('vnic', 'cross', 1500, [6, 6, 6]), ...cellValidity('vnic', [{ fastPathShare: 0.1 }]) };
    const cells = [cell('raw', 'cross', 1500, [40, 40, 40]), cell('unaccel', 'cross', 1500, [5, 5, 5]), fellBack, cell('dom0', 'cross', 1500, [10, 10, 10])];
    const [x] = benchRatios(cells, { sizes: [1500], placements: ['cross'] });
    expect([x.accelOverUnaccel, x.accelOverDom0, x.overRaw.vnic]).toEqual([null, null, undefined]);
    expect(x.overRaw).toEqual({ unaccel: 0.125, dom0: 0.25 });
    expect(x.invalid?.map((w) => w.split(':')[0])).toEqual(['overRaw.vnic', 'accelOverUnaccel', 'accelOverDom0']);
    expect(x.invalid?.[1]).toMatch(/vnic cross 1500 B is not valid \(vnic: the sender's frontend took 10\.0%/);
    // The same cells all valid: every ratio is there and nothing is listed.
    const [ok] = benchRatios(
      cells.map((c) => (c.path === 'vnic' ? cell('vnic', 'cross', 1500, [6, 6, 6]) : c)),
      { sizes: [1500], placements: ['cross'] },
    );
    expect([ok.accelOverUnaccel, ok.accelOverDom0, ok.invalid]).toEqual([1.2, 0.6, undefined]);
    // The report marks the cell and lists what was left out.
    const text = report({ machine: { cores: 2 }, threads: {}, cells, ratios: [x] } as unknown as BenchJson);
    expect(text).toMatch(/\nvnic +cross +1500 .* 10\.0% INVALID\n/);
    expect(text).toMatch(/INVALID cells .*\n  vnic cross 1500 B: vnic: the sender's frontend took 10\.0%/);
    expect(text).toMatch(/ratios left out .*\n  1500 B cross: overRaw\.vnic: vnic cross 1500 B is not valid/);
  });
});

describe('the three-thread raw reference', () => {
  it('every real path is also set over raw3 (paired), and the report adds those columns only when raw3 was measured', () => {
    const cells = [
      cell('raw', 'cross', 64, [40, 40]),
      cell('raw3', 'cross', 64, [20, 10]),
      cell('unaccel', 'cross', 64, [5, 5]),
      cell('vnic', 'cross', 64, [10, 10]),
    ];
    const [x] = benchRatios(cells, { sizes: [64], placements: ['cross'] });
    // Per repetition 10/20 and 10/10: a median of 0.75 (a ratio of medians would be 10/15).
    expect(x.overRaw3).toEqual({ unaccel: 0.375, vnic: 0.75 });
    expect(x.overRaw).toEqual({ unaccel: 0.125, vnic: 0.25 });
    const header = (cs: BenchCell[]) =>
      report({ machine: { cores: 2 }, threads: {}, cells: cs, ratios: benchRatios(cs, { sizes: [64], placements: ['cross'] }) } as unknown as BenchJson)
        .split('\n')
        .find((l) => l.startsWith('bytes'))!
        .split(/\s+/);
    expect(header(cells).slice(-4)).toEqual(['unaccel/raw3', 'vnic/raw3', 'null/raw3', 'dom0/raw3']);
    expect(header(cells.filter((c) => c.path !== 'raw3')).some((h) => h.endsWith('/raw3'))).toBe(false);
    expect(
      benchRatios(
        cells.filter((c) => c.path !== 'raw3'),
        { sizes: [64], placements: ['cross'] },
      )[0].overRaw3,
    ).toBeUndefined();
  });
});

describe('--runs: the spread across runs', () => {
  it("each ratio's median across runs and its min..max; a run where it is null does not count", () => {
    const run = (vnic: number, unaccel: number, valid = true) => {
      const v = { ...cell('vnic', 'cross', 1500, [vnic]), valid };
      return benchRatios([cell('raw', 'cross', 1500, [40]), cell('unaccel', 'cross', 1500, [unaccel]), v], { sizes: [1500], placements: ['cross'] });
    };
    const across = ratiosAcrossRuns([run(10, 5), run(12, 4), run(9, 3), run(30, 5, false)]);
    const of = (name: string) => across.find((x) => x.ratio === name)!;
    // vnic/unaccel per run: 2, 3, 3 (the fourth run's vnic cell is not valid).
    expect(of('accelOverUnaccel')).toMatchObject({ size: 1500, placement: 'cross', median: 3, min: 2, max: 3, runs: 3 });
    expect(of('accelOverUnaccel').values.map((x) => x.run)).toEqual([1, 2, 3]);
    // unaccel/raw in all four: 0.125, 0.1, 0.075, 0.125.
    expect(of('overRaw.unaccel')).toMatchObject({ median: 0.1125, min: 0.075, max: 0.125, runs: 4 });
    expect(across.map((x) => x.ratio).sort()).toEqual(['accelOverUnaccel', 'overRaw.unaccel', 'overRaw.vnic']);
    // The report shows the table when there is one.
    const text = report({ machine: { cores: 2 }, threads: {}, cells: [], ratios: [], options: { runs: 4 }, acrossRuns: across } as unknown as BenchJson);
    expect(text).toMatch(/across 4 runs of the whole matrix/);
    expect(text).toMatch(/\n1500 +cross +accelOverUnaccel +3 +2\.\.3 +3 +2 3 3\n/);
  });
});
