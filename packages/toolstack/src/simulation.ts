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
import { ADDR_FABRIC, DetRuntime, ThreadRuntime, logError, logPrinter, type Clock, type Runtime } from '@xsim/hypervisor';
import { FABRIC_KERNEL } from '@xsim/nic';
import type { Topology } from './topo/index.ts';
import { buildHost, type HostResources } from './host.ts';
import { placeDomains, type Placement } from './placement.ts';
import { DomainLifecycle, type CreateDomainOptions, type DomainEnd, type DomainInfo } from './lifecycle.ts';
import { VifHotplug, vifHandles, type VifAddOptions, type VifInfo } from './hotplug.ts';
import { PluginOps } from './plugins.ts';
import { DomainMover, type MigrateOptions, type MigrationReport, type SaveReport } from './migration.ts';
import { RemoteMover, type MigrationListener } from './migrate-remote.ts';
import type { TraceOptions, TraceSummary } from './trace.ts';
import type { CaptureOptions, CaptureSummary } from './capture.ts';
import { Observers } from './observers.ts';
import { ToolstackContext, type DomainRef, type RunningDomain, type SimulationOptions } from './context.ts';
import type { DomainOps, OpName, OpReply, OpRequestParams } from '@xsim/hypervisor';
import type { Dom0Stats, FabricStats, GuestStats, StatsTree } from './stats.ts';

/** A domain's entry in shutdown()'s answer: its last counters, or why there are none (undefined: it did not answer). */
export type FinalStatsEntry = Dom0Stats | GuestStats | { crashed: string } | { hung: string; terminated: true } | undefined;

export type { DomainRef, RunningDomain, SimulationOptions };

/** The toolstack's facade (libxl's API): every operation is one call into the module that owns it. */
export class Simulation {
  readonly plugins: PluginOps;
  private readonly lifecycle: DomainLifecycle;
  private readonly hotplug: VifHotplug;
  private readonly mover: DomainMover;
  private readonly remote: RemoteMover;
  /** Where this partition takes migrations from the others (null: not a partition, or not listening). */
  migrations: MigrationListener | null = null;
  private readonly observers: Observers;

  private constructor(readonly ctx: ToolstackContext) {
    this.observers = new Observers(ctx);
    ctx.hooks = { joined: (d) => this.observers.joined(d), leaving: (d) => this.observers.leaving(d) };
    this.plugins = new PluginOps(ctx, ctx.opts.pluginVetMs);
    this.lifecycle = new DomainLifecycle(ctx);
    this.hotplug = new VifHotplug(ctx);
    this.mover = new DomainMover(ctx, this.lifecycle);
    this.remote = new RemoteMover(ctx, this.lifecycle, this.mover);
    ctx.runtime.onCrash = (uid, error) => {
      const d = ctx.domains.find((x) => x.uid === uid);
      if (!d) return;
      d.crashed = error;
      ctx.log(logError(`${d.host}/${d.name} (domain ${d.domid}) crashed: ${error}`));
      // A guest that crashes once everything is up is handled as a destroy: dom0 and the others carry on.
      if (ctx.started && !ctx.stopped && d.domid !== 0) {
        void this.lifecycle.crashed(d).catch((e: Error) => ctx.log(logError(`cleaning up after ${d.host}/${d.name} failed: ${e.message}`)));
      }
    };
  }

