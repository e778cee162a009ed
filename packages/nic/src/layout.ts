/**
 * The NIC's shared-memory layout: one SharedArrayBuffer per virtual interface
 * (VI) holding its index words and three rings (TX descriptors, RX
 * descriptors, event queue), and the fabric's wake block. This file is the
 * one place these offsets live. Little-endian; free-running u32 indices;
 * slot = index & (size - 1).
 */
export const VI_TXQ_SIZE = 512;
export const VI_RXQ_SIZE = 512;
/** Big enough for every TX and RX completion that can be outstanding at once: it never overflows. */
export const VI_EVQ_SIZE = 2048;

// Index words (Int32) at the start of a VI's buffer.
export const W_TX_PROD = 0; // driver: TX doorbell
export const W_TX_CONS = 1; // NIC
export const W_RX_PROD = 2; // driver
export const W_RX_CONS = 3; // NIC
export const W_EV_PROD = 4; // NIC
export const W_EV_CONS = 5; // driver
export const W_IRQ_ARM = 6; // driver sets 1; NIC exchanges to 0 and interrupts only if it was 1
export const W_VI_STATE = 7; // NIC
export const W_FAULT = 8; // NIC: fault reason code
export const VI_HEADER_BYTES = 64;

export const VI_STATE_RESET = 0;
export const VI_STATE_RUNNING = 1;
export const VI_STATE_FAULTED = 2;

export const FAULT_NONE = 0;
/** A descriptor named a buffer-table entry the VI does not own (or none at all). */
export const FAULT_BUFFER_OWNER = 1;
/** A descriptor's offset+length ran past its buffer, or spanned non-contiguous pages. */
export const FAULT_BUFFER_RANGE = 2;
/** A TX frame chained more descriptors than a frame may have. */
export const FAULT_TX_CHAIN = 3;
export const FAULT_NAMES = ['none', 'buffer-owner', 'buffer-range', 'tx-chain'];

export const DESC_SIZE = 16;
export const EV_SIZE = 16;
export const TXQ_OFFSET = VI_HEADER_BYTES;
export const RXQ_OFFSET = TXQ_OFFSET + VI_TXQ_SIZE * DESC_SIZE;
export const EVQ_OFFSET = RXQ_OFFSET + VI_RXQ_SIZE * DESC_SIZE;
export const VI_BYTES = EVQ_OFFSET + VI_EVQ_SIZE * EV_SIZE;

// TX descriptor: { bufId u32, offset u16, len u16, flags u16 }
export const TXD_BUF = 0;
export const TXD_OFF = 4;
export const TXD_LEN = 6;
export const TXD_FLAGS = 8;
export const TXD_CONT = 1;
// RX descriptor: { bufId u32, offset u16, len (capacity) u16 }
export const RXD_BUF = 0;
export const RXD_OFF = 4;
export const RXD_LEN = 6;
// Event: { type u16, flags u16, len u16, pad, index u32, aux u32 }
export const EV_TYPE = 0;
export const EV_FLAGS = 2;
export const EV_LEN = 4;
export const EV_INDEX = 8;
export const EV_AUX = 12;
/** TX descriptors before `index` are done (DMA finished, buffers free). */
export const EV_TX = 1;
/** RX descriptor `index` holds `len` bytes of a frame. */
export const EV_RX = 2;
/** On EV_RX: the frame continues in the next descriptor. */
export const EV_RX_CONT = 1;

/** Max descriptors one TX frame may chain (a 9 KiB frame in 4 KiB pieces needs 3-4). */
export const TX_MAX_CHAIN = 18;

// The fabric's wake block, laid out as a hypervisor WakeWord: [0] wake counter, [1] asleep flag.
// The fabric also raises the flag itself before its last look at the TX rings, so a driver's
// doorbell (ViQueues.pushTx) may skip even the counter bump while the fabric is awake.
export const FABRIC_WAKE = 0;
export const FABRIC_ASLEEP = 1;
export const FABRIC_WAKE_BYTES = 8;

export const BUFFER_PAGE = 4096;
