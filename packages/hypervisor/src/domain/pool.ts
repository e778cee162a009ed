/**
 * The toolstack's side of domains: one piscina pool sized to exactly the
 * number of domains (and the NIC fabric) so that no task ever waits for a
 * thread and no idle thread is started on a 2-core machine.
 */
import type { Transferable } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { DomainTask } from './types.ts';

const BOOT = new URL('./boot.mjs', import.meta.url).href;

export class DomainPool {
  private readonly pool: Piscina;

  constructor(threads: number) {
    this.pool = new Piscina({
      filename: BOOT,
      minThreads: threads,
      maxThreads: threads,
      concurrentTasksPerWorker: 1,
      // A domain lives as long as the simulation; never reap its thread.
      idleTimeout: 2 ** 31 - 1,
    });
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  /** Start a domain; the promise settles when it shuts down (or rejects if it crashes). */
  /**
   * Start a domain; the promise settles when it shuts down (or rejects if it
   * crashes). Aborting `signal` terminates its worker thread: the one way to end
   * a domain whose code never yields.
   */
  start<R = unknown>(task: DomainTask, signal?: AbortSignal): Promise<R> {
    const transferList: Transferable[] = [task.control as unknown as Transferable];
    if (task.xenstore) transferList.push(task.xenstore as unknown as Transferable);
    for (const p of task.ports ?? []) transferList.push(p as unknown as Transferable);
    return this.pool.run(task, { transferList, signal }) as Promise<R>;
  }

  async destroy(): Promise<void> {
    await this.pool.destroy();
  }
}
