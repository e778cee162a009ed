/**
 * The virtio NIC's queue ABI (the second NIC model, `nic:1af4-1041`, a vDPA
 * device: its functions present virtio-net's split virtqueues in hardware,
 * as a ConnectX vDPA VF or Intel's IFC VF do). This file is the one place
 * these offsets live; they are virtio 1.x's (OASIS virtio v1.2, §2.7 "Split
 * Virtqueues", §5.1.6 "Device Operation" of the network device), little-endian.
 *
 * A function has two queues, as virtio-net's first queue pair: receiveq1 is
 * queue 0, transmitq1 is queue 1. Each queue is three areas in the driver's
 * memory, every address an IOVA the function's IOMMU translates (iotlb_map:
 * only dom0 maps, only pages of the function's domain):
 *
 *   descriptor table   VQ_SIZE × 16 B, one page
 *      0               8               12      14      16
 *     +---------------+---------------+-------+-------+
 *     | addr (le64)   | len (le32)    | flags | next  |   flags: NEXT 1, WRITE 2
 *     +---------------+---------------+-------+-------+
 *
 *   available ring (driver → device), one page
 *      0       2       4                         4+2N      4+2N+2
 *     +-------+-------+--------- ... -----------+---------+
 *     | flags | idx   | ring[N] (le16 heads)    | used_event |
 *     +-------+-------+--------- ... -----------+---------+
 *
 *   used ring (device → driver), one page
 *      0       2       4                         4+8N      4+8N+2
 *     +-------+-------+--------- ... -----------+---------+
 *     | flags | idx   | ring[N] {id le32,len le32} | avail_event |
 *     +-------+-------+--------- ... -----------+---------+
 *
 * Indices are free-running u16; slot = idx & (N - 1). VIRTIO_F_EVENT_IDX is
 * always negotiated: the driver notifies (kicks) the device only when
 * vring_need_event(avail_event, new, old) says so, and the device interrupts
 * the driver only when vring_need_event(used_event, new, old) does. A device
 * that polls leaves avail_event behind (no kicks); before it sleeps it sets
 * avail_event to what it consumed and looks once more.
 *
 * Every frame on either queue starts with the 12-byte virtio_net_hdr (v1):
 *
 *      0       1          2          4          6            8             10            12
 *     +-------+----------+----------+----------+------------+-------------+-------------+
 *     | flags | gso_type | hdr_len  | gso_size | csum_start | csum_offset | num_buffers |
 *     +-------+----------+----------+----------+------------+-------------+-------------+
 *
 * Checksum offload, when fn_start's features negotiate it (virtio 1.2
 * §5.1.6.2): VIRTIO_NET_F_CSUM lets the driver send a frame flagged
 * VIRTIO_NET_HDR_F_NEEDS_CSUM (the device sums from csum_start to the end of
 * the frame, the field's pseudo-header sum included, and stores the
 * complement at csum_start + csum_offset); VIRTIO_NET_F_GUEST_CSUM lets the
 * device flag a received frame VIRTIO_NET_HDR_F_DATA_VALID (its TCP or UDP
 * checksum checked good). No GSO (gso_type VIRTIO_NET_HDR_GSO_NONE); the
 * device writes num_buffers 1 (each received frame fills one chain).
 *
 * And a notify area, 32 bytes, made fresh by the device for each fn_start
 * and shared by the function's driver and the device only:
 *
 *   word 0  NOTIFY   driver → device  the queue index last kicked (virtio's notify register)
 *   word 1  STATUS   device → driver  virtio device status bits | fault reason << 8
 *                                      (DRIVER_OK while running; DEVICE_NEEDS_RESET on a fault)
 *   word 2  KICKS    driver → device  kicks so far (the device only counts them)
 *   word 3  RX_SEEN  driver → device  receiveq used entries the driver has taken (u16, as used.idx).
 *                                      Not virtio's: it lets a device that stops a function whose
 *                                      driver is gone count the frames it delivered and nobody read.
 */
export const VQ_SIZE = 256;
export const VQ_RX = 0;
export const VQ_TX = 1;

export const VQ_DESC_SIZE = 16;
export const VQD_ADDR = 0;
export const VQD_LEN = 8;
export const VQD_FLAGS = 12;
export const VQD_NEXT = 14;
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
/** Indirect descriptors (VIRTIO_F_INDIRECT_DESC) are not offered: a chain using one is a fault. */
export const VIRTQ_DESC_F_INDIRECT = 4;

export const VQA_FLAGS = 0;
export const VQA_IDX = 2;
export const VQA_RING = 4;
export const vqUsedEventOffset = (size: number): number => VQA_RING + 2 * size;

export const VQU_FLAGS = 0;
export const VQU_IDX = 2;
export const VQU_RING = 4;
export const VQU_ELEM_SIZE = 8;
export const vqAvailEventOffset = (size: number): number => VQU_RING + VQU_ELEM_SIZE * size;

/** Pages of one queue (descriptor table, available ring, used ring: a page each). */
export const VQ_QUEUE_PAGES = 3;
/** Pages a function's two queues take. */
export const VQ_PAIR_PAGES = 2 * VQ_QUEUE_PAGES;
export const VQ_PAGE = 4096;

/** virtio_net_hdr v1 (VIRTIO_F_VERSION_1: num_buffers always present). */
export const VIRTIO_NET_HDR_SIZE = 12;
export const VNH_FLAGS = 0;
export const VNH_CSUM_START = 6;
export const VNH_CSUM_OFFSET = 8;
export const VNH_NUM_BUFFERS = 10;
/** virtio_net_hdr flags (virtio 1.2 §5.1.6). */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
/** virtio-net feature bits fn_start's features may carry (as masks: 1 << bit number). */
export const VIRTIO_NET_F_CSUM = 1 << 0;
export const VIRTIO_NET_F_GUEST_CSUM = 1 << 1;

// Notify area (Int32 words).
export const N_NOTIFY = 0;
export const N_STATUS = 1;
export const N_KICKS = 2;
export const N_RX_SEEN = 3;
export const NOTIFY_BYTES = 32;

/** virtio device status bits (virtio 1.2 §2.1). */
export const VIRTIO_STATUS_DRIVER_OK = 4;
export const VIRTIO_STATUS_NEEDS_RESET = 64;

export const VQ_FAULT_NONE = 0;
/** A descriptor's address range is not mapped in the function's IOMMU (or not the function's domain). */
export const VQ_FAULT_IOMMU = 1;
/** A descriptor index past the table, a chain longer than the table (a loop), or an indirect descriptor. */
export const VQ_FAULT_CHAIN = 2;
/** A chain with the wrong direction: a writable descriptor on TX, a read-only one on RX. */
export const VQ_FAULT_DIRECTION = 3;
/** The available index moved further than the queue holds. */
export const VQ_FAULT_INDEX = 4;
export const VQ_FAULT_NAMES = ['none', 'iommu', 'chain', 'direction', 'index'];

/** virtio's vring_need_event: has the other side's event index been passed between old and new? (u16 arithmetic) */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

export function vqStatus(word: number): { status: number; fault: number } {
  return { status: word & 0xff, fault: (word >>> 8) & 0xff };
}