  static async start(topology: Topology, opts: SimulationOptions = {}): Promise<Simulation> {
    const log = opts.log ?? logPrinter(opts.logLevel ?? 'info', (s) => process.stderr.write(s));
    const runtime: Runtime = opts.deterministic
      ? new DetRuntime(opts.deterministic.seed, log)
      : new ThreadRuntime(opts.pcpus ?? availableParallelism(), { spinRounds: opts.spinRounds, log, logLevel: opts.logLevel });
    const placement = placeDomains(topology, runtime.pcpus);
    const ctx = new ToolstackContext(topology, runtime, placement, { ...opts, log });
    const sim = new Simulation(ctx);
    try {
      if (opts.trace) await sim.traceStart(opts.trace);
      for (const [i, h] of topology.hosts.entries()) ctx.hosts.push(buildHost(runtime.bus, h, i, () => ctx.nextUid(), placement.dom0[i], placement.guests[i]));
      await runtime.create({ kernel: FABRIC_KERNEL, name: 'nic-hw', host: '*', hostIndex: -1, domid: -1, uid: ADDR_FABRIC, config: ctx.fabricConfig() }, 'nic');
      await ctx.startAll();
      await ctx.waitConnected(opts.connectTimeoutMs ?? 30_000);
      ctx.started = true;
      const l = opts.partition?.listen;
      if (l) sim.migrations = await sim.remote.listen(l.address, l.port);
    } catch (e) {
      await sim.shutdown().catch(() => {});
      throw e;
    }
    return sim;
  }

  get topology(): Topology {
    return this.ctx.topology;
  }

  get runtime(): Runtime {
    return this.ctx.runtime;
  }

  get placement(): Placement {
    return this.ctx.placement;
  }

  get domains(): RunningDomain[] {
    return this.ctx.domains;
  }

  get hosts(): HostResources[] {
    return this.ctx.hosts;
  }

  get clock(): Clock {
    return this.ctx.clock;
  }

  /** Wait `ms` on the simulation's clock (virtual in a deterministic run). */
  sleep(ms: number): Promise<void> {
    return this.ctx.sleep(ms);
  }

  /** Poll `pred` on the simulation's clock until it holds, or fail naming `what`. */
  waitFor(what: string, pred: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
    return this.ctx.waitFor(what, pred, ms);
  }

  domain(ref: DomainRef): RunningDomain {
    return this.ctx.domain(ref);
  }

  host(name: string): HostResources {
    return this.ctx.host(name);
  }

  hostNames(host?: string): string[] {
    return this.ctx.hostNames(host);
  }

