/**
 * The toolstack: bring a topology up (memory, xenstored and the hypervisor
 * service of each host, the NIC hardware, every domain placed on a pCPU),
 * wait until every vif is connected, drive the domains over their control
 * channels and collect their counters, then shut everything down.
 *
 * Threads: a fixed set of pCPU workers (--pcpus, default one per core) each
 * running many domains, one thread for the NIC hardware, and this thread; or,
 * deterministically, everything on this thread with a seeded order and a
 * virtual clock.
 */
import { availableParallelism } from 'node:os';
import { ADDR_FABRIC, ADDR_TOOLSTACK, CH, DetRuntime, RpcEndpoint, ThreadRuntime, XenbusState, logError, logPrinter, type Addr, type Clock, type DomainSpec, type LogLevel, type Runtime } from '@xsim/hypervisor';
import { DOM0_KERNEL, type Dom0Config } from '@xsim/netback';
import { GUEST_KERNEL, type GuestConfig } from '@xsim/netfront';
import { FABRIC_KERNEL, type FabricConfig, type WireRef } from '@xsim/nic';
import { parseMac, type Topology } from './topo/index.ts';
import { buildHost, vifAt, vifStates, writeDomainNodes, writeVifNodes, type DomainMemory, type HostResources } from './host.ts';
import { placeDomains, type Placement } from './placement.ts';
import { DomainLifecycle, type CreateDomainOptions, type DomainEnd, type DomainInfo } from './lifecycle.ts';
import { VifHotplug, vifHandles, type VifAddOptions, type VifInfo } from './hotplug.ts';

import { PluginOps } from './plugins.ts';
import { DomainMover, type MigrateOptions, type MigrationReport, type SaveReport } from './migration.ts';
import type { TraceOptions, TraceSummary } from './trace.ts';
import type { CaptureOptions, CaptureSummary } from './capture.ts';
import { Observers } from './observers.ts';

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
}

export interface DomainRef {
  host: string;
  /** 'dom0' or a domU name. */
  domain: string;
}

export interface RunningDomain {
  host: string;
  name: string;
  domid: number;
  uid: Addr;
  ip: string;
  pcpu: number;
  ctl: RpcEndpoint;
  /** Set if the domain crashed (its code threw). */
  crashed?: string;
  /** Set if the domain stopped answering (its code never yields): what it did not answer. */
  hung?: string;
  final?: unknown;
}

export class Simulation {
  readonly domains: RunningDomain[] = [];
  readonly hosts: HostResources[] = [];
  readonly plugins: PluginOps;
  private readonly fabricCtl: RpcEndpoint;
  private readonly lifecycle: DomainLifecycle;
  private readonly hotplug: VifHotplug;
  private readonly mover: DomainMover;
  private stopped = false;
  private readonly observers: Observers;
  /** Bring-up is over: a crash from now on is cleaned up like a destroy. */
  private started = false;
  private nextUid = 1;

