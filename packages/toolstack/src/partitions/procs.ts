/**
 * `xsim run topo.json --partitions local`: one OS process per partition on
 * this machine (child-boot.mjs, no shell), driven as one simulation. Boot
 * waits until every partition says it is up; a request goes to the
 * partition that holds the domain; stats are every partition's, merged
 * (merge.ts). A partition that dies once all are up is reported by name and
 * pid, every call waiting on it fails, and every other partition is told it
 * is gone, as a failed host: each sets down its tunnel ends whose far end
 * was there (a NIC wired to one counts what it sends in linkDownDrops, a
 * switch's frames die at the tunnel in vxlanTxDown), and the run goes on
 * without it (its stats are left out, and said to be). One that dies while
 * they boot fails the start. Shutdown ends every child (asked first, killed
 * by its pid if it does not go in time). Every wait is bounded.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { LogLevel } from '@xsim/hypervisor';
import type { DomainRef } from '../domain-ref.ts';
import type { StatsTree } from '../stats.ts';
import { cutWires, partitionNames, partitionOf } from '../topo/partition-split.ts';
import type { Topology } from '../topo/types.ts';
import { mergeStats } from './merge.ts';
import type { CallOf, CallOp, CallOps, ChildMsg, ParentMsg, WireDown } from './protocol.ts';

const BOOT = new URL('./child-boot.mjs', import.meta.url);

export interface LocalPartitionsOptions {
  basePort: number;
  /** pCPU workers per partition (default: each its machine's cores). */
  pcpus?: number;
  logLevel?: LogLevel;
  /** How long every partition may take to boot (default 120 s). */
  bootMs?: number;
  /** A line a partition wrote to its stderr (its log). */
  onLine?: (partition: string, line: string) => void;
  /** A partition's process was started (before it boots). */
  onSpawn?: (partition: string, pid: number) => void;
  /** A partition died after all were up: why, and the wire ends each survivor set down (or why it could not). */
  onDeath?: (d: PartitionDeath) => void;
}

/** A partition that died once the run was up, and what the others did about it. */
export interface PartitionDeath {
  name: string;
  pid: number;
  /** "was killed by SIGKILL", "exited with code 1". */
  how: string;
  /** "partition p1 (pid 123) was killed by SIGKILL". */
  message: string;
  /** By surviving partition: the tunnel ends it set down, or why it could not. */
  wiresDown: Record<string, WireDown[] | { error: string }>;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class PartitionProc {
  readonly pending = new Map<number, Pending>();
  /** Set once the child said it is up. */
  up: { ms: number; domains: number; threads: string } | undefined;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((r) => child.once('exit', () => r()));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Why it ended, in words. */
  how(): string {
    const e = this.exit;
    if (!e) return 'is running';
    return e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
  }
}

/** Resolve `p`, or reject with `what` after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class LocalPartitions {
  readonly procs: PartitionProc[] = [];
  private nextId = 1;
  private stopping = false;
  private booting = true;
  private fail: (e: Error) => void = () => {};
  /** Rejects, naming the partition, when one dies while they boot. */
  private readonly bootDied: Promise<never>;
  /** The partitions that died after all were up, in the order they did, with what the survivors did about it. */
  readonly deaths: PartitionDeath[] = [];
  /** Each death's handling (the survivors told), so a caller can wait until it is done. */
  private readonly handled: Promise<void>[] = [];
  private readonly deathWaiters = new Set<(d: PartitionDeath) => void>();

  private constructor(readonly topology: Topology) {
    this.bootDied = new Promise<never>((_, reject) => (this.fail = reject));
    this.bootDied.catch(() => {});
  }

  /** The partitions still running. */
  get alive(): PartitionProc[] {
    return this.procs.filter((p) => !p.exit);
  }

  /** Every death so far handled: each survivor told (bounded by the calls' own deadlines). */
  async settled(): Promise<void> {
    await Promise.all(this.handled);
  }

  /** Rejects, naming it, once the partition holding `ref`'s host dies (its death handled first); never resolves. */
  holderDied(ref: DomainRef, what: string): Promise<never> {
    const p = this.holder(ref);
    const named = (d: PartitionDeath) => new Error(`${d.message}: it held ${ref.host}/${ref.domain}, ${what}`);
    return new Promise<never>((_, reject) => {
      const done = this.deaths.find((d) => d.name === p.name);
      if (done) return void this.settled().then(() => reject(named(done)));
      const w = (d: PartitionDeath) => {
        if (d.name !== p.name) return;
        this.deathWaiters.delete(w);
        reject(named(d));
      };
      this.deathWaiters.add(w);
    });
  }

  /** Start every partition's process and wait until each is up; on any failure, end them all and throw naming it. */
  static async start(full: Topology, o: LocalPartitionsOptions): Promise<LocalPartitions> {
    const run = new LocalPartitions(full);
    for (const name of partitionNames(full)) run.spawn(name, o);
    try {
      await within(Promise.race([Promise.all(run.procs.map((p) => run.booted(p))), run.bootDied]), o.bootMs ?? 120_000, 'not every partition booted');
    } catch (e) {
      await run.shutdown();
      throw e;
    }
    run.booting = false;
    return run;
  }

