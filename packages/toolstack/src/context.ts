/**
 * The toolstack's shared context (libxl's ctx): the runtime, the hosts and
 * their resources, the domains being followed with their control channels,
 * the NIC hardware's channel, the options and the log. Lifecycle, hotplug,
 * migration, plugins and the observers are handed this one object; the
 * Simulation is a facade over them. Nothing here imports those modules, so
 * there is no import circle.
 */
import {
  ADDR_FABRIC,
  ADDR_TOOLSTACK,
  CH,
  RpcEndpoint,
  XenbusState,
  logError,
  type Addr,
  type Clock,
  type DomainSpec,
  type LogLevel,
  type Runtime,
} from '@xsim/hypervisor';
import { DOM0_KERNEL, type Dom0Config } from '@xsim/netback';
import { GUEST_KERNEL, type GuestConfig } from '@xsim/netfront';
import type { FabricConfig, WireRef } from '@xsim/nic';
import { parseMac, type Topology } from './topo/index.ts';
import type { WireEndSpec } from './topo/types.ts';
import { VXLAN_DEFAULT_MTU } from './topo/vxlan.ts';
import { vifAt, vifStates, writeDomainNodes, writeVifNodes, type DomainMemory, type HostResources } from './host.ts';
import type { Placement } from './placement.ts';
import type { TraceOptions } from './trace.ts';
import type { DomainOps, FabricOps, OpArgs, OpName, OpReply, OpRequestParams } from '@xsim/hypervisor';
import type { DomainRef } from './domain-ref.ts';
import type { Dom0Stats, DomainStatsEntry, FabricStats, GuestStats, StatsTree } from './stats.ts';
import { DomainLocks } from './domain-locks.ts';

export interface SimulationOptions {
  /** pCPU worker threads (default: the machine's cores). */
  pcpus?: number;
  /** Run every domain and the NIC on this thread, in a seeded order, on a virtual clock. */
  deterministic?: { seed: number };
  /** Empty polling rounds before a pCPU sleeps. */
  spinRounds?: number;
  /** How long to wait for every vif to connect. */
  connectTimeoutMs?: number;
  /**
   * Where the toolstack's log lines go (default: stderr, as "xsim: warning: ...", at `logLevel`).
   * Lines may carry a printk-style level mark (see @xsim/hypervisor's log.ts).
   */
  log?: (line: string) => void;
  /** The least severe level printed: 'warn' for --quiet, 'debug' for --verbose (default 'info'). PCPU workers filter by it too. */
  logLevel?: LogLevel;
  /**
   * A guest kernel other than the stock one for some domains ("host/domU" →
   * module URL exporting boot(env)): a user's own kernel, or a test's
   * misbehaving guest.
   */
  kernels?: Record<string, string>;
  /** How long a plugin's modules may take to load in the vetting worker (default 10 s). */
  pluginVetMs?: number;
  /** Trace from the start (the boot's xenbus handshakes included) into this file; traceStop() writes it. */
  trace?: TraceOptions;
  /** How long a domain may take to answer a stats or shutdown request before it is called hung (default 5 s). */
  answerMs?: number;
  /**
   * This simulation is one partition of a larger topology: it takes
   * migrations on `listen` (TCP; the same port number as its VXLAN tunnels'
   * UDP port), and a migration to a host of `peers` goes to that host's
   * partition (migrate-remote.ts).
   */
  partition?: PartitionNet;
}

/** A partition's place among the others, for migrations between them. */
export interface PartitionNet {
  name: string;
  listen?: { address: string; port: number };
  /** Every host of another partition, and where its partition takes migrations. */
  peers: Record<string, { partition: string; address: string; port: number }>;
}

export type { DomainRef };

export interface RunningDomain {
  host: string;
  name: string;
  domid: number;
  uid: Addr;
  ip: string;
  pcpu: number;
  ctl: RpcEndpoint<DomainOps>;
  /** Set if the domain crashed (its code threw). */
  crashed?: string;
  /** Set if the domain stopped answering (its code never yields): what it did not answer. */
  hung?: string;
  /** Its last counters, as its kernel answered shutdown. */
  final?: Dom0Stats | GuestStats;
}

/** What observers (capture, trace) want to hear of domains coming and going. */
export interface DomainHooks {
  /** A domain's kernel booted (created, restored, arrived by migration). */
  joined(d: RunningDomain): Promise<void>;
  /** A domain is about to stop while it can still answer. */
  leaving(d: RunningDomain): Promise<void>;
}

