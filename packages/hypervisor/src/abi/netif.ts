/**
 * io/netif.h: the layouts of the TX, RX and control rings' slots (requests,
 * responses, extra-info slots), their flags and status codes, little-endian
 * throughout. The data path reads and writes fields straight at a byte
 * offset in a ring page and allocates nothing per packet; the read helpers
 * below copy a slot into private memory first, so a peer that rewrites the
 * slot meanwhile cannot make two reads of one field disagree.
 *
 * test/xen-abi.test.ts compiles a C program against Xen's own headers and
 * checks every number exported here against them.
 */
import { ringSlots } from './ring.ts';

/*
 * TX ring: the frontend's requests (struct netif_tx_request, 12 bytes) and
 * the backend's responses (struct netif_tx_response, 4 bytes) share 12-byte
 * slots. A frame spans one request per page it touches: the first request's
 * size is the whole frame's length, each later one its own piece's.
 *
 *   0   1   2   3   4   5   6   7   8   9   10  11
 *   +---------------+-------+-------+-------+-------+
 *   |     gref      |offset | flags |  id   | size  |   request
 *   +-------+-------+-------+-------+-------+-------+
 *   |  id   |status |   (rest of the slot unused)   |   response
 *   +-------+-------+-------------------------------+
 */
export const NETIF_TX_REQ_SIZE = 12;
export const TXREQ_GREF = 0;
export const TXREQ_OFFSET = 4;
export const TXREQ_FLAGS = 6;
export const TXREQ_ID = 8;
export const TXREQ_SIZE = 10;
export const NETIF_TX_RSP_SIZE = 4;
export const TXRSP_ID = 0;
/** int16: a NETIF_RSP_* code. */
export const TXRSP_STATUS = 2;
export const NETIF_TX_SLOT_SIZE = Math.max(NETIF_TX_REQ_SIZE, NETIF_TX_RSP_SIZE);

/*
 * RX ring: the frontend posts empty pages (struct netif_rx_request, 8 bytes),
 * the backend answers each with what it put there (struct netif_rx_response,
 * 8 bytes) in the same slot.
 *
 *   0   1   2   3   4   5   6   7
 *   +-------+-------+---------------+
 *   |  id   |  pad  |     gref      |   request
 *   +-------+-------+-------+-------+
 *   |  id   |offset | flags |status |   response
 *   +-------+-------+-------+-------+
 *   status (int16): the bytes written if >= 0, else a NETIF_RSP_* code.
 */
export const NETIF_RX_REQ_SIZE = 8;
export const RXREQ_ID = 0;
export const RXREQ_GREF = 4;
export const NETIF_RX_RSP_SIZE = 8;
export const RXRSP_ID = 0;
export const RXRSP_OFFSET = 2;
export const RXRSP_FLAGS = 4;
export const RXRSP_STATUS = 6;
export const NETIF_RX_SLOT_SIZE = Math.max(NETIF_RX_REQ_SIZE, NETIF_RX_RSP_SIZE);

export const NET_TX_RING_SIZE = ringSlots(NETIF_TX_SLOT_SIZE);
export const NET_RX_RING_SIZE = ringSlots(NETIF_RX_SLOT_SIZE);

/** netif_tx_request.flags */
export const NETTXF_csum_blank = 1 << 0;
export const NETTXF_data_validated = 1 << 1;
export const NETTXF_more_data = 1 << 2;
export const NETTXF_extra_info = 1 << 3;

/** netif_rx_response.flags */
export const NETRXF_data_validated = 1 << 0;
export const NETRXF_csum_blank = 1 << 1;
export const NETRXF_more_data = 1 << 2;
export const NETRXF_extra_info = 1 << 3;
/** Deprecated in the header; kept so a response carrying it can be named. */
export const NETRXF_gso_prefix = 1 << 4;

export const NETIF_RSP_DROPPED = -2;
export const NETIF_RSP_ERROR = -1;
export const NETIF_RSP_OKAY = 0;
/** The answer to a slot that needed none: each extra-info slot of a TX frame is answered with it. */
export const NETIF_RSP_NULL = 1;

/** XEN_NETIF_MAX_TX_SIZE: the largest frame a TX request chain may carry. */
export const XEN_NETIF_MAX_TX_SIZE = 0xffff;
/** XEN_NETIF_NR_SLOTS_MIN: the slots of one frame every backend must accept. */
export const XEN_NETIF_NR_SLOTS_MIN = 18;
/** Linux netback's name for XEN_NETIF_NR_SLOTS_MIN: slots a single packet may span. */
export const XEN_NETBK_LEGACY_SLOTS_MAX = XEN_NETIF_NR_SLOTS_MIN;

