/**
 * The neighbour cache: IPv4 → MAC, with request rate limiting and entry
 * expiry. Times are passed in (no timers), so it is deterministic to test.
 *
 * As Linux's neighbour states, in short: an entry confirmed within ttlMs is
 * reachable; older, it is stale but still used, and the stack confirms it
 * with a unicast request to the MAC it knows (NUD_PROBE), not a broadcast;
 * one unconfirmed for three times ttlMs is dropped, and the next send asks
 * everyone again.
 */
export interface ArpEntry {
  mac: number;
  updated: number;
}

export class ArpCache {
  private readonly entries = new Map<number, ArpEntry>();
  private readonly asked = new Map<number, number>();

  constructor(
    private readonly ttlMs = 60_000,
    private readonly retryMs = 100,
  ) {}

  lookup(ip: number): number | undefined {
    return this.entries.get(ip)?.mac;
  }

  /** Is `ip`'s entry stale at `now` (older than ttlMs: due a unicast confirmation)? */
  isStale(ip: number, now: number): boolean {
    const e = this.entries.get(ip);
    return e !== undefined && now - e.updated > this.ttlMs;
  }

  learn(ip: number, mac: number, now: number): void {
    this.entries.set(ip, { mac, updated: now });
    this.asked.delete(ip);
  }

  /** Should a request for `ip` go out now? Rate-limited so a busy sender does not flood ARP. */
  shouldAsk(ip: number, now: number): boolean {
    const last = this.asked.get(ip);
    if (last !== undefined && now - last < this.retryMs) return false;
    this.asked.set(ip, now);
    return true;
  }

  /** Drop the entries no one confirmed for three times ttlMs (their unicast probes went unanswered). */
  expire(now: number): number {
    let n = 0;
    for (const [ip, e] of this.entries) {
      if (now - e.updated > 3 * this.ttlMs) {
        this.entries.delete(ip);
        n++;
      }
    }
    return n;
  }

  /** The neighbours known now, [ip, mac, updated] (a saved guest keeps them). */
  save(): [number, number, number][] {
    return [...this.entries].map(([ip, e]) => [ip, e.mac, e.updated]);
  }

  get size(): number {
    return this.entries.size;
  }
}
