/**
 * MCDI: the management commands dom0's drivers send the NIC (sfc's
 * MC_CMD_*), over a channel only dom0 holds. Guests never get one, so they
 * can never program filters or the buffer table.
 *
 *   op                  args                                   reply
 *   vi_init             {vi: number, domid: number             true; shared: [the attachment's doorbell]
 *                        rings: number    buffer-table index of the VI's ring pages
 *                        irq?: boolean    with shared: [binding, driver domain's doorbell]
 *                        macs: number[] | null    48-bit MACs the VI may send from (null: any; required,
 *                                                  so no driver gets a VI without anti-spoofing by omission)
 *                        csum?: boolean   enable checksum offload: the NIC completes a frame's partial TCP/UDP
 *                                         checksum when its first TX descriptor says TXD_CSUM, and checks received
 *                                         ones (EV_RX_CSUM_OK); absent: off
 *                        tso?: boolean}   enable TCP segmentation offload: the NIC cuts an IPv4 TCP frame of up to
 *                                         64 KiB whose first TX descriptor says TXD_TSO into segments of its MSS
 *                                         (TXD_MSS), each with its checksums; absent: off
 *   vi_fini             {vi, count?: boolean}  count frames left on it as drops (default true)
 *   buffer_table_alloc  {vi, domid, frames: number[]}  1..65536 guest frames   base index
 *   buffer_table_free   {vi, base, count}                          true
 *   filter_insert       {vi (running), match: {kind: 'mac', mac, vlan?, local?} | {kind: 'ipv4', proto, addr, port},
 *                        ageMs?: number}  the NIC removes the filter once no frame matched it for this long (0, absent: never)
 *                                                              filter id; error "ENOSPC: ..." (MCDI_ENOSPC) when the
 *                                                              NIC's whole filter table is full (counted: filterNoSpace)
 *                        local: true: switch-only, matched only for frames a function of this NIC sends (its
 *                        internal switch), never for frames from the wire (as an eswitch rule on the source
 *                        vport); a local and a normal MAC filter for one MAC may coexist only on the same VI
 *   filter_remove       {id}                                       whether it existed
 *   filter_list         {}                                         every filter (with its hits and ageMs)
 *   filter_hits         {ids: number[]}  1..4096 filter ids        per id, the frames it matched so far, or null if it is
 *                                                              gone (removed, or aged out by the NIC)
 *   vi_stats            {vi}                                       its counters, running, fault, buffers
 *   nic_stats           {}                                         the NIC's counters
 *   link_set            {up: boolean}                              the link now
 *   nic_reset           {}                                         what the reset did
 *   mtu_set             {mtu}                                      the MTU now
 */
import { Type, type Static } from '@sinclair/typebox';
import { NO_ARGS, op, replyOf, type OpName } from './ops.ts';

const int = () => Type.Integer();

export const FILTER_MATCH = Type.Union([
  Type.Object({ kind: Type.Literal('mac'), mac: Type.Number(), vlan: Type.Optional(Type.Number()), local: Type.Optional(Type.Boolean()) }),
  Type.Object({ kind: Type.Literal('ipv4'), proto: Type.Number(), addr: Type.Number(), port: Type.Number() }),
]);
export type McdiFilterMatch = Static<typeof FILTER_MATCH>;

/** The prefix of the error a NIC answers filter_insert with when its whole filter table is full (sfc's MC_CMD_ERR_ENOSPC). */
export const MCDI_ENOSPC = 'ENOSPC';

export const MCDI_OPS = {
  vi_init: op(
    Type.Object({
      vi: int(),
      domid: int(),
      rings: int(),
      irq: Type.Optional(Type.Boolean()),
      macs: Type.Union([Type.Null(), Type.Array(Type.Integer({ minimum: 0, maximum: 2 ** 48 - 1 }))]),
      csum: Type.Optional(Type.Boolean()),
      tso: Type.Optional(Type.Boolean()),
    }),
    replyOf<true>(),
  ),
  vi_fini: op(Type.Object({ vi: int(), count: Type.Optional(Type.Boolean()) }), replyOf<unknown>()),
  buffer_table_alloc: op(
    Type.Object({ vi: int(), domid: int(), frames: Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1, maxItems: 65536 }) }),
    replyOf<number>(),
  ),
  buffer_table_free: op(Type.Object({ vi: int(), base: int(), count: int() }), replyOf<true>()),
  filter_insert: op(
    Type.Object({ vi: int(), match: FILTER_MATCH, ageMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })) }),
    replyOf<number>(),
  ),
  filter_remove: op(Type.Object({ id: int() }), replyOf<boolean>()),
  filter_list: op(NO_ARGS, replyOf<unknown[]>()),
  filter_hits: op(Type.Object({ ids: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 4096 }) }), replyOf<(number | null)[]>()),
  vi_stats: op(Type.Object({ vi: int() }), replyOf<Record<string, unknown>>()),
  nic_stats: op(NO_ARGS, replyOf<Record<string, unknown>>()),
  link_set: op(Type.Object({ up: Type.Boolean() }), replyOf<boolean>()),
  nic_reset: op(NO_ARGS, replyOf<unknown>()),
  mtu_set: op(Type.Object({ mtu: int() }), replyOf<number>()),
} as const;
export type McdiOps = typeof MCDI_OPS;
export type McdiOp = OpName<McdiOps>;
