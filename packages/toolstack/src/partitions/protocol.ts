/**
 * What `xsim run --partitions local` (procs.ts) and each partition process
 * (child.ts) say to each other over the child's IPC channel (Node's
 * structured-clone serialisation): the parent starts the partition, the
 * child says when it is up (or why it failed), and then answers calls, one
 * op table (CALL_OPS below: each op's arguments and reply): a request to one
 * of its domains, its stats, one domain's stats, a management op of the
 * control socket (serve.ts forwards them), a wait for the fast path, another partition gone (its
 * wires go down here), shutdown.
 */
import type { LogLevel } from '@xsim/hypervisor';
import type { DomainRef } from '../domain-ref.ts';
import type { ManageProtocol } from '../manage-ops.ts';
import type { StatsTree } from '../stats.ts';
import type { Topology } from '../topo/types.ts';

export interface StartMsg {
  type: 'start';
  /** The whole (validated) topology: the child cuts its own partition out of it. */
  topology: Topology;
  partition: string;
  basePort: number;
  pcpus?: number;
  logLevel: LogLevel;
  connectTimeoutMs?: number;
}

/** A tunnel wire end a partition set down: the wire in its own topology, the cut wire's VNI, its topology path. */
export interface WireDown {
  wire: number;
  vni: number;
  path: string;
}

/** Every call a partition answers: op -> its arguments and its reply. */
export interface CallOps {
  /** What the toolstack's own scenario asks a domain (arp_resolve, ping, stream_recv, stream_send). */
  request: { args: { ref: DomainRef; name: string; args: Record<string, unknown>; timeoutMs: number }; reply: unknown };
  domainStats: { args: { ref: DomainRef; timeoutMs: number }; reply: Record<string, unknown> };
  stats: { args: Record<never, never>; reply: StatsTree };
  /** One op of the control socket's table (manage-ops.ts), checked and answered by the partition's own simulation. */
  manage: { args: { name: keyof ManageProtocol; args: Record<string, unknown> }; reply: unknown };
  /** Until each of `refs` that is this partition's has its vifs accelerated by `plugin` (Simulation.waitAccelerated). */
  waitAccelerated: { args: { refs: DomainRef[]; plugin: string; timeoutMs: number }; reply: unknown };
  /** Partition `partition` is gone: set down every tunnel end of this partition whose cut wire carries one of `vnis`. */
  partitionGone: { args: { partition: string; vnis: number[] }; reply: WireDown[] };
  shutdown: { args: Record<never, never>; reply: unknown };
}

export type CallOp = keyof CallOps;

/** One call of op K, as it goes on the channel (its op beside its arguments). */
export type CallOf<K extends CallOp> = { op: K } & CallOps[K]['args'];

export type Call = { [K in CallOp]: CallOf<K> }[CallOp];

export type ParentMsg = StartMsg | ({ type: 'call'; id: number } & Call);

export type ChildMsg =
  | { type: 'up'; ms: number; domains: number; threads: string }
  | { type: 'failed'; error: string }
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: string };
