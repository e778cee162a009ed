export { Bridge, type BridgePort, type BridgeStats } from './bridge.ts';
export { SkbPool } from './skb.ts';
export { VifBackend, type VifDeps, type VifStats } from './vif.ts';
export { VifBackends } from './backends.ts';
export { UplinkPort, type UplinkDriver, type UplinkStats } from './uplink.ts';
export type { Dom0Config } from './dom0.ts';
export type { AccelBackend, AccelBackendContext, AccelVif, BackendModule, PluginManifest } from './accel-api.ts';
export { AccelManager } from './accel.ts';

/** The dom0 kernel module, for DomainTask.kernel. */
export const DOM0_KERNEL = new URL('./dom0.ts', import.meta.url).href;
