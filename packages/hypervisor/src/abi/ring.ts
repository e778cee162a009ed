/**
 * io/ring.h's shared-ring page (struct <name>_sring from DEFINE_RING_TYPES),
 * the same for every ring type:
 *
 *   0       4       8       12      16      20                        64
 *   +-------+-------+-------+-------+-------+-------- ... ------------+---------
 *   |  req  |  req  |  rsp  |  rsp  |  pvt  |          __pad          | ring[]:
 *   | _prod | _event| _prod | _event|       |        (44 bytes)       | slots
 *   +-------+-------+-------+-------+-------+-------- ... ------------+---------
 *
 * The four indices are u32 (RING_IDX). pvt is a 4-byte union private to
 * each protocol (netif's smartpoll_active, blktap's msg; xsim uses none of
 * it) that io/ring.h carved out of what was a 48-byte pad in 2010: __pad is
 * the 44 bytes left, so the slots still start at byte 64. SHARED_RING_INIT
 * zeroes both. A slot is a union of the protocol's request and response, so
 * it is the larger of the two.
 *
 * The slot count is the largest power of two that fits in the page (__RD32).
 */
export const SRING_REQ_PROD = 0;
export const SRING_REQ_EVENT = 4;
export const SRING_RSP_PROD = 8;
export const SRING_RSP_EVENT = 12;
/** The union pvt, and its size. */
export const SRING_PVT = 16;
export const SRING_PVT_SIZE = 4;
/** __pad, and its size. */
export const SRING_PAD = 20;
export const SRING_PAD_SIZE = 44;
/** Where ring[0] starts. */
export const SRING_HEADER_SIZE = 64;

/** __CONST_RING_SIZE: largest power of two number of `entrySize`-byte slots after the header. */
export function ringSlots(entrySize: number, pageSize = 4096): number {
  if (!(entrySize > 0)) throw new RangeError(`bad ring entry size ${entrySize}`);
  const fit = Math.floor((pageSize - SRING_HEADER_SIZE) / entrySize);
  if (fit < 1) throw new RangeError(`a ${entrySize}-byte entry does not fit in a ${pageSize}-byte ring page`);
  return 2 ** Math.floor(Math.log2(fit));
}
