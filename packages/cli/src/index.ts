export { placeDomains, PlacementError, type Placement } from './toolstack/placement.ts';
export { Simulation, type SimulationOptions, type DomainRef, type RunningDomain } from './toolstack/simulation.ts';
export { runStream, runPing, type StreamOptions, type StreamResult, type PingResult } from './toolstack/traffic.ts';
export { copyDelta, dropCounters, dropDelta, streamAccount, totalDrops } from './toolstack/drops.ts';
export * from './topo/index.ts';
export * from './bench/index.ts';
export { serveControl, controlRequest, defaultSocketPath, type ControlServer } from './toolstack/control-socket.ts';
export { MANAGE_OPS, mgmtdevList, devList, devStats, devFeatures, pluginList, type MgmtDev, type Dev, type PluginView } from './toolstack/manage.ts';
export { manageCommand } from './commands/manage.ts';
