/**
 * The toolstack's side of pCPUs: one piscina pool sized to exactly the
 * number of pCPU worker threads (and the NIC's), each running one long task
 * (a Pcpu scheduler) for the life of the simulation, so no task ever waits
 * for a thread and no idle thread is started on a 2-core machine. The
 * threads run the packages' compiled copy when there is one (mirror.ts).
 */
import type { Transferable } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { PcpuTask } from '../sched/worker.ts';
import type { Mirror } from './loader.ts';
import { workerMirror } from './mirror.ts';

const BOOT = new URL('./boot.mjs', import.meta.url).href;

/**
 * The threads' Node options: the process's, without a tsx loader (`node
 * --import tsx`), which a worker would otherwise register for itself and
 * route every import of the mirror through; boot.mjs registers tsx where it
 * is needed. With XSIM_NO_BUNDLE=1, the process's as they are.
 */
function workerExecArgv(): string[] {
  const args = process.execArgv;
  if (process.env.XSIM_NO_BUNDLE === '1') return args;
  const isTsx = (v: string | undefined) => v !== undefined && (v === 'tsx' || v.startsWith('tsx/') || /[\\/]tsx[\\/]dist[\\/]/.test(v));
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const flag = /^--(import|require|loader|experimental-loader)(=(.*))?$/.exec(args[i]);
    if (flag && !flag[2] && isTsx(args[i + 1])) i++;
    else if (!(flag && isTsx(flag[3]))) kept.push(args[i]);
  }
  return kept;
}

export class PcpuPool {
  private readonly pool: Piscina;
  /** What the threads import (built or found while they start); null: their sources, through tsx. */
  private readonly mirror: Promise<Mirror | null> = workerMirror();

  constructor(threads: number) {
    this.pool = new Piscina({
      filename: BOOT,
      minThreads: threads,
      maxThreads: threads,
      concurrentTasksPerWorker: 1,
      // A pCPU lives as long as the simulation; never reap its thread.
      idleTimeout: 2 ** 31 - 1,
      execArgv: workerExecArgv(),
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
    return this.mirror.then((mirror) => this.pool.run({ task, mirror }, { transferList, signal }));
  }

  async destroy(): Promise<void> {
    await this.pool.destroy();
  }
}
