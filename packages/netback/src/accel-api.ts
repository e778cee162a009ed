/**
 * The contract between netback and an accelerator plugin's backend part.
 * A backend is a driverlink secondary driver of the host's NIC; netback
 * attaches vifs to it and routes the plugin's per-vif channel messages. Only
 * the backend (in dom0) programs the NIC: filters and buffer table go through
 * ctx.mcdi (the VI NIC), steering and IOMMU through ctx.vdpa (the virtio NIC),
 * which guests never have.
 */
import type { HookKind, McdiOp, McdiOps, OpArgs, OpReply, VdpaOp, VdpaOps } from '@xsim/hypervisor';
import type { NicInfo, SecondaryDriver } from '@xsim/nic';
import type { JsonSchema, PluginManifest } from './plugin-protocol.ts';

export type { JsonSchema, PluginManifest };

export interface AccelVif {
  readonly key: string;
  readonly domid: number;
  readonly handle: number;
  readonly mac: number;
  readonly ip: number;
}

/**
 * A vif's backend directory in xenstore, as dom0 offers it to plugins
 * (kernel/vif-config.ts): the keys the toolstack writes there for the
 * accelerator (limits/max-filters, limits/max-buf-pages), relative keys only,
 * read and watched as the 2007 accelerator's netback read them through xenbus.
 */
export interface AccelVifConfig {
  /** A key under the vif's backend directory (relative: 'limits/max-filters'), or undefined. */
  read(vif: AccelVif, key: string): string | undefined;
  /** Call `changed` whenever something under `dir` of the vif's backend directory changes; returns the unwatch. */
  watch(vif: AccelVif, dir: string, changed: () => void): () => void;
}

export interface AccelBackendContext {
  /** The plugin API version this host speaks (PLUGIN_API_VERSION): the manifest's `api` or a newer minor of it. */
  readonly apiVersion: string;
  readonly nic: () => NicInfo;
  readonly dom0: number;
  /**
   * A privileged command to the VI NIC (MCDI: @xsim/hypervisor's MCDI_OPS names each and its arguments).
   * Throws on a host whose NIC is the virtio model (use vdpa there).
   */
  mcdi<K extends McdiOp>(op: K, args: OpArgs<McdiOps, K>): OpReply<McdiOps, K>;
  /** An MCDI command with shared memory beside it both ways (vi_init: the interrupt in, the doorbell out). */
  mcdiShared<K extends McdiOp>(
    op: K,
    args: OpArgs<McdiOps, K>,
    shared: SharedArrayBuffer[],
  ): { value: OpReply<McdiOps, K>; shared: readonly SharedArrayBuffer[] };
  /**
   * A privileged command to the virtio NIC (`nic:1af4-1041`: @xsim/hypervisor's VDPA_OPS names each and
   * its arguments). Throws on a host whose NIC is the VI model (use mcdi there).
   */
  vdpa<K extends VdpaOp>(op: K, args: OpArgs<VdpaOps, K>): OpReply<VdpaOps, K>;
  /** A vDPA command with shared memory beside it both ways (fn_start: the interrupt in, the notify area out). */
  vdpaShared<K extends VdpaOp>(
    op: K,
    args: OpArgs<VdpaOps, K>,
    shared: SharedArrayBuffer[],
  ): { value: OpReply<VdpaOps, K>; shared: readonly SharedArrayBuffer[] };
  /**
   * A free VI of this host's NIC — a VI, or a function of the virtio NIC — or null if none is left.
   * VI (function) 0 is dom0's on either model and is never given.
   */
  allocVi(): number | null;
  freeVi(vi: number): void;
  /** The binding of a guest's interrupt port and its doorbell, to hand to the NIC (vi_init, fn_start). */
  deviceIrq(domid: number, port: number): { binding: SharedArrayBuffer; doorbell: SharedArrayBuffer };
  /** Map a guest's grants (read-write) to learn the frames to register in the buffer table (or map in a function's IOMMU). */
  mapGrants(domid: number, grefs: number[]): { frames: number[]; handles: number[] } | string;
  unmapGrants(handles: number[]): void;
  /** Message the vif's frontend part over the plugin channel. */
  send(vif: AccelVif, op: string, args: Record<string, unknown>, shared?: SharedArrayBuffer[]): void;
  /** MACs the bridge has learned behind the uplink: destinations the NIC reaches directly. */
  uplinkMacs(): number[];
  /** The backend finished detaching a vif (after its frontend drained). */
  detached(vif: AccelVif): void;
  /** The vifs' backend directories (their limits/*): dom0 offers them; a plugin that uses them copes without (another host's context). */
  readonly vifConfig?: AccelVifConfig;
  log(msg: string): void;
}

