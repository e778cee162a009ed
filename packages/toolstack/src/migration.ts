/**
 * Save, restore and migration, as xl has them (xl save / restore / migrate),
 * on Xen's shape of the work:
 *
 *   source                                   destination
 *   arm   the guest stamps frame arrivals    RAM allocated, zeroed
 *   pre-copy rounds (live only): every page that differs from the
 *         destination's copy is sent, until few are left or MAX_ROUNDS
 *   stop  the plugin saves the vif's state (VFIO STOP_COPY) and detaches
 *         (the frontend drains its VI, falls back to the slow path);
 *         netfront quiesces; the host lets go of the backends (queued
 *         frames counted), the NIC of its RAM, bridges and switches of
 *         its MACs; the kernel drains its rings, writes its record
 *         into RAM and stops
 *   stop-and-copy: the last dirty pages   ->  guest_add, the vifs' nodes, the
 *                                            plugin's saved state (RESUMING),
 *                                            the kernel boots from its record:
 *                                            new rings and event channels, TX
 *                                            the old backend never took sent
 *                                            again, a gratuitous ARP
 *
 * A save is the same stop with no pre-copy, the pages and the record written
 * to a file in Xen's migration v2 stream format (hypervisor's
 * migration/stream.ts); a restore is the destination half fed from the file.
 */
import {
  GrantTable,
  GuestMemory,
  PageMirror,
  SaveStreamError,
  XenbusState,
  crossThreadNow,
  decodeSaveStream,
  encodeSaveStream,
  type Addr,
  type SavedDomain,
} from '@xsim/hypervisor';
import type { GuestConfig } from '@xsim/netfront';
import { validateAddition } from './addresses.ts';
import { parseMac } from './topo/index.ts';
import { dropDelta, movedStats } from './drops.ts';
import { vifAt, writeDomainNodes, writeVifNodes, type DomainMemory, type HostResources } from './host.ts';
import { vifHandles } from './hotplug.ts';
import type { DomainLifecycle } from './lifecycle.ts';
import { xsimVersion } from './meta.ts';
import { openOutFile, readInFile } from './out-file.ts';
import { placeNewGuest } from './placement.ts';
import type { DomainRef, RunningDomain, ToolstackContext } from './context.ts';
import type { GuestStats } from './stats.ts';

/** Pre-copy stops after this many rounds (Xen's default is 5 iterations too)… */
export const MAX_ROUNDS = 5;
/** …or once a round leaves at most this many pages dirty (Xen: 50). */
export const STOP_PAGES = 50;

export interface MigrateOptions {
  /** Pre-copy while the guest runs (xl migrate --live); else stop first, copy once. */
  live?: boolean;
  maxRounds?: number;
  stopPages?: number;
  /** How long to wait after the resume for the first frame and the fast path, for the report (default 2000 ms). */
  settleMs?: number;
  connectTimeoutMs?: number;
}

/** What `xsim migrate` reports (xl migrate's figures, and more). */
export interface MigrationReport {
  domain: string;
  from: { host: string; domid: number };
  to: { host: string; domid: number; pcpu: number };
  live: boolean;
  memPages: number;
  /** Pre-copy rounds and the stop-and-copy (last), pages sent in each. */
  rounds: { round: number; pages: number; ms: number; stop?: true }[];
  pagesSent: number;
  /** From the guest's quiesce at the source to its vifs Connected at the destination (toolstack clock). */
  blackoutMs: number;
  /** From the last frame the guest received at the source to the first at the destination; null if none came within settleMs. */
  downtimeMs: number | null;
  /** TX frames the source backend never took, sent again from the destination. */
  resent: number;
  /** Plugins on the guest's vifs before and after, and how long after its vifs connected at the destination a plugin had one again. */
  fastPath: { before: string[]; after: string[]; backAfterMs: number | null };
  /** Drop counters that grew while the migration ran, by where (every domain's and the fabric's). */
  lost: Record<string, number>;
  lostTotal: number;
  totalMs: number;
}

export interface SaveReport {
  domain: string;
  file: string;
  bytes: number;
  pages: number;
  memPages: number;
  ms: number;
}

/** What the mover needs of the Simulation beyond its public surface. */

/** A guest stopped at its source: its record, when each vif last received, TX frames to send again. */
export interface Suspended {
  saved: SavedDomain;
  lastRxAt: (number | null)[];
  resent: number;
}

