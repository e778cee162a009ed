/**
 * Ethernet II, ARP (RFC 826) and IPv4/UDP header layouts and their checksums
 * (ICMP's are in icmp.ts), read and written in place in a frame buffer.
 */
// RFC 1071's sum lives where the NICs' checksum engines share it (@xsim/hypervisor, abi/inet-csum.ts).
import { onesSum } from '@xsim/hypervisor';
export { onesSum };

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
