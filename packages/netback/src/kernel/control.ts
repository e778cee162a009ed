/**
 * dom0's control op table (@xsim/hypervisor's DOM0_OPS): a handler per op,
 * each given its arguments checked against the op's schema at the boundary.
 * The handlers are the kernel's entry points (guests.ts, migrate.ts,
 * stats.ts), the endpoint's apps, the capture taps and the NIC's management.
 */
import { DEFERRED, DOM0_OPS, RpcOpServer, captureHandlers, type Dom0Ops, type OpHandlers } from '@xsim/hypervisor';
import type { Dom0Kernel } from './compose.ts';
import { addGuest, probeVif, removeGuest, removeVif, unplugVif, vifRef } from './guests.ts';
import { migrateIn, migrateOut } from './migrate.ts';
import { dom0Stats } from './stats.ts';

export function dom0Control(k: Dom0Kernel): RpcOpServer<Dom0Ops> {
  const { bridge, accel, nicAdmin } = k;
  const guestOf = (op: string, domid: number): number => {
    if (!k.guests.has(domid)) throw new Error(`${op}: domain ${String(domid)} is not a guest of this host`);
    return domid;
  };
  const handlers: OpHandlers<Dom0Ops> = {
    stats: () => ({ ...dom0Stats(k), control: { refused: server.refused } }),
    shutdown: () => {
      const final = dom0Stats(k);
      k.driver?.remove();
      k.env.core.stop();
      return final;
    },
    ...captureHandlers(k.capture),
    ...k.endpoint.handlers(),
    fdb: () => bridge.fdbEntries(),
    fdb_forget: (a) => bridge.forget(a.mac),
    guest_add: (a, { shared }) => {
      // A guest created at run time (xl create): its RAM and grant table come beside the request.
      const [gm, gt] = shared;
      if (!(gm instanceof SharedArrayBuffer) || !(gt instanceof SharedArrayBuffer))
        throw new Error("guest_add: the guest's RAM and grant table must come beside the request");
      if (!Number.isInteger(a.domid) || a.domid <= 0 || k.guests.has(a.domid)) throw new Error(`guest_add: domid ${String(a.domid)} is not a new guest's`);
      addGuest(k, { domid: a.domid, uid: a.uid, mem: gm, gnttab: gt, vifs: a.vifs ?? [] });
      return true;
    },
    guest_remove: (a) => removeGuest(k, guestOf('guest_remove', a.domid)),
    vif_add: (a, { op }) => probeVif(k, vifRef(k, op, a)),
    vif_unplug: (a, { op }) => unplugVif(k, vifRef(k, op, a)),
    vif_remove: (a, { op }) => removeVif(k, vifRef(k, op, a)),
    accel_migrate_out: (a, { later }) => {
      migrateOut(k, guestOf('accel_migrate_out', a.domid), later());
      return DEFERRED;
    },
    accel_migrate_in: (a, { op }) => migrateIn(k, vifRef(k, op, a), a),
    plugin_load: (a, { later }) => {
      accel.load(a.name, a.backend, a.frontend ? a.frontend : undefined, a.args ?? {}, later());
      return DEFERRED;
    },
    plugin_unload: (a, { later }) => {
      accel.unload(a.name, later());
      return DEFERRED;
    },
    plugin_list: () => accel.stats(),
    link_set: (a, { later }) => (nicAdmin.request('link_set', a, later()), DEFERRED),
    mtu_set: (a, { later }) => (nicAdmin.request('mtu_set', a, later()), DEFERRED),
    nic_reset: (a, { later }) => (nicAdmin.request('nic_reset', a, later()), DEFERRED),
  };
  const server = new RpcOpServer<Dom0Ops>('dom0 control', DOM0_OPS, handlers, { log: k.log.say });
  return server;
}