export class ToolstackContext {
  readonly domains: RunningDomain[] = [];
  readonly hosts: HostResources[] = [];
  readonly fabricCtl: RpcEndpoint<FabricOps>;
  /** Bring-up is over: a crash from now on is cleaned up like a destroy. */
  started = false;
  stopped = false;
  hooks: DomainHooks = { joined: async () => {}, leaving: async () => {} };
  /** What management operations hold: one end per domain, hotplugs in flight, guests on their way to a host. */
  readonly locks = new DomainLocks();
  private uid = 1;

  constructor(
    readonly topology: Topology,
    readonly runtime: Runtime,
    readonly placement: Placement,
    readonly opts: SimulationOptions,
  ) {
    this.fabricCtl = new RpcEndpoint<FabricOps>(runtime.bus, ADDR_TOOLSTACK, ADDR_FABRIC, CH.control, { setTimer: runtime.setTimer }).listen();
  }

  /** A fresh bus address for a domain. */
  nextUid(): Addr {
    return this.uid++;
  }

  log(line: string): void {
    this.opts.log?.(line);
  }

  /** How long a domain may take to answer a stats or shutdown request before it is called hung. */
  get answerMs(): number {
    return this.opts.answerMs ?? 5000;
  }

  get clock(): Clock {
    return this.runtime.clock;
  }

  /** Wait `ms` on the simulation's clock (virtual in a deterministic run). */
  sleep(ms: number): Promise<void> {
    return this.runtime.sleep(ms);
  }

  /** Poll `pred` on the simulation's clock until it holds, or fail naming `what`. */
  async waitFor(what: string, pred: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
    const deadline = this.clock.now() + ms;
    while (this.clock.now() < deadline) {
      if (await pred()) return;
      await this.sleep(5);
    }
    if (await pred()) return;
    throw new Error(`timed out waiting for ${what} (${ms} ms)`);
  }

  fabricConfig(): FabricConfig {
    const t = this.topology;
    const index = new Map(t.hosts.map((h, i) => [h.name, i]));
    const ports = new Map<string, number>();
    const ref = (end: WireEndSpec, path: string): WireRef => {
      if (typeof end !== 'string') {
        // A tunnel's socket lives on a real thread with a real clock: a seeded run on a virtual clock cannot have one.
        if (this.opts.deterministic)
          throw new Error(`${path}: a VXLAN wire cannot be part of a deterministic run (its datagrams come and go on real time); run on threads`);
        return { vxlan: { ...end.vxlan, mtu: end.vxlan.mtu ?? VXLAN_DEFAULT_MTU, path: `${path}.vxlan` } };
      }
      if (index.has(end)) return { nic: index.get(end)! };
      const p = ports.get(end) ?? 0;
      ports.set(end, p + 1);
      return { switch: end, port: p };
    };
    // The fabric starts one I/O thread for every tunnel wire's sockets (nic's vxlan/io.ts): it counts in threads().
    const tunnels = t.wires.filter((w) => typeof w.a !== 'string' || typeof w.b !== 'string').length;
    const io = `VXLAN I/O thread (the UDP sockets of ${tunnels} tunnel wire${tunnels === 1 ? '' : 's'})`;
    if (tunnels && !this.opts.deterministic && !this.runtime.ioThreads.includes(io)) this.runtime.ioThreads.push(io);
    return {
      nics: this.hosts.map((h) => ({
        name: `${h.spec.name}-nic`,
        host: h.spec.name,
        mac: parseMac(h.spec.nic.mac),
        mtu: h.spec.nic.mtu,
        vendor: h.spec.nic.vendor,
        device: h.spec.nic.device,
        vis: h.spec.nic.vis,
        filters: h.spec.nic.filters,
        dom0Uid: h.dom0.uid,
        domainRam: Object.fromEntries([h.dom0, ...h.domUs].map((d) => [d.domid, d.mem.sab])),
      })),
      switches: t.switches.map((s) => ({ name: s.name, ports: s.ports })),
      wires: t.wires.map((w, i) => ({ a: ref(w.a, `wires[${i}].a`), b: ref(w.b, `wires[${i}].b`), ...(w.gbps !== undefined ? { gbps: w.gbps } : {}) })),
      // The NIC thread's doorbell: the VXLAN I/O thread rings it when datagrams arrive.
      ...(tunnels ? { wake: this.runtime.nicWake } : {}),
    };
  }

