/**
 * What the accelerator manager (accel.ts) keeps and is given: its counters,
 * a loaded plugin, a vif's plugin channel, a failure, what a migrating vif
 * leaves behind, the unload bound, and what dom0 hands the manager.
 */
import { declareCounters, type RpcEndpoint, type ToFrontendChannel } from '@xsim/hypervisor';
import type { Driverlink } from '@xsim/nic';
import type { AccelBackend, AccelVif, PluginManifest } from './accel-api.ts';
import type { HostContext } from './accel-held.ts';

/**
 * How long an unload waits (on dom0's clock) for the plugin to call
 * ctx.detached(vif) for every vif it was asked to detach. A frontend drains
 * in milliseconds; a plugin still holding a vif after this never will, and
 * is removed by force (its vifs back on the slow path, its VIs released).
 */
export const UNLOAD_DETACH_MS = 5_000;

export const ACCEL_MANAGER_COUNTERS = declareCounters('accel manager', {
  refusedFilterRequests: { kind: 'event', help: 'guests asking for NIC filters: refused' },
  badFrontendMessages: { kind: 'event', help: "plugin-channel messages from a guest that failed their schema: that vif's attachment failed" },
  vifFailures: {
    kind: 'event',
    help: "vif attachments failed by one guest's input (bad message, or the plugin threw handling it): that vif is back on the slow path, the plugin stays",
  },
  frontendFailures: { kind: 'event', help: 'plugin frontends that reported they broke (their vif was detached)' },
  // driverErrors (shown after these in stats()) is driverlink's: declared and stored there (DRIVERLINK_COUNTERS).
});

export interface LoadedPlugin {
  manifest: PluginManifest;
  backend: AccelBackend;
  frontendUrl?: string;
  /** Attached (or attaching) vifs: the reference count. */
  vifs: Set<string>;
  /** An unload in progress: who is told when it ends, and when it is forced (dom0's clock). */
  unloading?: { done: (error?: string) => void; deadline: number };
}

export interface PluginFailure {
  plugin: string;
  hook: string;
  error: string;
}

export interface VifChannel {
  vif: AccelVif;
  rpc: RpcEndpoint<ToFrontendChannel>;
  plugin?: string;
  /** Frames offered to the accel hooks on the slow path, and so on: for stats. */
}

/** What a vif's source plugin left for its destination. */
export interface MigratedOut {
  plugin: string | null;
  state: unknown;
}

export interface AccelManagerDeps {
  driverlink: Driverlink;
  ctx: HostContext;
  /** dom0's clock: what an unload's bound is measured on. */
  clock: { now(): number };
  /** Ask the domain loop to await a promise (dynamic import) without blocking the rings. */
  defer<T>(p: Promise<T>, then: (v: T) => void, fail: (e: Error) => void): void;
  writeAccelKey(vif: AccelVif, plugin: string | null): void;
}
