/**
 * A guest's control channel: what the toolstack asks of a domU's kernel
 * (netfront, its stacks, suspend for save and migration), beside what every
 * kernel answers (kernel-ops.ts) and the traffic apps of each vif
 * (endpoint-ops.ts: `vif` picks the vif, its first by default).
 *
 *   op               args              reply
 *   migrate_arm      {}                true: every vif notes frame arrival times (downtime)
 *   suspend_quiesce  {}                true: netfront stops queueing new TX
 *   suspend          {}                {frame, len: the kernel's record in its RAM,
 *                                       lastRxAt: per vif, unanswered: TX frames to send again, per vif}
 *   vif_close        {vif?: number}    true: that vif goes Closing -> Closed
 *   vif_offloads     {vif?: number,    {csum, gso, changed}: that vif's checksum and TCPv4 segmentation
 *                     csum?: boolean,   offloads now (ethtool -K): switching one reconnects the vif
 *                     gso?: boolean}    (feature-no-csum-offload, feature-gso-tcpv4)
 *
 * A kernel extension (a test's misbehaving guest) serves more ops; it names
 * them by adding to GuestExtensionOps (declaration merging), so its senders
 * are typed too.
 */
import { Type } from '@sinclair/typebox';
import { NO_ARGS, op, replyOf, type OpDef } from './ops.ts';
import { CAPTURE_OPS_TABLE, KERNEL_OPS } from './kernel-ops.ts';
import type { Dom0Ops } from './dom0-ops.ts';
import { ENDPOINT_OPS } from './endpoint-ops.ts';

export interface SuspendRecord {
  frame: number;
  len: number;
  lastRxAt: (number | null)[];
  unanswered: number[];
}

export const GUEST_ONLY_OPS = {
  migrate_arm: op(NO_ARGS, replyOf<true>()),
  suspend_quiesce: op(NO_ARGS, replyOf<true>()),
  suspend: op(NO_ARGS, replyOf<SuspendRecord>()),
  vif_close: op(Type.Object({ vif: Type.Optional(Type.Number()) }), replyOf<true>()),
  vif_offloads: op(
    Type.Object({ vif: Type.Optional(Type.Number()), csum: Type.Optional(Type.Boolean()), gso: Type.Optional(Type.Boolean()) }),
    replyOf<{ csum: boolean; gso: boolean; changed: boolean }>(),
  ),
} as const;

export const GUEST_OPS = { ...KERNEL_OPS, ...CAPTURE_OPS_TABLE, ...ENDPOINT_OPS, ...GUEST_ONLY_OPS } as const;
export type GuestOps = typeof GUEST_OPS;

/**
 * Ops a guest kernel's extension serves (none in the stock kernel). A module
 * that boots an extended guest adds its ops here, e.g.
 *   declare module '@xsim/hypervisor' { interface GuestExtensionOps extends MyOps {} }
 * (test/fixtures/hostile-guest.ts does), and gives the same table as
 * GuestExtension.ops so the kernel checks their arguments too.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface GuestExtensionOps {}

/** What the toolstack may ask of any domain (dom0 or a guest, the stock kernels and extensions): where both serve an op, it is the same op. */
export type DomainOps = Dom0Ops & GuestOps & { [K in keyof GuestExtensionOps]: GuestExtensionOps[K] extends OpDef ? GuestExtensionOps[K] : never };
