/**
 * What management operations have reserved, so that two of them never act on
 * the same thing at once. Everything an operation checks is reserved before
 * its first `await` and released when it ends, whether it succeeds or fails:
 *
 *   ends      one end per domain at a time (shutdown, destroy, save,
 *             migration): a second is refused naming the first
 *   changes   vif hotplugs in flight on a domain: they may run side by side
 *             (each reserves its own handle, MAC and IP), but not beside an
 *             end, which would snapshot the domain's vifs half-changed
 *   arrivals  guests on their way to a host (a migration from its check to
 *             its landing): their name on that host and their MACs and IPs
 *             are taken, though no host's records hold them for a while
 *
 * Domains are keyed by their bus address (uid), which a migration keeps.
 */
import type { Addr } from '@xsim/hypervisor';
import { formatMac } from '@xsim/netstack';

/** A guest reserved on its way to `host`. */
export interface Arrival {
  /** The guest's bus address (kept by the move). */
  uid: Addr;
  host: string;
  name: string;
  memPages: number;
  /** Where it comes from, for the refusal ("migrating here from host-b"). */
  from: string;
  macs: number[];
  ips: string[];
  handles: number[];
}

export class DomainLocks {
  private readonly ends = new Map<Addr, string>();
  private readonly changes = new Map<Addr, { n: number; what: string }>();
  private readonly arrivals = new Set<Arrival>();

  /** What end the domain is going through, if any. */
  ending(uid: Addr): string | undefined {
    return this.ends.get(uid);
  }

  /**
   * Run an end of the domain (`what`: "shutdown", "migration to host-b", ...)
   * alone: refused while another end or a hotplug runs on it. A crash's
   * cleanup is `forced`: it waits for nobody (the guest is already gone).
   */
  async end<T>(uid: Addr, label: string, what: string, fn: () => Promise<T>, o: { forced?: boolean } = {}): Promise<T> {
    const busy = this.ends.get(uid);
    if (busy !== undefined) throw new Error(`${label} is already busy with its ${busy}: refused`);
    const change = this.changes.get(uid);
    if (change && !o.forced) throw new Error(`${label} has ${change.what} in progress: refused, try again when it is done`);
    this.ends.set(uid, what);
    try {
      return await fn();
    } finally {
      this.ends.delete(uid);
    }
  }

  /** Run a change of the domain's devices (`what`: "dev add vif3"): refused while an end runs on it. */
  async change<T>(uid: Addr, label: string, what: string, fn: () => Promise<T>): Promise<T> {
    const busy = this.ends.get(uid);
    if (busy !== undefined) throw new Error(`${label} is busy with its ${busy}: ${what} refused`);
    const c = this.changes.get(uid) ?? { n: 0, what };
    c.n++;
    this.changes.set(uid, c);
    try {
      return await fn();
    } finally {
      if (--c.n === 0) this.changes.delete(uid);
    }
  }

  /** Reserve a guest's place on a host until `release` (call it once the host's records hold the guest, or on failure). */
  claimArrival(a: Arrival): () => void {
    this.arrivals.add(a);
    return () => this.arrivals.delete(a);
  }

  /**
   * Why a guest named `name` (null: only addresses checked) with these MACs
   * and IPs cannot be added to `host` because of a guest on its way, or
   * undefined. `except` is the arrival of the guest being checked itself.
   */
  arrivalConflict(host: string, name: string | null, macs: number[], ips: string[], except?: Arrival): string | undefined {
    for (const a of this.arrivals) {
      if (a === except) continue;
      if (name !== null && a.host === host && a.name === name) return `${host}/${name} is taken: a guest of that name is migrating there from ${a.from}`;
      const ip = ips.find((x) => a.ips.includes(x));
      if (ip !== undefined) return `IP ${ip} is taken by ${a.name}, migrating from ${a.from} to ${a.host}`;
      const mac = macs.find((x) => a.macs.includes(x));
      if (mac !== undefined) return `MAC ${formatMac(mac)} is taken by ${a.name}, migrating from ${a.from} to ${a.host}`;
    }
    return undefined;
  }

  /** The guest `uid`'s move, while it is on its way. */
  arrivalOf(uid: Addr): Arrival | undefined {
    for (const a of this.arrivals) if (a.uid === uid) return a;
    return undefined;
  }

  /** MACs and IPs guests on their way hold (for choosing fresh ones). */
  arrivingAddresses(): { macs: Set<number>; ips: Set<string> } {
    const macs = new Set<number>();
    const ips = new Set<string>();
    for (const a of this.arrivals) {
      for (const m of a.macs) macs.add(m);
      for (const i of a.ips) ips.add(i);
    }
    return { macs, ips };
  }
}