  private constructor(
    readonly topology: Topology,
    readonly runtime: Runtime,
    readonly placement: Placement,
    private readonly opts: SimulationOptions,
  ) {
    this.fabricCtl = new RpcEndpoint(runtime.bus, ADDR_TOOLSTACK, ADDR_FABRIC, CH.control, { setTimer: runtime.setTimer }).listen();
    this.observers = new Observers({
      runtime,
      domains: () => this.domains,
      hosts: () => this.hosts.map((h) => h.spec.name),
      ask: (d, op, args, shared) => this.ask(d, op, args, this.opts.answerMs ?? 5000, shared),
      fabric: (op, args, shared) => this.fabric(op, args, shared),
      log: (l) => this.log(l),
    });
    this.plugins = new PluginOps(this, opts.pluginVetMs);
    this.lifecycle = new DomainLifecycle({
      sim: this,
      nextUid: () => this.nextUid++,
      startGuest: (h, d, i) => this.startGuest(h, d, i),
      fabric: (op, args, shared) => this.fabric(op, args, shared),
      untrack: (d) => this.untrack(d),
      leaving: (d) => this.observers.leaving(d),
      log: (l) => this.log(l),
    });
    this.hotplug = new VifHotplug(this, (l) => this.log(l));
    this.mover = new DomainMover({
      sim: this,
      lifecycle: this.lifecycle,
      nextUid: () => this.nextUid++,
      fabric: (op, args, shared) => this.fabric(op, args, shared),
      introduce: (h, d) => this.introduce(h, d),
      boot: (spec, pcpu) => this.boot(spec, pcpu),
      leaving: (d) => this.observers.leaving(d),
      track: (h, d, ip) => this.track(h, d, ip),
      untrack: (d) => this.untrack(d),
      kernelFor: (host, name) => this.kernelFor(host, name),
      log: (l) => this.log(l),
    });
    runtime.onCrash = (uid, error) => {
      const d = this.domains.find((x) => x.uid === uid);
      if (!d) return;
      d.crashed = error;
      this.log(logError(`${d.host}/${d.name} (domain ${d.domid}) crashed: ${error}`));
      // A guest that crashes once everything is up is handled as a destroy: dom0 and the others carry on.
      if (this.started && !this.stopped && d.domid !== 0) {
        void this.lifecycle.crashed(d).catch((e: Error) => this.log(logError(`cleaning up after ${d.host}/${d.name} failed: ${e.message}`)));
      }
    };
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  static async start(topology: Topology, opts: SimulationOptions = {}): Promise<Simulation> {
    const log = opts.log ?? logPrinter(opts.logLevel ?? 'info', (s) => process.stderr.write(s));
    const runtime: Runtime = opts.deterministic
      ? new DetRuntime(opts.deterministic.seed, log)
      : new ThreadRuntime(opts.pcpus ?? availableParallelism(), { spinRounds: opts.spinRounds, log, logLevel: opts.logLevel });
    const placement = placeDomains(topology, runtime.pcpus);
    const sim = new Simulation(topology, runtime, placement, { ...opts, log });
    try {
      if (opts.trace) await sim.traceStart(opts.trace);
      for (const [i, h] of topology.hosts.entries()) sim.hosts.push(buildHost(runtime.bus, h, i, () => sim.nextUid++, placement.dom0[i], placement.guests[i]));
      await runtime.create({ kernel: FABRIC_KERNEL, name: 'nic-hw', host: '*', hostIndex: -1, domid: -1, uid: ADDR_FABRIC, config: sim.fabricConfig() }, 'nic');
      for (const h of sim.hosts) await sim.startDom0(h);
      for (const h of sim.hosts) for (const [i, d] of h.domUs.entries()) await sim.startGuest(h, d, i);
      await sim.waitConnected(opts.connectTimeoutMs ?? 30_000);
      sim.started = true;
    } catch (e) {
      await sim.shutdown().catch(() => {});
      throw e;
    }
    return sim;
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

  private fabricConfig(): FabricConfig {
    const t = this.topology;
    const index = new Map(t.hosts.map((h, i) => [h.name, i]));
    const ports = new Map<string, number>();
    const ref = (end: string): WireRef => {
      if (index.has(end)) return { nic: index.get(end)! };
      const p = ports.get(end) ?? 0;
      ports.set(end, p + 1);
      return { switch: end, port: p };
    };
    return {
      nics: this.hosts.map((h) => ({
        name: `${h.spec.name}-nic`,
        host: h.spec.name,
        mac: parseMac(h.spec.nic.mac),
        mtu: h.spec.nic.mtu,
        vendor: h.spec.nic.vendor,
        device: h.spec.nic.device,
        vis: h.spec.nic.vis,
        dom0Uid: h.dom0.uid,
        domainRam: Object.fromEntries([h.dom0, ...h.domUs].map((d) => [d.domid, d.mem.sab])),
      })),
      switches: t.switches.map((s) => ({ name: s.name, ports: s.ports })),
      wires: t.wires.map((w) => ({ a: ref(w.a), b: ref(w.b) })),
    };
  }

  private introduce(h: HostResources, d: DomainMemory): void {
    h.xenstore.introduce(d.uid, d.domid);
    h.hv.introduce(d.uid, d.domid, this.runtime.doorbell(d.pcpu));
  }

  /** A request to the NIC hardware, with the usual deadline. */
  private fabric(op: string, args: Record<string, unknown>, shared?: SharedArrayBuffer[]): Promise<unknown> {
    return this.fabricCtl.request(op, args, this.opts.answerMs ?? 5000, shared);
  }

  /** The toolstack stops following a domain that is gone (or saved): its entry and its control channel. */
  private untrack(d: RunningDomain): void {
    const i = this.domains.indexOf(d);
    if (i >= 0) this.domains.splice(i, 1);
    d.ctl.close();
  }

  private track(h: HostResources, d: DomainMemory, ip: string): RunningDomain {
    const ctl = new RpcEndpoint(this.runtime.bus, ADDR_TOOLSTACK, d.uid, CH.control, { setTimer: this.runtime.setTimer }).listen();
    const rd: RunningDomain = { host: h.spec.name, name: d.domid === 0 ? 'dom0' : d.name, domid: d.domid, uid: d.uid, ip, pcpu: d.pcpu, ctl };
    this.domains.push(rd);
    return rd;
  }

  private async startDom0(h: HostResources): Promise<void> {
    const s = h.spec;
    const config: Dom0Config = {
      mem: h.dom0.mem.sab,
      gnttab: h.dom0.gnttab,
      guests: h.domUs.map((d, i) => ({ domid: d.domid, uid: d.uid, mem: d.mem.sab, gnttab: d.gnttab, vifs: s.domUs[i].vifs.map((_v, n) => n) })),
      mac: s.nic.mac,
      ip: s.dom0.ip,
      mtu: s.nic.mtu,
      nic: { nicWake: { sab: this.runtime.nicWake, offset: 0 }, mac: parseMac(s.nic.mac), vendor: s.nic.vendor, device: s.nic.device, vis: s.nic.vis },
    };
    this.introduce(h, h.dom0);
    this.track(h, h.dom0, s.dom0.ip);
    await this.runtime.create({ kernel: DOM0_KERNEL, name: 'dom0', host: s.name, hostIndex: h.index, domid: 0, uid: h.dom0.uid, config }, h.dom0.pcpu);
  }

  private async startGuest(h: HostResources, d: DomainMemory, i: number): Promise<void> {
    const spec = h.spec.domUs[i];
    writeDomainNodes(h.xenstore, d.domid, spec.name);
    spec.vifs.forEach((v, n) => writeVifNodes(h.xenstore, d.domid, n, v));
    const config: GuestConfig = { mem: d.mem.sab, gnttab: d.gnttab, mtu: h.spec.nic.mtu, vifs: spec.vifs.map((v, n) => ({ handle: n, mac: v.mac, ip: v.ip })), dom0Uid: h.dom0.uid };
    this.introduce(h, d);
    this.track(h, d, spec.vifs[0].ip);
    const kernel = this.kernelFor(h.spec.name, spec.name);
    await this.boot({ kernel, name: spec.name, host: h.spec.name, hostIndex: h.index, domid: d.domid, uid: d.uid, config }, d.pcpu);
  }

  private kernelFor(host: string, name: string): string {
    return this.opts.kernels?.[`${host}/${name}`] ?? GUEST_KERNEL;
  }

  /** Resolve when every vif's frontend and backend read Connected in xenstore. */
  private async waitConnected(timeoutMs: number): Promise<void> {
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
      if (this.clock.now() > deadline) throw new Error(`vifs did not connect within ${timeoutMs} ms: ${left.slice(0, 8).join('; ')}${left.length > 8 ? `; and ${left.length - 8} more` : ''}`);
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

  async request(ref: DomainRef, op: string, args: unknown = {}, timeoutMs = 120_000, shared?: SharedArrayBuffer[]): Promise<unknown> {
    return this.ask(this.domain(ref), op, args, timeoutMs, shared);
  }

  /** A request to one domain with a deadline; a domain that misses it because its pCPU is stuck in it is marked hung. */
  private async ask(d: RunningDomain, op: string, args: unknown, timeoutMs: number, shared?: SharedArrayBuffer[]): Promise<unknown> {
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
      x.hung = x === culprit ? `no answer to "${op}" within ${ms} ms: its code never yields (pCPU ${d.pcpu} has been in its turn for ${Math.round(now.forMs)} ms)` : `pCPU ${d.pcpu} is held by ${name}, whose code never yields`;
      this.log(logError(`${x.host}/${x.name} (domain ${x.domid}) is hung: ${x.hung}`));
    }
  }

  /** xl create: a guest with one vif on `host`, connected (full xenbus handshake) when this resolves. */
  createDomain(host: string, name: string, opts: CreateDomainOptions = {}): Promise<DomainInfo> {
    return this.lifecycle.create(host, name, opts);
  }

  /** xl shutdown: the guest closes its vifs itself, then stops; nothing of it is left. */
  shutdownDomain(ref: DomainRef, timeoutMs?: number): Promise<DomainEnd> {
    return this.lifecycle.shutdown(ref, timeoutMs);
  }

  /** xl destroy: the guest stops at once; nothing of it is left. */
  destroyDomain(ref: DomainRef): Promise<DomainEnd> {
    return this.lifecycle.destroy(ref);
  }

  /** xl list: every domain, its state, memory, pCPU and vifs with their accelerator. */
  listDomains(): Promise<DomainInfo[]> {
    return this.lifecycle.list();
  }

  /** xl migrate [--live]: move a running guest to another host (or the same one); what it cost is in the report. */
  migrateDomain(ref: DomainRef, toHost: string, opts: MigrateOptions = {}): Promise<MigrationReport> {
    return this.mover.migrate(ref, toHost, opts);
  }

  /** xl save: the guest stops and is written to `file`; it no longer runs. */
  saveDomain(ref: DomainRef, file: string): Promise<SaveReport> {
    return this.mover.save(ref, file);
  }

  /** xl restore: a saved guest runs again on `host` (default: where it was saved). */
  restoreDomain(file: string, host?: string): Promise<{ domain: string; domid: number; pages: number; ms: number }> {
    return this.mover.restore(file, host);
  }

  /** vdpa dev add / xl network-attach: a vif on a running guest, connected when this resolves. */
  addVif(ref: DomainRef, opts: VifAddOptions = {}): Promise<VifInfo> {
    return this.hotplug.add(ref, opts);
  }

  /** vdpa dev del / xl network-detach: the backend closes, the frontend follows, the vif is gone. */
  delVif(ref: DomainRef, handle: number): Promise<{ dev: string; forced: boolean }> {
    return this.hotplug.del(ref, handle);
  }

  /** A guest vif's MAC and IP, by handle. */
  vifAddress(ref: DomainRef, handle: number): { mac: string; ip: string } {
    const d = this.domain(ref);
    const h = this.host(ref.host);
    const i = h.domUs.findIndex((x) => x.uid === d.uid);
    const handles = vifHandles(h, d.domid);
    const v = h.spec.domUs[i]?.vifs[handles.indexOf(handle)];
    if (!v) throw new Error(`${ref.host}/${ref.domain} has no vif${handle} (vifs: ${handles.map((x) => `vif${x}`).join(', ')})`);
    return v;
  }

  /** A MAC that left `host` (its guest or vif went away): the switches and every other host's bridge forget it. */
  async forgetMac(host: string, mac: number): Promise<void> {
    await this.fabric('forget_mac', { mac }).catch(() => undefined);
    for (const other of this.domains.filter((x) => x.domid === 0 && x.host !== host && !x.crashed && !x.hung)) {
      await this.ask(other, 'fdb_forget', { mac }, this.opts.answerMs ?? 5000).catch(() => undefined);
    }
  }

  /** Every domain that ended while the simulation ran (shut down, destroyed, crashed), oldest first. */
  get endedDomains(): readonly DomainEnd[] {
    return this.lifecycle.ended;
  }

  hostNames(host?: string): string[] {
    const names = this.hosts.map((h) => h.spec.name);
    if (host === undefined) return names;
    if (!names.includes(host)) throw new Error(`no host ${host} (hosts: ${names.join(', ')})`);
    return [host];
  }

  loadPlugin(name: string, opts: { host?: string; args?: Record<string, unknown> } = {}): Promise<unknown[]> {
    return this.plugins.load(name, opts);
  }

  unloadPlugin(nameOrPath: string, opts: { host?: string } = {}): Promise<unknown[]> {
    return this.plugins.unload(nameOrPath, opts);
  }

  async nicReset(host: string): Promise<unknown> {
    return this.request({ host, domain: 'dom0' }, 'nic_reset', {}, 30_000);
  }

  async setLink(host: string, up: boolean): Promise<unknown> {
    return this.request({ host, domain: 'dom0' }, 'link_set', { up });
  }

  async setMtu(host: string, mtu: number): Promise<unknown> {
    return this.request({ host, domain: 'dom0' }, 'mtu_set', { mtu });
  }

  async fabricStats(): Promise<unknown> {
    return this.fabric('stats', {});
  }

  /**
   * Boot a guest's kernel (created, restored or arrived by migration); a
   * capture that is running takes in its tap points.
   */
  private async boot(spec: DomainSpec, pcpu: number): Promise<void> {
    await this.runtime.create(spec, pcpu);
    const d = this.domains.find((x) => x.uid === spec.uid);
    if (d) await this.observers.joined(d);
  }

  /** The tap points a capture may name (`xsim capture list`). */
  captureTaps(): Promise<string[]> {
    return this.observers.captureTaps();
  }

  /** Capture at the tap points `specs` select into one pcapng file until captureStop() (see capture.ts). */
  captureStart(specs: readonly string[], o: CaptureOptions): Promise<{ file: string; interfaces: string[] }> {
    return this.observers.captureStart(specs, o);
  }

  captureStop(): Promise<CaptureSummary> {
    return this.observers.captureStop();
  }

  /** Trace every thread into a Chrome / Perfetto JSON file until traceStop() (see trace.ts). */
  traceStart(o: TraceOptions): Promise<{ file: string }> {
    return this.observers.traceStart(o);
  }

  traceStop(): Promise<TraceSummary> {
    return this.observers.traceStop();
  }

  /** Threads the simulation runs and where every domain is placed. */
  threads(): ReturnType<Runtime['threads']> & { placement: string } {
    return { ...this.runtime.threads(), placement: this.placement.policy };
  }

  /**
   * Every domain's counters and the NIC hardware's, keyed host/domain, asked
   * of all at once: a domain that does not answer within answerMs is reported
   * as hung (`{ hung }`), not waited for.
   */
  async stats(): Promise<Record<string, unknown>> {
    const ms = this.opts.answerMs ?? 5000;
    const answers = await Promise.all(
      this.domains.map(async (d): Promise<[string, unknown]> => {
        const key = `${d.host}/${d.name}`;
        if (d.crashed) return [key, { crashed: d.crashed, pcpu: d.pcpu }];
        if (d.hung) return [key, { hung: d.hung, pcpu: d.pcpu }];
        try {
          return [key, await this.ask(d, 'stats', {}, ms)];
        } catch (e) {
          return [key, d.hung ? { hung: d.hung, pcpu: d.pcpu } : { error: e instanceof Error ? e.message : String(e) }];
        }
      }),
    );
    const out: Record<string, unknown> = Object.fromEntries(answers);
    out.fabric = await this.fabricStats().catch((e: Error) => ({ error: e.message }));
    return out;
  }

  async shutdown(): Promise<{ domains: Record<string, unknown>; fabric: unknown }> {
    if (this.stopped) return { domains: {}, fabric: undefined };
    // A capture or trace still running is finished first: its file is whole, not left half written.
    await this.observers.finish();
    this.stopped = true;
    const ms = this.opts.answerMs ?? 5000;
    const finals: Record<string, unknown> = {};
    // Guests first (they may still have traffic in flight), then dom0s, then the hardware.
    const order = [...this.domains.filter((d) => d.domid !== 0), ...this.domains.filter((d) => d.domid === 0)];
    for (const d of order) {
      if (!d.crashed && !d.hung) d.final = await this.ask(d, 'shutdown', {}, ms).catch(() => undefined);
      finals[`${d.host}/${d.name}`] = d.crashed ? { crashed: d.crashed } : d.hung ? { hung: d.hung, terminated: true } : d.final;
      if (!d.hung && !d.crashed) await this.runtime.remove(d.uid, d.pcpu, 'reap');
      d.ctl.close();
    }
    // A pCPU stuck in a domain that never yields is ended with it.
    for (const p of new Set(this.domains.filter((d) => d.hung).map((d) => d.pcpu))) this.runtime.terminate(p);
    const fabric = await this.fabricCtl.request('shutdown', {}, ms).catch(() => undefined);
    this.fabricCtl.close();
    await this.runtime.shutdown(ms);
    for (const h of this.hosts) h.xenstore.close();
    return { domains: finals, fabric };
  }
}
