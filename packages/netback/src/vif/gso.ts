/**
 * Software segmentation of a guest's TCPv4 GSO frame (Linux's skb_segment,
 * tcp_gso_segment), for netback's TX: unless the bridge hands it to a vif
 * that takes it whole (feature-gso-tcpv4: tx-gso.ts), nothing behind xsim's
 * bridge takes a frame over the MTU (the uplink's NIC has no TSO, dom0's
 * stack takes MTU frames), so a frame the frontend sent with a GSO extra-info slot is cut into
 * gso_size segments as it is copied from the guest, each a frame of its own
 * with the original headers adjusted: IPv4 total length, identification (+1
 * a segment) and header checksum; TCP sequence number (+ the payload before
 * it), FIN and PSH only on the last, CWR only on the first; the TCP checksum
 * partial (the segment's pseudo-header sum, CHECKSUM_PARTIAL), completed
 * further on like any partial frame.
 */
import { ETH_HLEN, ETH_P_8021Q, ETH_P_IP, inetChecksum, readU16, readU32, writePartialL4Checksum, writeU16, writeU32 } from '@xsim/netstack';

/** How a GSO frame is cut: where its headers end and how its payload splits. Offsets from the frame's start. */
export interface GsoPlan {
  l3: number;
  l4: number;
  /** Ethernet + IPv4 + TCP headers: what every segment starts with. */
  hlen: number;
  mss: number;
  /** TCP payload octets of the whole frame. */
  payload: number;
  segs: number;
}

const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/**
 * The plan for a TCPv4 GSO frame of `total` octets whose first `have` octets
 * (its headers at least) are at `at`, or why it cannot be segmented: not
 * IPv4 TCP, a fragment, headers not all in `have`, a datagram longer than
 * the frame, or segments that would not fit `maxFrame`.
 */
export function planTcpGso(ram: Uint8Array, at: number, have: number, total: number, mss: number, maxFrame: number): GsoPlan | string {
  if (have < ETH_HLEN + 20) return 'headers cut short';
  let l3 = ETH_HLEN;
  let type = readU16(ram, at + 12);
  if (type === ETH_P_8021Q) {
    type = readU16(ram, at + 16);
    l3 += 4;
  }
  if (type !== ETH_P_IP || ram[at + l3] >> 4 !== 4) return 'not IPv4';
  const ihl = (ram[at + l3] & 15) * 4;
  if (ihl < 20 || l3 + ihl + 20 > have) return 'headers cut short';
  if (ram[at + l3 + 9] !== 6) return 'not TCP';
  if (readU16(ram, at + l3 + 6) & 0x3fff) return 'a fragment';
  const l4 = l3 + ihl;
  const thl = (ram[at + l4 + 12] >> 4) * 4;
  const hlen = l4 + thl;
  if (thl < 20 || hlen > have) return 'headers cut short';
  const ipTotal = readU16(ram, at + l3 + 2);
  if (ipTotal < ihl + thl || l3 + ipTotal > total) return 'IPv4 total length past the frame';
  if (mss < 1 || hlen + mss > maxFrame) return `gso_size ${mss} makes segments over the MTU`;
  const payload = ipTotal - ihl - thl;
  return { l3, l4, hlen, mss, payload, segs: Math.max(1, Math.ceil(payload / mss)) };
}

/** Payload octets of segment `k`. */
export function segmentLen(p: GsoPlan, k: number): number {
  return Math.min(p.mss, p.payload - k * p.mss);
}

/**
 * Segment `k`'s headers at `dst` from the frame's at `src` (both in `ram`),
 * for a segment of `segLen` payload octets: lengths, id, sequence number,
 * flags and checksums adjusted (the TCP one partial). Returns the segment's
 * frame length (headers + payload, the payload written by the caller).
 */
export function writeSegmentHeaders(ram: Uint8Array, src: number, dst: number, p: GsoPlan, k: number, segLen: number): number {
  ram.copyWithin(dst, src, src + p.hlen);
  const ip = dst + p.l3;
  const tcp = dst + p.l4;
  writeU16(ram, ip + 2, p.hlen - p.l3 + segLen);
  writeU16(ram, ip + 4, (readU16(ram, ip + 4) + k) & 0xffff);
  writeU16(ram, ip + 10, 0);
  writeU16(ram, ip + 10, inetChecksum(ram, ip, p.l4 - p.l3));
  writeU32(ram, tcp + 4, (readU32(ram, tcp + 4) + k * p.mss) >>> 0);
  let flags = ram[tcp + 13];
  if (k < p.segs - 1) flags &= ~(TCP_FIN | TCP_PSH);
  if (k > 0) flags &= ~TCP_CWR;
  ram[tcp + 13] = flags;
  const len = p.hlen + segLen;
  // The frame's payload is written after this call; the partial sum covers only the pseudo-header.
  writePartialL4Checksum(ram, dst, len);
  return len;
}
