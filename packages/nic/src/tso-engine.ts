/**
 * The NIC's TCP segmentation offload (TSO, what sfc calls TX TSO): a driver
 * hands one IPv4 TCP frame of up to 64 KiB with the MSS in its first TX
 * descriptor (TXD_TSO), and the NIC cuts it into frames of at most MSS octets
 * of payload, as Linux's tcp_gso_segment does in software:
 *
 *   - every segment carries the frame's Ethernet (one 802.1Q tag at most),
 *     IPv4 and TCP headers, options included;
 *   - IPv4: total length per segment, identification + i, header checksum
 *     recomputed;
 *   - TCP: sequence number + i × MSS; FIN and PSH only on the last segment,
 *     CWR only on the first; the checksum computed whole (the frame's field
 *     held the driver's partial sum, which the engine does not need).
 *
 * What the engine does not parse (not IPv4 TCP, a fragment, headers running
 * past the frame, an IP length that disagrees with the frame, an MSS of 0 or
 * one making segments longer than the port's largest frame) is refused whole:
 * the caller drops the frame and counts it; nothing partial leaves.
 */
import { onesSum } from '@xsim/hypervisor';

/** A parsed TSO frame: where its headers are and how it splits. */
export interface TsoFrame {
  /** Octets of headers (Ethernet, IPv4, TCP) every segment repeats. */
  hdrLen: number;
  /** Offset of the IPv4 header and of the TCP header. */
  l3: number;
  l4: number;
  payload: number;
  mss: number;
  /** Segments it makes: ceil(payload / mss). */
  count: number;
}

const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/** Parse `len` octets at the start of `b` for segmenting at `mss`, or null when the engine cannot (see above). */
export function tsoParse(b: Uint8Array, len: number, mss: number, maxFrame: number): TsoFrame | null {
  if (mss < 1 || len < 14 + 20 + 20) return null;
  let l3 = 14;
  let type = (b[12] << 8) | b[13];
  if (type === 0x8100) {
    type = (b[16] << 8) | b[17];
    l3 = 18;
  }
  if (type !== 0x0800 || len < l3 + 40 || b[l3] >> 4 !== 4) return null;
  const ihl = (b[l3] & 0xf) << 2;
  const total = (b[l3 + 2] << 8) | b[l3 + 3];
  if (ihl < 20 || b[l3 + 9] !== 6 || ((b[l3 + 6] << 8) | b[l3 + 7]) & 0x3fff) return null;
  if (l3 + total !== len) return null;
  const l4 = l3 + ihl;
  if (l4 + 20 > len) return null;
  const thl = (b[l4 + 12] >> 4) << 2;
  if (thl < 20 || l4 + thl > len) return null;
  const hdrLen = l4 + thl;
  const payload = len - hdrLen;
  if (payload < 1 || hdrLen + Math.min(mss, payload) > maxFrame) return null;
  return { hdrLen, l3, l4, payload, mss, count: Math.ceil(payload / mss) };
}

/** Write segment `i` of the frame `src` (parsed as `f`) into `out` from its start; returns the segment's length. */
export function tsoSegment(src: Uint8Array, f: TsoFrame, i: number, out: Uint8Array): number {
  const { hdrLen, l3, l4, mss } = f;
  const off = i * mss;
  const n = Math.min(mss, f.payload - off);
  const last = i === f.count - 1;
  out.set(src.subarray(0, hdrLen), 0);
  out.set(src.subarray(hdrLen + off, hdrLen + off + n), hdrLen);
  // IPv4: this segment's length and identification, its header checksum.
  const ipLen = hdrLen - l3 + n;
  out[l3 + 2] = ipLen >>> 8;
  out[l3 + 3] = ipLen & 0xff;
  const id = (((src[l3 + 4] << 8) | src[l3 + 5]) + i) & 0xffff;
  out[l3 + 4] = id >>> 8;
  out[l3 + 5] = id & 0xff;
  out[l3 + 10] = 0;
  out[l3 + 11] = 0;
  const ipSum = ~onesSum(out, l3, l4 - l3) & 0xffff;
  out[l3 + 10] = ipSum >>> 8;
  out[l3 + 11] = ipSum & 0xff;
  // TCP: the sequence number moves on by what the segments before carried; FIN and PSH end the frame, CWR starts it.
  const seq = ((((src[l4 + 4] << 24) | (src[l4 + 5] << 16) | (src[l4 + 6] << 8) | src[l4 + 7]) >>> 0) + off) >>> 0;
  out[l4 + 4] = seq >>> 24;
  out[l4 + 5] = (seq >>> 16) & 0xff;
  out[l4 + 6] = (seq >>> 8) & 0xff;
  out[l4 + 7] = seq & 0xff;
  let flags = src[l4 + 13];
  if (!last) flags &= ~(TCP_FIN | TCP_PSH);
  if (i > 0) flags &= ~TCP_CWR;
  out[l4 + 13] = flags;
  // The checksum whole: the pseudo-header (addresses, protocol, this segment's TCP length), then header and payload.
  const tcpLen = hdrLen - l4 + n;
  out[l4 + 16] = 0;
  out[l4 + 17] = 0;
  const pseudo = onesSum(out, l3 + 12, 8, 6 + tcpLen);
  const sum = ~onesSum(out, l4, tcpLen, pseudo) & 0xffff;
  out[l4 + 16] = sum >>> 8;
  out[l4 + 17] = sum & 0xff;
  return hdrLen + n;
}
