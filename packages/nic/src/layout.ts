/**
 * The VI ABI: what a driver and the NIC share, and nothing else. This file is
 * the one place these offsets live. Little-endian; free-running u32 indices;
 * slot = index & (size - 1).
 *
 * A VI's rings live in the driver's own memory (pages it registered in the
 * NIC's buffer table for that VI through dom0, as sfc_netfront's SETHW did):
 *
 *   ring pages, from the buffer id given to vi_init:
 *     +0       TX descriptor ring   VI_TXQ_SIZE × 16 B  (2 pages)
 *     +8 KiB   RX descriptor ring   VI_RXQ_SIZE × 16 B  (2 pages)
 *     +16 KiB  event queue          VI_EVQ_SIZE × 16 B  (8 pages)
 *
 *   TX descriptor   +0 bufId u32 | +4 offset u16 | +6 len u16 | +8 flags u16 (TXD_CONT, TXD_CSUM, TXD_TSO) | +10 mss u16 | pad
 *   RX descriptor   +0 bufId u32 | +4 offset u16 | +6 capacity u16 | pad
 *   event           +0 type u16 | +2 flags u16 (EV_RX_CONT, EV_RX_CSUM_OK) | +4 len u16 | +6 pad | +8 index u32 | +12 seq u32
 *                   seq = event number + 1, written last: an event is there when its seq is
 *                   the one the driver expects next (no producer index in shared memory).
 *
 * And a doorbell page, 32 bytes, made fresh by the NIC for each attachment
 * (vi_init) and shared by that VI's driver and the NIC only: whatever an old
 * driver writes into an old doorbell is never read again.
 *
 *   word 0  TX_PROD    driver → NIC  TX producer index
 *   word 1  RX_PROD    driver → NIC  RX producer index
 *   word 2  EV_CONS    driver → NIC  events consumed (the NIC never overwrites an unread one)
 *   word 3  IRQ_ARM    driver sets 1 to be interrupted at the next event; the NIC clears it
 *   word 4  STATUS     NIC → driver  state | fault reason << 8
 *   word 5  NIC_ASLEEP NIC → driver  the NIC is about to sleep: a doorbell write must ring its wake line
 *
 * The NIC reads only words 0–3, each once per use, and trusts none of them
 * beyond this VI; all its own state (consumer indices, event producer,
 * running/faulted, ring addresses) is in its private memory.
 */
export const VI_TXQ_SIZE = 512;
/**
 * 1024 RX descriptors, as Linux's sfc driver posts by default
 * (EFX_DEFAULT_DMAQ_SIZE): dom0's VI 0 must hold the frames of every window
 * in flight toward it (four streams of 256 frames while a plugin's filters are
 * still being learnt) or the NIC drops them as rxNoDesc.
 */
export const VI_RXQ_SIZE = 1024;
/** Big enough for every TX and RX completion that can be outstanding at once. */
export const VI_EVQ_SIZE = 2048;

export const DESC_SIZE = 16;
export const EV_SIZE = 16;
export const TXQ_OFFSET = 0;
export const RXQ_OFFSET = TXQ_OFFSET + VI_TXQ_SIZE * DESC_SIZE;
export const EVQ_OFFSET = RXQ_OFFSET + VI_RXQ_SIZE * DESC_SIZE;
export const VI_RING_BYTES = EVQ_OFFSET + VI_EVQ_SIZE * EV_SIZE;
export const BUFFER_PAGE = 4096;
/** Pages of driver memory a VI's rings take (contiguous, registered for the VI). */
export const VI_RING_PAGES = VI_RING_BYTES / BUFFER_PAGE;

// Doorbell words (Int32).
export const W_TX_PROD = 0;
export const W_RX_PROD = 1;
export const W_EV_CONS = 2;
export const W_IRQ_ARM = 3;
export const W_STATUS = 4;
export const W_NIC_ASLEEP = 5;
export const DOORBELL_BYTES = 32;

export const VI_STATE_RESET = 0;
export const VI_STATE_RUNNING = 1;
export const VI_STATE_FAULTED = 2;

export const FAULT_NONE = 0;
/** A descriptor named a buffer-table entry the VI does not own (or none at all). */
export const FAULT_BUFFER_OWNER = 1;
/** A descriptor's offset+length ran past its buffer, or spanned non-contiguous pages. */
export const FAULT_BUFFER_RANGE = 2;
/** A TX frame chained more descriptors than a frame may have, or an index was impossible. */
export const FAULT_TX_CHAIN = 3;
export const FAULT_NAMES = ['none', 'buffer-owner', 'buffer-range', 'tx-chain'];

// TX descriptor
export const TXD_BUF = 0;
export const TXD_OFF = 4;
export const TXD_LEN = 6;
export const TXD_FLAGS = 8;
export const TXD_CONT = 1;
/**
 * On a frame's first TX descriptor: its TCP or UDP checksum is partial (the
 * pseudo-header sum in the field); the NIC completes it as it gathers the
 * frame, on a VI whose driver enabled checksum offload at vi_init (else the
 * frame is dropped, counted txCsumBad: nothing leaves partial).
 */
export const TXD_CSUM = 2;
/**
 * On a frame's first TX descriptor: cut this IPv4 TCP frame (up to 64 KiB,
 * over chained descriptors) into segments of at most `mss` (TXD_MSS) octets
 * of payload, each with its headers and checksums (tso-engine.ts), on a VI
 * whose driver enabled TSO at vi_init (else the frame is dropped, counted
 * txTsoBad).
 */
export const TXD_TSO = 4;
/** The MSS of a TXD_TSO frame (u16, first descriptor). */
export const TXD_MSS = 10;
// RX descriptor
export const RXD_BUF = 0;
export const RXD_OFF = 4;
export const RXD_LEN = 6;
// Event
export const EV_TYPE = 0;
export const EV_FLAGS = 2;
export const EV_LEN = 4;
export const EV_INDEX = 8;
export const EV_SEQ = 12;
/** TX descriptors before `index` are done (DMA finished, buffers free). */
export const EV_TX = 1;
/** RX descriptor `index` holds `len` bytes of a frame. */
export const EV_RX = 2;
/** On EV_RX: the frame continues in the next descriptor. */
export const EV_RX_CONT = 1;
/** On every EV_RX of a frame, on a VI with checksum offload: the NIC checked its TCP or UDP checksum and it is good. */
export const EV_RX_CSUM_OK = 2;

/** Max descriptors one TX frame may chain (a 9 KiB frame in 4 KiB pieces needs 3-4). */
export const TX_MAX_CHAIN = 18;

export function viStatus(word: number): { state: number; fault: number } {
  return { state: word & 0xff, fault: (word >>> 8) & 0xff };
}