/*
 * Extra-info slots (struct netif_extra_info, 8 bytes). A TX request flagged
 * NETTXF_extra_info, or an RX response flagged NETRXF_extra_info, is
 * followed in the next slot by an extra-info slot instead of a request or
 * response; one carrying XEN_NETIF_EXTRA_FLAG_MORE is followed by another.
 * An extra-info slot takes a TX slot without being a buffer: Linux's netback
 * answers it with NETIF_RSP_NULL, so responses still match slots one for one.
 * It fits the 8-byte RX slot; in a 12-byte TX slot bytes 8..11 are unused.
 * Bytes 2..7 are a union read by type:
 *
 *   0   1   2   3   4   5   6   7
 *   +---+---+-------+---+---+-------+
 *   |typ|flg| size  |gso|pad|feature|   GSO: segment size (the MSS), XEN_NETIF_GSO_TYPE_*, GSO feature bits
 *   +---+---+-------+---+---+-------+
 *   |typ|flg| multicast MAC address |   MCAST_ADD, MCAST_DEL
 *   +---+---+---+---+---------------+
 *   |typ|flg|hty|alg|     value     |   HASH: _XEN_NETIF_CTRL_HASH_TYPE_* bit number, algorithm, u32 hash
 *   +---+---+---+---+---------------+
 *   |typ|flg|headrm |  pad (zero)   |   XDP: bytes the frontend keeps free before RX data
 *   +---+---+-------+---------------+
 */
export const NETIF_EXTRA_INFO_SIZE = 8;
export const EXTRA_TYPE = 0;
export const EXTRA_FLAGS = 1;
/** Where the union `u` starts, and its size. */
export const EXTRA_U = 2;
export const EXTRA_U_SIZE = 6;
export const EXTRA_GSO_SIZE = 2;
export const EXTRA_GSO_TYPE = 4;
export const EXTRA_GSO_PAD = 5;
export const EXTRA_GSO_FEATURES = 6;
export const EXTRA_MCAST_ADDR = 2;
export const EXTRA_MCAST_ADDR_LEN = 6;
export const EXTRA_HASH_TYPE = 2;
export const EXTRA_HASH_ALGORITHM = 3;
/** u32, least significant byte first. */
export const EXTRA_HASH_VALUE = 4;
export const EXTRA_XDP_HEADROOM = 2;
export const EXTRA_XDP_PAD = 4;

/** netif_extra_info.type. NONE is never valid on a ring. */
export const XEN_NETIF_EXTRA_TYPE_NONE = 0;
export const XEN_NETIF_EXTRA_TYPE_GSO = 1;
export const XEN_NETIF_EXTRA_TYPE_MCAST_ADD = 2;
export const XEN_NETIF_EXTRA_TYPE_MCAST_DEL = 3;
export const XEN_NETIF_EXTRA_TYPE_HASH = 4;
/**
 * Linux's netif.h (2020, with netfront's XDP support); Xen's own header up
 * to at least 4.17 ends at HASH, with XEN_NETIF_EXTRA_TYPE_MAX 5.
 */
export const XEN_NETIF_EXTRA_TYPE_XDP = 5;
/** One past the last type: Linux's value (Xen 4.17's header says 5, having no XDP). */
export const XEN_NETIF_EXTRA_TYPE_MAX = 6;

/** netif_extra_info.flags: another extra-info slot follows this one. */
export const _XEN_NETIF_EXTRA_FLAG_MORE = 0;
export const XEN_NETIF_EXTRA_FLAG_MORE = 1 << _XEN_NETIF_EXTRA_FLAG_MORE;

/** u.gso.type */
export const XEN_NETIF_GSO_TYPE_NONE = 0;
export const XEN_NETIF_GSO_TYPE_TCPV4 = 1;
export const XEN_NETIF_GSO_TYPE_TCPV6 = 2;

/*
 * Control ring (feature-ctrl-ring; the frontend grants it as ctrl-ring-ref
 * with event-channel-ctrl). One response per request, matched by id; the
 * backend may answer out of order. 16-byte slots, so 128 of them in a page.
 *
 *   0   1   2   3   4   5   6   7   8   9   10  11  12  13  14  15
 *   +-------+-------+---------------+---------------+---------------+
 *   |  id   | type  |    data[0]    |    data[1]    |    data[2]    |   request
 *   +-------+-------+---------------+---------------+---------------+
 *   |  id   | type  |    status     |     data      |   response (type echoed)
 *   +-------+-------+---------------+---------------+
 */
