/**
 * Domains at run time, as xl has them: create (memory, grant table, xenstore
 * nodes, dom0 and the NIC told of the new RAM, the vCPU placed on a pCPU, the
 * vifs through the full xenbus handshake), shutdown (the guest closes its vifs
 * itself, then stops), destroy (no cooperation: the guest simply stops), and
 * the cleanup every end shares, crashes included: nothing of the domain stays
 * behind (backend and frontend xenstore directories, grant mappings, VIs and
 * filters through the plugin's vifGone, event-channel ports, xenstore
 * watches, its RAM in dom0 and the NIC, its MAC in every bridge and switch).
 */
import { DOMID_FIRST_RESERVED, DOMID_MAX, SHUTDOWN_POWEROFF, XenbusState, logWarn, controlShutdownPath, domainPath, vifBackendRoot } from '@xsim/hypervisor';
import { parseMac, type DomUSpec } from './topo/index.ts';
import { freshIp, freshMac, validateAddition } from './addresses.ts';
import { domainMemory, rmTree, vifAt, type DomainMemory, type HostResources } from './host.ts';
import { vifHandles } from './hotplug.ts';
import { placeNewGuest } from './placement.ts';
import type { DomainRef, RunningDomain, ToolstackContext } from './context.ts';
import type { GuestStats } from './stats.ts';
import type { Arrival } from './domain-locks.ts';
import { formatMac } from '@xsim/netstack';

export interface CreateDomainOptions {
  /** The vif's MAC (default: 00:16:3e, then the host's index and the domid). */
  mac?: string;
  /** The vif's IPv4 address (default: the first free one of the host's /24, 10.0.(10 + host index).x). */
  ip?: string;
  /** RAM in 4 KiB pages (default: what the validator gives a topology's guest). */
  memPages?: number;
  /** Pin the vCPU to this pCPU (default: the least loaded guest pCPU). */
  pcpu?: number;
  /** How long the vif may take to connect (default 30 s). */
  connectTimeoutMs?: number;
}

/** As xl list shows a domain; `migrating`: between its suspend at the source and its resume at the destination (`migratingTo`). */
export type DomainState = 'running' | 'crashed' | 'hung' | 'migrating';

/** One row of `xsim domain list` (xl list, plus where it runs and what accelerates it). */
export interface DomainInfo {
  host: string;
  name: string;
  domid: number;
  state: DomainState;
  memPages: number;
  pcpu: number;
  vifs: { handle: number; mac: string; ip: string; accel: string | null }[];
  /** Where a migrating guest is going. */
  migratingTo?: string;
}

/** How a domain ended, and what its end released. */
export interface DomainEnd {
  host: string;
  name: string;
  domid: number;
  how: 'shutdown' | 'destroy' | 'crash';
  /** The guest's own last counters (a shut down guest hands them over; a destroyed one cannot). */
  final?: GuestStats;
  /** Vifs dom0 removed (their frames in flight are in their counters, kept in dom0's stats). */
  vifsRemoved: number;
  /** Event-channel ports that were still open and were closed with the domain. */
  portsClosed: number;
  ms: number;
}

/** What the lifecycle needs of the Simulation beyond its public surface. */

export class DomainLifecycle {
  /** Every domain that ended, oldest first. */
  readonly ended: DomainEnd[] = [];
  private readonly nextDomid = new Map<string, number>();

  constructor(private readonly ctx: ToolstackContext) {
    // Ids go up from the topology's own: a created guest never takes the domid of a topology guest that was destroyed.
    for (const h of ctx.topology.hosts) this.nextDomid.set(h.name, Math.max(0, ...h.domUs.map((d) => d.domid)) + 1);
  }

