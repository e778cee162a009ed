/**
 * Ethernet II, ARP (RFC 826) and IPv4/UDP header layouts and their checksums
 * (ICMP's are in icmp.ts), read and written in place in a frame buffer.
 */
export const ETH_HLEN = 14;
export const ETH_ZLEN = 60;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;
export const IP_HLEN = 20;
export const UDP_HLEN = 8;
export const IPPROTO_UDP = 17;
/** Ethernet + IPv4 + UDP headers in front of a UDP payload. */
export const UDP_OVERHEAD = ETH_HLEN + IP_HLEN + UDP_HLEN;
export const ARP_LEN = 28;
export const ARPOP_REQUEST = 1;
export const ARPOP_REPLY = 2;

/** Is this machine little-endian (the word-at-a-time sum reads native 32-bit words)? */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Below this many octets the word-at-a-time sum is not worth its view. */
const WORDS_FROM = 128;

/** A word view of the whole buffer, kept for the buffer summed last (a domain's RAM, a NIC's FIFO: the same one, frame after frame). */
let wordsBuf: ArrayBufferLike | null = null;
let wordsView: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
function wordsOf(buf: ArrayBufferLike): Uint32Array {
  if (buf !== wordsBuf) {
    wordsView = new Uint32Array(buf, 0, buf.byteLength >>> 2);
    wordsBuf = buf;
  }
  return wordsView;
}

/**
 * RFC 1071 one's-complement sum over [off, off+len), folded, not inverted.
 * Long ranges are summed four octets at a time as native words (RFC 1071
 * §2(B): the sum is byte-order independent, the little-endian sum is the
 * big-endian one byte-swapped; §2(C): carries are kept in a wider
 * accumulator and folded once), once the range reaches a 4-octet boundary at
 * an even distance from its start; the rest pair by pair.
 */
export function onesSum(b: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  let i = off;
  const end = off + len;
  if (len >= WORDS_FROM && LITTLE_ENDIAN && ((b.byteOffset + off) & 1) === 0) {
    // Pairs up to the 4-octet boundary (0 or 1 pair: the start is even), then whole words.
    if ((b.byteOffset + i) & 2) {
      sum += (b[i] << 8) | b[i + 1];
      i += 2;
    }
    const words = (end - i) >>> 2;
    const u32 = wordsOf(b.buffer);
    const first = (b.byteOffset + i) >>> 2;
    let w = 0;
    for (let k = first, last = first + words; k < last; k++) w += u32[k];
    // w < 2^53 (at most 2^21 words of 2^32): fold to 16 bits, then swap to network order.
    while (w > 0xffff) w = Math.floor(w / 65536) + (w % 65536);
    sum += ((w & 0xff) << 8) | (w >>> 8);
    i += words << 2;
  }
  const pairsEnd = i + ((end - i) & ~1);
  for (; i < pairsEnd; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (i < end) sum += b[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The internet checksum of a range (what goes into the header field). */
export function inetChecksum(b: Uint8Array, off: number, len: number): number {
  return ~onesSum(b, off, len) & 0xffff;
}

export function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}
export function readU16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
export function readU32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** Write an IPv4 header (no options, DF, TTL 64) at `o` for `payloadLen` octets of protocol `proto` after it. */
export function writeIpHeader(b: Uint8Array, o: number, src: number, dst: number, id: number, proto: number, payloadLen: number): void {
  b[o] = 0x45;
  b[o + 1] = 0;
  writeU16(b, o + 2, IP_HLEN + payloadLen);
  writeU16(b, o + 4, id & 0xffff);
  writeU16(b, o + 6, 0x4000);
  b[o + 8] = 64;
  b[o + 9] = proto;
  writeU16(b, o + 10, 0);
  writeU32(b, o + 12, src);
  writeU32(b, o + 16, dst);
  writeU16(b, o + 10, inetChecksum(b, o, IP_HLEN));
}

/** Write IPv4 (no options, DF) + UDP headers at `o` (the IP header start). UDP checksum 0 = none (RFC 768). */
export function writeIpUdp(b: Uint8Array, o: number, src: number, dst: number, id: number, srcPort: number, dstPort: number, payloadLen: number): void {
  writeIpHeader(b, o, src, dst, id, IPPROTO_UDP, UDP_HLEN + payloadLen);
  const u = o + IP_HLEN;
  writeU16(b, u, srcPort);
  writeU16(b, u + 2, dstPort);
  writeU16(b, u + 4, UDP_HLEN + payloadLen);
  writeU16(b, u + 6, 0);
}

/** The UDP checksum with the IPv4 pseudo-header, for frames that want one. */
export function udpChecksum(b: Uint8Array, ip: number): number {
  const udp = ip + IP_HLEN;
  const len = readU16(b, udp + 4);
  let pseudo = 0;
  pseudo += readU16(b, ip + 12) + readU16(b, ip + 14) + readU16(b, ip + 16) + readU16(b, ip + 18);
  pseudo += IPPROTO_UDP + len;
  const c = ~onesSum(b, udp, len, pseudo) & 0xffff;
  return c === 0 ? 0xffff : c;
}
