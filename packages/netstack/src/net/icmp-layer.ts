/**
 * The stack's ICMP (RFC 792, RFC 1122 §3.2.2): echo requests answered, echo
 * replies handed to whoever pings with their identifier (a raw socket's
 * share), destination-unreachable errors for what nobody takes (rate-limited
 * as Linux), echo requests sent for ping. Frames are built through the IP
 * layer below (stack.ts), in place in the transport's buffer.
 */
import type { ArpCache } from './arp.ts';
import { ETH_HLEN, ETH_ZLEN, IP_HLEN, onesSum, readU16, readU32 } from './wire.ts';
import {
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_ECHO_OVERHEAD,
  ICMP_ECHO_REPLY,
  ICMP_HLEN,
  IPPROTO_ICMP,
  IcmpRateLimit,
  isFirstFragment,
  writeIcmpEcho,
  writeIcmpUnreach,
} from './icmp.ts';
import type { StackCounters } from './stack-counters.ts';

/** An echo reply for an identifier someone pings with: its data (valid during the call), sequence and sender. */
export type EchoHandler = (buf: Uint8Array, off: number, len: number, seq: number, srcIp: number) => void;

/** A request the stack cannot honour (an errno and what is wrong). */
export class StackError extends Error {
  constructor(
    readonly code: 'EMSGSIZE',
    message: string,
  ) {
    super(message);
    this.name = 'StackError';
  }
}

/** What ICMP needs of the IP layer. */
export interface IpFrames {
  readonly counters: StackCounters;
  readonly arp: ArpCache;
  readonly maxFrame: number;
  /**
   * Space for a `frameLen`-byte frame with its Ethernet and IPv4 headers
   * written (to `dmac`, carrying `payloadLen` octets of `proto`); `at` is
   * where the IP payload goes. Null (counted txBusy) when the transport has no room.
   */
  open(frameLen: number, dmac: number, dstIp: number, proto: number, payloadLen: number): { buf: Uint8Array; off: number; at: number } | null;
  /** Zero the padding from `end` and send the frame opened at `off`. */
  send(buf: Uint8Array, end: number, off: number, frameLen: number): void;
  /** Start resolving `ip` (ARP). */
  resolve(ip: number): void;
  time(): number;
}

export class IcmpLayer {
  private readonly echoes = new Map<number, EchoHandler>();
  private readonly limit = new IcmpRateLimit();

  constructor(private readonly ip: IpFrames) {}

  /** Receive the echo replies for identifier `id` (a ping's, as a raw ICMP socket would). */
  bindEcho(id: number, handler: EchoHandler): void {
    if (this.echoes.has(id)) throw new Error(`ICMP echo identifier ${id} already in use`);
    this.echoes.set(id, handler);
  }

  unbindEcho(id: number): void {
    this.echoes.delete(id);
  }

  /** Send an echo request of `dataLen` octets of data (`fill` writes them); false if it could not go now (ARP out, no room). */
  sendEcho(dstIp: number, id: number, seq: number, dataLen: number, fill: (buf: Uint8Array, off: number) => void): boolean {
    const { counters, maxFrame } = this.ip;
    const dmac = this.ip.arp.lookup(dstIp);
    if (dmac === undefined) {
      counters.txArpPending++;
      this.ip.resolve(dstIp);
      return false;
    }
    const len = Math.max(ETH_HLEN + ICMP_ECHO_OVERHEAD + dataLen, ETH_ZLEN);
    if (len > maxFrame)
      throw new StackError(
        'EMSGSIZE',
        `an ICMP echo of ${dataLen} data octets makes a ${len}-byte frame, over this interface's MTU ${maxFrame - ETH_HLEN} (+${ETH_HLEN}-byte header)`,
      );
    const f = this.ip.open(len, dmac, dstIp, IPPROTO_ICMP, ICMP_HLEN + dataLen);
    if (!f) return false;
    fill(f.buf, f.at + ICMP_HLEN);
    writeIcmpEcho(f.buf, f.at, ICMP_ECHO, id, seq, dataLen);
    this.ip.send(f.buf, f.at + ICMP_HLEN + dataLen, f.off, len);
    return true;
  }

  /** An ICMP message for us: echo answered, echo replies to their pinger, errors noted; the rest counted. */
  receive(buf: Uint8Array, l3: number, ihl: number, total: number, srcMac: number): void {
    const c = this.ip.counters;
    const icmp = l3 + ihl;
    const len = total - ihl;
    if (len < ICMP_HLEN || onesSum(buf, icmp, len) !== 0xffff) {
      c.rxBadIcmp++;
      return;
    }
    const type = buf[icmp];
    const srcIp = readU32(buf, l3 + 12);
    if (type === ICMP_ECHO) {
      c.rxIcmpEcho++;
      this.echoReply(buf, icmp, len, srcIp, srcMac);
    } else if (type === ICMP_ECHO_REPLY) {
      const h = this.echoes.get(readU16(buf, icmp + 4));
      if (!h) {
        c.rxIcmpUnmatched++;
        return;
      }
      c.rxIcmpEchoReply++;
      h(buf, icmp + ICMP_HLEN, len - ICMP_HLEN, readU16(buf, icmp + 6), srcIp);
    } else if (type === ICMP_DEST_UNREACH) c.rxIcmpUnreach++;
    else c.rxIcmpUnmatched++;
  }

  /** Answer an echo request: the same identifier, sequence and data, back to its sender (RFC 792, RFC 1122 §3.2.2.6). */
  private echoReply(req: Uint8Array, icmp: number, len: number, dstIp: number, srcMac: number): void {
    const frame = Math.max(ETH_HLEN + IP_HLEN + len, ETH_ZLEN);
    if (frame > this.ip.maxFrame) {
      this.ip.counters.txIcmpTooBig++;
      return;
    }
    const f = this.ip.open(frame, this.ip.arp.lookup(dstIp) ?? srcMac, dstIp, IPPROTO_ICMP, len);
    if (!f) return;
    f.buf.set(req.subarray(icmp + ICMP_HLEN, icmp + len), f.at + ICMP_HLEN);
    writeIcmpEcho(f.buf, f.at, ICMP_ECHO_REPLY, readU16(req, icmp + 4), readU16(req, icmp + 6), len - ICMP_HLEN);
    this.ip.send(f.buf, f.at + len, f.off, frame);
  }

  /** A destination-unreachable error about the datagram at `l3`, unless it is a later fragment or over the rate limit. */
  unreachable(code: number, orig: Uint8Array, l3: number, ihl: number, total: number, srcMac: number): void {
    if (!isFirstFragment(orig, l3)) return;
    if (!this.limit.allow(this.ip.time())) {
      this.ip.counters.txIcmpRateLimited++;
      return;
    }
    const msg = ICMP_HLEN + Math.min(total, ihl + 8);
    const frame = Math.max(ETH_HLEN + IP_HLEN + msg, ETH_ZLEN);
    const dstIp = readU32(orig, l3 + 12);
    const f = this.ip.open(frame, this.ip.arp.lookup(dstIp) ?? srcMac, dstIp, IPPROTO_ICMP, msg);
    if (!f) return;
    writeIcmpUnreach(f.buf, f.at, code, orig, l3, ihl, total);
    this.ip.send(f.buf, f.at + msg, f.off, frame);
  }
}
