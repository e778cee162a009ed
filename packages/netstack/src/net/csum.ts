/**
 * Checksum offload on Ethernet frames, as Linux handles CHECKSUM_PARTIAL:
 * a frame whose TCP or UDP checksum field holds the folded IPv4
 * pseudo-header sum (what tcp_v4_send_check and udp4_hwcsum leave there),
 * to be completed by whoever sends it on (the NIC, or software where
 * nothing below can: skb_checksum_help). Headers are parsed as
 * skb_checksum_setup_ipv4 parses them (netback's checksum_setup): an IPv4
 * TCP or UDP frame that is not a fragment, every header within the frame.
 * Nothing here throws: a frame that is not such a frame is answered with the
 * reason, for the caller to count.
 */
import type { Tap } from '@xsim/hypervisor';
import { ETH_HLEN, ETH_P_8021Q, ETH_P_IP, IPPROTO_UDP, IP_HLEN, UDP_HLEN, onesSum, readU16, writeU16 } from './wire.ts';

/** IPPROTO_TCP (the tcp module has its own; the flat namespace keeps one name per thing). */
const PROTO_TCP = 6;
/** The TCP header without options (RFC 9293 §3.1). */
const TCP_MIN_HLEN = 20;
/** Where the checksum field sits in each L4 header. */
export const TCP_CSUM_OFF = 16;
export const UDP_CSUM_OFF = 6;

/** Where a TCP or UDP frame's layers start (absolute offsets in the buffer). */
export interface L4Frame {
  /** The IPv4 header. */
  l3: number;
  /** The TCP or UDP header (csum_start). */
  l4: number;
  /** Octets from the L4 header to the IPv4 datagram's end (its total length, not the frame's: padding is not summed). */
  l4len: number;
  proto: number;
  /** The checksum field (csum_start + csum_offset). */
  csum: number;
}

/** Why a frame cannot carry a partial checksum (what skb_checksum_setup answers -EPROTO or -EINVAL for). */
export type CsumSetupError = 'not-ipv4' | 'truncated' | 'bad-ihl' | 'bad-length' | 'fragment' | 'not-tcp-udp';

const scratch: L4Frame = { l3: 0, l4: 0, l4len: 0, proto: 0, csum: 0 };

/**
 * The layers of an IPv4 TCP or UDP frame at [off, off+len) (one 802.1Q tag
 * allowed), or why it is not one. The answer is a shared object, valid until
 * the next call (no allocation per frame); pass `out` to keep one.
 */
export function l4Frame(buf: Uint8Array, off: number, len: number, out: L4Frame = scratch): L4Frame | CsumSetupError {
  if (off < 0 || len < ETH_HLEN || off + len > buf.length) return 'truncated';
  let l3 = off + ETH_HLEN;
  let type = readU16(buf, off + 12);
  if (type === ETH_P_8021Q) {
    if (len < ETH_HLEN + 4) return 'truncated';
    type = readU16(buf, off + 16);
    l3 += 4;
  }
  if (type !== ETH_P_IP) return 'not-ipv4';
  const l3len = off + len - l3;
  if (l3len < IP_HLEN) return 'truncated';
  if (buf[l3] >> 4 !== 4) return 'not-ipv4';
  const ihl = (buf[l3] & 15) * 4;
  if (ihl < IP_HLEN) return 'bad-ihl';
  if (ihl > l3len) return 'truncated';
  const total = readU16(buf, l3 + 2);
  if (total < ihl) return 'bad-length';
  if (total > l3len) return 'truncated';
  // More fragments, or a fragment offset: the L4 header and data are not all here (ip_is_fragment).
  if (readU16(buf, l3 + 6) & 0x3fff) return 'fragment';
  const proto = buf[l3 + 9];
  const l4len = total - ihl;
  let field: number;
  if (proto === PROTO_TCP) {
    if (l4len < TCP_MIN_HLEN) return 'truncated';
    field = TCP_CSUM_OFF;
  } else if (proto === IPPROTO_UDP) {
    if (l4len < UDP_HLEN) return 'truncated';
    field = UDP_CSUM_OFF;
  } else return 'not-tcp-udp';
  out.l3 = l3;
  out.l4 = l3 + ihl;
  out.l4len = l4len;
  out.proto = proto;
  out.csum = l3 + ihl + field;
  return out;
}

