/**
 * The bench's charts: Vega-Lite specs rendered to SVG in Node by Vega's
 * headless view (no browser, no canvas: text is measured by estimate). Chosen
 * because a chart is then data plus a declarative spec, and the same spec
 * opens in the Vega editor for anyone who wants to change it.
 *
 *   throughput   Gbit/s by frame size, a line per path, the repetitions' min..max
 *                as a bar; a panel per placement
 *   cpu          CPU µs per delivered frame (all threads' awake time), by path and size
 *   ratios       the paired ratios (vnic/unaccel, vnic/dom0, vdpa/vnic, vdpa/unaccel, each path
 *                over the raw ring)
 *   capture      goodput with capture on / off, per path and what was captured
 *   compare      (--compare) old and new medians side by side, with both spreads
 */
import { compile, type TopLevelSpec } from 'vega-lite';
import { View, parse } from 'vega';
import type { BenchJson } from './schema.ts';
import type { Comparison } from './compare.ts';

type Row = Record<string, string | number | boolean | null>;

const WIDTH = 360;
const HEIGHT = 220;

async function render(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function throughput(r: BenchJson): TopLevelSpec {
  const values: Row[] = r.cells.map((c) => ({
    path: c.path,
    placement: c.placement,
    size: c.size,
    gbps: c.median.gbps,
    min: c.spread.minGbps,
    max: c.spread.maxGbps,
  }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Goodput by path and frame size',
      subtitle: `median of ${r.options.reps} repetition(s); vertical bars: min..max; ${r.meta.pcpus ?? '?'} pCPUs on ${r.machine.cores} cores`,
    },
    data: { values },
    facet: { column: { field: 'placement', title: 'placement' } },
    spec: {
      width: WIDTH,
      height: HEIGHT,
      encoding: {
        x: { field: 'size', type: 'ordinal', title: 'frame size (bytes)', sort: 'ascending' },
        color: { field: 'path', type: 'nominal', title: 'path' },
      },
      layer: [
        {
          mark: { type: 'rule', strokeWidth: 2, opacity: 0.6 },
          encoding: { y: { field: 'min', type: 'quantitative', title: 'Gbit/s (log scale)', scale: { type: 'log' } }, y2: { field: 'max' } },
        },
        {
          mark: { type: 'line', point: true },
          encoding: {
            y: { field: 'gbps', type: 'quantitative', title: 'Gbit/s (log scale)', scale: { type: 'log' } },
            tooltip: [{ field: 'path' }, { field: 'size' }, { field: 'gbps', format: '.2f' }],
          },
        },
      ],
    },
  };
}

function cpu(r: BenchJson): TopLevelSpec {
  const values: Row[] = r.cells
    .filter((c) => c.cpuUsPerFrame !== undefined)
    .map((c) => ({ cell: `${c.path} ${c.placement}`, size: c.size, us: c.cpuUsPerFrame ?? null }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'CPU per delivered frame', subtitle: "every thread's awake time / frames delivered (µs), median over repetitions" },
    data: { values },
    width: WIDTH * 1.5,
    height: HEIGHT,
    mark: 'bar',
    encoding: {
      x: { field: 'cell', type: 'nominal', title: 'path, placement' },
      xOffset: { field: 'size', sort: 'ascending' },
      y: { field: 'us', type: 'quantitative', title: 'µs per frame' },
      color: { field: 'size', type: 'ordinal', title: 'frame size', sort: 'ascending' },
    },
  };
}

function ratios(r: BenchJson): TopLevelSpec {
  const values: Row[] = [];
  for (const x of r.ratios) {
    const push = (name: string, v: number | null | undefined) =>
      v !== null && v !== undefined && values.push({ ratio: name, size: x.size, placement: x.placement, value: v });
    push('vnic / unaccel', x.accelOverUnaccel);
    push('vnic / dom0', x.accelOverDom0);
    // Only in a run that measured vdpa (earlier results have no such fields).
    push('vdpa / vnic', x.vdpaOverVnic);
    push('vdpa / unaccel', x.vdpaOverUnaccel);
    for (const [p, v] of Object.entries(x.overRaw)) push(`${p} / raw`, v);
    for (const [p, v] of Object.entries(x.overRaw3 ?? {})) push(`${p} / raw3`, v);
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Paired ratios',
      subtitle: `median over repetitions of a / b, both measured in the same repetition${
        values.some((v) => String(v.ratio).startsWith('vdpa')) ? "; vdpa's slow-path baseline (unaccel) is the VI NIC hosts'" : ''
      }`,
    },
    data: { values },
    facet: { row: { field: 'placement', title: 'placement' } },
    spec: {
      width: WIDTH * 1.5,
      height: HEIGHT * 0.8,
      mark: 'bar',
      encoding: {
        x: { field: 'ratio', type: 'nominal', title: null },
        xOffset: { field: 'size', sort: 'ascending' },
        y: { field: 'value', type: 'quantitative', title: 'ratio' },
        color: { field: 'size', type: 'ordinal', title: 'frame size', sort: 'ascending' },
      },
    },
  };
}

