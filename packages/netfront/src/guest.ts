/**
 * A domU's kernel: its page allocator and grant table, the netfront driver for
 * each vif, a tiny IP stack per vif and the traffic apps, each a poller of the
 * domain's vCPU. Its parts and named entry points live in kernel/: probe and
 * remove (probe.ts), the hotplug watch (hotplug.ts), suspend and resume
 * (suspend.ts), the control op table (control.ts), stats (stats.ts) and
 * poweroff (poweroff.ts); this module puts them together.
 *
 * bootGuest takes an optional extension: more control ops served with access
 * to the kernel's parts. The stock kernel has none; a test fixture uses it to
 * build a guest that misbehaves on purpose, so no driver carries test hooks.
 */
import { crossThreadNow, type DomainEnv } from '@xsim/hypervisor';
import { NETFRONT_DRIVER as drv, composeGuest, type GuestConfig, type GuestExtension } from './kernel/index.ts';

export { NOT_MINE, type GuestConfig, type GuestDevice, type GuestKernel, type GuestExtension } from './kernel/index.ts';

export function bootGuest(env: DomainEnv<GuestConfig>, ext: GuestExtension = {}): void {
  const cfg = env.config;
  const k = composeGuest(env);
  if (cfg.resume) {
    k.resumedAt = crossThreadNow(env.clock);
    drv.resume(k, cfg.resume);
  } else for (const v of cfg.vifs) drv.probe(k, { ...v, mtu: cfg.mtu });
  drv.hotplug(k);
  env.control.onRequest(drv.control(k, ext).handle);
  drv.poweroff(k);
}

/** The stock guest kernel. */
export function boot(env: DomainEnv<GuestConfig>): void {
  bootGuest(env);
}
