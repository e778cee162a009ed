/**
 * ICMP for IPv4 (RFC 792), as much as a host needs (RFC 1122 §3.2.2): echo
 * request and reply, and the destination-unreachable errors a host sends
 * (port unreachable for a UDP datagram nobody listens for, protocol
 * unreachable for a protocol it does not speak), rate-limited as Linux
 * limits them (icmp_msgs_per_sec 1000, burst 50).
 *
 *     ICMP message, after the IPv4 header:
 *      0      7 8     15 16                    31
 *     +--------+--------+------------------------+
 *     |  type  |  code  |        checksum        |   checksum: RFC 1071 over the whole message
 *     +--------+--------+------------------------+
 *     |   echo: identifier   |  echo: sequence   |   unreachable: unused (0)
 *     +----------------------+-------------------+
 *     |  echo: data, returned whole by the reply |   unreachable: the offending datagram's
 *     |                                          |   IP header and its first 8 data octets
 */
import { IP_HLEN, inetChecksum, readU16, writeU16 } from './wire.ts';

export const IPPROTO_ICMP = 1;
export const ICMP_HLEN = 8;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_ECHO = 8;
export const ICMP_PROT_UNREACH = 2;
export const ICMP_PORT_UNREACH = 3;
/** What an error quotes of the offending datagram beyond its IP header (RFC 792: 64 bits). */
export const ICMP_ERROR_QUOTE = 8;

/** Write an echo request or reply header at `o` (the ICMP message start) over `dataLen` octets already in place after it. */
export function writeIcmpEcho(b: Uint8Array, o: number, type: number, id: number, seq: number, dataLen: number): void {
  b[o] = type;
  b[o + 1] = 0;
  writeU16(b, o + 2, 0);
  writeU16(b, o + 4, id & 0xffff);
  writeU16(b, o + 6, seq & 0xffff);
  writeU16(b, o + 2, inetChecksum(b, o, ICMP_HLEN + dataLen));
}

/**
 * Write a destination-unreachable error at `o` quoting the offending
 * datagram (`orig`, its IP header `origIhl` long, `origLen` octets in all):
 * its header and up to ICMP_ERROR_QUOTE octets after it. Returns the
 * message's length.
 */
export function writeIcmpUnreach(b: Uint8Array, o: number, code: number, orig: Uint8Array, origL3: number, origIhl: number, origLen: number): number {
  const quote = Math.min(origLen, origIhl + ICMP_ERROR_QUOTE);
  b[o] = ICMP_DEST_UNREACH;
  b[o + 1] = code;
  b.fill(0, o + 2, o + ICMP_HLEN);
  b.set(orig.subarray(origL3, origL3 + quote), o + ICMP_HLEN);
  writeU16(b, o + 2, inetChecksum(b, o, ICMP_HLEN + quote));
  return ICMP_HLEN + quote;
}

/** Is the datagram at `l3` a first fragment or whole (an error is sent only about those, RFC 1122 §3.2.2)? */
export function isFirstFragment(b: Uint8Array, l3: number): boolean {
  return (readU16(b, l3 + 6) & 0x1fff) === 0;
}

/** The IPv4 + ICMP headers in front of an echo's data, after Ethernet's. */
export const ICMP_ECHO_OVERHEAD = IP_HLEN + ICMP_HLEN;

/** A token bucket: `perSec` messages a second, at most `burst` at once (Linux's icmp_msgs_per_sec and icmp_msgs_burst). */
export class IcmpRateLimit {
  private tokens: number;
  private at = -1;

  constructor(
    private readonly perSec = 1000,
    private readonly burst = 50,
  ) {
    this.tokens = burst;
  }

  /** May one more error go out at `now` (ms)? Takes a token if so. */
  allow(now: number): boolean {
    if (this.at >= 0) this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.perSec) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
