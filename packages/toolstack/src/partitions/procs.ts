/**
 * `xsim run topo.json --partitions local`: one OS process per partition on
 * this machine (child-boot.mjs, no shell), driven as one simulation. Boot
 * waits until every partition says it is up; a request goes to the
 * partition that holds the domain; stats are every partition's, merged
 * (merge.ts). A partition that dies is reported by name and pid, every call
 * waiting on it fails, and `died` rejects so the caller can shut the others
 * down; shutdown ends every child (asked first, killed by its pid if it does
 * not go in time). Every wait is bounded.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { LogLevel } from '@xsim/hypervisor';
import type { DomainRef } from '../domain-ref.ts';
import type { StatsTree } from '../stats.ts';
import { partitionNames, partitionOf } from '../topo/partition-split.ts';
import type { Topology } from '../topo/types.ts';
import { mergeStats } from './merge.ts';
import type { Call, ChildMsg, ParentMsg } from './protocol.ts';

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
  private fail: (e: Error) => void = () => {};
  /** Rejects, naming the partition, when one dies before shutdown. */
  readonly died: Promise<never>;

  private constructor(readonly topology: Topology) {
    this.died = new Promise<never>((_, reject) => (this.fail = reject));
    this.died.catch(() => {});
  }

  /** Start every partition's process and wait until each is up; on any failure, end them all and throw naming it. */
  static async start(full: Topology, o: LocalPartitionsOptions): Promise<LocalPartitions> {
    const run = new LocalPartitions(full);
    for (const name of partitionNames(full)) run.spawn(name, o);
    try {
      await within(Promise.race([Promise.all(run.procs.map((p) => run.booted(p))), run.died]), o.bootMs ?? 120_000, 'not every partition booted');
    } catch (e) {
      await run.shutdown();
      throw e;
    }
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
    child.once('exit', (code, signal) => {
      p.exit = { code, signal };
      const why = new Error(`partition ${name} (pid ${p.pid}) ${p.how()}${p.up ? '' : ' before it was up'}`);
      for (const c of p.pending.values()) c.reject(why);
      p.pending.clear();
      if (!this.stopping) this.fail(why);
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

  /** One call to a partition, answered within `ms` or rejected naming it. */
  call(p: PartitionProc, c: Call, ms: number): Promise<unknown> {
    if (p.exit) return Promise.reject(new Error(`partition ${p.name} (pid ${p.pid}) ${p.how()}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        p.pending.delete(id);
        reject(new Error(`partition ${p.name} (pid ${p.pid}): no answer to ${c.op} within ${ms} ms`));
      }, ms);
      p.pending.set(id, { resolve, reject, timer });
      p.child.send({ type: 'call', id, ...c } satisfies ParentMsg);
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
    return this.call(this.holder(ref), { op: 'domainStats', ref, timeoutMs }, timeoutMs + 10_000) as Promise<Record<string, unknown>>;
  }

  /** Every partition's counters in one tree (merge.ts). */
  async stats(): Promise<StatsTree> {
    return mergeStats(await Promise.all(this.procs.map((p) => this.call(p, { op: 'stats' }, 60_000) as Promise<StatsTree>)));
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
