/**
 * The one long-running piscina task a domain (or the NIC fabric) is: load the
 * kernel module named in the task and run its boot(). The promise settles with
 * the kernel's final stats when it shuts down and rejects when it crashes.
 */
import type { DomainTask, Kernel } from './types.ts';

export default async function runDomain(task: DomainTask): Promise<unknown> {
  const mod = (await import(task.kernel)) as { boot?: Kernel };
  if (typeof mod.boot !== 'function') throw new Error(`kernel ${task.kernel} exports no boot() function`);
  return await mod.boot(task);
}
