/**
 * The simple model the management plane is checked against: which guests run
 * where with which vifs (handle, MAC, IP), which save images are on disk and
 * what they hold, whether a capture and a trace run and into which file, the
 * plugins loaded per host, each NIC's link and MTU. Domids are learnt from the
 * answers (the model does not guess the allocator's order under concurrency),
 * but each must be new on its host and below Xen's reserved range.
 */
import { DOMID_FIRST_RESERVED } from '@xsim/hypervisor';
import type { DomainInfo } from '@xsim/toolstack';

export interface VifM {
  handle: number;
  mac: string;
  ip: string;
}

export interface GuestM {
  host: string;
  name: string;
  /** -1 until learnt (a save that failed after the suspend resumes the guest under a new domid). */
  domid: number;
  memPages: number;
  vifs: VifM[];
  /** An end of the background stream: never destroyed, saved or moved, its vif0 never deleted. */
  stable: boolean;
  /** The handle the next `dev add` without a name gets: handles are not reused while the guest keeps its domid. */
  nextHandle: number;
}

export interface ImageM {
  name: string;
  host: string;
  memPages: number;
  vifs: VifM[];
  /** Its vifs' MTU (the NIC's where it was saved): a host whose NIC carries less refuses it. */
  mtu: number;
}

export const PLUGINS = ['vnic', 'null', 'firewall'] as const;
export type PluginName = (typeof PLUGINS)[number];
/** vnic and null accelerate vifs (one such per host); firewall is a data-path intercept. */
export const VIF_ACCELS: readonly PluginName[] = ['vnic', 'null'];

export class Model {
  guests: GuestM[] = [];
  /** Save images on disk, by absolute path. */
  readonly images = new Map<string, ImageM>();
  /** Finished capture and trace files (they must stay whole on disk). */
  readonly finished = new Set<string>();
  capture: string | null = null;
  trace: string | null = null;
  readonly plugins = new Map<string, Set<PluginName>>();
  readonly link = new Map<string, boolean>();
  readonly mtu = new Map<string, number>();
  /** Steps run on this simulation. */
  steps = 0;
  /** Every domid a guest had on each host in this run: a new guest never gets one again. */
  readonly everDomids = new Map<string, Set<number>>();

  constructor(
    readonly hosts: string[],
    /** dom0s' IPs: no guest may take one. */
    readonly dom0Ips: string[],
    readonly topologyMtu: number,
  ) {
    for (const h of hosts) {
      this.plugins.set(h, new Set());
      this.link.set(h, true);
      this.mtu.set(h, topologyMtu);
      this.everDomids.set(h, new Set());
    }
  }

  guest(host: string, name: string): GuestM | undefined {
    return this.guests.find((g) => g.host === host && g.name === name);
  }

  /** Non-stable guests, in a stable order (what picks index into). */
  pool(): GuestM[] {
    return this.guests.filter((g) => !g.stable).sort((a, b) => `${a.host}/${a.name}`.localeCompare(`${b.host}/${b.name}`));
  }

  all(): GuestM[] {
    return [...this.guests].sort((a, b) => `${a.host}/${a.name}`.localeCompare(`${b.host}/${b.name}`));
  }

  ipsInUse(): Set<string> {
    return new Set([...this.dom0Ips, ...this.guests.flatMap((g) => g.vifs.map((v) => v.ip))]);
  }

  macsInUse(): Set<string> {
    return new Set(this.guests.flatMap((g) => g.vifs.map((v) => v.mac)));
  }

  /** A new guest incarnation on `host` got `domid`: it must never have been used there in this run, nor be reserved. */
  newDomid(host: string, domid: number, what: string): void {
    if (!Number.isInteger(domid) || domid < 1 || domid >= DOMID_FIRST_RESERVED)
      throw new Error(`${what}: domid ${domid} is not a guest's (1..${DOMID_FIRST_RESERVED - 1})`);
    const seen = this.everDomids.get(host)!;
    if (seen.has(domid)) throw new Error(`${what}: domid ${domid} was already used on ${host} in this run (domids are not reused)`);
    seen.add(domid);
  }

