/**
 * The NIC's RX filter table: frames are steered to a VI by an IPv4 (protocol,
 * destination address, destination port) filter first, then by destination
 * MAC (and VLAN), else to VI 0 (dom0). Hash maps, so lookups stay O(1) with
 * thousands of filters. Only dom0 inserts or removes filters (through MCDI).
 *
 * A MAC filter may be switch-only (`local: true`, issue 21): it is matched
 * only for frames a function of the same NIC sends (the internal switch),
 * never for frames from the wire, as an mlx5 eswitch's FDB rule matches on
 * the source vport. dom0 steers a guest's MAC to its VI this way so the
 * host's other guests reach it through the NIC, while frames from the wire
 * to that MAC keep their path (flow filters, else VI 0). A switch-only and a
 * normal filter for one MAC (and VLAN) may coexist only when they name the
 * same VI: the internal switch and the wire then agree on where the MAC is;
 * the table refuses a second filter of either kind for the MAC to another VI,
 * and a second one of the same kind at all.
 *
 * The table has a size (the topology's nic.filters, default
 * DEFAULT_FILTER_TABLE_SIZE: thousands of entries, as a real NIC's RX filter
 * table has): an insert into a full table is refused with
 * an ENOSPC error (MCDI's MC_CMD_ERR_ENOSPC) and counted in filterNoSpace.
 * Each filter counts the frames it matched (its hits, one increment on the
 * lookup: what a plugin reads through MCDI filter_hits to tell hot flows from
 * cold ones), and a filter inserted with an idle age is removed by the table
 * itself once no frame has matched it for that long on the simulation's
 * clock (after DPDK's rte_flow AGE action: the hardware ages, software finds
 * out). Aging is swept on a timer (nextAgeAt/age, driven by the NIC's
 * thread): a filter idle for ageMs goes between ageMs and 1.5 x ageMs after
 * its last hit, counted in filtersAged.
 */
import { MCDI_ENOSPC, declareCounters, readMac, tracer, type Clock } from '@xsim/hypervisor';

/** A NIC's filter lookups (its stats show them as filterHits, filterMisses), refusals and aging. */
export const FILTER_TABLE_COUNTERS = declareCounters('nic filter table', {
  filterHits: { kind: 'event', help: 'lookups a filter matched (the frame went to its VI)' },
  filterMisses: { kind: 'event', help: "lookups no filter matched (the frame went to the default VI, or the sender's wire)" },
  filterNoSpace: { kind: 'event', help: "filter inserts refused because the NIC's whole filter table was full (MCDI error ENOSPC)" },
  filtersAged: { kind: 'event', help: 'filters the NIC removed itself: inserted with an idle age, no frame matched them for that long' },
});

/** The size of a filter table: a level of the hardware, shown beside its counters. */
export const FILTER_TABLE_GAUGES = declareCounters('nic filter table size', {
  filterTableSize: { kind: 'gauge', help: "entries the NIC's filter table holds at most (the topology's nic.filters)" },
});

/** A NIC's filter table size when the topology does not give one. */
export const DEFAULT_FILTER_TABLE_SIZE = 16384;

/** A filter's match. A MAC match with `local: true` is switch-only: matched for frames the NIC's own functions send, never from the wire. */
export type FilterMatch = { kind: 'mac'; mac: number; vlan?: number; local?: boolean } | { kind: 'ipv4'; proto: number; addr: number; port: number };

