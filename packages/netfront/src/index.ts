export { Netfront, type NetfrontDeps, type NetfrontStats, type RxHandler } from './netfront.ts';
export { XenbusState, frontendPath, backendPath, parseState, STATE_NAMES } from './xenbus.ts';
export { NetEndpoint, type FrameTransport } from './endpoint.ts';
export { parseMac, parseIp, formatMac, formatIp } from './net/addr.ts';
export type { LatencySummary } from './traffic/index.ts';
export type { GuestConfig } from './guest.ts';
export type { AccelFrontend, AccelFrontendContext, FrontendModule } from './accel-api.ts';
export { AccelHost } from './accel-host.ts';

/** The domU kernel module, for DomainTask.kernel. */
export const GUEST_KERNEL = new URL('./guest.ts', import.meta.url).href;
