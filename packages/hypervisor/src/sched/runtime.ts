/**
 * Where domains run: the toolstack's view of the machine. Two runtimes give
 * the same interface: pCPU worker threads (the real thing: real parallelism,
 * real shared memory between threads), and the deterministic scheduler
 * (every domain and the NIC on this thread, a seeded order, a virtual clock).
 */
import { cpus } from 'node:os';
import { logError, type LogLevel } from '../log.ts';
import { traceOp, type TraceBatch } from '../trace/tracer.ts';
import { MessageChannel } from 'node:worker_threads';
import { ADDR_FABRIC, ADDR_TOOLSTACK, Bus, CH, PortLink, pcpuAddr, type Addr } from '../bus/bus.ts';
import { PcpuPool } from '../domain/pool.ts';
import { RpcEndpoint, realTimer, type SetTimer } from '../rpc.ts';
import { RpcOpServer } from '../rpc-server.ts';
import { SCHED_EVENTS, type SchedEvents, type SchedOps, type TraceOp, type TraceOps } from '../abi/sched-ops.ts';
import type { OpArgs } from '../abi/ops.ts';
import { WakeWord } from '../wake.ts';
import { realClock, type Clock } from './clock.ts';
import type { DomainCore } from './core.ts';
import { DetScheduler } from './det.ts';
import { WATCH_BYTES, wallMsSince } from './pcpu.ts';
import { buildDeviceEnv, buildEnv, type BuiltEnv, type DomainSpec, type KernelModule } from './env.ts';
import { packShared } from './shared-config.ts';
import type { PcpuTask } from './worker.ts';

export interface Runtime {
  readonly kind: 'threads' | 'deterministic';
  readonly bus: Bus;
  readonly clock: Clock;
  readonly setTimer: SetTimer;
  readonly pcpus: number;
  /** The NIC hardware's wake line (its thread's doorbell). */
  readonly nicWake: SharedArrayBuffer;
  sleep(ms: number): Promise<void>;
  /** The toolstack's real asynchrony (a worker, a file): a deterministic run stands still until it settles. */
  hold<T>(p: Promise<T>): Promise<T>;
  /** A pCPU's doorbell: what a binding's peer rings to wake a domain placed there. */
  doorbell(pcpu: number): SharedArrayBuffer;
  /** Boot a domain on a pCPU, or the NIC hardware ('nic'). */
  create(spec: DomainSpec, where: number | 'nic'): Promise<void>;
  /** Stop a domain without its cooperation (destroy) or after it stopped itself (reap). */
  remove(uid: Addr, where: number | 'nic', how: 'destroy' | 'reap'): Promise<void>;
  onCrash: (uid: Addr, error: string) => void;
  /**
   * A pCPU's watchdog words (threads only): the domain whose turn it is in (0
   * between turns), how many turns it has begun, and how long ago the
   * current one began (ms). A turn that lasts seconds is a domain that never
   * yields.
   */
  pcpuTurn(pcpu: number): { uid: Addr; turns: number; forMs: number } | null;
  /** Every pCPU's counters. */
  pcpuStats(timeoutMs: number): Promise<unknown[]>;
  /**
   * A trace op (trace_start, trace_drain, trace_stop: see trace/tracer.ts) on
   * every thread: each pCPU worker (the NIC's included) and this one. Answers
   * in that order; a thread that does not answer gives null.
   */
  trace<K extends TraceOp>(op: K, args: OpArgs<TraceOps, K>, timeoutMs: number): Promise<(TraceBatch | null)[]>;
  /** End a pCPU that will not answer (its domains end with it). */
  terminate(pcpu: number): void;
  shutdown(timeoutMs: number): Promise<void>;
  /**
   * Threads of their own that a device kernel starts, by what each serves
   * (the NIC fabric's VXLAN I/O thread: the tunnel wires' UDP sockets): the
   * toolstack notes them here when it configures the device, for threads().
   */
  readonly ioThreads: string[];
  threads(): { pcpus: number; nic: number; io: number; main: number; model: string };
}

/** pCPU worker threads, plus one for the NIC hardware; the main thread is the hub of the bus. */
export class ThreadRuntime implements Runtime {
  readonly kind = 'threads' as const;
  readonly bus = new Bus();
  readonly clock = realClock;
  readonly setTimer = realTimer;
  readonly nicWake: SharedArrayBuffer;
  private readonly pool: PcpuPool;
  private readonly doorbells: SharedArrayBuffer[] = [];
  private readonly watches: Int32Array[] = [];
  private readonly mgmt: RpcEndpoint<SchedOps>[] = [];
  private readonly links: PortLink[] = [];
  private readonly done: Promise<unknown>[] = [];
  private readonly aborts: AbortController[] = [];
  readonly ioThreads: string[] = [];
  onCrash: (uid: Addr, error: string) => void = () => {};

