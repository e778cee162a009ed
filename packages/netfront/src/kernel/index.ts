/**
 * The guest kernel's named entry points, as Linux's netfront names its
 * xenbus_driver's (drivers/net/xen-netfront.c):
 *
 *   probe             probe.ts     xennet_probe: a vif's netfront, stack and plugin host
 *   remove            probe.ts     xennet_remove: a closed vif whose node went
 *   suspend, resume   suspend.ts   netfront_suspend / netfront_resume (save, restore, migration)
 *   otherend_changed  per device:  Netfront.backendChanged (netfront/xenbus.ts)
 *   hotplug           hotplug.ts   the device directory's watch (probe / remove)
 *   control           control.ts   the op table (@xsim/hypervisor's GUEST_OPS)
 *   stats             stats.ts
 *   poweroff          poweroff.ts  control/shutdown, as drivers/xen/manage.c
 *
 * composeGuest (compose.ts) builds the parts every entry point takes.
 */
import { probe, remove } from './probe.ts';
import { resume, suspend } from './suspend.ts';
import { watchHotplug } from './hotplug.ts';
import { guestControl } from './control.ts';
import { guestStats } from './stats.ts';
import { watchPoweroff } from './poweroff.ts';

export { composeGuest, type GuestConfig, type GuestDevice, type GuestKernel, type GuestParts } from './compose.ts';
export { NOT_MINE, type GuestExtension } from './control.ts';

export const NETFRONT_DRIVER = {
  probe,
  remove,
  suspend,
  resume,
  hotplug: watchHotplug,
  control: guestControl,
  stats: guestStats,
  poweroff: watchPoweroff,
} as const;
