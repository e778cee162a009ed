/**
 * vnic's backend configuration and counters: what it is loaded with (the
 * eviction policy, the idle age of its filters, the limits of a vif whose
 * backend directory has none), how it reads a vif's own limits from
 * xenstore, and what it counts. Kept apart from backend.ts, which re-exports
 * what others import.
 */
import { declareCounters } from '@xsim/hypervisor';
import { Type, type AccelVif } from '@xsim/netback';
import { EVICTION_POLICIES, LIMIT_MAX, type EvictionPolicy } from './quota.ts';

/** Frames up to this MTU fit the guest's scatter buffers (3 pages per TX slot, RX scatter). */
export const MAX_MTU = 9000;
/** A vif's filter quota when neither xenstore (limits/max-filters) nor the plugin's arguments give one. */
export const DEFAULT_MAX_FILTERS = 64;
/** A vif's DMA page quota by default: as many as an accept may carry. */
export const DEFAULT_MAX_BUF_PAGES = 2048;
/** Filters go from the NIC after this long without a frame (ms, on the simulation's clock), by default. */
export const DEFAULT_FILTER_IDLE_MS = 60_000;

/**
 * vnic's arguments (all optional): the eviction policy, the idle age its
 * filters are inserted with (0: they never age), and the limits of a vif whose
 * backend directory has none.
 */
export interface VnicArgs {
  eviction?: EvictionPolicy;
  filterIdleMs?: number;
  maxFilters?: number;
  maxBufPages?: number;
  /**
   * TCP segmentation offload on the VI (plugin API 1.5): guests hand vnic TCP
   * frames of up to 64 KiB for the NIC to cut. On by default (false: MTU-sized
   * frames only): with every frame taking its pages from one ring of TX pages
   * (tx-ring.ts), a tcp-stream across hosts went 1.13 times as fast with it
   * as without (median of 10 paired repetitions, 0.71..1.47).
   */
  tso?: boolean;
}

/** vnic's arguments as a JSON Schema (for the manifest's `args`). */
export const VNIC_ARGS = Type.Object(
  {
    eviction: Type.Optional(Type.Union(EVICTION_POLICIES.map((p) => Type.Literal(p)))),
    filterIdleMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })),
    maxFilters: Type.Optional(Type.Integer({ minimum: 0, maximum: LIMIT_MAX })),
    maxBufPages: Type.Optional(Type.Integer({ minimum: 0, maximum: LIMIT_MAX })),
    tso: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/**
 * What vnic needs of dom0 and AccelBackendContext does not have yet: the
 * vif's backend directory in xenstore, to read and watch its limits (as the
 * 2007 accelerator's netback did through xenbus). Used where the context has
 * it; without it every vif gets the arguments' limits.
 */
export interface VifConfigFacility {
  /** A key under the vif's backend directory (relative: 'limits/max-filters'), or undefined. */
  read(vif: AccelVif, key: string): string | undefined;
  /** Call `changed` whenever something under `dir` of the vif's backend directory changes; returns the unwatch. */
  watch(vif: AccelVif, dir: string, changed: () => void): () => void;
}

export interface Limits {
  maxFilters: number;
  maxBufPages: number;
}

/** The arguments, checked (the loader checks them against VNIC_ARGS too when the manifest names it). */
export function vnicArgs(a: Record<string, unknown>): Required<VnicArgs> {
  const int = (k: keyof VnicArgs, dflt: number, max: number): number => {
    const v = a[k];
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
      throw new Error(`vnic: argument ${k} must be an integer from 0 to ${max}, got ${JSON.stringify(v)}`);
    return v;
  };
  if (a.tso !== undefined && typeof a.tso !== 'boolean') throw new Error(`vnic: argument tso must be true or false, got ${JSON.stringify(a.tso)}`);
  const eviction = a.eviction ?? 'clock';
  if (!EVICTION_POLICIES.includes(eviction as EvictionPolicy))
    throw new Error(`vnic: argument eviction must be one of ${EVICTION_POLICIES.join(', ')}, got ${JSON.stringify(a.eviction)}`);
  return {
    eviction: eviction as EvictionPolicy,
    filterIdleMs: int('filterIdleMs', DEFAULT_FILTER_IDLE_MS, 2 ** 31 - 1),
    maxFilters: int('maxFilters', DEFAULT_MAX_FILTERS, LIMIT_MAX),
    maxBufPages: int('maxBufPages', DEFAULT_MAX_BUF_PAGES, LIMIT_MAX),
    tso: a.tso !== false,
  };
}

export const VNIC_BACKEND_COUNTERS = declareCounters('vnic backend', {
  attached: { kind: 'event', help: 'vifs given a running VI' },
  filtersInserted: { kind: 'event', help: 'IPv4 flow filters learnt onto a VI' },
  filterFailures: { kind: 'event', help: 'flow filters the NIC refused (table full, a duplicate)' },
  noFreeVi: { kind: 'event', help: 'vifs left on the slow path: no VI free' },
  faults: { kind: 'event', help: 'VIs that faulted (a bad descriptor from the guest)' },
  declined: { kind: 'event', help: "offers the guest's frontend declined" },
  filtersRestored: { kind: 'event', help: "flow filters put back at once from a migrated vif's saved state (not relearnt)" },
  filterCapReached: {
    kind: 'event',
    help: "frames of a new flow that stayed on the slow path (through dom0) because its vif's filter quota was full and eviction is off (or the quota is 0)",
  },
  filtersEvicted: {
    kind: 'event',
    help: "learnt filters removed to make room for a new flow on a vif at its quota, or to meet a lowered quota (the policy's victims)",
  },
  filtersAgedOut: { kind: 'event', help: 'learnt filters the NIC had removed after filterIdleMs without a frame (found when vnic next looked)' },
  flowsNicFull: {
    kind: 'event',
    help: 'new flows the NIC refused a filter because its whole filter table was full (MCDI ENOSPC): they stay on the slow path, tried again later',
  },
  bufPagesRefused: {
    kind: 'event',
    help: "attachments refused because the guest's DMA area was larger than the vif's limits/max-buf-pages: the vif stays on the slow path",
  },
  limitChanges: { kind: 'event', help: "changes of a vif's limits applied while it was attached (a lowered max-filters evicts at once)" },
});

/** A vif's limits as vnic's stats show them (levels, not counts). */
export const VNIC_VIF_GAUGES = declareCounters('vnic backend vif', {
  maxFilters: { kind: 'gauge', help: "a vif's filter quota now (limits/max-filters, else vnic's default)" },
  maxBufPages: { kind: 'gauge', help: "a vif's DMA page quota now (limits/max-buf-pages, else vnic's default)" },
});
