/**
 * vif hotplug at run time, in the style of vdpa's `dev add|del` and xl's
 * network-attach/-detach: a vif added to a running guest goes through the
 * whole xenbus handshake (netback waiting for the hotplug script's
 * hotplug-status), is offered to the loaded plugin like any other, and streams
 * at once; a vif deleted is closed by the backend first, the frontend follows,
 * then both directories go and nothing of it is left but its counters.
 */
import { XenbusState, domainPath, logWarn, vifBackendPath, vifErrorPath, vifFrontendPath } from '@xsim/hypervisor';
import { guestPagesNeeded, parseMac, type VifSpec } from './topo/index.ts';
import { freshIp, freshMac, validateAddition } from './addresses.ts';
import { rmTree, vifAt, writeVifNodes, type HostResources } from './host.ts';
import type { DomainRef, RunningDomain, ToolstackContext } from './context.ts';

export interface VifAddOptions {
  /** The device's name, vifN (N its handle); default: the next handle of the domain. */
  name?: string;
  mac?: string;
  ip?: string;
  /** At most the NIC's MTU (default: the NIC's). */
  mtu?: number;
  connectTimeoutMs?: number;
}

export interface VifInfo {
  /** HOST/DOMU/vifN */
  dev: string;
  domid: number;
  handle: number;
  mac: string;
  ip: string;
  mtu: number;
}

/** A domain's vifs' handles, in the order of its spec's vifs (indices until a vif was hot-removed). */
export function vifHandles(h: HostResources, domid: number): number[] {
  const i = h.domUs.findIndex((d) => d.domid === domid);
  return h.handles.get(domid) ?? h.spec.domUs[i]?.vifs.map((_v, n) => n) ?? [];
}

export class VifHotplug {
  /** Next handle per host/domid: handles are not reused, so a removed vif's counters keep their name. */
  private readonly nextHandle = new Map<string, number>();
  /** Handles being deleted, per guest (by uid): a guest keeps one vif, counted with the deletes in flight. */
  private readonly deleting = new Map<RunningDomain['uid'], Set<number>>();

  constructor(private readonly ctx: ToolstackContext) {}

  private log(line: string): void {
    this.ctx.log(line);
  }

  private guest(ref: DomainRef): { h: HostResources; index: number; i: number; domid: number; uid: RunningDomain['uid'] } {
    if (ref.domain === 'dom0' || ref.domain === 'Domain-0') throw new Error(`${ref.host}/${ref.domain} is dom0: vifs belong to guests (HOST/DOMU)`);
    const rd = this.ctx.domain(ref);
    const h = this.ctx.host(ref.host);
    const i = h.domUs.findIndex((d) => d.uid === rd.uid);
    if (i < 0) throw new Error(`${ref.host}/${ref.domain} is going away`);
    return { h, index: this.ctx.hosts.indexOf(h), i, domid: rd.domid, uid: rd.uid };
  }

  /** vdpa dev add / xl network-attach: a new vif, through the full xenbus handshake; refused while the guest is going away or moving. */
  async add(ref: DomainRef, o: VifAddOptions = {}): Promise<VifInfo> {
    const { uid } = this.guest(ref);
    return this.ctx.locks.change(uid, `${ref.host}/${ref.domain}`, `dev add${o.name ? ` ${o.name}` : ''}`, () => this.addNow(ref, o));
  }

