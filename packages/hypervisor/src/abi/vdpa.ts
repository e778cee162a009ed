/**
 * The virtio NIC's admin commands (the second NIC model, `nic:1af4-1041`,
 * after vhost-vdpa's IOTLB and vring setup and mlx5's flow steering): what
 * dom0's drivers send it over the same privileged channel MCDI uses
 * (CH.mcdi: only dom0 holds it). The queue layout is @xsim/nic's vq-layout.ts.
 *
 *   op           args                                          reply
 *   iotlb_map    {fn, domid, iova, frames: number[]}           pages mapped. iova: a page-aligned byte address;
 *                                                              frames: 1..65536 pages of `domid`, mapped at
 *                                                              iova, iova+4096, …; every page of a function
 *                                                              belongs to one domain
 *   iotlb_unmap  {fn, iova, count}                             pages unmapped (refused while the function runs
 *                                                              and a queue lives in them)
 *   fn_start     {fn, domid, rx: VQ, tx: VQ,                   true; shared: [the notify area made for it]
 *                 irq?: boolean (shared: [binding, doorbell]),
 *                 macs: number[] | null}                       48-bit MACs it may send from (null: any; required)
 *                VQ = {size, desc, avail, used}                 size a power of two 2..256; each area page-aligned
 *                                                              IOVAs of pages mapped for the function
 *   fn_stop      {fn, count?: boolean}                         {rules, pages} removed; count frames left on the
 *                                                              queues as drops (default true)
 *   steer_add    {fn (started), match, ageMs?}                 rule id (match as MCDI's filter_insert); error
 *                                                              "ENOSPC: ..." when the steering table is full.
 *                                                              A MAC match with local: true is switch-only: matched
 *                                                              for frames the device's own functions send, never
 *                                                              from the wire (mlx5's FDB rule on a source vport)
 *   steer_del    {id}                                          whether it existed
 *   steer_list   {}                                            every rule (hits, ageMs)
 *   steer_hits   {ids}                                         per id its hits, or null if gone
 *   fn_stats     {fn}                                          its counters, running, fault, pages mapped
 *   dev_stats    {}                                            the device's counters
 *   link_set     {up}                                          the link now
 *   dev_reset    {}                                            what the reset did (every guest function stopped)
 *   mtu_set      {mtu}                                         the MTU now
 */
import { Type } from '@sinclair/typebox';
import { FILTER_MATCH } from './mcdi.ts';
import { NO_ARGS, op, replyOf, type OpName } from './ops.ts';

const int = () => Type.Integer();
const iova = () => Type.Integer({ minimum: 0, maximum: 2 ** 48 - 1, multipleOf: 4096 });
const VQ = Type.Object({
  size: Type.Integer({ minimum: 2, maximum: 256 }),
  desc: iova(),
  avail: iova(),
  used: iova(),
});

export const VDPA_OPS = {
  iotlb_map: op(
    Type.Object({ fn: int(), domid: int(), iova: iova(), frames: Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1, maxItems: 65536 }) }),
    replyOf<number>(),
  ),
  iotlb_unmap: op(Type.Object({ fn: int(), iova: iova(), count: Type.Integer({ minimum: 1, maximum: 65536 }) }), replyOf<number>()),
  fn_start: op(
    Type.Object({
      fn: int(),
      domid: int(),
      rx: VQ,
      tx: VQ,
      irq: Type.Optional(Type.Boolean()),
      macs: Type.Union([Type.Null(), Type.Array(Type.Integer({ minimum: 0, maximum: 2 ** 48 - 1 }))]),
      /** virtio-net feature bits negotiated (VIRTIO_NET_F_CSUM 1, VIRTIO_NET_F_GUEST_CSUM 2); absent: none. */
      features: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })),
    }),
    replyOf<true>(),
  ),
  fn_stop: op(Type.Object({ fn: int(), count: Type.Optional(Type.Boolean()) }), replyOf<{ rules: number; pages: number }>()),
  steer_add: op(Type.Object({ fn: int(), match: FILTER_MATCH, ageMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })) }), replyOf<number>()),
  steer_del: op(Type.Object({ id: int() }), replyOf<boolean>()),
  steer_list: op(NO_ARGS, replyOf<unknown[]>()),
  steer_hits: op(Type.Object({ ids: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 4096 }) }), replyOf<(number | null)[]>()),
  fn_stats: op(Type.Object({ fn: int() }), replyOf<Record<string, unknown>>()),
  dev_stats: op(NO_ARGS, replyOf<Record<string, unknown>>()),
  link_set: op(Type.Object({ up: Type.Boolean() }), replyOf<boolean>()),
  dev_reset: op(NO_ARGS, replyOf<unknown>()),
  mtu_set: op(Type.Object({ mtu: int() }), replyOf<number>()),
} as const;
export type VdpaOps = typeof VDPA_OPS;
export type VdpaOp = OpName<VdpaOps>;
