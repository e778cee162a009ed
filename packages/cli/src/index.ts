export { Simulation, type SimulationOptions, type DomainRef, type RunningDomain } from './toolstack/simulation.ts';
export { runStream, runPing, type StreamOptions, type StreamResult, type PingResult } from './toolstack/traffic.ts';
export { copyDelta, dropCounters, dropDelta, totalDrops } from './toolstack/drops.ts';
export * from './topo/index.ts';
export * from './bench/index.ts';