export class DomainMover {
  /** Custom kernels follow their domain (keyed by the topology's host/name). */
  private readonly kernelOf = new Map<Addr, string>();

  constructor(
    private readonly ctx: ToolstackContext,
    private readonly lifecycle: DomainLifecycle,
  ) {}

  /** xl migrate: move a running guest to `to` (the same host is allowed: a local migration). */
  async migrate(ref: DomainRef, to: string, o: MigrateOptions = {}): Promise<MigrationReport> {
    const { h: src, mem, rd } = this.lifecycle.find(ref);
    const dst = this.ctx.host(to);
    const live = o.live ?? false;
    return this.lifecycle.once(rd, `migration to ${to}`, async () => {
      const t0 = this.ctx.clock.now();
      const spec = src.spec.domUs[src.domUs.indexOf(mem)];
      const handles = vifHandles(src, mem.domid);
      const vifs = spec.vifs.map((v) => ({ ...v }));
      this.check(src, mem, dst, vifs);
      // Until it lands, its name on the destination and its addresses are the guest's, though no host's records hold them.
      const release = this.ctx.locks.claimArrival({
        uid: rd.uid,
        host: to,
        name: mem.name,
        memPages: mem.mem.pages,
        from: ref.host,
        macs: vifs.map((v) => parseMac(v.mac)),
        ips: vifs.map((v) => v.ip),
        handles,
      });
      try {
        return await this.move(ref, { src, dst, mem, rd, handles }, live, o, t0);
      } finally {
        release();
      }
    });
  }

  private async move(
    ref: DomainRef,
    { src, dst, mem, rd, handles }: { src: HostResources; dst: HostResources; mem: DomainMemory; rd: RunningDomain; handles: number[] },
    live: boolean,
    o: MigrateOptions,
    t0: number,
  ): Promise<MigrationReport> {
    const to = dst.spec.name;
    const before = await this.ctx.stats();
    const accelBefore = await this.accelOf(src, mem.domid);
    const ram = GuestMemory.allocate(mem.mem.pages);
    const mirror = new PageMirror(mem.mem, ram, () => this.ctx.clock.now());
    await this.ctx.request(ref, 'migrate_arm', {}, 5000);
    if (live) {
      // Each round copies what changed; the guest runs meanwhile (on its pCPU, or here for as long as
      // the copy took in a deterministic run), dirtying pages the next round sends.
      for (let r = 0; r < (o.maxRounds ?? MAX_ROUNDS); r++) {
        const sent = mirror.round();
        await this.ctx.sleep(Math.max(1, mirror.rounds[r].ms));
        if (r > 0 && sent.length <= (o.stopPages ?? STOP_PAGES)) break;
      }
    }
    const tStop = this.ctx.clock.now();
    const sus = await this.suspend(ref, src, mem, rd, handles);
    mirror.round();
    const rounds: MigrationReport['rounds'] = mirror.rounds.map((r) => ({ ...r }));
    rounds[rounds.length - 1].stop = true;
    const arrived = await this.arrive(dst, sus.saved, ram, rd.uid, rd, handles, o.connectTimeoutMs);
    const tUp = this.ctx.clock.now();
    this.ctx.log(
      `${ref.host}/${ref.domain} migrated to ${to} as domain ${arrived.domid}: ${mirror.rounds.length} round(s), ${mirror.pagesSent} pages, blackout ${Math.round(tUp - tStop)} ms`,
    );
    const settled = await this.settle({ host: to, domain: ref.domain }, dst, arrived.domid, o.settleMs ?? 2000);
    const after = await this.ctx.stats();
    // The guest's own counters moved with it: compare them under its new name.
    const lost = Object.fromEntries(dropDelta(movedStats(before, ref.domain, ref.host, to), after));
    const lastRx = Math.max(...sus.lastRxAt.map((x) => x ?? -Infinity));
    const firstRx = settled.firstRxAt;
    return {
      domain: ref.domain,
      from: { host: ref.host, domid: sus.saved.from.domid },
      to: { host: to, domid: arrived.domid, pcpu: arrived.pcpu },
      live,
      memPages: mem.mem.pages,
      rounds,
      pagesSent: mirror.pagesSent,
      blackoutMs: tUp - tStop,
      downtimeMs: firstRx !== null && Number.isFinite(lastRx) ? firstRx - lastRx : null,
      resent: sus.resent,
      fastPath: { before: accelBefore, after: settled.accel, backAfterMs: settled.accelAt === null ? null : settled.accelAt - tUp },
      lost,
      lostTotal: Object.values(lost).reduce((n, v) => n + v, 0),
      totalMs: this.ctx.clock.now() - t0,
    };
  }

