/**
 * The guest's tiny IP stack on one interface: Ethernet, ARP (answer requests
 * for our address, learn from replies and from requests aimed at us), IPv4
 * with header checksum validation, UDP sockets, ICMP (icmp.ts: echo answered,
 * echo replies to whoever pings, unreachable errors for what nobody takes). Frames are built in place in
 * a buffer the transport lends (a guest page, a dom0 skb): no copies, no
 * per-frame allocation. Every frame not delivered is counted by reason.
 */
import { declareCounters, type Counters } from '@xsim/hypervisor';
import { ArpCache } from './arp.ts';
import { BROADCAST_MAC, readMac, writeMac } from './addr.ts';
import {
  ARPOP_REPLY,
  ARPOP_REQUEST,
  ARP_LEN,
  ETH_HLEN,
  ETH_P_8021Q,
  ETH_P_ARP,
  ETH_P_IP,
  ETH_ZLEN,
  IPPROTO_UDP,
  IP_HLEN,
  UDP_HLEN,
  UDP_OVERHEAD,
  onesSum,
  readU16,
  readU32,
  writeIpHeader,
  writeIpUdp,
  writeU16,
  writeU32,
} from './wire.ts';
import {
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_ECHO_OVERHEAD,
  ICMP_ECHO_REPLY,
  ICMP_HLEN,
  ICMP_PORT_UNREACH,
  ICMP_PROT_UNREACH,
  IPPROTO_ICMP,
  IcmpRateLimit,
  isFirstFragment,
  writeIcmpEcho,
  writeIcmpUnreach,
} from './icmp.ts';

/** Where the stack's frames go. reserve() lends space for a frame; commit() sends it. */
export interface StackTransport {
  reserve(len: number): { buf: Uint8Array; off: number } | null;
  commit(len: number): void;
}

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

export type UdpHandler = (buf: Uint8Array, off: number, len: number, srcIp: number, srcPort: number) => void;
export type PayloadFill = (buf: Uint8Array, off: number) => void;
/** An echo reply for an identifier someone pings with: its data (valid during the call), sequence and sender. */
export type EchoHandler = (buf: Uint8Array, off: number, len: number, seq: number, srcIp: number) => void;

export const STACK_COUNTERS = declareCounters('guest stack', {
  rxFrames: { kind: 'event', help: 'frames handed to the stack' },
  rxUdp: { kind: 'event', help: 'UDP datagrams delivered to a socket' },
  rxArp: { kind: 'event', help: 'ARP packets handled' },
  rxGratuitousArp: { kind: 'event', help: 'gratuitous ARPs heard (a host announcing its address, e.g. after a migration)' },
  rxRunt: { kind: 'drop', help: 'frames shorter than an Ethernet header' },
  rxNotForUs: { kind: 'drop', help: 'frames for another MAC or IP (a flooded copy, an ARP request for someone else)' },
  rxBadIp: { kind: 'drop', help: 'malformed IPv4 header or ARP packet' },
  rxBadChecksum: { kind: 'drop', help: 'IPv4 header checksum wrong' },
  rxNotUdp: { kind: 'drop', help: 'IPv4 protocol other than UDP and ICMP (answered protocol unreachable, rate-limited)' },
  rxIcmpEcho: { kind: 'event', help: 'ICMP echo requests answered (or counted under txBusy/txIcmpTooBig when the reply could not go)' },
  rxIcmpEchoReply: { kind: 'event', help: 'ICMP echo replies delivered to whoever pings with their identifier' },
  rxIcmpUnreach: { kind: 'event', help: 'ICMP destination-unreachable errors received (about something we sent)' },
  rxBadIcmp: { kind: 'drop', help: 'ICMP message shorter than its header or with a wrong checksum' },
  rxIcmpUnmatched: { kind: 'drop', help: 'ICMP echo replies for an identifier nobody pings with, and ICMP types a host does not handle' },
  txIcmp: { kind: 'event', help: 'ICMP messages sent (echo requests and replies, unreachable errors)' },
  txIcmpRateLimited: { kind: 'event', help: 'unreachable errors not sent: over the rate limit (1000/s, burst 50, as Linux)' },
  txIcmpTooBig: { kind: 'event', help: 'echo requests not answered: the reply would not fit our MTU' },
  rxBadUdp: { kind: 'drop', help: 'malformed UDP header' },
  rxNoSocket: { kind: 'drop', help: 'UDP datagram for a port nobody listens on (answered port unreachable, rate-limited)' },
  rxUnknownEthertype: { kind: 'drop', help: 'neither IPv4 nor ARP' },
  txFrames: { kind: 'event', help: 'frames sent' },
  txUdp: { kind: 'event', help: 'UDP datagrams sent' },
  txArp: { kind: 'event', help: 'ARP packets sent' },
  txArpPending: { kind: 'event', help: 'sendUdp refused: destination MAC not resolved yet (an ARP request is out)' },
  txBusy: { kind: 'event', help: 'sendUdp refused: the transport had no room (the caller retries)' },
});

