export { Netfront, frontendMayMove } from './netfront/xenbus.ts';
export { frontendFeatures, readBackendFeatures, type NetfrontParams, type BackendFeatures } from './netfront/features.ts';
export { NETFRONT_COUNTERS, MAX_FRAME_PIECES, netfrontPages, type NetfrontDeps, type NetfrontCounters, type RxHandler } from './netfront/common.ts';
export { XenbusState, frontendPath, backendPath, parseState, STATE_NAMES, stateName, type XsLike } from './xenbus.ts';
export { bootGuest, NOT_MINE, type GuestConfig, type GuestDevice, type GuestKernel, type GuestExtension } from './guest.ts';
export type { AccelFrontend, AccelFrontendContext, FrontendModule } from './accel-api.ts';
export { ACCEL_FRONTEND_HOOKS } from './accel-api.ts';
export { AccelHost } from './accel-host.ts';
export type { GuestStats } from './kernel/stats.ts';

/** The domU kernel module, for DomainTask.kernel. */
export const GUEST_KERNEL = new URL('./guest.ts', import.meta.url).href;