  /**
   * xl save: stop the guest and write it to `file` (the guest is gone from the
   * host afterwards). As xl does, the file is checked and opened first: a
   * destination that cannot take the image refuses the save with the guest
   * untouched; a write that fails after the suspend resumes the guest on its
   * host from the image in memory, and the error says so.
   */
  async save(ref: DomainRef, file: string): Promise<SaveReport> {
    const { h, mem, rd } = this.lifecycle.find(ref);
    return this.lifecycle.once(rd, 'save', async () => {
      const t0 = this.ctx.clock.now();
      const out = await this.ctx.runtime.hold(openOutFile(file, `cannot save ${ref.host}/${ref.domain} to`));
      const handles = vifHandles(h, mem.domid);
      let sus: Suspended;
      try {
        sus = await this.suspend(ref, h, mem, rd, handles);
      } catch (e) {
        await this.ctx.runtime.hold(out.discard());
        throw e;
      }
      this.ctx.untrack(rd);
      const { bytes, pages } = encodeSaveStream(sus.saved, mem.mem, { producer: `xsim ${xsimVersion()}` });
      try {
        await this.ctx.runtime.hold(out.write(bytes));
        await this.ctx.runtime.hold(out.commit());
      } catch (e) {
        await this.resumeAfterFailedSave(h, bytes, handles);
        throw new Error(`${(e as Error).message}; ${ref.host}/${ref.domain} was resumed on ${ref.host}`);
      }
      this.ctx.log(`${ref.host}/${ref.domain} (domain ${mem.domid}) saved to ${file}: ${pages} pages, ${bytes.length} octets`);
      return { domain: `${ref.host}/${ref.domain}`, file, bytes: bytes.length, pages, memPages: mem.mem.pages, ms: this.ctx.clock.now() - t0 };
    });
  }

  /** The image never reached its file: the guest runs again where it was, from the image in memory (as a restore would). */
  private async resumeAfterFailedSave(h: HostResources, bytes: Uint8Array, handles: number[]): Promise<void> {
    const img = decodeSaveStream(bytes, 1 << 20);
    await this.arrive(h, img.dom, img.mem, this.ctx.nextUid(), undefined, handles);
  }

  /** xl restore: a saved guest runs again on `host` (default: the one it was saved on), its vifs connected. */
  async restore(file: string, host?: string, o: { connectTimeoutMs?: number } = {}): Promise<{ domain: string; domid: number; pages: number; ms: number }> {
    const t0 = this.ctx.clock.now();
    const bytes = await this.ctx.runtime.hold(readInFile(file, 'cannot read save image'));
    let img: ReturnType<typeof decodeSaveStream>;
    try {
      img = decodeSaveStream(bytes, 1 << 20);
    } catch (e) {
      throw new Error(`${file}: ${e instanceof SaveStreamError ? e.message : `not a usable xsim save image: ${(e as Error).message}`}`);
    }
    const dst = this.ctx.host(host ?? img.dom.from.host);
    const vifs = img.dom.vifs.map((v) => ({ mac: v.mac, ip: v.ip }));
    this.check(undefined, undefined, dst, vifs, img.dom);
    const arrived = await this.arrive(
      dst,
      img.dom,
      img.mem,
      this.ctx.nextUid(),
      undefined,
      img.dom.vifs.map((v) => v.handle),
      o.connectTimeoutMs,
    );
    this.ctx.log(`${dst.spec.name}/${img.dom.name} restored from ${file} as domain ${arrived.domid}`);
    return { domain: `${dst.spec.name}/${img.dom.name}`, domid: arrived.domid, pages: img.pages, ms: this.ctx.clock.now() - t0 };
  }

  // ---------------------------------------------------------------------------
  // The halves of a move, also used by migrate-remote.ts (a move between partitions).

