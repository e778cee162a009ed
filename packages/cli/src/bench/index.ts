export { runBench, DEFAULT_BENCH, QUICK_BENCH, threadAccounting, type BenchOptions } from './matrix.ts';
export { runRawRing, type RawResult } from './raw.ts';
export { runMicro, type MicroResult } from './micro.ts';
export * from './schema.ts';
export { compare, compareResults, compareText, loadComparable, report, type CompareRow, type Comparison } from '../commands/bench.ts';
export { runScale, measurePoint, scaleShape, SCALE_SCHEMA, type ScaleJson, type ScalePoint, type ScaleOptions } from './scale.ts';
export * from './migration.ts';
