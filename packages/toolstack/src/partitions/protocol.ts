/**
 * What `xsim run --partitions local` (procs.ts) and each partition process
 * (child.ts) say to each other over the child's IPC channel (Node's
 * structured-clone serialisation): the parent starts the partition, the
 * child says when it is up (or why it failed), and then answers calls: a
 * request to one of its domains, its stats, one domain's stats, shutdown.
 */
import type { LogLevel } from '@xsim/hypervisor';
import type { DomainRef } from '../domain-ref.ts';
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

export type Call =
  | { op: 'request'; ref: DomainRef; name: string; args: Record<string, unknown>; timeoutMs: number }
  | { op: 'domainStats'; ref: DomainRef; timeoutMs: number }
  | { op: 'stats' }
  | { op: 'shutdown' };

export type ParentMsg = StartMsg | ({ type: 'call'; id: number } & Call);

export type ChildMsg =
  | { type: 'up'; ms: number; domains: number; threads: string }
  | { type: 'failed'; error: string }
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: string };
