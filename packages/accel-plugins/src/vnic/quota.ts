/**
 * vnic's flow filters of one vif under a quota (issue 19, item 4): at most
 * `limit` learnt filters on the NIC at once. When a new flow finds the quota
 * full, a learnt filter is evicted to make room. The policy:
 *
 * - 'clock' (the default): CLOCK, second chance (Corbató's approximation of
 *   least recently used). The hardware keeps the reference information for
 *   free: each filter counts the frames it matched (MCDI filter_hits), so a
 *   filter is "referenced" if its count moved since the hand last passed it.
 *   The hand sweeps the vif's filters in the order they were learnt, gives a
 *   referenced one a second chance (its count noted), and evicts the first
 *   one not hit since the last pass. Exact LRU would need the time of every
 *   hit, a clock read per frame on the NIC's data path; CLOCK needs one
 *   filter_hits query per eviction (a vif's filters at most), on the slow path
 *   where the eviction happens anyway, and keeps the flows that are busy.
 * - 'fifo': the oldest learnt filter goes, whatever its traffic: the cheapest
 *   victim, no hit information used (the baseline the measurement compares).
 * - 'none': no eviction; a full vif keeps new flows on the slow path (what
 *   vnic did before, with its fixed 64).
 *
 * The same filter_hits query tells which filters the NIC aged out (idle past
 * the age vnic inserts them with): they leave the quota without an eviction.
 */
import { MCDI_ENOSPC } from '@xsim/hypervisor';

export type EvictionPolicy = 'clock' | 'fifo' | 'none';
export const EVICTION_POLICIES: readonly EvictionPolicy[] = ['clock', 'fifo', 'none'];

/** What the quota logic needs of the NIC (vnic's backend gives it MCDI through its context). */
export interface FilterOps {
  /** Insert a filter for the flow `key` (proto * 65536 + port); throws the NIC's error (ENOSPC: its table is full). */
  insert(key: number): number;
  remove(id: number): void;
  /** Frames each filter matched so far, null for one the NIC no longer has. */
  hits(ids: number[]): (number | null)[];
}

/** One learnt filter: its flow, the NIC's id, and its hit count when the hand (or a check) last looked. */
interface Learnt {
  key: number;
  id: number;
  seen: number;
  /** Frames of this flow that came the slow way since it was learnt (a filter the NIC aged out sends them all). */
  slow: number;
}

/** What a learn attempt did, for the backend to count. */
export type LearnResult =
  | 'inserted'
  | 'known'
  /** The quota is full (or 0) and eviction is off: the flow stays on the slow path. */
  | 'capped'
  /** The NIC's whole table is full: the flow stays on the slow path (retried later). */
  | 'nicFull'
  /** The flow is waiting to retry after a full NIC table. */
  | 'waiting'
  | 'failed';

/** A known flow's frames on the slow path: every CHECK_EVERY-th asks the NIC whether its filter is still there (aged out?). */
const CHECK_EVERY = 32;
/** A flow the NIC had no room for is tried again after this many more of its slow-path frames. */
const NIC_FULL_RETRY = 256;

/** The most a limit may be (larger values in xenstore are ignored, logged). */
export const LIMIT_MAX = 65536;

/** A limit as xenstore has it: a decimal integer 0..LIMIT_MAX, else undefined (absent, or not a limit). */
export function parseLimit(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,6}$/.test(v)) return undefined;
  const n = Number(v);
  return n <= LIMIT_MAX ? n : undefined;
}

/**
 * The flows of a migrated vif's saved state ({flows: [proto, port][]}). A saved
 * state is data from another host: only well-formed flows are taken, at most
 * the largest quota's worth (learning keeps to the vif's).
 */
export function savedFlows(state: unknown): [number, number][] {
  const f = (state as { flows?: unknown } | null)?.flows;
  if (!Array.isArray(f)) return [];
  return f
    .filter((x): x is [number, number] => Array.isArray(x) && (x[0] === 17 || x[0] === 6) && Number.isInteger(x[1]) && x[1] >= 0 && x[1] <= 65535)
    .slice(0, LIMIT_MAX);
}

/**
 * The flow a frame the slow path delivered to a guest belongs to, as a key
 * (proto * 65536 + destination port), if it is one a plugin may learn: IPv4,
 * UDP or TCP, to the guest's own address `ip`. Else -1.
 */
export function learnableFlow(ram: Uint8Array, off: number, len: number, ip: number): number {
  if (len < 38 || ram[off + 12] !== 8 || ram[off + 13] !== 0) return -1;
  const l3 = off + 14;
  const proto = ram[l3 + 9];
  if (proto !== 17 && proto !== 6) return -1;
  const dst = ((ram[l3 + 16] << 24) | (ram[l3 + 17] << 16) | (ram[l3 + 18] << 8) | ram[l3 + 19]) >>> 0;
  if (dst !== ip) return -1;
  const l4 = l3 + (ram[l3] & 15) * 4;
  if (l4 + 4 > off + len) return -1;
  return proto * 65536 + ((ram[l4 + 2] << 8) | ram[l4 + 3]);
}

