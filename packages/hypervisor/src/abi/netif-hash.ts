/**
 * The hashes a multi-queue vif steers by, shared by both ends:
 *
 * - xenNetifToeplitzHash: io/netif.h's own xen_netif_toeplitz_hash
 *   (XEN_NETIF_DEFINE_TOEPLITZ), the hash the control ring configures
 *   (XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ): a 32-bit window of the key
 *   slides one bit per input bit and is XORed in where the input bit is 1.
 * - hashInput: the bytes a hash type hashes (netif.h's "Hash types", as
 *   Linux's xenvif_set_skb_hash picks them): source and destination address,
 *   then source and destination port for TCP only (there is no UDP type).
 * - flowHash: what Linux's skb_get_hash gives a frame without a configured
 *   hash (the flow dissector over addresses, protocol and, for TCP and UDP,
 *   ports, made the same both ways by __flow_hash_consistentify). Linux keys
 *   it with a random boot-time secret (siphash); xsim's is a fixed mix, so a
 *   run is repeatable. netfront picks a TX queue with it (xennet_select_queue:
 *   hash % queues), netback an RX queue when no hash is configured
 *   (xenvif_select_queue: netdev_pick_tx, reciprocal_scale(hash, queues)).
 *
 * Frames are read where they lie (a guest buffer or a dom0 skb); nothing is
 * allocated per frame.
 */
import {
  _XEN_NETIF_CTRL_HASH_TYPE_IPV4,
  _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP,
  _XEN_NETIF_CTRL_HASH_TYPE_IPV6,
  _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP,
} from './netif.ts';

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_8021Q = 0x8100;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/**
 * xen_netif_toeplitz_hash(key, keylen, buf, buflen): key octets past `keyLen`
 * count as zero, as the header's loop ORs in 0 past keylen.
 */
export function xenNetifToeplitzHash(key: Uint8Array, keyLen: number, buf: Uint8Array, off: number, len: number): number {
  const k = (i: number): number => (i < keyLen ? key[i] : 0);
  // The left-most 32 bits of the key, then the next key octet waiting to be shifted in.
  let window = ((k(0) << 24) | (k(1) << 16) | (k(2) << 8) | k(3)) >>> 0;
  let next = k(4);
  let ki = 5;
  let hash = 0;
  for (let b = 0; b < len; b++) {
    const byte = buf[off + b];
    for (let bit = 7; bit >= 0; bit--) {
      if ((byte >> bit) & 1) hash ^= window;
      window = ((window << 1) | (next >> 7)) >>> 0;
      next = (next << 1) & 0xff;
    }
    next = k(ki++);
  }
  return hash >>> 0;
}

/** Where a frame's IP header starts and what it carries, or null for a frame that is not IPv4 or IPv6. */
export interface FlowKeys {
  /** ETH_P_IP or ETH_P_IPV6. */
  proto: number;
  /** Offset of the IP header in the buffer. */
  l3: number;
  /** The transport protocol (IPv6: the first next header). */
  ipProto: number;
  /** Offset of the transport header, or -1: none to read (a fragment other than the first, or it does not fit). */
  l4: number;
}

/** The flow dissector's part xsim needs: Ethernet (one VLAN tag), IPv4 without options' trouble, IPv6's fixed header. */
export function dissect(b: Uint8Array, off: number, len: number, out: FlowKeys): FlowKeys | null {
  let at = off + 12;
  if (len < 14) return null;
  let type = (b[at] << 8) | b[at + 1];
  at += 2;
  if (type === ETH_P_8021Q) {
    if (len < 18) return null;
    type = (b[at + 2] << 8) | b[at + 3];
    at += 4;
  }
  const end = off + len;
  if (type === ETH_P_IP) {
    if (at + 20 > end) return null;
    const ihl = (b[at] & 0x0f) * 4;
    const fragOff = ((b[at + 6] & 0x1f) << 8) | b[at + 7];
    out.proto = ETH_P_IP;
    out.l3 = at;
    out.ipProto = b[at + 9];
    out.l4 = ihl >= 20 && fragOff === 0 && at + ihl + 4 <= end ? at + ihl : -1;
    return out;
  }
  if (type === ETH_P_IPV6) {
    if (at + 40 > end) return null;
    out.proto = ETH_P_IPV6;
    out.l3 = at;
    out.ipProto = b[at + 6];
    out.l4 = at + 44 <= end ? at + 40 : -1;
    return out;
  }
  return null;
}