export const XEN_NETIF_CTRL_REQ_SIZE = 16;
export const CTRLREQ_ID = 0;
export const CTRLREQ_TYPE = 2;
/** data[i] is the u32 at CTRLREQ_DATA + 4 * i. */
export const CTRLREQ_DATA = 4;
export const XEN_NETIF_CTRL_RSP_SIZE = 12;
export const CTRLRSP_ID = 0;
export const CTRLRSP_TYPE = 2;
export const CTRLRSP_STATUS = 4;
export const CTRLRSP_DATA = 8;
export const NETIF_CTRL_SLOT_SIZE = Math.max(XEN_NETIF_CTRL_REQ_SIZE, XEN_NETIF_CTRL_RSP_SIZE);
export const NET_CTRL_RING_SIZE = ringSlots(NETIF_CTRL_SLOT_SIZE);

/** xen_netif_ctrl_request.type; what data[] holds for each is the header's "Control messages". */
export const XEN_NETIF_CTRL_TYPE_INVALID = 0;
export const XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS = 1;
export const XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS = 2;
/** data[0] a gref of the page holding the key, data[1] its length in bytes. */
export const XEN_NETIF_CTRL_TYPE_SET_HASH_KEY = 3;
export const XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE = 4;
export const XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE = 5;
/** data[0] a gref of a page of u32 queue numbers, data[1] how many, data[2] the table index of the first. */
export const XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING = 6;
export const XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM = 7;
export const XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE = 8;
/** data[0] the queue, data[1] a gref of a page of xen_netif_gref entries, data[2] how many. */
export const XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING = 9;
export const XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING = 10;

/** xen_netif_ctrl_response.status (u32) */
export const XEN_NETIF_CTRL_STATUS_SUCCESS = 0;
export const XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED = 1;
export const XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER = 2;
export const XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW = 3;

/**
 * Hash types: bit numbers (the _ names; what a HASH extra-info slot's type
 * byte holds) and the masks SET_HASH_FLAGS and GET_HASH_FLAGS carry. Each
 * hashes the addresses, the _TCP ones the ports too.
 */
export const _XEN_NETIF_CTRL_HASH_TYPE_IPV4 = 0;
export const _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP = 1;
export const _XEN_NETIF_CTRL_HASH_TYPE_IPV6 = 2;
export const _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP = 3;
export const XEN_NETIF_CTRL_HASH_TYPE_IPV4 = 1 << _XEN_NETIF_CTRL_HASH_TYPE_IPV4;
export const XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP = 1 << _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
export const XEN_NETIF_CTRL_HASH_TYPE_IPV6 = 1 << _XEN_NETIF_CTRL_HASH_TYPE_IPV6;
export const XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP = 1 << _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;

/** SET_HASH_ALGORITHM's data[0]; NONE turns hashing off. */
export const XEN_NETIF_CTRL_HASH_ALGORITHM_NONE = 0;
export const XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ = 1;

/*
 * struct xen_netif_gref: an entry of the table ADD_GREF_MAPPING and
 * DEL_GREF_MAPPING point at (in a granted page, not in the ring).
 *
 *   0   1   2   3   4   5   6   7
 *   +---------------+-------+-------+
 *   |      ref      | flags |status |   status: XEN_NETIF_CTRL_STATUS_*, written by the backend
 *   +---------------+-------+-------+
 */
export const XEN_NETIF_GREF_SIZE = 8;
export const NETIF_GREF_REF = 0;
export const NETIF_GREF_FLAGS = 4;
export const NETIF_GREF_STATUS = 6;
export const _XEN_NETIF_CTRLF_GREF_readonly = 0;
export const XEN_NETIF_CTRLF_GREF_readonly = 1 << _XEN_NETIF_CTRLF_GREF_readonly;

/**
 * An extra-info slot copied out of a ring. Every view of the union is
 * decoded from the one copy; only the one `type` names means anything.
 */
export interface NetifExtraInfo {
  type: number;
  flags: number;
  gsoSize: number;
  gsoType: number;
  gsoFeatures: number;
  /** The 6 bytes of u.mcast.addr (this object's own array, refilled by each read). */
  mcastAddr: Uint8Array;
  hashType: number;
  hashAlgorithm: number;
  hashValue: number;
  xdpHeadroom: number;
}

export function newExtraInfo(): NetifExtraInfo {
  return {
    type: 0,
    flags: 0,
    gsoSize: 0,
    gsoType: 0,
    gsoFeatures: 0,
    mcastAddr: new Uint8Array(EXTRA_MCAST_ADDR_LEN),
    hashType: 0,
    hashAlgorithm: 0,
    hashValue: 0,
    xdpHeadroom: 0,
  };
}

/**
 * Copies the extra-info slot at byte `o` of a ring page into `into` (reused
 * by the caller: nothing is allocated): the slot is read once, as two u32s,
 * and every field decoded from that copy.
 */