function capture(r: BenchJson): TopLevelSpec | null {
  if (!r.capture?.length) return null;
  const values: Row[] = r.capture.map((c) => ({
    path: c.path,
    what: `${c.spec}, ${c.snaplen >= 65_535 ? 'whole frames' : `${c.snaplen} octets`}`,
    ratio: c.ratio,
    min: c.spread.min,
    max: c.spread.max,
  }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'What packet capture costs', subtitle: 'goodput with capture on / off, paired per repetition (1 = free); bar: median, line: min..max' },
    data: { values },
    width: WIDTH,
    height: HEIGHT,
    encoding: {
      x: { field: 'what', type: 'nominal', title: 'captured', axis: { labelAngle: -30, labelLimit: 300 } },
      xOffset: { field: 'path' },
      color: { field: 'path', type: 'nominal' },
    },
    layer: [
      { mark: 'bar', encoding: { y: { field: 'ratio', type: 'quantitative', title: 'on / off' } } },
      { mark: { type: 'rule', color: 'black', strokeWidth: 1.5 }, encoding: { y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
    ],
  };
}

function compareChart(cmp: Comparison): TopLevelSpec {
  const values: Row[] = cmp.rows.flatMap((x) => [
    {
      cell: `${x.path} ${x.placement} ${x.size}B`,
      run: `old (${cmp.date.slice(0, 10)})`,
      gbps: x.old.gbps,
      min: x.old.min,
      max: x.old.max,
      outside: x.outside,
    },
    { cell: `${x.path} ${x.placement} ${x.size}B`, run: 'new', gbps: x.now.gbps, min: x.now.min, max: x.now.max, outside: x.outside },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Old and new, side by side',
      subtitle: 'median, min..max of the repetitions; solid bars: the new median lies outside the old spread, faded: within it',
    },
    data: { values },
    width: Math.max(WIDTH, cmp.rows.length * 36),
    height: HEIGHT,
    encoding: {
      x: { field: 'cell', type: 'nominal', title: null, axis: { labelAngle: -40 } },
      xOffset: { field: 'run' },
      color: { field: 'run', type: 'nominal', title: null },
    },
    layer: [
      {
        mark: 'bar',
        encoding: { y: { field: 'gbps', type: 'quantitative', title: 'Gbit/s' }, opacity: { condition: { test: 'datum.outside', value: 1 }, value: 0.55 } },
      },
      { mark: { type: 'rule', color: 'black', strokeWidth: 1.5 }, encoding: { y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
    ],
  };
}

/** Every chart of a result (and of its comparison), as SVG text by name. */
export async function benchCharts(r: BenchJson, cmp?: Comparison): Promise<Record<string, string>> {
  const specs: Record<string, TopLevelSpec | null> = {
    throughput: throughput(r),
    cpu: cpu(r),
    ratios: ratios(r),
    capture: capture(r),
    compare: cmp && cmp.rows.length ? compareChart(cmp) : null,
  };
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(specs)) if (spec) out[name] = await render(spec);
  return out;
}
