/**
 * vdpa's backend configuration and counters: its arguments (vnic's: the
 * eviction policy, the filters' idle age, the limits of a vif whose directory
 * has none), their defaults, and what it counts. Kept apart from backend.ts,
 * which re-exports what others import.
 */
import { declareCounters } from '@xsim/hypervisor';
import { Type } from '@xsim/netback';
import { EVICTION_POLICIES, LIMIT_MAX, type EvictionPolicy } from '../vnic/quota.ts';

/** vdpa's arguments as a JSON Schema: vnic's (the eviction policy, the filters' idle age, the limits of a vif whose directory has none). */
export const VDPA_ARGS = Type.Object(
  {
    eviction: Type.Optional(Type.Union(EVICTION_POLICIES.map((p) => Type.Literal(p)))),
    filterIdleMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })),
    maxFilters: Type.Optional(Type.Integer({ minimum: 0, maximum: LIMIT_MAX })),
    maxBufPages: Type.Optional(Type.Integer({ minimum: 0, maximum: LIMIT_MAX })),
  },
  { additionalProperties: false },
);

/** The largest MTU whose frames the guest's buffers carry (chains of whole pages). */
export const MAX_MTU = 9000;
export const DEFAULT_MAX_FILTERS = 64;
export const DEFAULT_MAX_BUF_PAGES = 2048;
export const DEFAULT_FILTER_IDLE_MS = 60_000;
/** steer_hits takes at most this many ids a command. */
export const HITS_PER_COMMAND = 4096;

export const VDPA_BACKEND_COUNTERS = declareCounters('vdpa backend', {
  vdpaAttached: { kind: 'event', help: 'vifs given a running virtio function' },
  vdpaNoFunction: { kind: 'event', help: 'vifs left on the slow path: no function of the NIC free' },
  vdpaDeclined: { kind: 'event', help: "offers the guest's frontend declined" },
  vdpaFaults: { kind: 'event', help: 'functions that faulted (DEVICE_NEEDS_RESET: a bad descriptor or IOVA from the guest)' },
  vdpaStartFailures: {
    kind: 'event',
    help: 'accepts that could not start the function (grants, IOMMU, interrupt or fn_start refused): the vif stays on the slow path',
  },
  vdpaRulesLearnt: { kind: 'event', help: 'IPv4 flow steering rules learnt onto a function' },
  vdpaRulesRestored: { kind: 'event', help: "steering rules put back at once from a migrated vif's saved state (not relearnt)" },
  vdpaRuleFailures: { kind: 'event', help: 'steering rules the NIC refused for another reason than a full table (a duplicate)' },
  vdpaFilterCapReached: {
    kind: 'event',
    help: "frames of a new flow that stayed on the slow path because its vif's filter quota was full and eviction is off (or the quota is 0)",
  },
  vdpaFiltersEvicted: { kind: 'event', help: 'learnt steering rules removed to make room for a new flow at the quota, or to meet a lowered quota' },
  vdpaFiltersAgedOut: { kind: 'event', help: 'learnt steering rules the NIC had removed after filterIdleMs without a frame (found when vdpa next looked)' },
  vdpaFlowsNicFull: { kind: 'event', help: 'new flows the NIC refused a rule because its steering table was full (ENOSPC): they stay on the slow path' },
  vdpaBufPagesRefused: { kind: 'event', help: "attachments refused: the guest's DMA area was larger than the vif's limits/max-buf-pages" },
  vdpaLimitChanges: { kind: 'event', help: "changes of a vif's limits applied while it was attached (a lowered max-filters evicts at once)" },
});

export interface Args {
  eviction: EvictionPolicy;
  filterIdleMs: number;
  maxFilters: number;
  maxBufPages: number;
}

/** The arguments, with their defaults (dom0 checked them against VDPA_ARGS before createBackend). */
export function vdpaArgs(a: Record<string, unknown>): Args {
  const int = (k: keyof Args, dflt: number): number => {
    const v = a[k];
    return typeof v === 'number' ? v : dflt;
  };
  return {
    eviction: EVICTION_POLICIES.includes(a.eviction as EvictionPolicy) ? (a.eviction as EvictionPolicy) : 'clock',
    filterIdleMs: int('filterIdleMs', DEFAULT_FILTER_IDLE_MS),
    maxFilters: int('maxFilters', DEFAULT_MAX_FILTERS),
    maxBufPages: int('maxBufPages', DEFAULT_MAX_BUF_PAGES),
  };
}