export interface AccelBackend extends SecondaryDriver {
  attachVif?(vif: AccelVif): void;
  /** Start detaching; call ctx.detached(vif) when done. */
  detachVif?(vif: AccelVif): void;
  /** The vif vanished (frontend gone): drop its resources without a handshake. */
  vifGone?(vif: AccelVif): void;
  onFrontendMessage?(vif: AccelVif, op: string, args: Record<string, unknown>): void;
  /** A frame netback delivered to an attached vif on the slow path (learning). */
  onSlowPathRx?(vif: AccelVif, ram: Uint8Array, off: number, len: number): void;
  onUplinkLearn?(mac: number): void;
  /**
   * A MAC is no longer behind the uplink: its guest migrated onto this host
   * (its vif now holds the MAC) or left the network (forgotten). Frames to it
   * must leave the fast path at once (API 1.2).
   */
  onUplinkForget?(mac: number): void;
  /**
   * Migration, STOP_COPY (after VFIO migration v2): the vif's device state to
   * carry to the destination (vnic: its learnt flows), as plain data. Called
   * before the vif is detached from the source.
   */
  saveState?(vif: AccelVif): unknown;
  /**
   * Migration, RESUMING: the state a source plugin of the same name saved for
   * this vif, given just before attachVif on the destination, so what was
   * learnt comes back at once instead of being relearnt.
   */
  restoreState?(vif: AccelVif, state: unknown): void;
  stats(): Record<string, unknown>;
}

/**
 * Every member of AccelBackend (a SecondaryDriver's and the accelerator's), by
 * kind: the loader refuses a backend object missing a required one or having
 * a method of a name not here (hookProblems in @xsim/hypervisor). `satisfies`
 * keeps the table and the interface the same set of names.
 */
export const ACCEL_BACKEND_HOOKS = {
  name: 'string',
  probe: 'required',
  remove: 'required',
  stats: 'required',
  linkChange: 'optional',
  mtuChangeRequest: 'optional',
  mtuChanged: 'optional',
  mtuChangeFailed: 'optional',
  suspend: 'optional',
  resume: 'optional',
  rxIntercept: 'optional',
  txIntercept: 'optional',
  attachVif: 'optional',
  detachVif: 'optional',
  vifGone: 'optional',
  onFrontendMessage: 'optional',
  onSlowPathRx: 'optional',
  onUplinkLearn: 'optional',
  onUplinkForget: 'optional',
  saveState: 'optional',
  restoreState: 'optional',
} as const satisfies Record<keyof AccelBackend, HookKind>;

/** The hooks a feature needs: an "intercept" plugin at least one intercept, a "vif" plugin the three of a vif's life. */
export const FEATURE_HOOKS = {
  intercept: { anyOf: ['rxIntercept', 'txIntercept'] },
  vif: { allOf: ['attachVif', 'detachVif', 'onFrontendMessage'] },
} as const satisfies Record<PluginManifest['features'][number], { anyOf: readonly (keyof AccelBackend)[] } | { allOf: readonly (keyof AccelBackend)[] }>;

/**
 * A vif's migration arcs on the accelerator side, after VFIO migration v2
 * (RUNNING -> PRE_COPY -> STOP_COPY on the source; RESUMING -> RUNNING on the
 * destination). The manager moves along this table only.
 */
export const ACCEL_MIGRATION_ARCS: Readonly<Record<AccelMigrationState, readonly AccelMigrationState[]>> = {
  running: ['pre_copy', 'stop_copy'],
  pre_copy: ['stop_copy', 'running'],
  stop_copy: [],
  resuming: ['running'],
};
export type AccelMigrationState = 'running' | 'pre_copy' | 'stop_copy' | 'resuming';

/** What a plugin module exports (backend and frontend may live in different modules). */
export interface BackendModule {
  manifest: PluginManifest;
  createBackend(ctx: AccelBackendContext, args: Record<string, unknown>): AccelBackend;
}
