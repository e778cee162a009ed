/**
 * xl shutdown: the toolstack writes "poweroff" to control/shutdown; like
 * Linux's drivers/xen/manage.c the guest then closes its devices (each vif
 * goes through Closing to Closed with its backend) before it stops.
 */
import { SHUTDOWN_POWEROFF, controlShutdownPath } from '@xsim/hypervisor';
import type { GuestParts } from './compose.ts';

export function watchPoweroff(k: GuestParts): void {
  const { xs } = k;
  const shutdownPath = controlShutdownPath(k.domid);
  xs.watch(shutdownPath, 'shutdown', () => {
    if (xs.tryRead(shutdownPath) !== SHUTDOWN_POWEROFF) return;
    k.log('poweroff requested: closing every vif');
    for (const d of k.devices) d.nf.close();
  });
}