  /** xl create: a new guest with one vif on `host`, connected and ready to send when this resolves. */
  async create(host: string, name: string, o: CreateDomainOptions = {}): Promise<DomainInfo> {
    const h = this.ctx.host(host);
    const index = this.ctx.hosts.indexOf(h);
    const domid = this.peekDomid(h);
    const arriving = this.ctx.locks.arrivingAddresses();
    const mac = o.mac ?? freshMac(this.ctx.topology, index, domid, 0, arriving.macs);
    const ip = o.ip ?? freshIp(this.ctx.topology, index, arriving.ips);
    const spec = this.validate(h, index, {
      name,
      domid,
      ...(o.memPages !== undefined ? { memPages: o.memPages } : {}),
      ...(o.pcpu !== undefined ? { pcpu: o.pcpu } : {}),
      vifs: [{ mac, ip }],
    });
    const conflict = this.ctx.locks.arrivalConflict(host, name, [parseMac(spec.vifs[0].mac)], [spec.vifs[0].ip]);
    if (conflict) throw new Error(`cannot create ${host}/${name}: ${conflict}`);
    this.takeDomid(h, domid);
    const pcpu = placeNewGuest(this.ctx.topology, this.ctx.runtime.pcpus, `${host}/${name}`, spec, this.ctx.domains);
    const mem = domainMemory(domid, this.ctx.nextUid(), name, spec.memPages, pcpu);
    h.spec.domUs.push(spec);
    h.domUs.push(mem);
    const t0 = this.ctx.clock.now();
    try {
      // The NIC may DMA to its pages (through the buffer table only), dom0 may grant-copy to them.
      await this.ctx.fabric('add_domain', { nic: index, domid }, [mem.mem.sab]);
      await this.ctx.request({ host, domain: 'dom0' }, 'guest_add', { domid, uid: mem.uid, vifs: spec.vifs.map((_v, n) => n) }, 10_000, [
        mem.mem.sab,
        mem.gnttab,
      ]);
      // Its own record, found now: other creates or ends on the host may have changed the lists during the awaits.
      await this.ctx.startGuest(h, mem, h.domUs.indexOf(mem));
      await this.ctx.waitFor(`${host}/${name}'s vif to connect`, () => this.vifsConnected(h, mem.domid, spec.vifs.length), o.connectTimeoutMs ?? 30_000);
    } catch (e) {
      const rd = this.ctx.domains.find((x) => x.uid === mem.uid);
      await this.release(h, mem, rd, 'destroy').catch(() => {});
      throw new Error(`domain create ${host}/${name} failed: ${e instanceof Error ? e.message : String(e)} (nothing of it is left)`);
    }
    this.ctx.log(`${host}/${name} (domain ${domid}) created on pCPU ${pcpu}, vif connected in ${Math.round(this.ctx.clock.now() - t0)} ms`);
    return (await this.list()).find((x) => x.host === host && x.domid === domid)!;
  }

  /**
   * The next domid of `h`. As Xen's allocator does, ids go up from the last one
   * given (a stale reference to a dead guest names no one until the ids wrap)
   * and wrap below DOMID_FIRST_RESERVED (0x7FF0) to the lowest free one:
   * 32752 and up are DOMID_SELF, DOMID_IO, DOMID_XEN, ..., never a domain's.
   */
  peekDomid(h: HostResources): number {
    const used = new Set(h.domUs.map((x) => x.domid));
    const start = Math.max(this.nextDomid.get(h.spec.name) ?? 1, ...h.domUs.map((x) => x.domid + 1));
    for (let id = start; id <= DOMID_MAX; id++) if (!used.has(id)) return id;
    for (let id = 1; id < Math.min(start, DOMID_MAX + 1); id++) if (!used.has(id)) return id;
    throw new Error(`no free domid on ${h.spec.name}: all of 1..${DOMID_MAX} are in use (Xen reserves ${DOMID_FIRST_RESERVED} and up)`);
  }

  /** Take `domid` on `h` (after peekDomid, once the new domain is validated). */
  takeDomid(h: HostResources, domid: number): void {
    this.nextDomid.set(h.spec.name, domid + 1);
  }

  /** xl shutdown: ask the guest to power off; it closes its vifs, then it is stopped and everything released. */
  async shutdown(ref: DomainRef, timeoutMs = 10_000): Promise<DomainEnd> {
    const { h, mem, rd } = this.find(ref);
    return this.once(rd, 'shutdown', async () => {
      const t0 = this.ctx.clock.now();
      h.xenstore.write(0, controlShutdownPath(mem.domid), SHUTDOWN_POWEROFF);
      const closed = (): boolean => vifHandles(h, mem.domid).every((n) => vifAt(h.xenstore, mem.domid, n, XenbusState.Closed, 'frontend'));
      try {
        await this.ctx.waitFor(`${ref.host}/${ref.domain} to close its vifs`, closed, timeoutMs);
      } catch (e) {
        throw new Error(`${(e as Error).message}: it is still running (destroy it with "xsim domain destroy ${ref.host}/${ref.domain}")`);
      }
      await this.ctx.hooks.leaving(rd);
      // A guest's kernel (@xsim/netfront's) answers shutdown with its final counters.
      const final = (await this.ctx.request(ref, 'shutdown', {}, 5000).catch(() => undefined)) as GuestStats | undefined;
      await this.ctx.runtime.remove(rd.uid, rd.pcpu, 'reap');
      return this.release(h, mem, rd, 'shutdown', final, t0);
    });
  }

  /** xl destroy: the guest stops at once, with no say; everything it held is released. */
  async destroy(ref: DomainRef): Promise<DomainEnd> {
    const { h, mem, rd } = this.find(ref);
    return this.once(rd, 'destroy', async () => {
      const t0 = this.ctx.clock.now();
      await this.ctx.hooks.leaving(rd);
      await this.ctx.runtime.remove(rd.uid, rd.pcpu, 'destroy');
      return this.release(h, mem, rd, 'destroy', undefined, t0);
    });
  }