  constructor(
    readonly pcpus: number,
    o: { spinRounds?: number; maxSleepMs?: number; log: (l: string) => void; logLevel?: LogLevel },
  ) {
    const n = pcpus + 1; // the NIC hardware's thread is the last
    for (let i = 0; i < n; i++) {
      this.doorbells.push(new SharedArrayBuffer(8));
      this.watches.push(new Int32Array(new SharedArrayBuffer(WATCH_BYTES)));
    }
    this.nicWake = this.doorbells[pcpus];
    this.pool = new PcpuPool(n);
    // Direct links between each pCPU and the NIC's thread (MCDI both ways), the rest through the hub.
    const nicSide: PcpuTask['links'] = [];
    const pcpuLinks: PcpuTask['links'][] = Array.from({ length: n }, () => []);
    for (let i = 0; i < pcpus; i++) {
      const ch = new MessageChannel();
      pcpuLinks[i].push({ addrs: [ADDR_FABRIC], port: ch.port1, doorbell: this.nicWake });
      nicSide.push({ addrs: [], port: ch.port2, doorbell: this.doorbells[i] });
    }
    pcpuLinks[pcpus] = nicSide;
    for (let i = 0; i < n; i++) {
      const hub = new MessageChannel();
      const link = new PortLink(hub.port1, new WakeWord(this.doorbells[i], 0), true);
      this.links.push(link);
      this.bus.listen(hub.port1);
      this.bus.route(pcpuAddr(i), link);
      const ep = new RpcEndpoint<SchedOps>(this.bus, ADDR_TOOLSTACK, pcpuAddr(i), CH.sched).listen();
      ep.onEvent(new RpcOpServer<SchedEvents>(`pcpu${i} events`, SCHED_EVENTS, { crashed: (a) => this.onCrash(a.uid, a.error) }, { log: o.log }).handleEvent);
      this.mgmt.push(ep);
      const abort = new AbortController();
      this.aborts.push(abort);
      const task: PcpuTask = {
        id: i,
        doorbell: this.doorbells[i],
        watch: this.watches[i].buffer as SharedArrayBuffer,
        hub: hub.port2,
        links: pcpuLinks[i],
        spinRounds: o.spinRounds,
        maxSleepMs: o.maxSleepMs,
        logLevel: o.logLevel,
      };
      const p = this.pool.start(task, abort.signal).catch((e: Error) => {
        if (!abort.signal.aborted) o.log(logError(`pCPU ${i} died: ${e.message}`));
      });
      this.done.push(p);
    }
    this.bus.route(ADDR_FABRIC, this.links[pcpus]);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  hold<T>(p: Promise<T>): Promise<T> {
    return p;
  }

  doorbell(pcpu: number): SharedArrayBuffer {
    return this.doorbells[pcpu];
  }

  async create(spec: DomainSpec, where: number | 'nic'): Promise<void> {
    const i = where === 'nic' ? this.pcpus : where;
    // Envelopes for the domain reach its pCPU from the hub (and from others through it).
    if (spec.uid !== ADDR_FABRIC) this.bus.route(spec.uid, this.links[i]);
    // A dom0 talks MCDI with the NIC: the NIC answers it over their direct link.
    if (spec.domid === 0 && where !== 'nic') await this.mgmt[this.pcpus].request('route', { addr: spec.uid, via: i }, 10_000);
    const { value, shared } = packShared(spec);
    await this.mgmt[i].request('create', { spec: value }, 60_000, shared);
  }

  async remove(uid: Addr, where: number | 'nic', how: 'destroy' | 'reap'): Promise<void> {
    const i = where === 'nic' ? this.pcpus : where;
    await this.mgmt[i].request(how, { uid }, 10_000).catch(() => {});
    this.bus.route(uid, null);
  }

  pcpuTurn(pcpu: number): { uid: Addr; turns: number; forMs: number } | null {
    const w = this.watches[pcpu];
    if (!w) return null;
    const uid = Atomics.load(w, 0);
    return { uid, turns: Atomics.load(w, 1), forMs: uid === 0 ? 0 : wallMsSince(Atomics.load(w, 2)) };
  }

  async pcpuStats(timeoutMs: number): Promise<unknown[]> {
    return Promise.all(this.mgmt.map((m, i) => m.request('stats', {}, timeoutMs).catch((e: Error) => ({ pcpu: i, error: e.message }))));
  }

  async trace<K extends TraceOp>(op: K, args: OpArgs<TraceOps, K>, timeoutMs: number): Promise<(TraceBatch | null)[]> {
    const workers = await Promise.all(this.mgmt.map((m) => m.request(op, args, timeoutMs).catch(() => null)));
    const here = traceOp(op, args, this.clock);
    return [...workers, here].map((b) => (b && typeof b === 'object' && 'events' in b ? (b as TraceBatch) : null));
  }

  terminate(pcpu: number): void {
    this.aborts[pcpu].abort(new Error('terminated: a domain on it never yields'));
  }

  async shutdown(timeoutMs: number): Promise<void> {
    await Promise.all(
      this.mgmt.map(async (m, i) => {
        try {
          await m.request('shutdown', {}, timeoutMs);
        } catch {
          this.terminate(i);
        }
      }),
    );
    await Promise.all(this.done);
    for (const m of this.mgmt) m.close();
    this.bus.close();
    await this.pool.destroy();
  }

  threads() {
    const io = this.ioThreads.map((t) => ` + 1 ${t}`).join('');
    return {
      pcpus: this.pcpus,
      nic: 1,
      io: this.ioThreads.length,
      main: 1,
      model: `${this.pcpus} pCPU worker thread${this.pcpus === 1 ? '' : 's'} + 1 NIC thread${io} + the main thread (toolstack, xenstored, hypervisor services) on ${cpus().length} cores`,
    };
  }
}

/** Every domain and the NIC on this thread, run by the deterministic scheduler. */
export class DetRuntime implements Runtime {
  readonly kind = 'deterministic' as const;
  readonly bus = new Bus();
  readonly det: DetScheduler;
  readonly clock: Clock;
  readonly setTimer: SetTimer;
  readonly nicWake = new SharedArrayBuffer(8);
  private readonly bell = new SharedArrayBuffer(8);
  private readonly hosted = new Map<Addr, { core: DomainCore; dispose(): void }>();
  /** None: a device that needs a thread of its own cannot run here (the toolstack refuses it). */
  readonly ioThreads: string[] = [];
  onCrash: (uid: Addr, error: string) => void = () => {};

