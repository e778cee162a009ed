/**
 * The NIC's checksum engine (what sfc calls TX checksum offload and RX
 * checksum validation): on TX it completes a frame's TCP or UDP checksum
 * whose field holds the driver's pseudo-header sum (Linux's CHECKSUM_PARTIAL
 * convention: the hardware sums from the L4 header to the datagram's end,
 * that field included, and stores the complement); on RX it checks one.
 * Hardware parses what it understands: Ethernet (one 802.1Q tag), IPv4 with
 * options, not a fragment, TCP or UDP, every header within the frame; for
 * anything else it answers "not mine" (-1 / false) and leaves the bytes alone.
 */
import { onesSum } from '@xsim/hypervisor';

/** Where a frame's L4 header starts, its length, and whether it is UDP; scratch, valid until the next parse. */
const at = { l3: 0, l4: 0, l4len: 0, udp: false };

/** Parse [off, off+len): true when it is an IPv4 TCP or UDP frame the engine handles (offsets in `at`). */
function parse(b: Uint8Array, off: number, len: number): boolean {
  if (off < 0 || len < 34 || off + len > b.length) return false;
  let ip = off + 14;
  let type = (b[off + 12] << 8) | b[off + 13];
  if (type === 0x8100) {
    type = (b[off + 16] << 8) | b[off + 17];
    ip += 4;
  }
  const room = off + len - ip;
  if (type !== 0x0800 || room < 20 || b[ip] >> 4 !== 4) return false;
  const ihl = (b[ip] & 0xf) << 2;
  const total = (b[ip + 2] << 8) | b[ip + 3];
  if (ihl < 20 || total < ihl || total > room) return false;
  if (((b[ip + 6] << 8) | b[ip + 7]) & 0x3fff) return false;
  const proto = b[ip + 9];
  const l4len = total - ihl;
  if (!((proto === 6 && l4len >= 20) || (proto === 17 && l4len >= 8))) return false;
  at.l3 = ip;
  at.l4 = ip + ihl;
  at.l4len = l4len;
  at.udp = proto === 17;
  return true;
}

/** Where a TCP or UDP frame's checksum is, as virtio's csum_start (L4 header, from the frame's start) * 65536 + csum_offset; -1 for anything else. */
export function nicCsumField(b: Uint8Array, off: number, len: number): number {
  if (!parse(b, off, len)) return -1;
  return (at.l4 - off) * 65536 + (at.udp ? 6 : 16);
}

/** TX: complete the frame's partial checksum in place. False: not a frame the engine can (left as it was). */
export function nicCompleteCsum(b: Uint8Array, off: number, len: number): boolean {
  if (!parse(b, off, len)) return false;
  const field = at.l4 + (at.udp ? 6 : 16);
  let c = ~onesSum(b, at.l4, at.l4len, 0) & 0xffff;
  if (c === 0 && at.udp) c = 0xffff;
  b[field] = c >>> 8;
  b[field + 1] = c & 0xff;
  return true;
}

/**
 * TX, virtio's way (VIRTIO_NET_HDR_F_NEEDS_CSUM): sum from `start` to the
 * frame's end, fold, complement, store at start + offset (a UDP result of 0
 * as 0xffff). False (left alone) when start and offset do not lie in the frame.
 */
export function nicCompleteAt(b: Uint8Array, off: number, len: number, start: number, offset: number): boolean {
  if (start < 14 || offset < 0 || (offset & 1) !== 0 || start + offset + 2 > len || off + len > b.length) return false;
  let c = ~onesSum(b, off + start, len - start, 0) & 0xffff;
  if (c === 0 && offset === 6) c = 0xffff;
  b[off + start + offset] = c >>> 8;
  b[off + start + offset + 1] = c & 0xff;
  return true;
}

/**
 * RX: is the frame's TCP or UDP checksum good (the pseudo-header included)?
 * False for a bad one, for UDP without a checksum (0: nothing to vouch for),
 * and for anything the engine does not parse.
 */
export function nicCsumGood(b: Uint8Array, off: number, len: number): boolean {
  if (!parse(b, off, len)) return false;
  const field = at.l4 + (at.udp ? 6 : 16);
  if (at.udp && b[field] === 0 && b[field + 1] === 0) return false;
  const pseudo = onesSum(b, at.l3 + 12, 8, (at.udp ? 17 : 6) + at.l4len);
  return onesSum(b, at.l4, at.l4len, pseudo) === 0xffff;
}