export type StackCounters = Counters<typeof STACK_COUNTERS.decls>;

export class GuestStack {
  readonly arp = new ArpCache();
  readonly counters: StackCounters = STACK_COUNTERS.zero();
  private readonly sockets = new Map<number, UdpHandler>();
  private readonly echoes = new Map<number, EchoHandler>();
  private readonly icmpLimit = new IcmpRateLimit();
  private ipId = 0;
  private now = 0;

  /** The largest Ethernet frame this interface sends (MTU + 14-byte header). */
  maxFrame: number;

  private readonly clock: () => number;

  constructor(readonly opts: { mac: number; ip: number; transport: StackTransport; mtu?: number; now?: () => number }) {
    this.maxFrame = (opts.mtu ?? 1500) + ETH_HLEN;
    this.clock = opts.now ?? (() => performance.now());
  }

  /** The interface's MTU changed (its driver cut it, as netfront does without scatter-gather): no larger frame from now on. */
  setMtu(mtu: number): void {
    this.maxFrame = mtu + ETH_HLEN;
  }

  /** The frame length sendUdp builds for a payload of `payloadLen` bytes. */
  static udpFrameLen(payloadLen: number): number {
    return Math.max(UDP_OVERHEAD + payloadLen, ETH_ZLEN);
  }

  get mac(): number {
    return this.opts.mac;
  }
  get ip(): number {
    return this.opts.ip;
  }

  bind(port: number, handler: UdpHandler): void {
    if (this.sockets.has(port)) throw new Error(`UDP port ${port} already bound`);
    this.sockets.set(port, handler);
  }

  unbind(port: number): void {
    this.sockets.delete(port);
  }

  /** Receive the echo replies for identifier `id` (a ping's, as a raw ICMP socket would). */
  bindEcho(id: number, handler: EchoHandler): void {
    if (this.echoes.has(id)) throw new Error(`ICMP echo identifier ${id} already in use`);
    this.echoes.set(id, handler);
  }

  unbindEcho(id: number): void {
    this.echoes.delete(id);
  }

  /** Send an ICMP echo request of `dataLen` octets of data (`fill` writes them); false if it could not go now, as sendUdp. */
  sendEcho(dstIp: number, id: number, seq: number, dataLen: number, fill: PayloadFill): boolean {
    const dmac = this.arp.lookup(dstIp);
    if (dmac === undefined) {
      this.counters.txArpPending++;
      this.resolve(dstIp, this.clock());
      return false;
    }
    const len = Math.max(ETH_HLEN + ICMP_ECHO_OVERHEAD + dataLen, ETH_ZLEN);
    if (len > this.maxFrame)
      throw new StackError(
        'EMSGSIZE',
        `an ICMP echo of ${dataLen} data octets makes a ${len}-byte frame, over this interface's MTU ${this.maxFrame - ETH_HLEN} (+${ETH_HLEN}-byte header)`,
      );
    const slot = this.opts.transport.reserve(len);
    if (!slot) {
      this.counters.txBusy++;
      return false;
    }
    const { buf, off } = slot;
    const icmp = this.ipHeaders(buf, off, dmac, dstIp, IPPROTO_ICMP, ICMP_HLEN + dataLen);
    fill(buf, icmp + ICMP_HLEN);
    writeIcmpEcho(buf, icmp, ICMP_ECHO, id, seq, dataLen);
    this.padAndSend(buf, icmp + ICMP_HLEN + dataLen, off, len);
    return true;
  }

  /** Ethernet and IPv4 headers of a frame at `off`; returns where the IP payload starts. */
  private ipHeaders(buf: Uint8Array, off: number, dmac: number, dstIp: number, proto: number, payloadLen: number): number {
    writeMac(buf, off, dmac);
    writeMac(buf, off + 6, this.opts.mac);
    writeU16(buf, off + 12, ETH_P_IP);
    writeIpHeader(buf, off + ETH_HLEN, this.opts.ip, dstIp, this.ipId++, proto, payloadLen);
    return off + ETH_HLEN + IP_HLEN;
  }

  /** Zero a short frame's padding from `end`, send it, count it as ICMP. */
  private padAndSend(buf: Uint8Array, end: number, off: number, len: number): void {
    if (end < off + len) buf.fill(0, end, off + len);
    this.opts.transport.commit(len);
    this.counters.txFrames++;
    this.counters.txIcmp++;
  }