  introduce(h: HostResources, d: DomainMemory): void {
    h.xenstore.introduce(d.uid, d.domid);
    h.hv.introduce(d.uid, d.domid, this.runtime.doorbell(d.pcpu));
  }

  /** A request to the NIC hardware, with the usual deadline. */
  fabric<K extends OpName<FabricOps>>(op: K, args: OpArgs<FabricOps, K>, shared?: SharedArrayBuffer[]): Promise<OpReply<FabricOps, K>> {
    return this.fabricCtl.request(op, args, this.answerMs, shared);
  }

  /** The toolstack stops following a domain that is gone (or saved): its entry and its control channel. */
  untrack(d: RunningDomain): void {
    const i = this.domains.indexOf(d);
    if (i >= 0) this.domains.splice(i, 1);
    d.ctl.close();
  }

  track(h: HostResources, d: DomainMemory, ip: string): RunningDomain {
    const ctl = new RpcEndpoint<DomainOps>(this.runtime.bus, ADDR_TOOLSTACK, d.uid, CH.control, { setTimer: this.runtime.setTimer }).listen();
    const rd: RunningDomain = { host: h.spec.name, name: d.domid === 0 ? 'dom0' : d.name, domid: d.domid, uid: d.uid, ip, pcpu: d.pcpu, ctl };
    this.domains.push(rd);
    return rd;
  }

  /** Make dom0 known (xenstore, the toolstack's list), and return its boot, to be run. */
  prepareDom0(h: HostResources): () => Promise<void> {
    const s = h.spec;
    const config: Dom0Config = {
      mem: h.dom0.mem.sab,
      gnttab: h.dom0.gnttab,
      guests: h.domUs.map((d, i) => ({ domid: d.domid, uid: d.uid, mem: d.mem.sab, gnttab: d.gnttab, vifs: s.domUs[i].vifs.map((_v, n) => n) })),
      mac: s.nic.mac,
      ip: s.dom0.ip,
      mtu: s.nic.mtu,
      nic: { nicWake: { sab: this.runtime.nicWake, offset: 0 }, mac: parseMac(s.nic.mac), vendor: s.nic.vendor, device: s.nic.device, vis: s.nic.vis },
      ...(s.dom0.maxQueues !== undefined ? { netback: { maxQueues: s.dom0.maxQueues } } : {}),
    };
    this.introduce(h, h.dom0);
    this.track(h, h.dom0, s.dom0.ip);
    return () => this.runtime.create({ kernel: DOM0_KERNEL, name: 'dom0', host: s.name, hostIndex: h.index, domid: 0, uid: h.dom0.uid, config }, h.dom0.pcpu);
  }

  /**
   * Boot every dom0, then every guest. On threads the creations go out
   * together (at most BOOT_IN_FLIGHT at once): each is a round trip to a
   * pCPU that boots the kernel, so one after the other a rack's boot was
   * that many round trips end to end, with every thread mostly waiting.
   * Each domain is made known (xenstore, the toolstack's list) in the
   * topology's order first, so lists and reports keep that order. A
   * deterministic run boots them one at a time, so its seeded schedule
   * stays the same.
   */
  async startAll(): Promise<void> {
    const dom0s = this.hosts.map((h) => this.prepareDom0(h));
    const limit = this.runtime.kind === 'deterministic' ? 1 : BOOT_IN_FLIGHT;
    await inFlight(dom0s, limit);
    const guests = this.hosts.flatMap((h) => h.domUs.map((d, i) => this.prepareGuest(h, d, i)));
    await inFlight(guests, limit);
  }

  /** xl create's last step: a guest made known and booted. */
  async startGuest(h: HostResources, d: DomainMemory, i: number): Promise<void> {
    await this.prepareGuest(h, d, i)();
  }

  /** Make a guest known (its xenstore nodes, the toolstack's list), and return its boot, to be run. */
  prepareGuest(h: HostResources, d: DomainMemory, i: number): () => Promise<void> {
    const spec = h.spec.domUs[i];
    writeDomainNodes(h.xenstore, d.domid, spec.name);
    spec.vifs.forEach((v, n) => writeVifNodes(h.xenstore, d.domid, n, v));
    const config: GuestConfig = {
      mem: d.mem.sab,
      gnttab: d.gnttab,
      mtu: h.spec.nic.mtu,
      vifs: spec.vifs.map((v, n) => ({
        handle: n,
        mac: v.mac,
        ip: v.ip,
        ...(v.queues !== undefined ? { queues: v.queues } : {}),
        ...(v.offloads?.csum === false ? { csum: false } : {}),
        ...(v.offloads?.gso === false ? { gso: false } : {}),
      })),
      dom0Uid: h.dom0.uid,
    };
    this.introduce(h, d);
    this.track(h, d, spec.vifs[0].ip);
    const kernel = this.kernelFor(h.spec.name, spec.name);
    return () => this.boot({ kernel, name: spec.name, host: h.spec.name, hostIndex: h.index, domid: d.domid, uid: d.uid, config }, d.pcpu);
  }