  /** A request to a domain: a misspelt op or a wrong argument is a compile error (DomainOps: @xsim/hypervisor's abi/dom0-ops.ts, guest-ops.ts). */
  request<K extends OpName<DomainOps>>(ref: DomainRef, op: K, ...rest: OpRequestParams<DomainOps, K>): Promise<OpReply<DomainOps, K>> {
    return this.ctx.request(ref, op, ...rest);
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
    const peer = this.ctx.opts.partition?.peers[toHost];
    // A host of another partition: over TCP to that partition's toolstack (as xl migrate over ssh).
    if (peer && !this.ctx.hosts.some((h) => h.spec.name === toHost)) return this.remote.migrate(ref, toHost, peer, opts);
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
  forgetMac(host: string, mac: number): Promise<void> {
    return this.ctx.forgetMac(host, mac);
  }

  /** Every domain that ended while the simulation ran (shut down, destroyed, crashed), oldest first. */
  get endedDomains(): readonly DomainEnd[] {
    return this.lifecycle.ended;
  }

  loadPlugin(name: string, opts: { host?: string; args?: Record<string, unknown> } = {}): Promise<unknown[]> {
    return this.plugins.load(name, opts);
  }

  unloadPlugin(nameOrPath: string, opts: { host?: string } = {}): Promise<unknown[]> {
    return this.plugins.unload(nameOrPath, opts);
  }

  /** Until every vif of each guest in `refs` has its fast path up (of `plugin`, if named), or an error naming those that have not (plugins.ts). */
  waitAccelerated(refs: readonly DomainRef[], o: { plugin?: string; timeoutMs?: number } = {}): Promise<void> {
    return this.plugins.waitAccelerated(refs, o);
  }

  async nicReset(host: string): Promise<unknown> {
    return this.request({ host, domain: 'dom0' }, 'nic_reset', {}, 30_000);
  }

  async setLink(host: string, up: boolean): Promise<unknown> {
    return this.request({ host, domain: 'dom0' }, 'link_set', { up });
  }

  /**
   * ip link set mtu: the NIC's MTU changes (dom0 negotiates it with the
   * plugins); once it has, the host's record says so too, so what checks the
   * NIC's MTU (a migration or restore onto the host, dev add's vif MTU, the
   * RAM a new vif needs) sees the MTU it carries now, not the topology's.
   */
  async setMtu(host: string, mtu: number): Promise<unknown> {
    const h = this.host(host);
    const r = await this.request({ host, domain: 'dom0' }, 'mtu_set', { mtu });
    h.spec.nic.mtu = mtu;
    return r;
  }

  /** The NIC hardware's counters: every NIC (and its VIs) and switch. */
  fabricStats(): Promise<FabricStats> {
    return this.ctx.fabricStats();
  }

  /** `host`'s dom0 counters (its stats op, typed: `request(ref, 'stats')` answers the generic KernelStats). */
  async dom0Stats(host: string): Promise<Dom0Stats> {
    return (await this.ctx.kernelStats(this.domain({ host, domain: 'dom0' }))) as Dom0Stats;
  }

  /** A domain's counters, dom0's or a guest's (what both have, such as `endpoint`, reads without telling them apart). */
  domainStats(ref: DomainRef, timeoutMs?: number): Promise<Dom0Stats | GuestStats> {
    return this.ctx.kernelStats(this.domain(ref), timeoutMs);
  }

  /** A guest's counters (its stats op, typed). */
  async guestStats(ref: DomainRef): Promise<GuestStats> {
    const d = this.domain(ref);
    if (d.domid === 0) throw new Error(`${ref.host}/${ref.domain} is a dom0: its counters are dom0Stats(${JSON.stringify(ref.host)})`);
    return (await this.ctx.kernelStats(d)) as GuestStats;
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
   * Every domain's counters and the NIC hardware's, keyed host/domain and
   * `fabric` (a domain that does not answer in time is reported hung): read
   * one with stats.ts's dom0Stats(tree, host), guestStats(tree, ref), fabricStats(tree).
   */
  stats(): Promise<StatsTree> {
    return this.ctx.stats();
  }

  /** Stop everything; every domain's last counters (its kernel's answer to shutdown, or why there is none) and the NIC hardware's. */
  async shutdown(): Promise<{ domains: Record<`${string}/${string}`, FinalStatsEntry>; fabric: FabricStats | undefined }> {
    if (this.ctx.stopped) return { domains: {}, fabric: undefined };
    // A capture or trace still running is finished first: its file is whole, not left half written.
    await this.observers.finish();
    this.ctx.stopped = true;
    await this.migrations?.close();
    this.migrations = null;
    const ms = this.ctx.answerMs;
    const finals: Record<`${string}/${string}`, FinalStatsEntry> = {};
    // Guests first (they may still have traffic in flight), then dom0s, then the hardware.
    const order = [...this.domains.filter((d) => d.domid !== 0), ...this.domains.filter((d) => d.domid === 0)];
    for (const d of order) {
      // A kernel answers shutdown with its final counters: dom0's are a Dom0Stats, a guest's a GuestStats.
      if (!d.crashed && !d.hung) d.final = (await this.ctx.ask(d, 'shutdown', {}, ms).catch(() => undefined)) as Dom0Stats | GuestStats | undefined;
      finals[`${d.host}/${d.name}`] = d.crashed ? { crashed: d.crashed } : d.hung ? { hung: d.hung, terminated: true } : d.final;
      if (!d.hung && !d.crashed) await this.runtime.remove(d.uid, d.pcpu, 'reap');
      d.ctl.close();
    }
    // A pCPU stuck in a domain that never yields is ended with it.
    for (const p of new Set(this.domains.filter((d) => d.hung).map((d) => d.pcpu))) this.runtime.terminate(p);
    const fabric = (await this.ctx.fabricCtl.request('shutdown', {}, ms).catch(() => undefined)) as FabricStats | undefined;
    this.ctx.fabricCtl.close();
    await this.runtime.shutdown(ms);
    for (const h of this.ctx.hosts) h.xenstore.close();
    return { domains: finals, fabric };
  }
}