  /** Timers: expire neighbours. */
  tick(now: number): void {
    this.now = now;
    this.arp.expire(now);
  }

  /**
   * A gratuitous ARP (a request for our own address, to everyone): after a
   * migration it tells bridges and switches where our MAC is now, and
   * neighbours that already know us refresh their entry.
   */
  announce(): boolean {
    return this.sendArp(ARPOP_REQUEST, BROADCAST_MAC, 0, this.opts.ip);
  }

  /** Start resolving `ip` (sends a request unless one went out just now). */
  resolve(ip: number, now = this.clock()): boolean {
    if (this.arp.lookup(ip) !== undefined) return true;
    if (this.arp.shouldAsk(ip, now)) this.sendArp(ARPOP_REQUEST, BROADCAST_MAC, 0, ip);
    return false;
  }

  /** Send one UDP datagram; false if it could not go now (ARP pending or no room), and nothing was sent. */
  sendUdp(dstIp: number, srcPort: number, dstPort: number, payloadLen: number, fill: PayloadFill): boolean {
    const dmac = this.arp.lookup(dstIp);
    if (dmac === undefined) {
      this.counters.txArpPending++;
      this.resolve(dstIp, this.clock());
      return false;
    }
    const len = GuestStack.udpFrameLen(payloadLen);
    if (len > this.maxFrame)
      throw new StackError(
        'EMSGSIZE',
        `a UDP payload of ${payloadLen} bytes makes a ${len}-byte frame, over this interface's MTU ${this.maxFrame - ETH_HLEN} (+${ETH_HLEN}-byte header)`,
      );
    const slot = this.opts.transport.reserve(len);
    if (!slot) {
      this.counters.txBusy++;
      return false;
    }
    const { buf, off } = slot;
    writeMac(buf, off, dmac);
    writeMac(buf, off + 6, this.opts.mac);
    writeU16(buf, off + 12, ETH_P_IP);
    writeIpUdp(buf, off + ETH_HLEN, this.opts.ip, dstIp, this.ipId++, srcPort, dstPort, payloadLen);
    if (len > UDP_OVERHEAD + payloadLen) buf.fill(0, off + UDP_OVERHEAD + payloadLen, off + len);
    fill(buf, off + UDP_OVERHEAD);
    this.opts.transport.commit(len);
    this.counters.txFrames++;
    this.counters.txUdp++;
    return true;
  }

  private sendArp(op: number, dstMac: number, targetMac: number, targetIp: number): boolean {
    const slot = this.opts.transport.reserve(ETH_ZLEN);
    if (!slot) {
      this.counters.txBusy++;
      return false;
    }
    const { buf, off } = slot;
    writeMac(buf, off, dstMac);
    writeMac(buf, off + 6, this.opts.mac);
    writeU16(buf, off + 12, ETH_P_ARP);
    const a = off + ETH_HLEN;
    writeU16(buf, a, 1); // htype Ethernet
    writeU16(buf, a + 2, ETH_P_IP);
    buf[a + 4] = 6;
    buf[a + 5] = 4;
    writeU16(buf, a + 6, op);
    writeMac(buf, a + 8, this.opts.mac);
    writeU32(buf, a + 14, this.opts.ip);
    writeMac(buf, a + 18, targetMac);
    writeU32(buf, a + 24, targetIp);
    buf.fill(0, a + ARP_LEN, off + ETH_ZLEN);
    this.opts.transport.commit(ETH_ZLEN);
    this.counters.txFrames++;
    this.counters.txArp++;
    return true;
  }