  add(g: GuestM, what: string): void {
    if (this.guest(g.host, g.name)) throw new Error(`${what}: the model already has ${g.host}/${g.name}`);
    if (g.domid >= 0) this.newDomid(g.host, g.domid, what);
    this.guests.push(g);
  }

  remove(host: string, name: string): GuestM | undefined {
    const g = this.guest(host, name);
    if (g) this.guests = this.guests.filter((x) => x !== g);
    return g;
  }
}

const key = (host: string, name: string) => `${host}/${name}`;
const vifsText = (vifs: VifM[]) =>
  [...vifs]
    .sort((a, b) => a.handle - b.handle)
    .map((v) => `vif${v.handle} ${v.mac} ${v.ip}`)
    .join(', ');

/**
 * What must hold of the real domain list whatever the model says: names and
 * domids unique per host, domids a guest's, IPs and MACs unique over every
 * host, vif handles unique per guest.
 */
export function realInvariants(list: DomainInfo[], dom0Ips: string[]): string[] {
  const bad: string[] = [];
  const names = new Set<string>();
  const domids = new Set<string>();
  const ips = new Map<string, string>(dom0Ips.map((ip) => [ip, 'a dom0']));
  const macs = new Map<string, string>();
  for (const d of list) {
    if (d.domid === 0) continue;
    const k = key(d.host, d.name);
    if (names.has(k)) bad.push(`two domains are named ${k}`);
    names.add(k);
    if (domids.has(`${d.host}#${d.domid}`)) bad.push(`domid ${d.domid} is used twice on ${d.host}`);
    domids.add(`${d.host}#${d.domid}`);
    if (d.domid >= DOMID_FIRST_RESERVED) bad.push(`${k} has reserved domid ${d.domid}`);
    if (d.state !== 'running') bad.push(`${k} is ${d.state}`);
    const handles = new Set<number>();
    for (const v of d.vifs) {
      if (!Number.isInteger(v.handle)) bad.push(`${k} has a vif with handle ${String(v.handle)}`);
      if (handles.has(v.handle)) bad.push(`${k} has vif${v.handle} twice`);
      handles.add(v.handle);
      if (ips.has(v.ip)) bad.push(`IP ${v.ip} of ${k} is also ${ips.get(v.ip)}'s`);
      ips.set(v.ip, k);
      if (macs.has(v.mac)) bad.push(`MAC ${v.mac} of ${k} is also ${macs.get(v.mac)}'s`);
      macs.set(v.mac, k);
    }
  }
  return bad;
}

/**
 * The model against the real list: the same guests on the same hosts with the
 * same vifs, memory and domids. Domids the model has not learnt yet are
 * taken from the list (and must be new on their host).
 */
export function compareWithModel(m: Model, list: DomainInfo[]): string[] {
  const bad: string[] = [];
  const real = new Map(list.filter((d) => d.domid !== 0).map((d) => [key(d.host, d.name), d]));
  for (const g of m.guests) {
    const d = real.get(key(g.host, g.name));
    if (!d) {
      bad.push(`${key(g.host, g.name)} is in the model but not running (vifs ${vifsText(g.vifs)})`);
      continue;
    }
    real.delete(key(g.host, g.name));
    if (g.domid < 0) {
      try {
        m.newDomid(g.host, d.domid, `${key(g.host, g.name)} resumed`);
        g.domid = d.domid;
      } catch (e) {
        bad.push((e as Error).message);
      }
    } else if (d.domid !== g.domid) bad.push(`${key(g.host, g.name)} is domain ${d.domid}, the model says ${g.domid}`);
    if (d.memPages !== g.memPages) bad.push(`${key(g.host, g.name)} has ${d.memPages} pages, the model says ${g.memPages}`);
    const want = vifsText(g.vifs);
    const got = vifsText(d.vifs);
    if (want !== got) bad.push(`${key(g.host, g.name)} has vifs [${got}], the model says [${want}]`);
  }
  for (const [k, d] of real) bad.push(`${k} (domain ${d.domid}) runs but is not in the model (vifs ${vifsText(d.vifs)})`);
  return bad;
}
