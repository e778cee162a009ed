/**
 * The bench's ratios: paired within a run (the median over repetitions of
 * a / b measured in the same repetition, null where a cell is missing or not
 * valid), and, with --runs N, each ratio's median and min..max across runs.
 */
import type { AcrossRuns, BenchCell, BenchPath, BenchRatio, Placement } from './schema.ts';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The paired ratios of each size and placement (exported for the tests). */
export function benchRatios(cells: BenchCell[], o: { sizes: number[]; placements: Placement[] }): BenchRatio[] {
  const out: BenchRatio[] = [];
  const get = (path: BenchPath, placement: Placement, size: number) => cells.find((c) => c.path === path && c.placement === placement && c.size === size);
  // Paired: the median over repetitions of (a / b) within the same repetition; null when
  // either cell is not valid (named in `invalid` with the reason).
  let invalid: string[] = [];
  const ratio = (a: BenchCell | undefined, b: BenchCell | undefined, name: string): number | null => {
    if (!a || !b) return null;
    const bad = [a, b].filter((c) => !c.valid);
    if (bad.length) {
      invalid.push(`${name}: ${bad.map((c) => `${c.path} ${c.placement} ${c.size} B is not valid (${c.invalid ?? 'no reason given'})`).join('; ')}`);
      return null;
    }
    const n = Math.min(a.reps.length, b.reps.length);
    const rs: number[] = [];
    for (let i = 0; i < n; i++) if (b.reps[i].gbps > 0) rs.push(a.reps[i].gbps / b.reps[i].gbps);
    return rs.length ? median(rs) : null;
  };
  for (const size of o.sizes) {
    for (const placement of o.placements) {
      invalid = [];
      const raw = get('raw', 'cross', size);
      const raw3 = get('raw3', 'cross', size);
      const acc = get('vnic', placement, size);
      const vdpa = get('vdpa', placement, size);
      // The slow-path baseline is the VI NIC's hosts' (a1 -> b1 or a2) for both accelerators.
      const unaccel = get('unaccel', placement, size);
      const overRaw: BenchRatio['overRaw'] = {};
      for (const p of ['unaccel', 'vnic', 'vdpa', 'null', 'dom0'] as const) {
        const v = ratio(get(p, p === 'dom0' ? 'cross' : placement, size), raw, `overRaw.${p}`);
        if (v !== null) overRaw[p] = v;
      }
      const overRaw3: NonNullable<BenchRatio['overRaw3']> = {};
      for (const p of ['unaccel', 'vnic', 'vdpa', 'null', 'dom0'] as const) {
        const v = ratio(get(p, p === 'dom0' ? 'cross' : placement, size), raw3, `overRaw3.${p}`);
        if (v !== null) overRaw3[p] = v;
      }
      out.push({
        size,
        placement,
        accelOverUnaccel: ratio(acc, unaccel, 'accelOverUnaccel'),
        accelOverDom0: placement === 'cross' ? ratio(acc, get('dom0', 'cross', size), 'accelOverDom0') : null,
        vdpaOverVnic: ratio(vdpa, acc, 'vdpaOverVnic'),
        vdpaOverUnaccel: ratio(vdpa, unaccel, 'vdpaOverUnaccel'),
        overRaw,
        ...(raw3 ? { overRaw3 } : {}),
        ...(invalid.length ? { invalid } : {}),
      });
    }
  }
  return out;
}

/** Every ratio of a BenchRatio by name ("accelOverUnaccel", ..., "overRaw.vnic", "overRaw3.vnic"), numbers only. */
function namedRatios(x: BenchRatio): Map<string, number> {
  const out = new Map<string, number>();
  for (const k of ['accelOverUnaccel', 'accelOverDom0', 'vdpaOverVnic', 'vdpaOverUnaccel'] as const) {
    const v = x[k];
    if (typeof v === 'number') out.set(k, v);
  }
  for (const [p, v] of Object.entries(x.overRaw)) if (typeof v === 'number') out.set(`overRaw.${p}`, v);
  for (const [p, v] of Object.entries(x.overRaw3 ?? {})) if (typeof v === 'number') out.set(`overRaw3.${p}`, v);
  return out;
}

/**
 * Per size, placement and ratio, the median across runs of the run's (paired)
 * ratio and the runs' min..max; a run in which the ratio is null (a cell not
 * measured or not valid) does not count, and `runs` says how many did.
 */
export function ratiosAcrossRuns(runs: BenchRatio[][]): AcrossRuns[] {
  const groups = new Map<string, AcrossRuns>();
  runs.forEach((ratios, i) => {
    for (const x of ratios)
      for (const [name, v] of namedRatios(x)) {
        const key = `${x.size}/${x.placement}/${name}`;
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { size: x.size, placement: x.placement, ratio: name, median: 0, min: 0, max: 0, runs: 0, values: [] }));
        g.values.push({ run: i + 1, value: v });
      }
  });
  return [...groups.values()].map((g) => {
    const vs = g.values.map((x) => x.value);
    return { ...g, median: median(vs), min: Math.min(...vs), max: Math.max(...vs), runs: vs.length };
  });
}
