/**
 * ARP (RFC 826) on one interface, the protocol beside the cache (arp.ts):
 * answer requests for our address, learn from replies and from requests
 * aimed at us, refresh (never create) entries from what is not for us,
 * resolve a neighbour with a broadcast request, confirm a stale one still in
 * use with a unicast request (Linux's NUD_PROBE), and announce ourselves
 * (a gratuitous request). Frames are built in the transport's buffer.
 */
import { BROADCAST_MAC, readMac, writeMac } from './addr.ts';
import type { ArpCache } from './arp.ts';
import { ARPOP_REPLY, ARPOP_REQUEST, ARP_LEN, ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_ZLEN, readU16, readU32, writeU16, writeU32 } from './wire.ts';
import type { StackCounters } from './stack-counters.ts';

/** What the ARP layer needs of its interface. */
export interface ArpDeps {
  cache: ArpCache;
  counters: StackCounters;
  transport: { reserve(len: number): { buf: Uint8Array; off: number } | null; commit(len: number): void };
  mac: number;
  ip: number;
  /** The stack's time (the last tick's, or the clock). */
  now(): number;
}

export class ArpLayer {
  /** Neighbours sent to since the last tick (the tick confirms the stale ones among them). */
  private readonly inUse = new Set<number>();

  constructor(private readonly d: ArpDeps) {}

  /** A frame went to `ip`: a stale entry for it is confirmed at the next tick. */
  used(ip: number): void {
    this.inUse.add(ip);
  }

  /** Expire dead entries; confirm the stale ones in use since the last tick. */
  tick(now: number): void {
    const cache = this.d.cache;
    cache.expire(now);
    for (const ip of this.inUse) if (cache.isStale(ip, now)) this.confirm(ip, now);
    this.inUse.clear();
  }

  /**
   * A gratuitous ARP (a request for our own address, to everyone): after a
   * migration it tells bridges and switches where our MAC is now, and
   * neighbours that already know us refresh their entry.
   */
  announce(): boolean {
    return this.send(ARPOP_REQUEST, BROADCAST_MAC, 0, this.d.ip);
  }

  /** Start resolving `ip` (sends a request unless one went out just now): true if it is known already. */
  resolve(ip: number, now: number): boolean {
    const cache = this.d.cache;
    if (cache.lookup(ip) !== undefined) return true;
    if (cache.shouldAsk(ip, now)) this.send(ARPOP_REQUEST, BROADCAST_MAC, 0, ip);
    return false;
  }

  /** A stale neighbour still in use: a unicast request to the MAC we know, rate-limited as any request. */
  private confirm(ip: number, now: number): void {
    const mac = this.d.cache.lookup(ip);
    if (mac !== undefined && this.d.cache.shouldAsk(ip, now)) {
      this.d.counters.txArpProbe++;
      this.send(ARPOP_REQUEST, mac, 0, ip);
    }
  }

  private send(op: number, dstMac: number, targetMac: number, targetIp: number): boolean {
    const { transport, counters, mac, ip } = this.d;
    const slot = transport.reserve(ETH_ZLEN);
    if (!slot) {
      counters.txBusy++;
      return false;
    }
    const { buf, off } = slot;
    writeMac(buf, off, dstMac);
    writeMac(buf, off + 6, mac);
    writeU16(buf, off + 12, ETH_P_ARP);
    const a = off + ETH_HLEN;
    writeU16(buf, a, 1); // htype Ethernet
    writeU16(buf, a + 2, ETH_P_IP);
    buf[a + 4] = 6;
    buf[a + 5] = 4;
    writeU16(buf, a + 6, op);
    writeMac(buf, a + 8, mac);
    writeU32(buf, a + 14, ip);
    writeMac(buf, a + 18, targetMac);
    writeU32(buf, a + 24, targetIp);
    buf.fill(0, a + ARP_LEN, off + ETH_ZLEN);
    transport.commit(ETH_ZLEN);
    counters.txFrames++;
    counters.txArp++;
    return true;
  }

  /** An ARP packet of `len` octets at `a` (the view valid during the call). */
  receive(buf: Uint8Array, a: number, len: number): void {
    const { counters: c, cache } = this.d;
    if (len < ARP_LEN || readU16(buf, a) !== 1 || readU16(buf, a + 2) !== ETH_P_IP || buf[a + 4] !== 6 || buf[a + 5] !== 4) {
      c.rxBadIp++;
      return;
    }
    c.rxArp++;
    const op = readU16(buf, a + 6);
    const sha = readMac(buf, a + 8);
    const spa = readU32(buf, a + 14);
    const tpa = readU32(buf, a + 24);
    const now = this.d.now();
    if (tpa !== this.d.ip) {
      // Not for us; refresh an existing entry (as Linux does) but create none.
      if (cache.lookup(spa) !== undefined) cache.learn(spa, sha, now);
      // A gratuitous ARP (sender and target address the same: a host announcing itself) is news, not a stray.
      if (spa === tpa) c.rxGratuitousArp++;
      else if (op === ARPOP_REQUEST) c.rxNotForUs++;
      return;
    }
    cache.learn(spa, sha, now);
    if (op === ARPOP_REQUEST) this.send(ARPOP_REPLY, sha, sha, spa);
  }
}