export function readExtraInfo(dv: DataView, o: number, into: NetifExtraInfo = newExtraInfo()): NetifExtraInfo {
  const lo = dv.getUint32(o, true);
  const hi = dv.getUint32(o + 4, true);
  into.type = lo & 0xff;
  into.flags = (lo >>> 8) & 0xff;
  into.gsoSize = into.xdpHeadroom = lo >>> 16;
  into.gsoType = hi & 0xff;
  into.gsoFeatures = hi >>> 16;
  into.hashType = (lo >>> 16) & 0xff;
  into.hashAlgorithm = lo >>> 24;
  into.hashValue = hi;
  const a = into.mcastAddr;
  a[0] = (lo >>> 16) & 0xff;
  a[1] = lo >>> 24;
  a[2] = hi & 0xff;
  a[3] = (hi >>> 8) & 0xff;
  a[4] = (hi >>> 16) & 0xff;
  a[5] = hi >>> 24;
  return into;
}

/**
 * Writes an extra-info slot's 8 bytes at byte `o`: type, flags and the union
 * member `type` names (GSO's pad, XDP's pad and the union of an unknown type
 * written as zeros). The rest of a 12-byte TX slot is left as it was.
 */
export function writeExtraInfo(dv: DataView, o: number, e: Readonly<NetifExtraInfo>): void {
  let u16 = 0; // bytes 2..3
  let u32 = 0; // bytes 4..7
  switch (e.type) {
    case XEN_NETIF_EXTRA_TYPE_GSO:
      u16 = e.gsoSize & 0xffff;
      u32 = (e.gsoType & 0xff) | ((e.gsoFeatures & 0xffff) << 16);
      break;
    case XEN_NETIF_EXTRA_TYPE_MCAST_ADD:
    case XEN_NETIF_EXTRA_TYPE_MCAST_DEL: {
      const a = e.mcastAddr;
      u16 = a[0] | (a[1] << 8);
      u32 = a[2] | (a[3] << 8) | (a[4] << 16) | (a[5] << 24);
      break;
    }
    case XEN_NETIF_EXTRA_TYPE_HASH:
      u16 = (e.hashType & 0xff) | ((e.hashAlgorithm & 0xff) << 8);
      u32 = e.hashValue;
      break;
    case XEN_NETIF_EXTRA_TYPE_XDP:
      u16 = e.xdpHeadroom & 0xffff;
      break;
  }
  dv.setUint32(o, (e.type & 0xff) | ((e.flags & 0xff) << 8) | (u16 << 16), true);
  dv.setUint32(o + 4, u32 >>> 0, true);
}

/** A control-ring request copied out of the ring. */
export interface NetifCtrlRequest {
  id: number;
  type: number;
  data: [number, number, number];
}

/** A control-ring response. */
export interface NetifCtrlResponse {
  id: number;
  type: number;
  status: number;
  data: number;
}

/** Copies the control request at byte `o` into `into` (reused by the caller), each field read once. */
export function readCtrlRequest(dv: DataView, o: number, into: NetifCtrlRequest = { id: 0, type: 0, data: [0, 0, 0] }): NetifCtrlRequest {
  const w = dv.getUint32(o, true);
  into.id = w & 0xffff;
  into.type = w >>> 16;
  into.data[0] = dv.getUint32(o + CTRLREQ_DATA, true);
  into.data[1] = dv.getUint32(o + CTRLREQ_DATA + 4, true);
  into.data[2] = dv.getUint32(o + CTRLREQ_DATA + 8, true);
  return into;
}

export function writeCtrlRequest(dv: DataView, o: number, r: Readonly<NetifCtrlRequest>): void {
  dv.setUint16(o + CTRLREQ_ID, r.id, true);
  dv.setUint16(o + CTRLREQ_TYPE, r.type, true);
  for (let i = 0; i < 3; i++) dv.setUint32(o + CTRLREQ_DATA + 4 * i, r.data[i] >>> 0, true);
}

/** Copies the control response at byte `o` into `into` (reused by the caller), each field read once. */
export function readCtrlResponse(dv: DataView, o: number, into: NetifCtrlResponse = { id: 0, type: 0, status: 0, data: 0 }): NetifCtrlResponse {
  const w = dv.getUint32(o, true);
  into.id = w & 0xffff;
  into.type = w >>> 16;
  into.status = dv.getUint32(o + CTRLRSP_STATUS, true);
  into.data = dv.getUint32(o + CTRLRSP_DATA, true);
  return into;
}

export function writeCtrlResponse(dv: DataView, o: number, r: Readonly<NetifCtrlResponse>): void {
  dv.setUint16(o + CTRLRSP_ID, r.id, true);
  dv.setUint16(o + CTRLRSP_TYPE, r.type, true);
  dv.setUint32(o + CTRLRSP_STATUS, r.status >>> 0, true);
  dv.setUint32(o + CTRLRSP_DATA, r.data >>> 0, true);
}