  /** Refuse before anything is touched: the destination must be able to take the guest. */
  check(src: HostResources | undefined, mem: DomainMemory | undefined, dst: HostResources, vifs: { mac: string; ip: string }[], saved?: SavedDomain): void {
    const name = saved?.name ?? mem!.name;
    const mtu = Math.max(...(saved?.vifs.map((v) => v.mtu) ?? [src!.spec.nic.mtu]));
    if (dst.spec.nic.mtu < mtu)
      throw new Error(`cannot move ${name} to ${dst.spec.name}: its vifs use MTU ${mtu}, the destination's NIC carries ${dst.spec.nic.mtu}`);
    const t = this.ctx.topology;
    const di = this.ctx.hosts.indexOf(dst);
    const si = src ? this.ctx.hosts.indexOf(src) : -1;
    const at = src ? src.domUs.indexOf(mem!) : -1;
    validateAddition(
      t,
      (c) => {
        // The guest leaves its source as it arrives: its name, MAC and IP are checked with it gone from there.
        if (si >= 0) c.hosts[si].domUs.splice(at, 1);
        (c.hosts[di].domUs as unknown[]).push({ name, domid: this.lifecycle.peekDomid(dst), memPages: saved?.memPages ?? mem!.mem.pages, vifs });
      },
      () => undefined,
      [[`hosts[${di}].domUs[${dst.spec.domUs.length - (si === di ? 1 : 0)}]`, name]],
      `cannot move ${name} to ${dst.spec.name}`,
    );
    const conflict = this.ctx.locks.arrivalConflict(
      dst.spec.name,
      name,
      vifs.map((v) => parseMac(v.mac)),
      vifs.map((v) => v.ip),
    );
    if (conflict) throw new Error(`cannot move ${name} to ${dst.spec.name}: ${conflict}`);
  }

  /** Where each of the guest's vifs is accelerated now (plugin names, in handle order). */
  async accelOf(h: HostResources, domid: number): Promise<string[]> {
    const s = (await this.ctx.request({ host: h.spec.name, domain: 'dom0' }, 'plugin_list', {}, 5000).catch(() => ({}))) as {
      vifs?: Record<string, string | null>;
    };
    return vifHandles(h, domid)
      .map((n) => s.vifs?.[`${domid}/${n}`] ?? null)
      .filter((x): x is string => x !== null);
  }

  /**
   * Stop the guest at its source: plugins save and detach, netfront
   * quiesces, the host lets go of it, the kernel writes its record and stops.
   */
  async suspend(ref: DomainRef, h: HostResources, mem: DomainMemory, rd: RunningDomain, handles: number[]): Promise<Suspended> {
    const spec = h.spec.domUs[h.domUs.indexOf(mem)];
    const dom0 = { host: h.spec.name, domain: 'dom0' };
    const accel = (await this.ctx.request(dom0, 'accel_migrate_out', { domid: mem.domid }, 10_000)) as {
      handle: number;
      plugin: string | null;
      state: unknown;
    }[];
    await this.ctx.request(ref, 'suspend_quiesce', {}, 5000);
    await this.lifecycle.detachFromHost(h, mem);
    // Before the suspend, which stops the guest's core: after it the guest answers nothing.
    await this.ctx.hooks.leaving(rd);
    const rec = (await this.ctx.request(ref, 'suspend', {}, 5000)) as { frame: number; len: number; lastRxAt: (number | null)[]; unanswered: number[] };
    await this.ctx.runtime.remove(rd.uid, rd.pcpu, 'reap');
    this.kernelOf.set(rd.uid, this.kernelOf.get(rd.uid) ?? this.ctx.kernelFor(h.spec.name, mem.name));
    this.lifecycle.forgetOnHost(h, mem);
    const saved: SavedDomain = {
      name: mem.name,
      memPages: mem.mem.pages,
      from: { host: h.spec.name, domid: mem.domid },
      vifs: spec.vifs.map((v, i) => ({ handle: handles[i], mac: v.mac, ip: v.ip, mtu: h.spec.nic.mtu })),
      kernel: { frame: rec.frame, len: rec.len },
      accel: accel.filter((a) => a.plugin !== null).map((a) => ({ handle: a.handle, plugin: a.plugin!, state: a.state })),
      suspendedAt: crossThreadNow(this.ctx.clock),
    };
    return { saved, lastRxAt: rec.lastRxAt, resent: rec.unanswered.reduce((n, x) => n + x, 0) };
  }