  constructor(
    readonly seed: number,
    private readonly log: (l: string) => void,
    ioEvery?: number,
  ) {
    this.det = new DetScheduler(this.bus, { seed, ioEvery });
    this.clock = this.det.clock;
    this.setTimer = this.det.setTimer;
  }

  get pcpus(): number {
    return 1;
  }

  sleep(ms: number): Promise<void> {
    return this.det.sleep(ms);
  }

  hold<T>(p: Promise<T>): Promise<T> {
    return this.det.hold(p);
  }

  doorbell(): SharedArrayBuffer {
    return this.bell;
  }

  async create(spec: DomainSpec): Promise<void> {
    // The import is real asynchrony (a file, a transpile): the simulation stands still meanwhile.
    const mod = (await this.det.hold(import(spec.kernel))) as KernelModule;
    if (typeof mod.boot !== 'function') throw new Error(`kernel ${spec.kernel} exports no boot() function`);
    const o = { clock: this.clock, wait: null, setTimer: this.setTimer, log: this.log };
    const built: BuiltEnv<unknown> | { env: { core: DomainCore }; dispose(): void } =
      mod.kind === 'device' ? buildDeviceEnv(this.bus, spec, o) : buildEnv(this.bus, spec, o);
    const core = built.env.core;
    core.onCrash = (e) => {
      this.drop(spec.uid);
      this.log(logError(`[${spec.host}/${spec.name}] crashed: ${e.stack ?? e.message}`));
      this.onCrash(spec.uid, e.message);
    };
    this.hosted.set(spec.uid, { core, dispose: built.dispose });
    try {
      await mod.boot(built.env as never);
    } catch (e) {
      this.drop(spec.uid);
      throw new Error(`${spec.host}/${spec.name} failed to boot: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.det.add(core);
  }

  private drop(uid: Addr): void {
    const h = this.hosted.get(uid);
    if (!h) return;
    this.hosted.delete(uid);
    this.det.remove(h.core);
    h.dispose();
  }

  async remove(uid: Addr, _where: number | 'nic', how: 'destroy' | 'reap'): Promise<void> {
    const h = this.hosted.get(uid);
    if (how === 'destroy') h?.core.stop();
    this.drop(uid);
  }

  pcpuTurn(): null {
    return null;
  }

  async trace<K extends TraceOp>(op: K, args: OpArgs<TraceOps, K>): Promise<(TraceBatch | null)[]> {
    const b = traceOp(op, args, this.clock);
    return [b && 'events' in b ? b : null];
  }

  async pcpuStats(): Promise<unknown[]> {
    return [{ pcpu: 0, deterministic: true, seed: this.seed, rounds: this.det.rounds, virtualMs: this.clock.now(), domains: this.hosted.size }];
  }

  terminate(): void {}

  async shutdown(): Promise<void> {
    for (const uid of [...this.hosted.keys()]) this.drop(uid);
    this.det.stop();
  }

  threads() {
    return { pcpus: 1, nic: 0, io: 0, main: 1, model: `deterministic: every domain and the NIC on the main thread, seed ${this.seed}, virtual clock` };
  }
}
