/**
 * The toolstack (Xen's libxl): a Simulation over a topology, and everything it
 * drives — domain lifecycle, vif hotplug, save/restore and migration, packet
 * capture and traces, the control and xenstored sockets, the topology model and
 * its validation, placement on pCPUs. `xsim` (packages/cli) and the benchmarks
 * (bench/) call it; it runs no command line of its own.
 */
export { placeDomains, PlacementError, type Placement } from './placement.ts';
export { Simulation, type SimulationOptions, type DomainRef, type RunningDomain, type FinalStatsEntry } from './simulation.ts';
export type { PartitionNet } from './context.ts';
export { RemoteMover, partitionNet, MIGRATE_STEP_MS, type PartitionPeer, type MigrationListener } from './migrate-remote.ts';
export { MigrateConn, MigrateWireError, checkMigrateMsg, frameMigrateMsg, MIGRATE_WIRE_VERSION, type MigrateMsg, type MigrateMsgs } from './migrate-wire.ts';
export { runStream, runPing, rxUdp, type StreamOptions, type StreamResult, type PingResult, type IntervalSample } from './traffic.ts';
export {
  runTcpStream,
  runTcpRr,
  TCP_STREAM_PORT,
  TCP_RR_PORT,
  TCP_MESSAGE,
  TCP_WRITE_SIZE,
  type TcpStreamOptions,
  type TcpStreamRun,
  type TcpRrOptions,
  type TcpRrRun,
  type TcpDelta,
  type TcpIntervalSample,
} from './traffic-tcp.ts';
export {
  dom0Stats,
  guestStats,
  fabricStats,
  type StatsTree,
  type DomainStatsEntry,
  type DomainFailure,
  type Dom0Stats,
  type GuestStats,
  type FabricStats,
} from './stats.ts';
export { copyDelta, dropCounters, dropDelta, movedStats, streamAccount, totalDrops } from './drops.ts';
export { vcpuTimes, pcpuSleepTimes, busyShare, awakeShare } from './cpu.ts';
export * from './topo/index.ts';
export { serveControl, serveRequests, checkRequest, controlRequest, manageRequest, defaultSocketPath, type ControlServer } from './control-socket.ts';
export { MANAGE_PROTOCOL, type ManageProtocol } from './manage-ops.ts';
export {
  MANAGE_OPS,
  RATE_UNLIMITED,
  mgmtdevList,
  devList,
  devSet,
  devStats,
  devFeatures,
  pluginList,
  type MgmtDev,
  type Dev,
  type PluginView,
} from './manage.ts';
export { DomainLifecycle, type CreateDomainOptions, type DomainEnd, type DomainInfo, type DomainState } from './lifecycle.ts';
export { VifHotplug, vifHandles, type VifAddOptions, type VifInfo } from './hotplug.ts';
export { serveXenstores, type XenstoreSockets } from './xenstored-socket.ts';
export { DomainMover, MAX_ROUNDS, STOP_PAGES, type MigrateOptions, type MigrationReport, type SaveReport } from './migration.ts';
export { PacketCapture, matchTaps, type CaptureOptions, type CaptureSummary, type CaptureTarget } from './capture.ts';
export { RunMetaSchema, type RunMeta } from './schema/meta.ts';
export { RUN_SCHEMA, RunJsonSchema, type RunJson } from './schema/run.ts';
export { runMeta, setCommandLine, versionLine, xsimVersion } from './meta.ts';
export { type TraceSummary } from './trace.ts';
export { fmtNum, table } from './format.ts';
export {
  runScenario,
  streamRounds,
  defaultEnds,
  checkEnds,
  parseDomainRef,
  WORKLOADS,
  type Workload,
  type ScenarioOptions,
  type ScenarioResult,
  type StreamEnds,
  type Round,
} from './scenario.ts';
export {
  runConformance,
  conformanceTable,
  CHECK_IDS,
  type CheckResult,
  type CheckStatus,
  type ConformanceOptions,
  type ConformanceReport,
} from './conformance/index.ts';
export { onePartition, partitionEnds, pingAcross, type PartitionChoice } from './partitions/one.ts';
export { runPartitionsLocal, type PartitionsRunOptions, type PartitionsRunResult, type PartitionUp } from './partitions/local.ts';
export { LocalPartitions, type LocalPartitionsOptions, type PartitionDeath } from './partitions/procs.ts';
export { partitionsAnswer, servePartitionsLocal, type PartitionsServeOptions } from './partitions/serve.ts';
export { mergeStats, udpInFlight } from './partitions/merge.ts';
export { crossAccount, crossAccountBy, type CrossAccount } from './partitions/traffic.ts';
