/**
 * Comparing a bench result with an earlier one: the earlier file is read and
 * checked before any measuring, and each cell both runs share is set beside
 * the other, marked when the new median lies outside the old repetitions'
 * range.
 */
import { readFileSync } from 'node:fs';
import { ComparableSchema, READABLE_SCHEMAS, schemaProblems, type BenchJson, type BenchPath, type Comparable, type Placement } from './schema.ts';

export interface CompareRow {
  path: BenchPath;
  placement: Placement;
  size: number;
  old: { gbps: number; min: number; max: number };
  now: { gbps: number; min: number; max: number };
  /** (new - old) / old, percent. */
  changePct: number;
  /** The new median lies outside the old repetitions' min..max. */
  outside: boolean;
}

export interface Comparison {
  file: string;
  date: string;
  schema: string;
  rows: CompareRow[];
}

/**
 * Read and check a file to compare against, before any measuring: it must be
 * JSON, a bench result of a readable schema, and share at least one cell with
 * what this run will measure. Every failure names the file and what is wrong.
 */
export function loadComparable(file: string, plan?: { sizes: number[]; paths: readonly string[]; placements: readonly string[] }): Comparable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`--compare ${file}: cannot read it: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`--compare ${file}: not JSON: ${(e as Error).message}`);
  }
  const problems = schemaProblems(ComparableSchema, v, 5);
  if (problems.length)
    throw new Error(`--compare ${file}: not a bench result xsim can compare (schemas ${READABLE_SCHEMAS.join(', ')}): ${problems.join('; ')}`);
  const old = v as Comparable;
  if (plan) {
    const shared = old.cells.filter((c) => plan.sizes.includes(c.size) && plan.paths.includes(c.path) && plan.placements.includes(c.placement));
    if (shared.length === 0) {
      const has = (k: 'size' | 'path' | 'placement') => [...new Set(old.cells.map((c) => String(c[k])))].join(',');
      throw new Error(`--compare ${file}: no cell in common with this run (it has sizes ${has('size')}, paths ${has('path')}, placements ${has('placement')})`);
    }
  }
  return old;
}

const range = (reps: { gbps: number }[]) => ({ min: Math.min(...reps.map((r) => r.gbps)), max: Math.max(...reps.map((r) => r.gbps)) });

export function compareResults(old: Comparable, now: BenchJson, file = ''): Comparison {
  const rows: CompareRow[] = [];
  for (const c of now.cells) {
    const o = old.cells.find((x) => x.path === c.path && x.placement === c.placement && x.size === c.size);
    if (!o) continue;
    const or = range(o.reps);
    const changePct = o.median.gbps > 0 ? ((c.median.gbps - o.median.gbps) / o.median.gbps) * 100 : 0;
    rows.push({
      path: c.path,
      placement: c.placement,
      size: c.size,
      old: { gbps: o.median.gbps, ...or },
      now: { gbps: c.median.gbps, min: c.spread.minGbps, max: c.spread.maxGbps },
      changePct,
      outside: c.median.gbps < or.min || c.median.gbps > or.max,
    });
  }
  return { file, date: old.date, schema: old.schema, rows };
}
