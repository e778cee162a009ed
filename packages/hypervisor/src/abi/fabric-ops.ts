/**
 * The NIC fabric's control channel (the device kernel that models every NIC,
 * wire and switch of the topology), beside what every kernel answers.
 *
 *   op             args                                 reply
 *   link_set       {nic: number, up: boolean}           the link now (a cable pulled or plugged: the wire, not dom0's driver)
 *   wire_link_set  {wire: number, up: boolean}          a tunnel wire end's link now (down: the far end's partition is gone)
 *   add_domain     {nic, domid}  shared: [its RAM]      true: DMA may reach it (through the buffer table)
 *   remove_domain  {nic, domid}                         true
 *   forget_mac     {mac: number}                        switches that forgot it
 */
import { Type } from '@sinclair/typebox';
import { op, replyOf } from './ops.ts';
import { CAPTURE_OPS_TABLE, KERNEL_OPS } from './kernel-ops.ts';

const nic = Type.Number();

export const FABRIC_OPS = {
  ...KERNEL_OPS,
  ...CAPTURE_OPS_TABLE,
  link_set: op(Type.Object({ nic, up: Type.Boolean() }), replyOf<boolean>()),
  wire_link_set: op(Type.Object({ wire: Type.Number(), up: Type.Boolean() }), replyOf<boolean>()),
  add_domain: op(Type.Object({ nic, domid: Type.Number() }), replyOf<true>()),
  remove_domain: op(Type.Object({ nic, domid: Type.Number() }), replyOf<true>()),
  forget_mac: op(Type.Object({ mac: Type.Number() }), replyOf<number>()),
} as const;
export type FabricOps = typeof FABRIC_OPS;
