export * from './layout.ts';
export { ViQueues } from './vi-queues.ts';
export { BufferTable } from './buffer-table.ts';
export { FilterTable, DEFAULT_VI, type FilterMatch, type FilterEntry } from './filter-table.ts';
export { HwNic, NIC_COUNTERS, type NicSpec, type NicCounters } from './hw-nic.ts';
export { VI_COUNTERS, type ViCounters } from './hw-vi.ts';
export { handleMcdi, type McdiOp } from './mcdi.ts';
export { NetDriver, NET_DRIVER_COUNTERS, netDriverPages, netDriverRxBuf, type NetDriverOptions, type NetDriverStats, type RxCallback, type TxDoneCallback } from './net-driver.ts';
export { Driverlink, type SecondaryDriver, type NicInfo, type DriverFailure } from './driverlink.ts';
export { createNicResources, createFabricWake, nicAlias, type NicResources } from './resources.ts';
export type { FabricConfig, FabricNicConfig } from './fabric.ts';

/** The fabric worker's kernel module, for DomainTask.kernel. */
export const FABRIC_KERNEL = new URL('./fabric.ts', import.meta.url).href;
