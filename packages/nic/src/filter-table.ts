/**
 * The NIC's RX filter table: frames are steered to a VI by an IPv4 (protocol,
 * destination address, destination port) filter first, then by destination
 * MAC (and VLAN), else to VI 0 (dom0). Hash maps, so lookups stay O(1) with
 * thousands of filters. Only dom0 inserts or removes filters (through MCDI).
 */
import { declareCounters, readMac, tracer } from '@xsim/hypervisor';

/** A NIC's filter lookups (its stats show them as filterHits, filterMisses). */
export const FILTER_TABLE_COUNTERS = declareCounters('nic filter table', {
  filterHits: { kind: 'event', help: 'lookups a filter matched (the frame went to its VI)' },
  filterMisses: { kind: 'event', help: "lookups no filter matched (the frame went to the default VI, or the sender's wire)" },
});

export type FilterMatch = { kind: 'mac'; mac: number; vlan?: number } | { kind: 'ipv4'; proto: number; addr: number; port: number };

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
}

export const DEFAULT_VI = 0;

export class FilterTable {
  private readonly mac = new Map<number, FilterEntry>();
  private readonly vlanMac = new Map<number, Map<number, FilterEntry>>();
  /** proto → (addr * 65536 + port) → entry */
  private readonly ipv4 = new Map<number, Map<number, FilterEntry>>();
  private readonly byId = new Map<number, FilterEntry>();
  private nextId = 1;
  /** filterHits, filterMisses: stored where declared (FILTER_TABLE_COUNTERS). */
  readonly c = FILTER_TABLE_COUNTERS.zero();

  get hits(): number {
    return this.c.filterHits;
  }

  get misses(): number {
    return this.c.filterMisses;
  }

  get size(): number {
    return this.byId.size;
  }

  insert(vi: number, match: FilterMatch): number {
    checkFilterMatch(match);
    const id = this.nextId++;
    const e: FilterEntry = { id, vi, match };
    if (match.kind === 'mac') {
      const map = match.vlan === undefined ? this.mac : this.vlanMap(match.vlan);
      if (map.has(match.mac))
        throw new Error(
          `a filter for MAC ${match.mac.toString(16)}${match.vlan === undefined ? '' : ` VLAN ${match.vlan}`} exists (VI ${map.get(match.mac)!.vi})`,
        );
      map.set(match.mac, e);
    } else {
      let m = this.ipv4.get(match.proto);
      if (!m) this.ipv4.set(match.proto, (m = new Map()));
      const key = match.addr * 65536 + match.port;
      if (m.has(key)) throw new Error(`an IPv4 filter for proto ${match.proto} ${match.addr}:${match.port} exists`);
      m.set(key, e);
    }
    this.byId.set(id, e);
    if (tracer.on)
      tracer.instant(
        `filter insert: VI ${vi}`,
        match.kind === 'mac' ? { id, kind: 'mac', mac: match.mac.toString(16).padStart(12, '0') } : { id, kind: 'ipv4', proto: match.proto, port: match.port },
      );
    return id;
  }

  private vlanMap(vlan: number): Map<number, FilterEntry> {
    let m = this.vlanMac.get(vlan);
    if (!m) this.vlanMac.set(vlan, (m = new Map()));
    return m;
  }

  remove(id: number): boolean {
    const e = this.byId.get(id);
    if (!e) return false;
    this.byId.delete(id);
    const m = e.match;
    if (m.kind === 'mac') (m.vlan === undefined ? this.mac : this.vlanMap(m.vlan)).delete(m.mac);
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

  /**
   * The VI a frame is steered to, or -1 if no filter matches (the caller
   * decides: VI 0 for received frames, the wire for transmitted ones).
   */
  lookup(b: Uint8Array, off: number, len: number): number {
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
            return e.vi;
          }
        }
      }
    }
    const dst = readMac(b, off);
    const e = vlan >= 0 ? this.vlanMac.get(vlan)?.get(dst) : this.mac.get(dst);
    if (e) {
      this.c.filterHits++;
      return e.vi;
    }
    this.c.filterMisses++;
    return -1;
  }
}
