/**
 * io/netif.h request/response layouts (little-endian), flags and status codes.
 * Accessors read and write straight at a byte offset in a ring page so the
 * data path allocates nothing per packet.
 */
import { ringSlots } from './ring.ts';

// struct netif_tx_request { grant_ref_t gref; uint16_t offset, flags, id, size; } — 12 bytes
export const NETIF_TX_REQ_SIZE = 12;
export const TXREQ_GREF = 0;
export const TXREQ_OFFSET = 4;
export const TXREQ_FLAGS = 6;
export const TXREQ_ID = 8;
export const TXREQ_SIZE = 10;
// struct netif_tx_response { uint16_t id; int16_t status; } — 4 bytes (slot is 12: a union)
export const NETIF_TX_RSP_SIZE = 4;
export const TXRSP_ID = 0;
export const TXRSP_STATUS = 2;
export const NETIF_TX_SLOT_SIZE = Math.max(NETIF_TX_REQ_SIZE, NETIF_TX_RSP_SIZE);

// struct netif_rx_request { uint16_t id; uint16_t pad; grant_ref_t gref; } — 8 bytes
export const NETIF_RX_REQ_SIZE = 8;
export const RXREQ_ID = 0;
export const RXREQ_GREF = 4;
// struct netif_rx_response { uint16_t id, offset, flags; int16_t status; } — 8 bytes
export const NETIF_RX_RSP_SIZE = 8;
export const RXRSP_ID = 0;
export const RXRSP_OFFSET = 2;
export const RXRSP_FLAGS = 4;
export const RXRSP_STATUS = 6;
export const NETIF_RX_SLOT_SIZE = Math.max(NETIF_RX_REQ_SIZE, NETIF_RX_RSP_SIZE);

export const NET_TX_RING_SIZE = ringSlots(NETIF_TX_SLOT_SIZE);
export const NET_RX_RING_SIZE = ringSlots(NETIF_RX_SLOT_SIZE);

export const NETTXF_csum_blank = 1 << 0;
export const NETTXF_data_validated = 1 << 1;
export const NETTXF_more_data = 1 << 2;
export const NETTXF_extra_info = 1 << 3;

export const NETRXF_data_validated = 1 << 0;
export const NETRXF_csum_blank = 1 << 1;
export const NETRXF_more_data = 1 << 2;
export const NETRXF_extra_info = 1 << 3;
export const NETRXF_gso_prefix = 1 << 4;

export const NETIF_RSP_DROPPED = -2;
export const NETIF_RSP_ERROR = -1;
export const NETIF_RSP_OKAY = 0;
export const NETIF_RSP_NULL = 1;

/** XEN_NETIF_MAX_TX_SIZE: the largest frame a TX request chain may carry. */
export const XEN_NETIF_MAX_TX_SIZE = 0xffff;
/** XEN_NETBK_LEGACY_SLOTS_MAX: slots a single packet may span. */
export const XEN_NETBK_LEGACY_SLOTS_MAX = 18;