  kernelFor(host: string, name: string): string {
    return this.opts.kernels?.[`${host}/${name}`] ?? GUEST_KERNEL;
  }

  /** Resolve when every vif's frontend and backend read Connected in xenstore. */
  async waitConnected(timeoutMs: number): Promise<void> {
    const pending = (): string[] => {
      const out: string[] = [];
      for (const h of this.hosts) {
        h.spec.domUs.forEach((spec, i) => {
          spec.vifs.forEach((_v, n) => {
            if (vifAt(h.xenstore, h.domUs[i].domid, n, XenbusState.Connected)) return;
            const st = vifStates(h.xenstore, h.domUs[i].domid, n);
            out.push(`${h.spec.name}/${spec.name} vif${n} (frontend ${st.frontend}, backend ${st.backend})`);
          });
        });
      }
      return out;
    };
    const deadline = this.clock.now() + timeoutMs;
    for (;;) {
      const left = pending();
      if (left.length === 0) return;
      const crashed = this.domains.find((d) => d.crashed);
      if (crashed) throw new Error(`${crashed.host}/${crashed.name} crashed during bring-up: ${crashed.crashed}`);
      if (this.clock.now() > deadline)
        throw new Error(`vifs did not connect within ${timeoutMs} ms: ${left.slice(0, 8).join('; ')}${left.length > 8 ? `; and ${left.length - 8} more` : ''}`);
      await this.sleep(5);
    }
  }

  domain(ref: DomainRef): RunningDomain {
    const d = this.domains.find((x) => x.host === ref.host && (ref.domain === 'dom0' ? x.domid === 0 : x.name === ref.domain && x.domid !== 0));
    if (d) return d;
    const hosts = this.hosts.map((h) => h.spec.name);
    if (!hosts.includes(ref.host)) throw new Error(`no host "${ref.host}" (hosts: ${hosts.join(', ')})`);
    const here = this.domains.filter((x) => x.host === ref.host).map((x) => x.name);
    throw new Error(`no domain "${ref.domain}" on ${ref.host} (domains: ${here.join(', ')})`);
  }

  host(name: string): HostResources {
    const h = this.hosts.find((x) => x.spec.name === name);
    if (!h) throw new Error(`no host "${name}" (hosts: ${this.hosts.map((x) => x.spec.name).join(', ')})`);
    return h;
  }

  /** A request to a domain: the op and its arguments are DomainOps' (abi/dom0-ops.ts, guest-ops.ts), checked by the compiler. */
  async request<K extends OpName<DomainOps>>(ref: DomainRef, op: K, ...rest: OpRequestParams<DomainOps, K>): Promise<OpReply<DomainOps, K>> {
    const [args = {} as OpArgs<DomainOps, K>, timeoutMs = 120_000, shared] = rest;
    return this.ask(this.domain(ref), op, args, timeoutMs, shared);
  }

  /** A request to one domain with a deadline; a domain that misses it because its pCPU is stuck in it is marked hung. */
  async ask<K extends OpName<DomainOps>>(
    d: RunningDomain,
    op: K,
    args: OpArgs<DomainOps, K>,
    timeoutMs: number,
    shared?: SharedArrayBuffer[],
  ): Promise<OpReply<DomainOps, K>> {
    if (d.crashed) throw new Error(`${d.host}/${d.name} has crashed: ${d.crashed}`);
    if (d.hung) throw new Error(`${d.host}/${d.name} is hung (${d.hung})`);
    try {
      return await d.ctl.request(op, args, timeoutMs, shared);
    } catch (e) {
      if ((e as { code?: unknown } | null)?.code === 'timeout' && !d.crashed) this.diagnose(d, op, timeoutMs); // RpcError's code
      throw e;
    }
  }

