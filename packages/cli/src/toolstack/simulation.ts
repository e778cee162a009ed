/**
 * The toolstack: bring a topology up (memory, xenstore, NIC, domains as
 * workers), wait until every vif is connected, drive the traffic apps in the
 * domains and collect their counters, then shut everything down.
 *
 * Thread budget: one worker per domain plus one "fabric" worker that models
 * every NIC and wire of the topology, all from one piscina pool sized exactly.
 * Idle workers sleep in Atomics.wait, so only the domains on the active path
 * compete for the machine's cores.
 */
import { MessageChannel, type MessagePort as Port } from 'node:worker_threads';
import { existsSync, statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { pluginModules } from '@xsim/accel-plugins';
import { vetPlugin } from '../plugins/vet.ts';
import { DomainPool, RpcEndpoint, WakeWord, type DomainTask } from '@xsim/hypervisor';
import { DOM0_KERNEL, type Dom0Config } from '@xsim/netback';
import { GUEST_KERNEL, type GuestConfig } from '@xsim/netfront';
import { FABRIC_KERNEL, createFabricWake, type FabricConfig } from '@xsim/nic';
import { parseMac, type Topology } from '../topo/index.ts';
import { buildHost, type DomainMemory, type HostResources } from './host.ts';

export interface SimulationOptions {
  /** Empty polling rounds before a worker sleeps. */
  spinRounds?: number;
  /** How long to wait for every vif to connect. */
  connectTimeoutMs?: number;
  log?: (line: string) => void;
  /**
   * A guest kernel other than the stock one for some domains ("host/domU" →
   * module URL exporting boot(task)): a user's own kernel, or a test's
   * misbehaving guest.
   */
  kernels?: Record<string, string>;
  /** How long a plugin's modules may take to load in the vetting worker (default 10 s). */
  pluginVetMs?: number;
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
  ip: string;
  ctl: RpcEndpoint;
  done: Promise<unknown>;
  /** Set if the domain's worker crashed. */
  crashed?: Error;
  /** Set if the domain stopped answering (its code never yields): what it did not answer. */
  hung?: string;
  /** Terminates the domain's worker. */
  abort: AbortController;
  final?: unknown;
}

export class Simulation {
  readonly domains: RunningDomain[] = [];
  private fabricCtl!: RpcEndpoint;
  private fabricDone!: Promise<unknown>;
  private fabricFinal: unknown;
  private stopped = false;

  private constructor(
    readonly topology: Topology,
    readonly hosts: HostResources[],
    private readonly pool: DomainPool,
    private readonly opts: SimulationOptions,
  ) {}

  static async start(topology: Topology, opts: SimulationOptions = {}): Promise<Simulation> {
    const hosts = topology.hosts.map((h, i) => buildHost(h, i));
    const threads = 1 + hosts.reduce((n, h) => n + 1 + h.domUs.length, 0);
    const sim = new Simulation(topology, hosts, new DomainPool(threads), opts);
    try {
      sim.startFabric();
      for (const h of hosts) sim.startDom0(h);
      for (const h of hosts) h.domUs.forEach((d, i) => sim.startGuest(h, d, i));
      await sim.waitConnected(opts.connectTimeoutMs ?? 20_000);
    } catch (e) {
      await sim.shutdown().catch(() => {});
      throw e;
    }
    return sim;
  }

  private fabricWake = createFabricWake();
  private mcdiPorts = new Map<number, MessageChannel>();

  private startFabric(): void {
    const wires = this.topology.wires.map((w) => {
      const a = this.hosts.findIndex((h) => h.spec.name === w.a);
      const b = this.hosts.findIndex((h) => h.spec.name === w.b);
      return [a, b] as [number, number];
    });
    const fabricMcdi: MessagePort[] = [];
    for (const h of this.hosts) {
      const ch = new MessageChannel();
      this.mcdiPorts.set(h.index, ch);
      fabricMcdi.push(ch.port2 as unknown as MessagePort);
    }
    const config: FabricConfig = {
      nics: this.hosts.map((h) => ({
        ...h.nic.spec,
        viSabs: h.nic.viSabs,
        evtchnSab: h.evtchn,
        domainRam: Object.fromEntries([h.dom0, ...h.domUs].map((d) => [d.domid, d.mem.sab])),
        dom0Wake: { sab: h.evtchn, offset: h.dom0.wakeOffset },
      })),
      wires,
    };
    const { port1, port2 } = new MessageChannel();
    const task: DomainTask<FabricConfig> = {
      kernel: FABRIC_KERNEL,
      name: 'fabric',
      host: '*',
      domid: -1,
      control: port2,
      ports: fabricMcdi as unknown as import('node:worker_threads').MessagePort[],
      wake: { sab: this.fabricWake, offset: 0 },
      config,
    };
    this.fabricCtl = new RpcEndpoint(port1, new WakeWord(this.fabricWake, 0), null).listen();
    this.fabricDone = this.pool.start(task).then(
      (v) => (this.fabricFinal = v),
      (e: Error) => {
        this.opts.log?.(`NIC fabric crashed: ${e.message}`);
        throw e;
      },
    );
    this.fabricDone.catch(() => {});
  }

  private launch(h: HostResources, d: DomainMemory, kernel: string, ip: string, config: unknown, ports?: import('node:worker_threads').MessagePort[]): void {
    const { port1, port2 } = new MessageChannel();
    const task: DomainTask = {
      kernel,
      name: d.name,
      host: h.spec.name,
      domid: d.domid,
      control: port2,
      xenstore: h.xenstore.connect(d.domid, d.wake),
      ports,
      wake: { sab: h.evtchn, offset: d.wakeOffset },
      config,
    };
    const rd: RunningDomain = { host: h.spec.name, name: d.name, domid: d.domid, ip, ctl: new RpcEndpoint(port1, d.wake, null).listen(), done: Promise.resolve(), abort: new AbortController() };
    rd.done = this.pool.start(task, rd.abort.signal).then(
      (v) => {
        rd.final = v;
        return v;
      },
      (e: Error) => {
        // A worker we terminated because it hung did not crash.
        if (rd.abort.signal.aborted) return undefined;
        rd.crashed = e;
        this.opts.log?.(`${h.spec.name}/${d.name} (domain ${d.domid}) crashed: ${e.message}`);
        return undefined;
      },
    );
    this.domains.push(rd);
  }

  private startDom0(h: HostResources): void {
    const mtu = h.spec.nic.mtu ?? 1500;
    const config: Dom0Config = {
      mem: h.dom0.mem.sab,
      gnttab: h.dom0.gnttab.sab,
      evtchn: h.evtchn,
      guests: h.domUs.map((d) => ({ domid: d.domid, mem: d.mem.sab, gnttab: d.gnttab.sab })),
      mac: h.spec.nic.mac,
      ip: h.spec.dom0.ip,
      mtu,
      nic: { viSabs: h.nic.viSabs, fabricWake: { sab: this.fabricWake, offset: 0 }, mac: parseMac(h.spec.nic.mac), vendor: h.spec.nic.vendor, device: h.spec.nic.device },
      accelChannels: [],
      spinRounds: this.opts.spinRounds,
    };
    const ports: Port[] = [this.mcdiPorts.get(h.index)!.port1 as unknown as Port];
    // One accelerator-plugin channel per guest vif: dom0 keeps one end, the guest gets the other.
    h.spec.domUs.forEach((spec, i) => {
      spec.vifs.forEach((_v, n) => {
        const ch = new MessageChannel();
        config.accelChannels!.push({ domid: h.domUs[i].domid, handle: n });
        ports.push(ch.port1 as unknown as Port);
        this.accelGuestPorts.set(`${h.index}/${h.domUs[i].domid}/${n}`, ch.port2 as unknown as Port);
      });
    });
    this.launch(h, h.dom0, DOM0_KERNEL, h.spec.dom0.ip, config, ports);
  }

  private readonly accelGuestPorts = new Map<string, Port>();

  private startGuest(h: HostResources, d: DomainMemory, i: number): void {
    const spec = h.spec.domUs[i];
    const config: GuestConfig = {
      mem: d.mem.sab,
      gnttab: d.gnttab.sab,
      evtchn: h.evtchn,
      mtu: h.spec.nic.mtu ?? 1500,
      vifs: spec.vifs.map((v, n) => ({ handle: n, mac: v.mac, ip: v.ip })),
      spinRounds: this.opts.spinRounds,
    };
    const ports = spec.vifs.map((_v, n) => this.accelGuestPorts.get(`${h.index}/${d.domid}/${n}`)!);
    this.launch(h, d, this.opts.kernels?.[`${h.spec.name}/${spec.name}`] ?? GUEST_KERNEL, spec.vifs[0].ip, config, ports);
  }

  /** Resolve when every vif's frontend and backend read Connected in xenstore. */
  private async waitConnected(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pending: string[] = [];
      for (const h of this.hosts) {
        h.spec.domUs.forEach((spec, i) => {
          const d = h.domUs[i].domid;
          spec.vifs.forEach((_v, n) => {
            const fe = h.xenstore.read(0, `/local/domain/${d}/device/vif/${n}/state`);
            const be = h.xenstore.read(0, `/local/domain/0/backend/vif/${d}/${n}/state`);
            if (fe !== '4' || be !== '4') pending.push(`${h.spec.name}/${spec.name} vif${n} (frontend ${fe}, backend ${be})`);
          });
        });
      }
      if (pending.length === 0) return;
      const crashed = this.domains.find((d) => d.crashed);
      if (crashed) throw new Error(`${crashed.host}/${crashed.name} crashed during bring-up: ${crashed.crashed!.message}`);
      if (Date.now() > deadline) throw new Error(`vifs did not connect within ${timeoutMs} ms: ${pending.join('; ')}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  domain(ref: DomainRef): RunningDomain {
    const d = this.domains.find((x) => x.host === ref.host && (ref.domain === 'dom0' ? x.domid === 0 : x.name === ref.domain && x.domid !== 0));
    if (d) return d;
    const hosts = [...new Set(this.domains.map((x) => x.host))];
    if (!hosts.includes(ref.host)) throw new Error(`no host "${ref.host}" (hosts: ${hosts.join(', ')})`);
    const here = this.domains.filter((x) => x.host === ref.host).map((x) => (x.domid === 0 ? 'dom0' : x.name));
    throw new Error(`no domain "${ref.domain}" on ${ref.host} (domains: ${here.join(', ')})`);
  }

  async request(ref: DomainRef, op: string, args: unknown = {}, timeoutMs = 120_000): Promise<unknown> {
    return this.ask(this.domain(ref), op, args, timeoutMs);
  }

  /** A request to one domain with a deadline; a domain that misses it is marked hung. */
  private async ask(d: RunningDomain, op: string, args: unknown, timeoutMs: number): Promise<unknown> {
    if (d.crashed) throw new Error(`${d.host}/${d.name} has crashed: ${d.crashed.message}`);
    if (d.hung) throw new Error(`${d.host}/${d.name} is hung (${d.hung})`);
    try {
      return await d.ctl.request(op, args, timeoutMs);
    } catch (e) {
      if (e instanceof Error && /no reply within/.test(e.message) && !d.crashed) {
        d.hung = `no answer to "${op}" within ${timeoutMs} ms`;
        this.opts.log?.(`${d.host}/${d.name} (domain ${d.domid}) is hung: ${d.hung}`);
      }
      throw e;
    }
  }

  private hostNames(host?: string): string[] {
    const names = this.hosts.map((h) => h.spec.name);
    if (host === undefined) return names;
    if (!names.includes(host)) throw new Error(`no host ${host} (hosts: ${names.join(', ')})`);
    return [host];
  }

  /**
   * Load an accelerator plugin (a bundled name, or a path to a module) into
   * every host's dom0 (or one host's). It binds to a NIC only if its aliases match.
   */
  async loadPlugin(name: string, opts: { host?: string; args?: Record<string, unknown> } = {}): Promise<unknown[]> {
    const mod = pluginModules(name);
    const hosts = this.hostNames(opts.host);
    if (opts.args !== undefined && (opts.args === null || typeof opts.args !== 'object' || Array.isArray(opts.args))) throw new Error(`plugin ${mod.name}: arguments must be a JSON object, got ${JSON.stringify(opts.args)}`);
    // No domain imports a module that has not first loaded cleanly in a throwaway worker.
    await vetPlugin(mod, this.opts.pluginVetMs);
    const out: unknown[] = [];
    for (const host of hosts) {
      out.push(await this.request({ host, domain: 'dom0' }, 'plugin_load', { name: mod.name, backend: mod.backend, frontend: mod.frontend, args: opts.args ?? {} }, 30_000));
    }
    return out;
  }

  /** Unload a plugin: every vif using it detaches (drains, falls back to the slow path) first. */
  async unloadPlugin(nameOrPath: string, opts: { host?: string } = {}): Promise<unknown[]> {
    // A plugin loaded by path may be unloaded by that path (or by its name).
    const dir = resolvePath(nameOrPath);
    const name = existsSync(dir) && statSync(dir).isDirectory() ? pluginModules(nameOrPath).name : nameOrPath;
    const out: unknown[] = [];
    for (const host of this.hostNames(opts.host)) out.push(await this.request({ host, domain: 'dom0' }, 'plugin_unload', { name }, 30_000));
    return out;
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
    return this.fabricCtl.request('stats', {});
  }

  /** Every domain's counters and the NIC fabric's, keyed host/domain. */
  /**
   * Every domain's counters and the NIC fabric's, keyed host/domain, asked of
   * all at once: a domain that does not answer within answerMs is reported as
   * hung (`{ hung }`), not waited for.
   */
  async stats(): Promise<Record<string, unknown>> {
    const ms = this.opts.answerMs ?? 5000;
    const answers = await Promise.all(
      this.domains.map(async (d): Promise<[string, unknown]> => {
        const key = `${d.host}/${d.domid === 0 ? 'dom0' : d.name}`;
        if (d.crashed) return [key, { crashed: d.crashed.message }];
        if (d.hung) return [key, { hung: d.hung }];
        try {
          return [key, await this.ask(d, 'stats', {}, ms)];
        } catch (e) {
          return [key, d.hung ? { hung: d.hung } : { error: e instanceof Error ? e.message : String(e) }];
        }
      }),
    );
    const out: Record<string, unknown> = Object.fromEntries(answers);
    out.fabric = await this.fabricStats();
    return out;
  }

  async shutdown(): Promise<{ domains: Record<string, unknown>; fabric: unknown }> {
    if (this.stopped) return { domains: {}, fabric: this.fabricFinal };
    this.stopped = true;
    const finals: Record<string, unknown> = {};
    // Guests first (they may still have traffic in flight), then dom0s, then the hardware.
    const order = [...this.domains.filter((d) => d.domid !== 0), ...this.domains.filter((d) => d.domid === 0)];
    const ms = this.opts.answerMs ?? 5000;
    for (const d of order) {
      if (!d.crashed && !d.hung) await this.ask(d, 'shutdown', {}, ms).catch(() => {});
      // A domain that will not stop (its code never yields) is ended: its worker is terminated.
      if (d.hung) d.abort.abort(new Error(`terminated: ${d.hung}`));
      await d.done;
      finals[`${d.host}/${d.domid === 0 ? 'dom0' : d.name}`] = d.crashed ? { crashed: d.crashed.message } : d.hung ? { hung: d.hung, terminated: true } : d.final;
      d.ctl.close();
    }
    await this.fabricCtl.request('shutdown', {}, 10_000).catch(() => {});
    await this.fabricDone.catch(() => {});
    this.fabricCtl.close();
    await this.pool.destroy();
    for (const h of this.hosts) h.xenstore.close();
    return { domains: finals, fabric: this.fabricFinal };
  }
}
