/**
 * VXLAN's encapsulation (RFC 7348 section 5): an Ethernet frame carried as the
 * payload of a UDP datagram behind an 8-octet header:
 *
 *    0                   1                   2                   3
 *   |R|R|R|R|I|R|R|R|            Reserved (24 bits)                 |
 *   |        VXLAN Network Identifier (VNI)         |   Reserved    |
 *
 * The I flag (0x08 in the first octet) must be set: "the I flag MUST be set
 * to 1 for a valid VXLAN Network ID"; the reserved fields "MUST be set to
 * zero on transmission and ignored on receipt". Linux's vxlan driver
 * (drivers/net/vxlan/vxlan_core.c, vxlan_rcv) is stricter than "ignored":
 * with no extension configured (GBP, GPE, remote checksum offload) a flag
 * other than I, or a set bit in the octet after the VNI, is "unprocessed"
 * and the datagram dropped as malformed. This parser does as Linux does: a
 * peer that sets another bit speaks an extension we do not.
 *
 * Outer headers: Ethernet 14, IPv4 20, UDP 8, VXLAN 8 = 50 octets, as Linux's
 * VXLAN_HEADROOM. Of those, an IP MTU counts all but the outer Ethernet
 * header: an inner frame of `len` octets needs an underlay MTU of len + 36.
 */

/** Octets of the VXLAN header. */
export const VXLAN_HEADER = 8;
/** Outer Ethernet (14) + IPv4 (20) + UDP (8) + VXLAN (8): what a tunnel adds to each frame on the underlay. */
export const VXLAN_OVERHEAD = 50;
/** Of the overhead, what an IP MTU counts (all but the outer Ethernet header). */
export const VXLAN_IP_OVERHEAD = VXLAN_OVERHEAD - 14;
/** IANA's VXLAN port, and Linux's `dstport` default. */
export const VXLAN_PORT = 4789;
/** The I flag: the VNI is valid. */
export const VXLAN_FLAG_I = 0x08;
/** The largest VNI: 24 bits. */
export const VNI_MAX = 0xffffff;
/** The smallest inner frame: an Ethernet header. */
export const ETH_HEADER = 14;

/** Write the 8-octet header for `vni` at `off` (reserved fields zero). */
export function writeVxlanHeader(buf: Uint8Array, off: number, vni: number): void {
  if (!Number.isInteger(vni) || vni < 0 || vni > VNI_MAX) throw new RangeError(`VNI ${vni} is outside 0..${VNI_MAX}`);
  buf[off] = VXLAN_FLAG_I;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = (vni >>> 16) & 0xff;
  buf[off + 5] = (vni >>> 8) & 0xff;
  buf[off + 6] = vni & 0xff;
  buf[off + 7] = 0;
}

/** Why a datagram is not a VXLAN frame we take: each a counter of the tunnel's. */
export type VxlanReject = 'vxlanRxShort' | 'vxlanRxBadHeader' | 'vxlanRxRunt';

export type VxlanParse = { ok: true; vni: number; frameOff: number; frameLen: number } | { ok: false; why: VxlanReject };

/**
 * Parse a received datagram (private memory: the caller copied it out of the
 * ring once). Accepted only when it holds the header with exactly the I flag
 * set in the flags word and the octet after the VNI zero (as Linux), and an
 * inner frame of at least an Ethernet header.
 */
export function parseVxlan(d: Uint8Array, len = d.length): VxlanParse {
  if (len < VXLAN_HEADER || len > d.length) return { ok: false, why: 'vxlanRxShort' };
  if (d[0] !== VXLAN_FLAG_I || d[1] !== 0 || d[2] !== 0 || d[3] !== 0 || d[7] !== 0) return { ok: false, why: 'vxlanRxBadHeader' };
  if (len - VXLAN_HEADER < ETH_HEADER) return { ok: false, why: 'vxlanRxRunt' };
  const vni = (d[4] << 16) | (d[5] << 8) | d[6];
  return { ok: true, vni, frameOff: VXLAN_HEADER, frameLen: len - VXLAN_HEADER };
}

/** An IPv4 address and UDP port, as a tunnel end names them. */
export interface UdpAddr {
  addr: string;
  port: number;
}

const QUAD = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

/**
 * "ADDR:PORT" (or "ADDR", for port 4789): an IPv4 dotted quad without leading
 * zeros and a port 1..65535. Returns an error message instead when it is not.
 */
export function parseUdpAddr(s: string, defaultPort = VXLAN_PORT): UdpAddr | string {
  const m = /^([^:]*)(?::([0-9]{1,5}))?$/.exec(s);
  if (!m) return `${JSON.stringify(s)} is not ADDR:PORT (an IPv4 address and a UDP port)`;
  const [, addr, p] = m;
  if (!QUAD.test(addr)) return `${JSON.stringify(addr)} is not an IPv4 address in dotted-quad form without leading zeros`;
  const port = p === undefined ? defaultPort : Number(p);
  if (!(port >= 1 && port <= 65535) || (p !== undefined && p !== String(port))) return `port ${JSON.stringify(p)} is not from 1 to 65535 (no leading zeros)`;
  return { addr, port };
}

export function formatUdpAddr(a: UdpAddr): string {
  return `${a.addr}:${a.port}`;
}