  private spawn(name: string, o: LocalPartitionsOptions): void {
    const child = fork(BOOT, [name], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'advanced', execArgv: [] });
    const p = new PartitionProc(name, child);
    this.procs.push(p);
    o.onSpawn?.(name, p.pid);
    let buf = '';
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) o.onLine?.(name, l);
    });
    child.on('message', (m: ChildMsg) => this.onMessage(p, m));
    // A send on a channel already closed (the child dying) is an error event: its call fails (call()), nothing more.
    child.on('error', () => {});
    child.once('exit', (code, signal) => {
      p.exit = { code, signal };
      const why = new Error(`partition ${name} (pid ${p.pid}) ${p.how()}${p.up ? '' : ' before it was up'}`);
      for (const c of p.pending.values()) c.reject(why);
      p.pending.clear();
      if (this.stopping) return;
      if (this.booting) return this.fail(why);
      const h = this.gone(p, why.message, o);
      this.handled.push(h);
    });
    const start: ParentMsg = { type: 'start', topology: this.topology, partition: name, basePort: o.basePort, logLevel: o.logLevel ?? 'warn' };
    if (o.pcpus !== undefined) start.pcpus = o.pcpus;
    child.send(start);
  }

  private booted(p: PartitionProc): Promise<void> {
    return new Promise((resolve, reject) => {
      if (p.up) return resolve();
      p.child.on('message', (m: ChildMsg) => {
        if (m.type === 'up') resolve();
        if (m.type === 'failed') reject(new Error(`partition ${p.name} (pid ${p.pid}) failed to boot: ${m.error}`));
      });
    });
  }

  private onMessage(p: PartitionProc, m: ChildMsg): void {
    if (m.type === 'up') p.up = { ms: m.ms, domains: m.domains, threads: m.threads };
    if (m.type !== 'reply') return;
    const c = p.pending.get(m.id);
    if (!c) return;
    p.pending.delete(m.id);
    clearTimeout(c.timer);
    if (m.ok) c.resolve(m.value);
    else c.reject(new Error(`partition ${p.name}: ${m.error}`));
  }

  /**
   * Partition `p` died once the run was up: every survivor sets down its
   * tunnel ends whose cut wire's far end was in `p` (by the wire's VNI, the
   * same on both sides), as a failed host's cables go dark. Never rejects.
   */
  private async gone(p: PartitionProc, message: string, o: LocalPartitionsOptions): Promise<void> {
    const d: PartitionDeath = { name: p.name, pid: p.pid, how: p.how(), message, wiresDown: {} };
    const cut = cutWires(this.topology);
    await Promise.all(
      this.alive.map(async (s) => {
        const vnis = cut
          .filter((c) => (c.a.partition === p.name && c.b.partition === s.name) || (c.b.partition === p.name && c.a.partition === s.name))
          .map((c) => c.vni);
        d.wiresDown[s.name] = await this.call(s, { op: 'partitionGone', partition: p.name, vnis }, 30_000).catch((e: unknown) => ({
          error: e instanceof Error ? e.message : String(e),
        }));
      }),
    );
    this.deaths.push(d);
    o.onDeath?.(d);
    for (const w of [...this.deathWaiters]) w(d);
  }

  /** One call to a partition, answered within `ms` or rejected naming it. */
  call<K extends CallOp>(p: PartitionProc, c: CallOf<K>, ms: number): Promise<CallOps[K]['reply']> {
    if (p.exit) return Promise.reject(new Error(`partition ${p.name} (pid ${p.pid}) ${p.how()}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        p.pending.delete(id);
        reject(new Error(`partition ${p.name} (pid ${p.pid}): no answer to ${c.op} within ${ms} ms`));
      }, ms);
      p.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      // A channel that closed under us (the child is dying): the call fails, the coordinator goes on.
      p.child.send({ type: 'call', id, ...c } as ParentMsg, (e) => {
        if (!e || !p.pending.delete(id)) return;
        clearTimeout(timer);
        reject(new Error(`partition ${p.name} (pid ${p.pid}): ${c.op} not sent: ${e.message}`));
      });
    });
  }

  /** The process of the partition that holds `ref`'s host. */
  holder(ref: DomainRef): PartitionProc {
    const name = partitionOf(this.topology, ref.host);
    return this.procs.find((p) => p.name === name)!;
  }

  /** A request to a domain, in whichever partition holds it. */
  request(ref: DomainRef, name: string, args: Record<string, unknown>, timeoutMs = 120_000): Promise<unknown> {
    return this.call(this.holder(ref), { op: 'request', ref, name, args, timeoutMs }, timeoutMs + 10_000);
  }

  domainStats(ref: DomainRef, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    return this.call(this.holder(ref), { op: 'domainStats', ref, timeoutMs }, timeoutMs + 10_000);
  }

  /** Each running partition's counters, by partition (a dead one's are not there). */
  async statsBy(): Promise<Record<string, StatsTree>> {
    const live = this.alive;
    // One that dies while it is asked is left out with the dead; any other failure is the caller's.
    const trees = await Promise.all(live.map((p) => this.call(p, { op: 'stats' }, 60_000).catch((e: unknown) => (p.exit ? undefined : Promise.reject(e)))));
    return Object.fromEntries(live.flatMap((p, i) => (trees[i] ? [[p.name, trees[i]] as const] : [])));
  }

  /** Every running partition's counters in one tree (merge.ts). */
  async stats(): Promise<StatsTree> {
    return mergeStats(Object.values(await this.statsBy()));
  }

  /** End every partition: asked to shut down (30 s), then killed by its pid if still there; resolves once all have exited. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.procs.map(async (p) => {
        if (p.exit) return;
        // Up: shut down in order (its last counters); still booting: SIGTERM, which ends its simulation too.
        if (p.up) await this.call(p, { op: 'shutdown' }, 30_000).catch(() => {});
        else p.child.kill('SIGTERM');
        await within(p.exited, 10_000, 'exit').catch(() => {
          if (!p.exit) p.child.kill('SIGKILL');
        });
        await within(p.exited, 10_000, `partition ${p.name} (pid ${p.pid}) to exit after SIGKILL`);
      }),
    );
  }
}