  /**
   * Why did `d` not answer? If its pCPU has been in one turn for at least
   * half the deadline (a bounded turn lasts microseconds to milliseconds),
   * the domain in that turn never yields: it is hung, and the others on that
   * pCPU (cooperatively scheduled) with it.
   */
  private diagnose(d: RunningDomain, op: string, ms: number): void {
    const now = this.runtime.pcpuTurn(d.pcpu);
    if (!now || now.uid === 0 || now.forMs < ms / 2) return;
    const culprit = this.domains.find((x) => x.uid === now.uid);
    const name = culprit ? `${culprit.host}/${culprit.name}` : `domain ${now.uid}`;
    for (const x of this.domains) {
      if (x.pcpu !== d.pcpu || x.hung) continue;
      x.hung =
        x === culprit
          ? `no answer to "${op}" within ${ms} ms: its code never yields (pCPU ${d.pcpu} has been in its turn for ${Math.round(now.forMs)} ms)`
          : `pCPU ${d.pcpu} is held by ${name}, whose code never yields`;
      this.log(logError(`${x.host}/${x.name} (domain ${x.domid}) is hung: ${x.hung}`));
    }
  }

  hostNames(host?: string): string[] {
    const names = this.hosts.map((h) => h.spec.name);
    if (host === undefined) return names;
    if (!names.includes(host)) throw new Error(`no host ${host} (hosts: ${names.join(', ')})`);
    return [host];
  }

  /** A MAC that left `host` (its guest or vif went away): the switches and every other host's bridge forget it. */
  async forgetMac(host: string, mac: number): Promise<void> {
    await this.fabric('forget_mac', { mac }).catch(() => undefined);
    for (const other of this.domains.filter((x) => x.domid === 0 && x.host !== host && !x.crashed && !x.hung)) {
      await this.ask(other, 'fdb_forget', { mac }, this.answerMs).catch(() => undefined);
    }
  }

  /** The NIC hardware's counters (the fabric kernel is always @xsim/nic's: its reply is a FabricStats). */
  async fabricStats(): Promise<FabricStats> {
    return (await this.fabric('stats', {})) as FabricStats;
  }

  /**
   * A domain's counters, typed by its kernel: dom0 runs @xsim/netback's
   * (Dom0Stats), a guest @xsim/netfront's bootGuest (GuestStats; a kernel of
   * one's own given in SimulationOptions.kernels boots through it too). The
   * control channel carries the generic KernelStats; this is where it is
   * known which kernel answered.
   */
  async kernelStats(d: RunningDomain, timeoutMs = this.answerMs): Promise<Dom0Stats | GuestStats> {
    const s = await this.ask(d, 'stats', {}, timeoutMs);
    return d.domid === 0 ? (s as Dom0Stats) : (s as GuestStats);
  }

  /**
   * Boot a guest's kernel (created, restored or arrived by migration); a
   * capture that is running takes in its tap points.
   */
  async boot(spec: DomainSpec, pcpu: number): Promise<void> {
    await this.runtime.create(spec, pcpu);
    const d = this.domains.find((x) => x.uid === spec.uid);
    if (d) await this.hooks.joined(d);
  }

  /**
   * Every domain's counters and the NIC hardware's, keyed host/domain, asked
   * of all at once: a domain that does not answer within answerMs is reported
   * as hung (`{ hung }`), not waited for.
   */
  async stats(): Promise<StatsTree> {
    const answers = await Promise.all(
      this.domains.map(async (d): Promise<[`${string}/${string}`, DomainStatsEntry]> => {
        const key = `${d.host}/${d.name}` as const;
        if (d.crashed) return [key, { crashed: d.crashed, pcpu: d.pcpu }];
        if (d.hung) return [key, { hung: d.hung, pcpu: d.pcpu }];
        try {
          return [key, await this.kernelStats(d)];
        } catch (e) {
          return [key, d.hung ? { hung: d.hung, pcpu: d.pcpu } : { error: e instanceof Error ? e.message : String(e) }];
        }
      }),
    );
    const domains: Record<`${string}/${string}`, DomainStatsEntry> = Object.fromEntries(answers);
    const fabric = await this.fabricStats().catch((e: Error) => ({ error: e.message }));
    return { ...domains, fabric };
  }
}

/** Domains booting at once at start (threads): enough to keep every pCPU busy, few enough that the message queues stay short. */
export const BOOT_IN_FLIGHT = 64;

/** Run `jobs`, at most `limit` at a time; the first failure is thrown once all started ones settled. */
async function inFlight(jobs: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  let failed: unknown = null;
  const lane = async (): Promise<void> => {
    while (next < jobs.length && failed === null) {
      const job = jobs[next++];
      await job().catch((e: unknown) => {
        failed ??= e;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, lane));
  if (failed !== null) throw failed;
}