  /** A received frame; the view is only valid during the call. */
  receive(buf: Uint8Array, off: number, len: number): void {
    const c = this.counters;
    c.rxFrames++;
    if (len < ETH_HLEN) {
      c.rxRunt++;
      return;
    }
    const dst = readMac(buf, off);
    if (dst !== this.opts.mac && dst !== BROADCAST_MAC) {
      c.rxNotForUs++;
      return;
    }
    let l3 = off + ETH_HLEN;
    let type = readU16(buf, off + 12);
    if (type === ETH_P_8021Q) {
      type = readU16(buf, off + 16);
      l3 += 4;
    }
    const l3len = off + len - l3;
    if (type === ETH_P_ARP) return this.receiveArp(buf, l3, l3len);
    if (type !== ETH_P_IP) {
      c.rxUnknownEthertype++;
      return;
    }
    if (l3len < IP_HLEN || buf[l3] >> 4 !== 4 || (buf[l3] & 15) < 5) {
      c.rxBadIp++;
      return;
    }
    const ihl = (buf[l3] & 15) * 4;
    const total = readU16(buf, l3 + 2);
    if (total < ihl || total > l3len || ihl > l3len) {
      c.rxBadIp++;
      return;
    }
    if (onesSum(buf, l3, ihl) !== 0xffff) {
      c.rxBadChecksum++;
      return;
    }
    if (readU32(buf, l3 + 16) !== this.opts.ip) {
      c.rxNotForUs++;
      return;
    }
    const proto = buf[l3 + 9];
    const srcMac = readMac(buf, off + 6);
    if (proto === IPPROTO_ICMP) return this.receiveIcmp(buf, l3, ihl, total, srcMac);
    if (proto !== IPPROTO_UDP) {
      c.rxNotUdp++;
      this.unreachable(ICMP_PROT_UNREACH, buf, l3, ihl, total, srcMac);
      return;
    }
    const u = l3 + ihl;
    const ulen = readU16(buf, u + 4);
    if (total - ihl < UDP_HLEN || ulen < UDP_HLEN || ulen > total - ihl) {
      c.rxBadUdp++;
      return;
    }
    const h = this.sockets.get(readU16(buf, u + 2));
    if (!h) {
      c.rxNoSocket++;
      this.unreachable(ICMP_PORT_UNREACH, buf, l3, ihl, total, srcMac);
      return;
    }
    c.rxUdp++;
    h(buf, u + UDP_HLEN, ulen - UDP_HLEN, readU32(buf, l3 + 12), readU16(buf, u));
  }

  /** An ICMP message for us: echo answered, echo replies to their pinger, errors noted; the rest counted. */
  private receiveIcmp(buf: Uint8Array, l3: number, ihl: number, total: number, srcMac: number): void {
    const c = this.counters;
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
    if (frame > this.maxFrame) {
      this.counters.txIcmpTooBig++;
      return;
    }
    const slot = this.opts.transport.reserve(frame);
    if (!slot) {
      this.counters.txBusy++;
      return;
    }
    const { buf, off } = slot;
    const at = this.ipHeaders(buf, off, this.arp.lookup(dstIp) ?? srcMac, dstIp, IPPROTO_ICMP, len);
    buf.set(req.subarray(icmp + ICMP_HLEN, icmp + len), at + ICMP_HLEN);
    writeIcmpEcho(buf, at, ICMP_ECHO_REPLY, readU16(req, icmp + 4), readU16(req, icmp + 6), len - ICMP_HLEN);
    this.padAndSend(buf, at + len, off, frame);
  }

  /** A destination-unreachable error about the datagram at `l3`, unless it is a later fragment or over the rate limit. */
  private unreachable(code: number, orig: Uint8Array, l3: number, ihl: number, total: number, srcMac: number): void {
    if (!isFirstFragment(orig, l3)) return;
    if (!this.icmpLimit.allow(this.now || this.clock())) {
      this.counters.txIcmpRateLimited++;
      return;
    }
    const msg = ICMP_HLEN + Math.min(total, ihl + 8);
    const frame = Math.max(ETH_HLEN + IP_HLEN + msg, ETH_ZLEN);
    const slot = this.opts.transport.reserve(frame);
    if (!slot) {
      this.counters.txBusy++;
      return;
    }
    const { buf, off } = slot;
    const dstIp = readU32(orig, l3 + 12);
    const at = this.ipHeaders(buf, off, this.arp.lookup(dstIp) ?? srcMac, dstIp, IPPROTO_ICMP, msg);
    writeIcmpUnreach(buf, at, code, orig, l3, ihl, total);
    this.padAndSend(buf, at + msg, off, frame);
  }

  private receiveArp(buf: Uint8Array, a: number, len: number): void {
    const c = this.counters;
    if (len < ARP_LEN || readU16(buf, a) !== 1 || readU16(buf, a + 2) !== ETH_P_IP || buf[a + 4] !== 6 || buf[a + 5] !== 4) {
      c.rxBadIp++;
      return;
    }
    c.rxArp++;
    const op = readU16(buf, a + 6);
    const sha = readMac(buf, a + 8);
    const spa = readU32(buf, a + 14);
    const tpa = readU32(buf, a + 24);
    const now = this.now || this.clock();
    if (tpa !== this.opts.ip) {
      // Not for us; refresh an existing entry (as Linux does) but create none.
      if (this.arp.lookup(spa) !== undefined) this.arp.learn(spa, sha, now);
      // A gratuitous ARP (sender and target address the same: a host announcing itself) is news, not a stray.
      if (spa === tpa) c.rxGratuitousArp++;
      else if (op === ARPOP_REQUEST) c.rxNotForUs++;
      return;
    }
    this.arp.learn(spa, sha, now);
    if (op === ARPOP_REQUEST) this.sendArp(ARPOP_REPLY, sha, sha, spa);
  }
}
