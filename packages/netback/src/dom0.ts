/**
 * dom0's kernel: the privileged domain of one host. It runs netback (a
 * VifBackend per guest vif), the software bridge, the NIC's primary driver
 * (VI 0) as the bridge's uplink, the accelerator plugin manager, and its own
 * small IP stack on the bridge so dom0 can be a traffic endpoint too (the
 * dom0-to-dom0 baseline).
 *
 * As the privileged domain it is handed its guests' RAM and grant tables,
 * and reaches them only through grant operations, which check the grant
 * table first.
 */
import type { DomainEnv } from '@xsim/hypervisor';
import { NETBACK_DRIVER as drv, composeDom0, type Dom0Config } from './kernel/index.ts';

export { dom0MinPages, type Dom0Config, type Dom0Guest } from './kernel/index.ts';

/** The dom0 kernel module: compose the kernel, hand it its guests, serve its control ops, and poll its parts. */
export function boot(env: DomainEnv<Dom0Config>): void {
  const k = composeDom0(env);
  for (const g of env.config.guests) drv.addGuest(k, g);
  env.control.onRequest(drv.control(k).handle);
  k.backends.start();
  const { core } = env;
  core.add('accel', () => k.accel.poll());
  core.add('netback', () => k.backends.poll());
  // Rate-limited vifs' credit timers (tx_credit_exceeded's mod_timer): TX resumes when one is due.
  core.timer(() => k.backends.nextDeadline());
  if (k.uplink) core.add('uplink', () => k.uplink!.poll());
  core.add('endpoint', () => k.endpoint.poll());
  core.timer(() => k.endpoint.nextDeadline());
}
