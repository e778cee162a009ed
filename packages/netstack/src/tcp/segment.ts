/**
 * The TCP header (RFC 9293 §3.1), read and written in place, and its
 * checksum over the IPv4 pseudo-header.
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |          Source Port          |       Destination Port        |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                        Sequence Number                        |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                    Acknowledgment Number                      |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |  Data |       |C|E|U|A|P|R|S|F|                               |
 *     | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 *     |       |       |R|E|G|K|H|T|N|N|                               |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |           Checksum            |         Urgent Pointer        |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                    Options (data offset > 5)    |    Padding  |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                             Data                              |
 *
 * Data offset counts 32-bit words (5..15). The checksum is the one's
 * complement of the one's-complement sum over the pseudo-header (source and
 * destination IPv4 address, zero, protocol 6, TCP length) and the whole
 * segment. Options (MSS, Window Scale, SACK-Permitted, SACK, Timestamps)
 * are options.ts's.
 */
import { onesSum, readU16, readU32, writeU16, writeU32 } from '../net/wire.ts';
import { optionsLen, parseOptions, writeOptions, type TcpOptionsIn, type TcpOptionsOut } from './options.ts';

export const IPPROTO_TCP = 6;
export const TCP_HLEN = 20;
export const TCP_MAX_HLEN = 60;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;

/** A parsed segment with its options; one is reused per receiver, its payload left in place in `buf`. */
export interface TcpSegment extends TcpOptionsIn {
  buf: Uint8Array;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urgent: number;
  /** Where the payload starts in `buf`, and its length. */
  dataOff: number;
  dataLen: number;
}

export function emptySegment(): TcpSegment {
  return {
    buf: new Uint8Array(0),
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    flags: 0,
    window: 0,
    urgent: 0,
    dataOff: 0,
    dataLen: 0,
    mss: 0,
    wscale: -1,
    sackOk: false,
    hasTs: false,
    tsVal: 0,
    tsEcr: 0,
    sack: [0, 0, 0, 0, 0, 0, 0, 0],
    sackCount: 0,
  };
}

/** Why a segment was not parsed (each a counted reason, see counters.ts). */
export type TcpParseError = 'short' | 'badOffset' | 'badOption' | 'badChecksum';

/**
 * The folded 16-bit one's-complement sum of the IPv4 pseudo-header (source,
 * destination, zero + protocol 6, TCP length), not complemented: what a
 * segment sent for checksum offload carries in its checksum field (Linux's
 * CHECKSUM_PARTIAL), so that whoever completes it sums the TCP header and
 * data from the header's start (this field included), folds, complements
 * and stores the result, which then equals tcpChecksum of the segment.
 */
export function tcpPseudoSum(srcIp: number, dstIp: number, tcpLen: number): number {
  let sum = (srcIp >>> 16) + (srcIp & 0xffff) + (dstIp >>> 16) + (dstIp & 0xffff) + IPPROTO_TCP + tcpLen;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The TCP checksum of `len` octets at `off` with the IPv4 pseudo-header (the field's value, as written). */
export function tcpChecksum(b: Uint8Array, off: number, len: number, srcIp: number, dstIp: number): number {
  return ~onesSum(b, off, len, tcpPseudoSum(srcIp, dstIp, len)) & 0xffff;
}

/**
 * Parse the segment of `len` octets at `off` (the IP payload, `len` from the
 * IP total length) sent from `srcIp` to `dstIp` into `out`. Returns null when
 * it is well formed, else the reason; never throws. `csumValidated`: the
 * checksum is not verified (the driver said the data was validated, or its
 * checksum left blank by a sender on the same host: NETRXF_data_validated /
 * NETRXF_csum_blank).
 */
export function parseTcp(b: Uint8Array, off: number, len: number, srcIp: number, dstIp: number, out: TcpSegment, csumValidated = false): TcpParseError | null {
  if (len < TCP_HLEN || off < 0 || off + len > b.length) return 'short';
  const hlen = (b[off + 12] >>> 4) * 4;
  if (hlen < TCP_HLEN || hlen > len) return 'badOffset';
  if (!csumValidated && tcpChecksum(b, off, len, srcIp, dstIp) !== 0) return 'badChecksum';
  out.buf = b;
  out.srcPort = readU16(b, off);
  out.dstPort = readU16(b, off + 2);
  out.seq = readU32(b, off + 4);
  out.ack = readU32(b, off + 8);
  out.flags = b[off + 13] & 0x3f;
  out.window = readU16(b, off + 14);
  out.urgent = readU16(b, off + 18);
  out.dataOff = off + hlen;
  out.dataLen = len - hlen;
  if (!parseOptions(b, off + TCP_HLEN, off + hlen, out)) return 'badOption';
  return null;
}

/** The header fields a sender fills, and its options (options.ts). */
export interface TcpHeaderFields extends TcpOptionsOut {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
}

/** The header length writeTcp uses for these fields. */
export function tcpHeaderLen(h: TcpHeaderFields): number {
  return TCP_HLEN + optionsLen(h);
}

/**
 * Write the header at `off` in front of `dataLen` octets of payload already
 * in place after it (at off + tcpHeaderLen(h)), and the checksum. Returns
 * the segment's length. `csumPartial`: the checksum field gets only the
 * pseudo-header's sum (tcpPseudoSum) for an offload engine to complete.
 */
export function writeTcp(b: Uint8Array, off: number, h: TcpHeaderFields, dataLen: number, srcIp: number, dstIp: number, csumPartial = false): number {
  const hlen = tcpHeaderLen(h);
  writeU16(b, off, h.srcPort);
  writeU16(b, off + 2, h.dstPort);
  writeU32(b, off + 4, h.seq >>> 0);
  writeU32(b, off + 8, h.ack >>> 0);
  b[off + 12] = (hlen / 4) << 4;
  b[off + 13] = h.flags & 0x3f;
  writeU16(b, off + 14, h.window);
  writeU16(b, off + 16, 0);
  writeU16(b, off + 18, 0);
  writeOptions(b, off + TCP_HLEN, h);
  const len = hlen + dataLen;
  writeU16(b, off + 16, csumPartial ? tcpPseudoSum(srcIp, dstIp, len) : tcpChecksum(b, off, len, srcIp, dstIp));
  return len;
}