  /** The destination half: a new domain on `dst` with this RAM, booted from the kernel's record, its vifs connected. */
  async arrive(
    dst: HostResources,
    saved: SavedDomain,
    ram: GuestMemory,
    uid: Addr,
    rd: RunningDomain | undefined,
    handles: number[],
    connectTimeoutMs = 30_000,
  ): Promise<{ domid: number; pcpu: number }> {
    const host = dst.spec.name;
    const index = this.ctx.hosts.indexOf(dst);
    const domid = this.lifecycle.peekDomid(dst);
    this.lifecycle.takeDomid(dst, domid);
    const spec = { name: saved.name, domid, memPages: saved.memPages, vifs: saved.vifs.map((v) => ({ mac: v.mac, ip: v.ip })) };
    const pcpu = placeNewGuest(this.ctx.topology, this.ctx.runtime.pcpus, `${host}/${saved.name}`, {}, this.ctx.domains);
    const mem: DomainMemory = { domid, uid, name: saved.name, mem: ram, gnttab: GrantTable.create().sab, pcpu };
    dst.spec.domUs.push(spec);
    dst.domUs.push(mem);
    if (handles.some((x, i) => x !== i)) dst.handles.set(domid, handles);
    const dom0 = { host, domain: 'dom0' };
    await this.ctx.fabric('add_domain', { nic: index, domid }, [ram.sab]);
    await this.ctx.request(dom0, 'guest_add', { domid, uid, vifs: handles }, 10_000, [ram.sab, mem.gnttab]);
    for (const v of saved.vifs) {
      const a = saved.accel.find((x) => x.handle === v.handle);
      await this.ctx.request(dom0, 'accel_migrate_in', { domid, handle: v.handle, ...(a ? { plugin: a.plugin, state: a.state as never } : {}) }, 5000);
    }
    writeDomainNodes(dst.xenstore, domid, saved.name);
    for (const v of saved.vifs) writeVifNodes(dst.xenstore, domid, v.handle, v, v.mtu < dst.spec.nic.mtu ? v.mtu : undefined);
    this.ctx.introduce(dst, mem);
    if (rd) {
      rd.host = host;
      rd.domid = domid;
      rd.pcpu = pcpu;
    } else this.ctx.track(dst, mem, saved.vifs[0].ip);
    const kernel = this.kernelOf.get(uid) ?? this.ctx.kernelFor(host, saved.name);
    const config: GuestConfig = {
      mem: ram.sab,
      gnttab: mem.gnttab,
      mtu: dst.spec.nic.mtu,
      vifs: saved.vifs.map((v) => ({ handle: v.handle, mac: v.mac, ip: v.ip })),
      dom0Uid: dst.dom0.uid,
      resume: saved.kernel,
    };
    await this.ctx.boot({ kernel, name: saved.name, host, hostIndex: dst.index, domid, uid, config }, pcpu);
    await this.ctx.waitFor(
      `${host}/${saved.name}'s vifs to connect after its resume`,
      () => saved.vifs.every((v) => vifAt(dst.xenstore, domid, v.handle, XenbusState.Connected)),
      connectTimeoutMs,
    );
    return { domid, pcpu };
  }

  /** After the resume: wait (bounded) for the first frame and, where a plugin is loaded, the fast path. */
  async settle(ref: DomainRef, dst: HostResources, domid: number, ms: number): Promise<{ firstRxAt: number | null; accel: string[]; accelAt: number | null }> {
    const list = (await this.ctx.request({ host: dst.spec.name, domain: 'dom0' }, 'plugin_list', {}, 5000).catch(() => ({}))) as {
      plugins?: Record<string, unknown>;
    };
    const loaded = Object.keys(list.plugins ?? {}).length > 0;
    let firstRxAt: number | null = null;
    let accelAt: number | null = null;
    let accel: string[] = [];
    const done = async (): Promise<boolean> => {
      // The moved domain is a guest: its kernel's stats are a GuestStats.
      const st = (await this.ctx.kernelStats(this.ctx.domain(ref), 5000)) as GuestStats;
      const f = (st.resume?.firstRxAt ?? []).filter((x): x is number => x !== null);
      if (f.length > 0) firstRxAt = Math.min(...f);
      if (accelAt === null) {
        accel = await this.accelOf(dst, domid);
        if (accel.length > 0) accelAt = this.ctx.clock.now();
      }
      return firstRxAt !== null && (!loaded || accelAt !== null);
    };
    await this.ctx.waitFor('the first frame after the resume', done, ms).catch(() => undefined);
    return { firstRxAt, accel, accelAt };
  }
}
