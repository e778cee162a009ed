/**
 * The benchmarks (a workspace package of their own): the throughput matrix,
 * the raw ring baseline, microbenchmarks, scale, live migration and capture
 * cost, their result schemas, charts and text reports. `xsim bench|scale|
 * migration` parse arguments and call these.
 */
export {
  runBench,
  median,
  DEFAULT_BENCH,
  QUICK_BENCH,
  threadAccounting,
  ratiosAcrossRuns,
  benchTopology,
  benchRatios,
  cellValidity,
  BENCH_SWITCH,
  type BenchOptions,
} from './matrix.ts';
export * from './counts.ts';
export { runRawRing, type RawResult } from './raw.ts';
export { futexRoundTrip, type FutexRoundTrip } from './futex.ts';
export { runMicro, type MicroResult } from './micro.ts';
export { runCaptureCost } from './capture-cost.ts';
export { runPairBench, pairsTopology, PAIR_SIZE, MAX_PAIRS, type PairBenchOptions } from './pairs.ts';
export { runTcpBench, tcpTopology, tcpEnds, tcpPlan, tcpCell, repFaults, cellName as tcpCellName, TCP_SIZE, type TcpBenchOptions } from './tcp.ts';
export { tcpRatios } from './tcp-ratios.ts';
export * from './tcp-schema.ts';
export { runQueueBench, queueTopology, flowsOverQueues, type QueueBenchOptions } from './queues.ts';
export { benchCharts } from './charts.ts';
export * from './schema.ts';
export { compareResults, loadComparable, type CompareRow, type Comparison } from './compare.ts';
export { report, compare, compareText, migrationReport, scaleReport } from './report.ts';
export { runScale, measurePoint, scaleShape, SCALE_SCHEMA, type ScaleJson, type ScalePoint, type ScaleOptions } from './scale.ts';
export * from './migration.ts';
export { saveJson } from './save.ts';
export { PUBLISHED_SCHEMAS, schemaFileText } from './published.ts';