export class VifFilters {
  /** Learnt filters in the hand's order (the order they were learnt, a victim's slot taken by its successor). */
  private readonly ring: Learnt[] = [];
  private hand = 0;
  private readonly byKey = new Map<number, Learnt>();
  /** Flows the NIC refused for lack of room, with their slow-path frames since. */
  private readonly nicFull = new Map<number, number>();
  /** Flows the NIC refused for another reason (a duplicate): never tried again on this attachment. */
  readonly failed = new Set<number>();
  /** Filters evicted (for room or a lowered limit) and found aged out, since this attachment began. */
  evicted = 0;
  agedOut = 0;

  constructor(
    private readonly ops: FilterOps,
    public limit: number,
    readonly policy: EvictionPolicy,
  ) {}

  get size(): number {
    return this.ring.length;
  }

  /** The flows learnt, as keys (proto * 65536 + port), in the hand's order. */
  keys(): number[] {
    return this.ring.map((f) => f.key);
  }

  ids(): number[] {
    return this.ring.map((f) => f.id);
  }

  /**
   * A frame of flow `key` came the slow way: learn it, evicting if the quota
   * is full. A flow already learnt is checked now and then (its filter may
   * have aged out at the NIC: then it is learnt again).
   */
  learn(key: number): LearnResult {
    const known = this.byKey.get(key);
    if (known) {
      if (++known.slow % CHECK_EVERY !== 0 || this.ops.hits([known.id])[0] !== null) return 'known';
      this.drop(known);
      this.agedOut++;
    }
    if (this.failed.has(key)) return 'known';
    const waited = this.nicFull.get(key);
    if (waited !== undefined) {
      if (waited + 1 < NIC_FULL_RETRY) {
        this.nicFull.set(key, waited + 1);
        return 'waiting';
      }
      this.nicFull.delete(key);
    }
    let slot = this.ring.length;
    if (this.ring.length >= this.limit) {
      if (this.limit === 0 || this.policy === 'none') return 'capped';
      const hits = this.reconcile();
      // The NIC may have aged some out: then there is room without evicting.
      slot = this.ring.length >= this.limit ? this.evictOne(hits) : this.ring.length;
    }
    return this.insert(key, slot);
  }

  /** Insert the flow's filter; it takes `slot` (a victim's, or the end), and the hand moves past it, so it has a whole turn to be hit. */
  private insert(key: number, slot: number): LearnResult {
    let id: number;
    try {
      id = this.ops.insert(key);
    } catch (e) {
      if ((e as Error).message.includes(`${MCDI_ENOSPC}:`)) {
        this.nicFull.set(key, 0);
        return 'nicFull';
      }
      this.failed.add(key);
      throw e;
    }
    const f: Learnt = { key, id, seen: 0, slow: 0 };
    const at = Math.min(slot, this.ring.length);
    this.ring.splice(at, 0, f);
    if (at < this.ring.length - 1 || this.hand > at) this.hand = (at + 1) % this.ring.length;
    this.byKey.set(key, f);
    return 'inserted';
  }

  private drop(f: Learnt): void {
    const i = this.ring.indexOf(f);
    this.ring.splice(i, 1);
    if (i < this.hand) this.hand--;
    if (this.hand >= this.ring.length) this.hand = 0;
    this.byKey.delete(f.key);
  }

  /** Ask the NIC which filters it still has, with their hits: the ones it aged out leave. Returns the hits of those left, in the ring's order. */
  private reconcile(): number[] {
    const hits = this.ops.hits(this.ids());
    for (let i = this.ring.length - 1; i >= 0; i--) {
      if (hits[i] === null) {
        this.drop(this.ring[i]);
        this.agedOut++;
      }
    }
    return hits.filter((h): h is number => h !== null);
  }

  /** Evict one filter by the policy; returns the slot it freed (where the hand now is). */
  private evictOne(hits: number[]): number {
    const at = this.policy === 'clock' ? this.clockVictim(hits) : this.hand % this.ring.length;
    const [victim] = this.ring.splice(at, 1);
    hits.splice(at, 1);
    this.hand = this.ring.length === 0 ? 0 : at % this.ring.length;
    this.byKey.delete(victim.key);
    this.ops.remove(victim.id);
    this.evicted++;
    return at;
  }

  /** Evict (by the policy) until at most `target` filters are left (a lowered limit). Returns how many were evicted. */
  makeRoom(target: number): number {
    if (this.ring.length <= target) return 0;
    const hits = this.reconcile();
    let n = 0;
    while (this.ring.length > Math.max(0, target)) {
      this.evictOne(hits);
      n++;
    }
    return n;
  }

  /** CLOCK: from the hand, the first filter whose hit count has not moved since it was last looked at; the ones passed get their second chance. */
  private clockVictim(hits: number[]): number {
    const n = this.ring.length;
    for (let k = 0; k < n; k++) {
      const at = (this.hand + k) % n;
      const f = this.ring[at];
      if (hits[at] === f.seen) return at;
      f.seen = hits[at];
    }
    // Every one was hit: after their second chances, the hand's own goes.
    return this.hand % n;
  }

  /** Every filter off the NIC (a detach, a teardown). */
  clear(): void {
    for (const f of this.ring) this.ops.remove(f.id);
    this.ring.length = 0;
    this.byKey.clear();
    this.nicFull.clear();
    this.hand = 0;
  }

  /** Flows the NIC could not take (table full) now waiting to retry. */
  get waiting(): number {
    return this.nicFull.size;
  }
}