/**
 * The bytes hash type selection hashes (xenvif_set_skb_hash): for IPv4, the
 * 12-octet source, destination, source port, destination port of a TCP
 * segment when `flags` has IPV4_TCP, else the 8 address octets when it has
 * IPV4; likewise 36 or 32 octets for IPv6. Written into `into`; returns the
 * length and the _XEN_NETIF_CTRL_HASH_TYPE_* bit number it used, or null
 * when no type of `flags` applies (Linux then clears the frame's hash: 0).
 */
export function hashInput(b: Uint8Array, off: number, len: number, flags: number, keys: FlowKeys, into: Uint8Array): { len: number; type: number } | null {
  const k = dissect(b, off, len, keys);
  if (!k) return null;
  const tcp = k.ipProto === IPPROTO_TCP && k.l4 >= 0;
  const v4 = k.proto === ETH_P_IP;
  const l4Type = v4 ? _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP : _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;
  const l3Type = v4 ? _XEN_NETIF_CTRL_HASH_TYPE_IPV4 : _XEN_NETIF_CTRL_HASH_TYPE_IPV6;
  const addrs = v4 ? 8 : 32;
  const addrAt = v4 ? k.l3 + 12 : k.l3 + 8;
  let type = -1;
  if (tcp && flags & (1 << l4Type)) type = l4Type;
  else if (flags & (1 << l3Type)) type = l3Type;
  if (type < 0) return null;
  into.set(b.subarray(addrAt, addrAt + addrs), 0);
  if (type !== l4Type) return { len: addrs, type };
  into.set(b.subarray(k.l4, k.l4 + 4), addrs);
  return { len: addrs + 4, type };
}

/** murmur3's 32-bit finaliser: every input bit reaches every output bit. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function mix(h: number, w: number): number {
  return fmix((h ^ w) >>> 0);
}

/** xsim's stand-in for Linux's boot-time hashrnd. */
const FLOW_SEED = 0x5ee0_c0de;

function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** Compare two addresses of `n` octets: negative, zero or positive, as memcmp. */
function cmp(b: Uint8Array, x: number, y: number, n: number): number {
  for (let i = 0; i < n; i++) if (b[x + i] !== b[y + i]) return b[x + i] - b[y + i];
  return 0;
}

/**
 * skb_get_hash's stand-in: a 32-bit hash of the frame's flow (addresses,
 * transport protocol and, for TCP and UDP, ports), the same in both
 * directions; a frame that is not IP hashes its EtherType alone (all its
 * frames, ARP say, go one way). Never 0, as Linux's (__flow_hash_from_keys
 * makes 0 into 1).
 */
export function flowHash(b: Uint8Array, off: number, len: number, keys: FlowKeys): number {
  const k = dissect(b, off, len, keys);
  let h = FLOW_SEED;
  if (!k) {
    h = mix(h, len >= 14 ? (b[off + 12] << 8) | b[off + 13] : 0);
    return h || 1;
  }
  const n = k.proto === ETH_P_IP ? 4 : 16;
  const src = k.proto === ETH_P_IP ? k.l3 + 12 : k.l3 + 8;
  const dst = src + n;
  const ports = (k.ipProto === IPPROTO_TCP || k.ipProto === IPPROTO_UDP) && k.l4 >= 0;
  let sp = ports ? (b[k.l4] << 8) | b[k.l4 + 1] : 0;
  let dp = ports ? (b[k.l4 + 2] << 8) | b[k.l4 + 3] : 0;
  // __flow_hash_consistentify: the lower address (then port) first, so both directions hash alike.
  const c = cmp(b, src, dst, n);
  const swap = c > 0 || (c === 0 && sp > dp);
  const [a1, a2] = swap ? [dst, src] : [src, dst];
  if (swap) [sp, dp] = [dp, sp];
  for (let i = 0; i < n; i += 4) h = mix(h, u32(b, a1 + i));
  for (let i = 0; i < n; i += 4) h = mix(h, u32(b, a2 + i));
  h = mix(h, ((sp << 16) | dp) >>> 0);
  h = mix(h, (k.proto << 8) | k.ipProto);
  return h || 1;
}

/** reciprocal_scale(val, n): val scaled into [0, n) by its top bits, as skb_tx_hash picks a queue. */
export function reciprocalScale(val: number, n: number): number {
  return Math.floor(((val >>> 0) * n) / 0x1_0000_0000);
}

export function newFlowKeys(): FlowKeys {
  return { proto: 0, l3: 0, ipProto: 0, l4: -1 };
}