  /** A guest whose code threw: handled as a destroy, logged. */
  async crashed(rd: RunningDomain): Promise<DomainEnd | undefined> {
    const h = this.ctx.hosts.find((x) => x.spec.name === rd.host);
    const mem = h?.domUs.find((x) => x.uid === rd.uid);
    if (!h || !mem || this.ctx.locks.ending(rd.uid) !== undefined) return undefined;
    return this.once(
      rd,
      'crash cleanup',
      async () => {
        await this.ctx.runtime.remove(rd.uid, rd.pcpu, 'destroy');
        const end = await this.release(h, mem, rd, 'crash');
        this.ctx.log(
          `${rd.host}/${rd.name} (domain ${rd.domid}) cleaned up after its crash: ${end.vifsRemoved} vif(s) removed, ${end.portsClosed} event-channel port(s) closed`,
        );
        return end;
      },
      { forced: true },
    );
  }

  /** xl list. */
  async list(): Promise<DomainInfo[]> {
    const dom0Accel = new Map<string, Record<string, string | null>>();
    for (const h of this.ctx.hosts) {
      const s = (await this.ctx.request({ host: h.spec.name, domain: 'dom0' }, 'plugin_list', {}, 5000).catch(() => ({}))) as {
        vifs?: Record<string, string | null>;
      };
      dom0Accel.set(h.spec.name, s.vifs ?? {});
    }
    const out: DomainInfo[] = [];
    for (const h of this.ctx.hosts) {
      const here = this.ctx.domains.filter((x) => x.host === h.spec.name);
      for (const rd of here) {
        const state: DomainState = rd.crashed ? 'crashed' : rd.hung ? 'hung' : 'running';
        if (rd.domid === 0) {
          out.push({ host: rd.host, name: 'Domain-0', domid: 0, state, memPages: h.spec.dom0.memPages, pcpu: rd.pcpu, vifs: [] });
          continue;
        }
        const i = h.domUs.findIndex((x) => x.uid === rd.uid);
        const spec = h.spec.domUs[i];
        if (!spec) {
          // Suspended at its source, not yet resumed at its destination: no host's records hold it, its move does.
          const a = this.ctx.locks.arrivalOf(rd.uid);
          if (a) out.push(migratingInfo(rd, a));
          continue;
        }
        const accel = dom0Accel.get(h.spec.name) ?? {};
        const handles = vifHandles(h, rd.domid);
        out.push({
          host: rd.host,
          name: rd.name,
          domid: rd.domid,
          state,
          memPages: spec.memPages,
          pcpu: rd.pcpu,
          vifs: spec.vifs.map((v, n) => ({ handle: handles[n], mac: v.mac, ip: v.ip, accel: accel[`${rd.domid}/${handles[n]}`] ?? null })),
        });
      }
    }
    return out;
  }

  // ---------------------------------------------------------------------------

  /** The new guest checked exactly as a topology's guest is: the topology with it added must validate. */
  private validate(h: HostResources, index: number, candidate: Record<string, unknown>): DomUSpec {
    return validateAddition(
      this.ctx.topology,
      (t) => (t.hosts[index].domUs as unknown[]).push(candidate),
      (v) => v.hosts[index].domUs[v.hosts[index].domUs.length - 1],
      // The paths name the new guest as the host's last domU: say it in the user's words.
      [[`hosts[${index}].domUs[${h.spec.domUs.length}]`, 'the new domain']],
      `cannot create ${h.spec.name}/${String(candidate.name)}`,
    );
  }

  private vifsConnected(h: HostResources, domid: number, n: number): boolean {
    for (let i = 0; i < n; i++) if (!vifAt(h.xenstore, domid, i, XenbusState.Connected)) return false;
    const rd = this.ctx.domains.find((x) => x.host === h.spec.name && x.domid === domid);
    if (rd?.crashed) throw new Error(`it crashed while connecting: ${rd.crashed}`);
    return true;
  }

  find(ref: DomainRef): { h: HostResources; mem: DomainMemory; rd: RunningDomain } {
    if (ref.domain === 'dom0' || ref.domain === 'Domain-0')
      throw new Error(`${ref.host}/${ref.domain} is dom0: it lives as long as its host (xsim shutdown ends everything)`);
    const rd = this.ctx.domain(ref);
    const h = this.ctx.host(ref.host);
    const mem = h.domUs.find((x) => x.uid === rd.uid);
    if (!mem) throw new Error(`${ref.host}/${ref.domain} has no memory record (it is being torn down)`);
    return { h, mem, rd };
  }

