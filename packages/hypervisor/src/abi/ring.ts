/**
 * io/ring.h shared-ring page layout:
 *   RING_IDX req_prod, req_event, rsp_prod, rsp_event;  (u32 each)
 *   uint8_t  __pad[48];
 *   union { request; response; } ring[];                 (from byte 64)
 * The slot count is the largest power of two that fits in the page (__RD32).
 */
export const SRING_REQ_PROD = 0;
export const SRING_REQ_EVENT = 4;
export const SRING_RSP_PROD = 8;
export const SRING_RSP_EVENT = 12;
export const SRING_HEADER_SIZE = 64;

/** __CONST_RING_SIZE: largest power of two number of `entrySize`-byte slots after the header. */
export function ringSlots(entrySize: number, pageSize = 4096): number {
  if (!(entrySize > 0)) throw new RangeError(`bad ring entry size ${entrySize}`);
  const fit = Math.floor((pageSize - SRING_HEADER_SIZE) / entrySize);
  if (fit < 1) throw new RangeError(`a ${entrySize}-byte entry does not fit in a ${pageSize}-byte ring page`);
  return 2 ** Math.floor(Math.log2(fit));
}