  private async addNow(ref: DomainRef, o: VifAddOptions): Promise<VifInfo> {
    const { h, index, i, domid } = this.guest(ref);
    const handles = vifHandles(h, domid);
    const key = `${ref.host}/${domid}`;
    let handle = Math.max(this.nextHandle.get(key) ?? 0, ...handles.map((x) => x + 1));
    if (o.name !== undefined) {
      const m = /^vif(\d+)$/.exec(o.name);
      if (!m || Number(m[1]) > 255) throw new Error(`name "${o.name}" is not vifN (N a handle, 0..255)`);
      handle = Number(m[1]);
      if (handles.includes(handle)) throw new Error(`${ref.host}/${ref.domain} already has vif${handle} (vifs: ${handles.map((x) => `vif${x}`).join(', ')})`);
    }
    const nicMtu = h.spec.nic.mtu;
    if (o.mtu !== undefined && !(Number.isInteger(o.mtu) && o.mtu >= 68 && o.mtu <= nicMtu))
      throw new Error(`mtu ${String(o.mtu)}: a vif's MTU is 68..${nicMtu} (the NIC's)`);
    const spec = h.spec.domUs[i];
    const room = guestPagesNeeded(spec.vifs.length + 1, nicMtu);
    if (spec.memPages < room.need)
      throw new Error(
        `cannot add a vif to ${ref.host}/${ref.domain}: its RAM (${spec.memPages} pages) holds the buffers of ${spec.vifs.length} vif(s); ${spec.vifs.length + 1} need ${room.need} pages (${room.perVif} per vif at MTU ${nicMtu}, plus ${room.slack}), and a domain's RAM is fixed when it is created: create it with --mem ${room.need} or more`,
      );
    const arriving = this.ctx.locks.arrivingAddresses();
    const vif = this.validate(h, index, i, {
      mac: o.mac ?? freshMac(this.ctx.topology, index, domid, handle, arriving.macs),
      ip: o.ip ?? freshIp(this.ctx.topology, index, arriving.ips),
    });
    const conflict = this.ctx.locks.arrivalConflict(ref.host, null, [parseMac(vif.mac)], [vif.ip]);
    if (conflict) throw new Error(`cannot add a vif to ${ref.host}/${ref.domain}: ${conflict}`);
    this.nextHandle.set(key, handle + 1);
    const dev = `${ref.host}/${ref.domain}/vif${handle}`;
    // Reserved before the first await: a concurrent add sees this handle, MAC and IP taken.
    h.handles.set(domid, [...handles, handle]);
    spec.vifs.push(vif);
    try {
      await this.ctx.request({ host: ref.host, domain: 'dom0' }, 'vif_add', { domid, handle }, 10_000);
    } catch (e) {
      this.forget(h, domid, handle);
      throw e;
    }
    writeVifNodes(h.xenstore, domid, handle, vif, o.mtu);
    try {
      await this.ctx.waitFor(
        `${dev} to connect`,
        () => {
          const error = h.xenstore.read(0, vifErrorPath(domid, handle));
          if (error !== undefined) throw new Error(`the guest says: ${error}`);
          return vifAt(h.xenstore, domid, handle, XenbusState.Connected);
        },
        o.connectTimeoutMs ?? 30_000,
      );
    } catch (e) {
      await this.remove(ref, h, domid, handle).catch(() => {});
      throw new Error(`dev add ${dev} failed: ${(e as Error).message} (the vif was removed again)`);
    }
    this.log(`${dev} added: ${vif.mac} ${vif.ip}, connected`);
    return { dev, domid, handle, mac: vif.mac, ip: vif.ip, mtu: o.mtu ?? nicMtu };
  }

  /** vdpa dev del / xl network-detach: the backend closes, the frontend follows, then the nodes go. */
  async del(ref: DomainRef, handle: number, timeoutMs = 10_000): Promise<{ dev: string; forced: boolean }> {
    const { uid } = this.guest(ref);
    return this.ctx.locks.change(uid, `${ref.host}/${ref.domain}`, `dev del vif${handle}`, () => this.delNow(ref, handle, timeoutMs));
  }

  private async delNow(ref: DomainRef, handle: number, timeoutMs: number): Promise<{ dev: string; forced: boolean }> {
    const { h, domid, uid } = this.guest(ref);
    const handles = vifHandles(h, domid);
    if (!handles.includes(handle))
      throw new Error(`${ref.host}/${ref.domain} has no vif${handle} (vifs: ${handles.map((x) => `vif${x}`).join(', ') || 'none'})`);
    const deleting = this.deleting.get(uid) ?? new Set<number>();
    if (deleting.has(handle)) throw new Error(`${ref.host}/${ref.domain}/vif${handle} is already being deleted`);
    // A guest keeps one vif at least (as a topology's must): one without could neither migrate nor be restored from its save.
    if (handles.length - deleting.size <= 1)
      throw new Error(
        `${ref.host}/${ref.domain}/vif${handle} is the guest's last vif${deleting.size ? ' (the others are being deleted)' : ''}: a guest keeps one; destroy the guest instead`,
      );
    deleting.add(handle);
    this.deleting.set(uid, deleting);
    try {
      return await this.unplug(ref, h, domid, handle, timeoutMs);
    } finally {
      deleting.delete(handle);
      if (deleting.size === 0) this.deleting.delete(uid);
    }
  }

