/**
 * The vdpa plugin's DMA area, as both halves know it (the guest lays it out,
 * dom0 maps it page by page into the function's IOMMU, page i at IOVA
 * iovaBase + i × 4096, so an octet's IOVA is iovaBase plus its offset in the
 * area):
 *
 *     page 0      1       2      3      4       5      6 ..            .. pages - 1
 *     +-------+-------+------+-------+-------+------+---------------+---------------+
 *     | rx    | rx    | rx   | tx    | tx    | tx   | TX buffers    | RX buffers    |
 *     | desc  | avail | used | desc  | avail | used | txSlots × buf | rxBufs × buf  |
 *     +-------+-------+------+-------+-------+------+---------------+---------------+
 *
 * Queue 0 is receiveq1, queue 1 transmitq1 (virtio-net's first pair). A
 * buffer holds the 12-octet virtio_net_hdr then a whole frame: half a page
 * when that fits (two per page), else whole pages, which a chain of one
 * descriptor per page covers (no descriptor crosses a page: the IOMMU maps
 * pages, and the area's pages need not be contiguous in IOVA space to anyone
 * but us).
 */
import { l4Frame } from '@xsim/netstack';
import { VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_SIZE, VNH_CSUM_OFFSET, VNH_CSUM_START, VNH_FLAGS, VQ_PAGE, VQ_PAIR_PAGES, VQ_SIZE } from '@xsim/nic';

export const PAGE = VQ_PAGE;
export const HDR = VIRTIO_NET_HDR_SIZE;
/** Where dom0 maps the area's first page (the backend says so in 'ready'; the guest computes from what it says). */
export const IOVA_BASE = 0;
/** The area's pages holding each queue's descriptor table, available ring and used ring. */
export const QUEUE_PAGES = {
  rx: { desc: 0, avail: 1, used: 2 },
  tx: { desc: 3, avail: 4, used: 5 },
} as const;

/** Budgets: pages for TX and RX buffers at most, and TX slots at most. */
const TX_PAGES = 96;
const RX_PAGES = 192;
const TX_SLOTS_MAX = 128;

export interface Geometry {
  /** Octets of one buffer (header and frame): PAGE / 2, or whole pages. */
  bufBytes: number;
  /** Descriptors a whole buffer takes (one per page it spans). */
  descs: number;
  txSlots: number;
  rxBufs: number;
  /** Area offsets of the first TX and RX buffer. */
  txStart: number;
  rxStart: number;
  pages: number;
}

/** The area for an MTU: every buffer holds the header and a frame of MTU + 18 octets (Ethernet header, VLAN tag, FCS room). */
export function geometry(mtu: number, queueSize = VQ_SIZE): Geometry {
  const need = HDR + mtu + 18;
  const bufBytes = need <= PAGE / 2 ? PAGE / 2 : Math.ceil(need / PAGE) * PAGE;
  const descs = Math.ceil(bufBytes / PAGE);
  const perQueue = Math.floor(queueSize / descs);
  const txSlots = Math.min(TX_SLOTS_MAX, Math.floor((TX_PAGES * PAGE) / bufBytes), perQueue);
  const rxBufs = Math.min(perQueue, Math.floor((RX_PAGES * PAGE) / bufBytes));
  const txStart = VQ_PAIR_PAGES * PAGE;
  const rxStart = txStart + Math.ceil((txSlots * bufBytes) / PAGE) * PAGE;
  return { bufBytes, descs, txSlots, rxBufs, txStart, rxStart, pages: rxStart / PAGE + Math.ceil((rxBufs * bufBytes) / PAGE) };
}

/**
 * The virtio_net_hdr in front of a frame at `at` (the frame at at + HDR, `len`
 * octets): zero, or for a partial checksum (with VIRTIO_NET_F_CSUM)
 * NEEDS_CSUM with csum_start at the TCP or UDP header and csum_offset at its
 * checksum field. False: a partial frame that is no IPv4 TCP or UDP (nothing
 * written: the caller declines it).
 */
export function writeVnetHdr(ram: Uint8Array, at: number, len: number, partial: boolean): boolean {
  const f = partial ? l4Frame(ram, at + HDR, len) : null;
  if (typeof f === 'string') return false;
  ram.fill(0, at, at + HDR);
  if (f) {
    const start = f.l4 - (at + HDR);
    ram[at + VNH_FLAGS] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    ram[at + VNH_CSUM_START] = start & 0xff;
    ram[at + VNH_CSUM_START + 1] = start >>> 8;
    ram[at + VNH_CSUM_OFFSET] = f.csum - f.l4;
  }
  return true;
}

/**
 * The descriptors covering area octets [o, o + n), split at page boundaries,
 * as IOVAs into `iovas`/`lens`; returns how many.
 */
export function chainOf(iovaBase: number, o: number, n: number, iovas: Float64Array, lens: Uint32Array): number {
  let k = 0;
  while (n > 0) {
    const l = Math.min(PAGE - (o % PAGE), n);
    iovas[k] = iovaBase + o;
    lens[k] = l;
    k++;
    o += l;
    n -= l;
  }
  return k;
}