const isInt = (v: unknown, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

/**
 * A match spec as it arrives over MCDI from a (possibly broken) backend: anything
 * but a well-formed MAC[/VLAN] or IPv4 (proto, addr, port) match is refused by name.
 */
export function checkFilterMatch(m: unknown): asserts m is FilterMatch {
  const o = m as Record<string, unknown> | null;
  if (o === null || typeof o !== 'object') throw new Error(`filter match must be an object, got ${JSON.stringify(m)}`);
  if (o.kind === 'mac') {
    if (!isInt(o.mac, 2 ** 48 - 1)) throw new Error(`filter match mac must be a 48-bit integer, got ${JSON.stringify(o.mac)}`);
    if (o.vlan !== undefined && !isInt(o.vlan, 4095)) throw new Error(`filter match vlan must be 0..4095, got ${JSON.stringify(o.vlan)}`);
    if (o.local !== undefined && typeof o.local !== 'boolean') throw new Error(`filter match local must be a boolean, got ${JSON.stringify(o.local)}`);
  } else if (o.kind === 'ipv4') {
    if (!isInt(o.proto, 255)) throw new Error(`filter match proto must be 0..255, got ${JSON.stringify(o.proto)}`);
    if (!isInt(o.addr, 2 ** 32 - 1)) throw new Error(`filter match addr must be a 32-bit integer, got ${JSON.stringify(o.addr)}`);
    if (!isInt(o.port, 65535)) throw new Error(`filter match port must be 0..65535, got ${JSON.stringify(o.port)}`);
  } else throw new Error(`filter match kind must be "mac" or "ipv4", got ${JSON.stringify(o.kind)}`);
}

export interface FilterEntry {
  id: number;
  vi: number;
  match: FilterMatch;
  /** Frames this filter matched since it was inserted. */
  hits: number;
  /** Removed by the table once idle this long (ms on its clock); 0: never. */
  ageMs: number;
}

/** What the table keeps per aging filter: when it last saw it hit, and the hits it had then. */
interface AgeState {
  activeAt: number;
  seenHits: number;
}

export const DEFAULT_VI = 0;

export interface FilterTableOptions {
  /** Entries at most (default DEFAULT_FILTER_TABLE_SIZE). */
  size?: number;
  /** The clock aging reads (the NIC thread's, virtual in a deterministic run); without one, no filter ages. */
  clock?: Clock;
}

/** MAC filters of one kind (normal, or switch-only): untagged by MAC, tagged by VLAN then MAC. */
class MacFilters {
  readonly untagged = new Map<number, FilterEntry>();
  readonly tagged = new Map<number, Map<number, FilterEntry>>();

  /** The map for `vlan` (undefined: untagged); made when `make`. */
  map(vlan: number | undefined, make = false): Map<number, FilterEntry> | undefined {
    if (vlan === undefined) return this.untagged;
    let m = this.tagged.get(vlan);
    if (!m && make) this.tagged.set(vlan, (m = new Map()));
    return m;
  }

  /** The entry for a frame's destination (vlan < 0: untagged). */
  find(vlan: number, dst: number): FilterEntry | undefined {
    return vlan >= 0 ? this.tagged.get(vlan)?.get(dst) : this.untagged.get(dst);
  }
}

const macName = (m: { mac: number; vlan?: number }) => `MAC ${m.mac.toString(16)}${m.vlan === undefined ? '' : ` VLAN ${m.vlan}`}`;

export class FilterTable {
  /** MAC filters matched for every frame (from the wire and from the NIC's functions). */
  private readonly macs = new MacFilters();
  /** Switch-only MAC filters: matched only for frames a function of this NIC sends. */
  private readonly localMacs = new MacFilters();
  /** proto → (addr * 65536 + port) → entry */
  private readonly ipv4 = new Map<number, Map<number, FilterEntry>>();
  private readonly byId = new Map<number, FilterEntry>();
  private nextId = 1;
  /** filterHits, filterMisses, filterNoSpace, filtersAged: stored where declared (FILTER_TABLE_COUNTERS). */
  readonly c = FILTER_TABLE_COUNTERS.zero();
  readonly capacity: number;
  private readonly clock: Clock | undefined;
  private readonly aging = new Map<FilterEntry, AgeState>();
  /** When the next aging sweep is due (Infinity: no filter ages). */
  private nextSweep = Infinity;

  constructor(o: FilterTableOptions = {}) {
    this.capacity = o.size ?? DEFAULT_FILTER_TABLE_SIZE;
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new Error(`filter table size must be a positive integer, got ${String(o.size)}`);
    this.clock = o.clock;
  }

  get hits(): number {
    return this.c.filterHits;
  }

  get misses(): number {
    return this.c.filterMisses;
  }

  get size(): number {
    return this.byId.size;
  }

  /**
   * Steer `match` to `vi`; with `ageMs` > 0 the table removes the filter once
   * no frame matched it for that long. A full table refuses (ENOSPC, counted).
   */
  insert(vi: number, match: FilterMatch, ageMs = 0): number {
    checkFilterMatch(match);
    if (!Number.isInteger(ageMs) || ageMs < 0) throw new Error(`filter ageMs must be a non-negative integer, got ${String(ageMs)}`);
    if (this.byId.size >= this.capacity) {
      this.c.filterNoSpace++;
      throw new Error(`${MCDI_ENOSPC}: the filter table is full (${this.byId.size} of ${this.capacity} entries)`);
    }
    if (match.kind === 'mac') this.checkMac(vi, match);
    const id = this.nextId++;
    const e: FilterEntry = { id, vi, match, hits: 0, ageMs };
    if (match.kind === 'mac') this.insertMac(e, match);
    else {
      let m = this.ipv4.get(match.proto);
      if (!m) this.ipv4.set(match.proto, (m = new Map()));
      const key = match.addr * 65536 + match.port;
      if (m.has(key)) throw new Error(`an IPv4 filter for proto ${match.proto} ${match.addr}:${match.port} exists`);
      m.set(key, e);
    }
    this.byId.set(id, e);
    if (ageMs > 0 && this.clock) {
      const now = this.clock.now();
      this.aging.set(e, { activeAt: now, seenHits: 0 });
      this.nextSweep = Math.min(this.nextSweep, now + sweepStep(ageMs));
    }
    if (tracer.on)
      tracer.instant(
        `filter insert: VI ${vi}`,
        match.kind === 'mac'
          ? { id, kind: 'mac', mac: match.mac.toString(16).padStart(12, '0'), local: match.local === true }
          : { id, kind: 'ipv4', proto: match.proto, port: match.port },
      );
    return id;
  }

  /**
   * A MAC filter may go in unless one of its kind exists for the MAC (and
   * VLAN), or one of the other kind names another VI: the internal switch
   * and the wire must agree on where a MAC is.
   */
  private checkMac(vi: number, m: { mac: number; vlan?: number; local?: boolean }): void {
    const local = m.local === true;
    const same = (local ? this.localMacs : this.macs).map(m.vlan)?.get(m.mac);
    if (same) throw new Error(`a ${local ? 'local ' : ''}filter for ${macName(m)} exists (VI ${same.vi})`);
    const other = (local ? this.macs : this.localMacs).map(m.vlan)?.get(m.mac);
    if (other && other.vi !== vi) throw new Error(`a ${local ? '' : 'local '}filter for ${macName(m)} exists (VI ${other.vi})`);
  }

  private insertMac(e: FilterEntry, m: { mac: number; vlan?: number; local?: boolean }): void {
    (m.local === true ? this.localMacs : this.macs).map(m.vlan, true)!.set(m.mac, e);
  }

  remove(id: number): boolean {
    const e = this.byId.get(id);
    if (!e) return false;
    this.byId.delete(id);
    this.aging.delete(e);
    const m = e.match;
    if (m.kind === 'mac') (m.local === true ? this.localMacs : this.macs).map(m.vlan)?.delete(m.mac);
    else this.ipv4.get(m.proto)?.delete(m.addr * 65536 + m.port);
    return true;
  }

  /** Remove every filter pointing at `vi`. */
  removeVi(vi: number): number {
    let n = 0;
    for (const e of [...this.byId.values()]) if (e.vi === vi && this.remove(e.id)) n++;
    return n;
  }

  list(): FilterEntry[] {
    return [...this.byId.values()];
  }

  /** Frames each filter matched so far, by id; null for one that is gone (removed, or aged out). */
  hitsOf(ids: readonly number[]): (number | null)[] {
    return ids.map((id) => this.byId.get(id)?.hits ?? null);
  }

  /** When the next aging sweep is due, on the table's clock (Infinity if no filter ages): the NIC's timer. */
  nextAgeAt(): number {
    return this.nextSweep;
  }

  /**
   * The aging sweep, if due: a filter hit since the last sweep is active now;
   * one not hit for its ageMs is removed (counted in filtersAged). Returns
   * the filters removed.
   */
  age(): number {
    if (!this.clock || this.aging.size === 0) {
      this.nextSweep = Infinity;
      return 0;
    }
    const now = this.clock.now();
    if (now < this.nextSweep) return 0;
    let removed = 0;
    let next = Infinity;
    for (const [e, a] of [...this.aging]) {
      if (e.hits !== a.seenHits) {
        a.seenHits = e.hits;
        a.activeAt = now;
      } else if (now - a.activeAt >= e.ageMs) {
        this.remove(e.id);
        this.c.filtersAged++;
        removed++;
        continue;
      }
      next = Math.min(next, now + sweepStep(e.ageMs));
    }
    this.nextSweep = next;
    return removed;
  }

  /**
   * The VI a frame is steered to, or -1 if no filter matches (the caller
   * decides: VI 0 for received frames, the wire for transmitted ones).
   * `fromLocal`: the frame was sent by a function of this NIC (the internal
   * switch asks), so switch-only MAC filters match it too; a frame from the
   * wire (false) is never steered by one.
   */
  lookup(b: Uint8Array, off: number, len: number, fromLocal = false): number {
    if (len < 14) return -1;
    let l3 = off + 14;
    let type = (b[off + 12] << 8) | b[off + 13];
    let vlan = -1;
    if (type === 0x8100 && len >= 18) {
      vlan = ((b[off + 14] << 8) | b[off + 15]) & 0xfff;
      type = (b[off + 16] << 8) | b[off + 17];
      l3 += 4;
    }
    if (type === 0x0800 && this.ipv4.size > 0 && l3 + 20 <= off + len) {
      const m = this.ipv4.get(b[l3 + 9]);
      if (m) {
        const ihl = (b[l3] & 15) * 4;
        const addr = ((b[l3 + 16] << 24) | (b[l3 + 17] << 16) | (b[l3 + 18] << 8) | b[l3 + 19]) >>> 0;
        const p = l3 + ihl;
        if (p + 4 <= off + len) {
          const e = m.get(addr * 65536 + ((b[p + 2] << 8) | b[p + 3]));
          if (e) {
            this.c.filterHits++;
            e.hits++;
            return e.vi;
          }
        }
      }
    }
    const dst = readMac(b, off);
    const e = (fromLocal ? this.localMacs.find(vlan, dst) : undefined) ?? this.macs.find(vlan, dst);
    if (e) {
      this.c.filterHits++;
      e.hits++;
      return e.vi;
    }
    this.c.filterMisses++;
    return -1;
  }
}

/** Sweeps come every quarter of the shortest age: an idle filter goes at most half an age late (a hit is seen a sweep late). */
function sweepStep(ageMs: number): number {
  return Math.max(1, ageMs / 4);
}
