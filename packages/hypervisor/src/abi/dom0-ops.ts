/**
 * dom0's control channel: what the toolstack asks of a host's privileged
 * kernel (netback, its bridge, the accelerator manager, the NIC's primary
 * driver), beside what every kernel answers (kernel-ops.ts) and the traffic
 * apps of its own endpoint (endpoint-ops.ts).
 *
 *   op                 args                                       reply
 *   fdb                {}                                         the bridge's forwarding entries
 *   fdb_forget         {mac: number}         48-bit MAC           whether an entry went
 *   guest_add          {domid: number        a new guest          true
 *                       uid: number          its bus address
 *                       vifs?: number[]}     its vif handles (one plugin channel each)
 *                      shared: [RAM, grant table]
 *   guest_remove       {domid}                                    {removed: handles, grantMappings}
 *   vif_add            {domid, handle: 0..255}  hotplug: the plugin channel   true
 *   vif_unplug         {domid, handle}       the backend closes   true
 *   vif_remove         {domid, handle}       nodes gone           whether its counters were kept
 *   accel_migrate_out  {domid}               answered once every vif is off its plugin
 *                                                                 [{handle, plugin, state}]
 *   accel_migrate_in   {domid, handle, plugin?: string, state?}   true
 *   plugin_load        {name, backend: URL, frontend?: URL, args?: object}   the plugin's view
 *   plugin_unload      {name}                answered once its vifs detached
 *   plugin_list        {}                    the accelerator manager's stats
 *   link_set           {up: boolean}         the NIC's link, through driverlink   {up}
 *   mtu_set            {mtu: number}         68..9000, negotiated with secondary drivers   {mtu}
 *   nic_reset          {}                    vifs fall back, the NIC resets, they re-attach
 */
import { Type } from '@sinclair/typebox';
import { NO_ARGS, op, replyOf } from './ops.ts';
import { CAPTURE_OPS_TABLE, KERNEL_OPS } from './kernel-ops.ts';
import { ENDPOINT_OPS } from './endpoint-ops.ts';

const domid = Type.Number();
const vifRef = Type.Object({ domid, handle: Type.Number() });

/** The NIC management ops dom0 serves through driverlink (one at a time, in order). */
export const NIC_ADMIN_OPS_TABLE = {
  link_set: op(Type.Object({ up: Type.Boolean() }), replyOf<{ up: boolean }>()),
  mtu_set: op(Type.Object({ mtu: Type.Number() }), replyOf<{ mtu: number }>()),
  nic_reset: op(NO_ARGS, replyOf<unknown>()),
} as const;
export type NicAdminOps = typeof NIC_ADMIN_OPS_TABLE;

export interface AccelMigratedVif {
  handle: number;
  plugin: string | null;
  state: unknown;
}

export const DOM0_ONLY_OPS = {
  fdb: op(NO_ARGS, replyOf<unknown[]>()),
  fdb_forget: op(Type.Object({ mac: Type.Number() }), replyOf<boolean>()),
  guest_add: op(Type.Object({ domid, uid: Type.Number(), vifs: Type.Optional(Type.Array(Type.Number())) }), replyOf<true>()),
  guest_remove: op(Type.Object({ domid }), replyOf<{ removed: number[]; grantMappings: number }>()),
  vif_add: op(vifRef, replyOf<true>()),
  vif_unplug: op(vifRef, replyOf<true>()),
  vif_remove: op(vifRef, replyOf<boolean>()),
  accel_migrate_out: op(Type.Object({ domid }), replyOf<AccelMigratedVif[]>()),
  accel_migrate_in: op(
    Type.Object({ domid, handle: Type.Number(), plugin: Type.Optional(Type.String()), state: Type.Optional(Type.Unknown()) }),
    replyOf<true>(),
  ),
  plugin_load: op(
    Type.Object({
      name: Type.String(),
      backend: Type.String(),
      frontend: Type.Optional(Type.String()),
      args: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
    replyOf<unknown>(),
  ),
  plugin_unload: op(Type.Object({ name: Type.String() }), replyOf<unknown>()),
  plugin_list: op(NO_ARGS, replyOf<Record<string, unknown>>()),
} as const;

export const DOM0_OPS = { ...KERNEL_OPS, ...CAPTURE_OPS_TABLE, ...ENDPOINT_OPS, ...DOM0_ONLY_OPS, ...NIC_ADMIN_OPS_TABLE } as const;
export type Dom0Ops = typeof DOM0_OPS;
