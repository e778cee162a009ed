/**
 * The toolstack's side of pCPUs: one piscina pool sized to exactly the
 * number of pCPU worker threads (and the NIC's), each running one long task
 * (a Pcpu scheduler) for the life of the simulation, so no task ever waits
 * for a thread and no idle thread is started on a 2-core machine.
 */
import type { Transferable } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { PcpuTask } from '../sched/worker.ts';

const BOOT = new URL('./boot.mjs', import.meta.url).href;

export class PcpuPool {
  private readonly pool: Piscina;

  constructor(threads: number) {
    this.pool = new Piscina({
      filename: BOOT,
      minThreads: threads,
      maxThreads: threads,
      concurrentTasksPerWorker: 1,
      // A pCPU lives as long as the simulation; never reap its thread.
      idleTimeout: 2 ** 31 - 1,
    });
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  /**
   * Start a pCPU; the promise settles when it shuts down (or rejects if its
   * thread dies). Aborting `signal` terminates the thread: the one way to end
   * a pCPU whose domain's code never yields.
   */
  start(task: PcpuTask, signal?: AbortSignal): Promise<unknown> {
    const transferList: Transferable[] = [task.hub as unknown as Transferable, ...task.links.map((l) => l.port as unknown as Transferable)];
    return this.pool.run(task, { transferList, signal });
  }

  async destroy(): Promise<void> {
    await this.pool.destroy();
  }
}
