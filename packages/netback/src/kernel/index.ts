/**
 * dom0's kernel's named entry points, as Linux's netback names its
 * xenbus_driver's (drivers/net/xen-netback/xenbus.c), beside the toolstack's
 * guest registry:
 *
 *   addGuest, removeGuest   guests.ts    a guest handed to dom0 / gone (its RAM, its plugin channels)
 *   probe                   guests.ts    a hotplugged vif's plugin channel (before its nodes appear)
 *   unplug, remove          guests.ts    the backend closes first / both ends closed, nodes gone
 *   suspend, resume         migrate.ts   a migrating guest's vifs off their plugins / arriving
 *   otherend_changed        per vif:     VifBackend.frontendChanged (vif/xenbus.ts), found by VifBackends' watch
 *   control                 control.ts   the op table (@xsim/hypervisor's DOM0_OPS)
 *   stats                   stats.ts
 *
 * composeDom0 (compose.ts) builds the parts every entry point takes.
 */
import { addGuest, probeVif, removeGuest, removeVif, unplugVif } from './guests.ts';
import { migrateIn, migrateOut } from './migrate.ts';
import { dom0Control } from './control.ts';
import { dom0Stats } from './stats.ts';

export { composeDom0, type Dom0Kernel } from './compose.ts';
export { dom0MinPages, type Dom0Config, type Dom0Guest } from './config.ts';

export const NETBACK_DRIVER = {
  addGuest,
  removeGuest,
  probe: probeVif,
  unplug: unplugVif,
  remove: removeVif,
  suspend: migrateOut,
  resume: migrateIn,
  control: dom0Control,
  stats: dom0Stats,
} as const;