  private async unplug(ref: DomainRef, h: HostResources, domid: number, handle: number, timeoutMs: number): Promise<{ dev: string; forced: boolean }> {
    const dev = `${ref.host}/${ref.domain}/vif${handle}`;
    await this.ctx.request({ host: ref.host, domain: 'dom0' }, 'vif_unplug', { domid, handle }, 10_000);
    let forced = false;
    try {
      await this.ctx.waitFor(`${dev}'s frontend to close`, () => vifAt(h.xenstore, domid, handle, XenbusState.Closed), timeoutMs);
    } catch {
      // A frontend that does not follow is not waited for forever (libxl's timeout, then the force path).
      forced = true;
      this.log(logWarn(`${dev}: the frontend did not close within ${timeoutMs} ms; removing the vif anyway`));
    }
    await this.remove(ref, h, domid, handle);
    this.log(`${dev} deleted${forced ? ' (forced)' : ''}`);
    return { dev, forced };
  }

  private async remove(ref: DomainRef, h: HostResources, domid: number, handle: number): Promise<void> {
    const xs = h.xenstore;
    const errorDir = vifErrorPath(domid, handle).replace(/\/error$/, '');
    for (const path of [vifBackendPath(0, domid, handle), vifFrontendPath(domid, handle), errorDir]) rmTree(xs, path);
    // And the error directories above it that only this vif's error made (error/device/vif, error/device);
    // error itself is libxl's, the guest's own (writeDomainNodes): without it the guest could report no error.
    for (let dir = errorDir.slice(0, errorDir.lastIndexOf('/')); dir !== `${domainPath(domid)}/error`; dir = dir.slice(0, dir.lastIndexOf('/')))
      if (xs.directory(0, dir)?.length === 0) xs.rm(0, dir);
    await this.ctx.request({ host: ref.host, domain: 'dom0' }, 'vif_remove', { domid, handle }, 10_000);
    // dom0 may have written into the backend node between our rm and vif_remove (a plugin's key): remove again.
    rmTree(xs, vifBackendPath(0, domid, handle));
    const vif = this.forget(h, domid, handle);
    if (vif) await this.ctx.forgetMac(h.spec.name, parseMac(vif.mac));
  }

  /** The vif's records on the host go (its spec with its MAC and IP, its handle): what reserved them is undone. */
  private forget(h: HostResources, domid: number, handle: number): VifSpec | undefined {
    const i = h.domUs.findIndex((d) => d.domid === domid);
    const handles = vifHandles(h, domid);
    const at = handles.indexOf(handle);
    if (i < 0 || at < 0) return undefined;
    const [vif] = h.spec.domUs[i].vifs.splice(at, 1);
    h.handles.set(
      domid,
      handles.filter((x) => x !== handle),
    );
    return vif;
  }

  /** The vif checked as a topology's would be: the topology with it added must validate. */
  private validate(h: HostResources, index: number, i: number, vif: VifSpec): VifSpec {
    const at = `hosts[${index}].domUs[${i}]`;
    return validateAddition(
      this.ctx.topology,
      (t) => t.hosts[index].domUs[i].vifs.push(vif),
      (v) => v.hosts[index].domUs[i].vifs[v.hosts[index].domUs[i].vifs.length - 1],
      [
        [`${at}.vifs[${h.spec.domUs[i].vifs.length}]`, 'the new vif'],
        [at, `${h.spec.name}/${h.spec.domUs[i].name}`],
      ],
      `cannot add a vif to ${h.spec.name}/${h.spec.domUs[i].name}`,
    );
  }
}