  /**
   * One end at a time per domain (`what`: shutdown, destroy, save, migration
   * to HOST): a second end of the same domain, or one while a vif hotplug
   * runs on it, is refused naming what it is busy with.
   */
  async once<T>(rd: RunningDomain, what: string, fn: () => Promise<T>, o: { forced?: boolean } = {}): Promise<T> {
    return this.ctx.locks.end(rd.uid, `${rd.host}/${rd.name}`, what, fn, o);
  }

  /** Everything a guest held, released; the guest has already stopped (or never started). */
  private async release(
    h: HostResources,
    mem: DomainMemory,
    rd: RunningDomain | undefined,
    how: DomainEnd['how'],
    final?: GuestStats,
    t0 = this.ctx.clock.now(),
  ): Promise<DomainEnd> {
    const host = h.spec.name;
    const vifsRemoved = await this.detachFromHost(h, mem);
    const portsClosed = this.forgetOnHost(h, mem);
    if (rd) this.ctx.untrack(rd);
    const end: DomainEnd = { host, name: mem.name, domid: mem.domid, how, final, vifsRemoved, portsClosed, ms: this.ctx.clock.now() - t0 };
    this.ended.push(end);
    if (how !== 'crash')
      this.ctx.log(
        `${host}/${mem.name} (domain ${mem.domid}) ${how === 'shutdown' ? 'shut down' : 'destroyed'}: ${vifsRemoved} vif(s) removed, ${portsClosed} event-channel port(s) closed`,
      );
    return end;
  }

  /**
   * The host lets go of a guest: its backends (removed, counting what was
   * queued for it), its plugin channels, its xenstore directories, its RAM
   * in dom0 and the NIC, its MACs in every bridge and switch. Returns the
   * vifs removed. The guest itself may still run (a migration suspends it
   * after this).
   */
  async detachFromHost(h: HostResources, mem: DomainMemory): Promise<number> {
    const i = h.domUs.indexOf(mem);
    const spec = h.spec.domUs[i];
    const host = h.spec.name;
    const index = this.ctx.hosts.indexOf(h);
    // The toolstack removes the backend directories first (netback sees its vifs' nodes go), then the domain's own.
    const xs = h.xenstore;
    rmTree(xs, `${vifBackendRoot(0)}/${mem.domid}`);
    let vifsRemoved = 0;
    const dom0 = this.ctx.domains.find((x) => x.host === host && x.domid === 0);
    if (dom0 && !dom0.crashed && !dom0.hung) {
      const r = (await this.ctx.request({ host, domain: 'dom0' }, 'guest_remove', { domid: mem.domid }, 10_000).catch((e: Error) => {
        this.ctx.log(logWarn(`${host}/dom0 could not release domain ${mem.domid}: ${e.message}`));
        return { removed: [] };
      })) as { removed: number[] };
      // What this end removed: the guest's vifs now (not those hot-removed before) that dom0 no longer runs.
      vifsRemoved = vifHandles(h, mem.domid).filter((n) => r.removed.includes(n)).length;
    }
    // dom0 may have written under the backend directory between our rm and its guest_remove (a plugin's
    // accel key for a message already in flight): now that dom0 holds nothing of the guest, remove again.
    rmTree(xs, `${vifBackendRoot(0)}/${mem.domid}`);
    rmTree(xs, domainPath(mem.domid));
    await this.ctx.fabric('remove_domain', { nic: index, domid: mem.domid }).catch(() => undefined);
    // Nobody keeps sending its traffic to where it was: the switches and every other bridge forget its MACs.
    for (const v of spec?.vifs ?? []) await this.ctx.forgetMac(host, parseMac(v.mac));
    return vifsRemoved;
  }

  /** The host's records of a stopped guest go: event-channel ports (returns how many were open), xenstore connection, its entries. */
  forgetOnHost(h: HostResources, mem: DomainMemory): number {
    const portsClosed = h.hv.release(mem.uid);
    h.xenstore.release(mem.uid);
    const i = h.domUs.indexOf(mem);
    if (i >= 0) {
      h.domUs.splice(i, 1);
      h.spec.domUs.splice(i, 1);
    }
    h.handles.delete(mem.domid);
    return portsClosed;
  }
}

/** A guest between its suspend and its resume, as its move describes it (no plugin holds its vifs meanwhile). */
function migratingInfo(rd: RunningDomain, a: Arrival): DomainInfo {
  return {
    host: rd.host,
    name: rd.name,
    domid: rd.domid,
    state: 'migrating',
    memPages: a.memPages,
    pcpu: rd.pcpu,
    vifs: a.handles.map((handle, n) => ({ handle, mac: formatMac(a.macs[n]), ip: a.ips[n], accel: null })),
    migratingTo: a.host,
  };
}