/** The IPv4 pseudo-header's sum (RFC 9293 §3.1, RFC 768), folded, not inverted. */
export function pseudoHeaderSum(buf: Uint8Array, f: L4Frame): number {
  const ip = f.l3;
  return onesSum(buf, ip + 12, 8, f.proto + f.l4len);
}

/**
 * Make a frame's checksum partial, as a stack offloading it does: the folded
 * pseudo-header sum in the checksum field. False (untouched) for a frame that
 * is not IPv4 TCP or UDP.
 */
export function writePartialL4Checksum(buf: Uint8Array, off: number, len: number): boolean {
  const f = l4Frame(buf, off, len);
  if (typeof f === 'string') return false;
  writeU16(buf, f.csum, pseudoHeaderSum(buf, f));
  return true;
}

/**
 * Complete a partial checksum (skb_checksum_help): sum the L4 header and
 * data from the L4 header on, the field's pseudo-header sum included, fold,
 * complement and store; a UDP result of 0 is sent as 0xffff (0 means "no
 * checksum", RFC 768). False (untouched) for a frame that is not IPv4 TCP
 * or UDP, or is malformed: the caller counts it.
 */
export function completeL4Checksum(buf: Uint8Array, off: number, len: number): boolean {
  const f = l4Frame(buf, off, len);
  if (typeof f === 'string') return false;
  let c = ~onesSum(buf, f.l4, f.l4len) & 0xffff;
  if (c === 0 && f.proto === IPPROTO_UDP) c = 0xffff;
  writeU16(buf, f.csum, c);
  return true;
}

/**
 * The checksum a frame's TCP or UDP header should carry, computed from
 * scratch over the pseudo-header, header and data (the field taken as 0),
 * or -1 if it is not an IPv4 TCP or UDP frame. The frame is not changed.
 */
export function computeL4Checksum(buf: Uint8Array, off: number, len: number): number {
  const f = l4Frame(buf, off, len);
  if (typeof f === 'string') return -1;
  const field = readU16(buf, f.csum);
  // Take the field out of the sum: adding its one's complement subtracts it.
  const sum = onesSum(buf, f.l4, f.l4len, pseudoHeaderSum(buf, f) + (~field & 0xffff));
  const c = ~sum & 0xffff;
  return c === 0 && f.proto === IPPROTO_UDP ? 0xffff : c;
}

/**
 * Is a frame's TCP or UDP checksum right (the receive side's check)? A UDP
 * checksum of 0 is "none" (RFC 768) and passes. False for anything that is
 * not a well-formed IPv4 TCP or UDP frame.
 */
export function verifyL4Checksum(buf: Uint8Array, off: number, len: number): boolean {
  const f = l4Frame(buf, off, len);
  if (typeof f === 'string') return false;
  if (f.proto === IPPROTO_UDP && readU16(buf, f.csum) === 0) return true;
  return onesSum(buf, f.l4, f.l4len, pseudoHeaderSum(buf, f)) === 0xffff;
}

let capture = new Uint8Array(2048);

/**
 * A frame passing a capture point inside a host, whose checksum may be
 * partial: a partial one is captured as a completed copy (tshark checks
 * checksums; the frame itself stays partial). Call it only when `tap.on`.
 */
export function tapFrame(tap: Tap, buf: Uint8Array, off: number, len: number, dir: number, partial: boolean): void {
  if (!partial || len > 65535) return tap.frame(buf, off, len, dir);
  if (capture.length < len) capture = new Uint8Array(65536);
  capture.set(buf.subarray(off, off + len));
  completeL4Checksum(capture, 0, len);
  tap.frame(capture, 0, len, dir);
}
