/**
 * The IP stack every kernel runs on one interface: Ethernet, ARP
 * (arp-layer.ts), IPv4 with header checksum validation, UDP sockets, ICMP
 * (icmp-layer.ts: echo answered, echo replies to whoever pings, unreachable
 * errors for what nobody takes), TCP (tcp-sock.ts over tcp/). Frames are
 * built in place in a buffer the transport lends (a guest page, a dom0 skb,
 * an accelerator's DMA buffer): no copies, no per-frame allocation. Every
 * frame not delivered is counted by reason.
 */
import { NETRXF_csum_blank, NETRXF_data_validated } from '@xsim/hypervisor';
import { IPPROTO_TCP } from '../tcp/segment.ts';
import { TcpSockets, type IpRefusal, type IpSendResult } from './tcp-sock.ts';
import { ArpCache } from './arp.ts';
import { ArpLayer } from './arp-layer.ts';
import { BROADCAST_MAC, readMac, writeMac } from './addr.ts';
import {
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
  writeU16,
} from './wire.ts';
import { ICMP_PORT_UNREACH, ICMP_PROT_UNREACH, IPPROTO_ICMP } from './icmp.ts';
import { IcmpLayer, StackError, type EchoHandler } from './icmp-layer.ts';
import { STACK_COUNTERS, type StackCounters } from './stack-counters.ts';

/**
 * Where the stack's frames go. reserve() lends space for a frame; commit()
 * sends it. `csumPartial`: the frame's TCP checksum holds only the
 * pseudo-header's sum (Linux's CHECKSUM_PARTIAL), for the driver to pass on
 * as NETTXF_csum_blank or complete; only sent when the driver said it offloads.
 */
export interface StackTransport {
  reserve(len: number): { buf: Uint8Array; off: number } | null;
  /** `gsoSize` > 0: a TCP frame over the MTU (TSO), to be cut into segments of that many octets of data (NETTXF_extra_info, XEN_NETIF_GSO_TYPE_TCPV4). */
  commit(len: number, csumPartial?: boolean, gsoSize?: number): void;
}

/** What the driver below offers the stack (it says so after negotiating with its backend or device). */
export interface StackOffloads {
  /** The stack may hand down TCP segments with a partial checksum. */
  txCsum: boolean;
  /** TCP segmentation offload: the largest frame's IP datagram the driver takes for segmenting (0 or absent: none). Needs txCsum. */
  tsoMax?: number;
}

export type UdpHandler = (buf: Uint8Array, off: number, len: number, srcIp: number, srcPort: number) => void;
export type PayloadFill = (buf: Uint8Array, off: number) => void;

export { STACK_COUNTERS, StackError, type StackCounters, type EchoHandler };

export class GuestStack {
  readonly arp = new ArpCache();
  readonly counters: StackCounters = STACK_COUNTERS.zero();
  private readonly sockets = new Map<number, UdpHandler>();
  private ipId = 0;
  private now = 0;
  private offloads: StackOffloads = { txCsum: false };
  /** ARP: resolving, confirming and answering (arp-layer.ts; the cache is `arp`). */
  private readonly arpLayer: ArpLayer;
  /** The frame openIp() opened last (reused: one frame is open at a time). */
  private readonly opened: { buf: Uint8Array; off: number; payloadEnd: number; end: number; frame: number; proto: number; gsoSize: number } = {
    buf: new Uint8Array(0),
    off: 0,
    payloadEnd: 0,
    end: 0,
    frame: 0,
    proto: 0,
    gsoSize: 0,
  };
  /** TCP: connections, listeners, the interface queue (tcp-sock.ts). */
  readonly tcp: TcpSockets;
  /** ICMP: echo, unreachable errors (icmp-layer.ts). */
  readonly icmp: IcmpLayer;

  /** The largest Ethernet frame this interface sends (MTU + 14-byte header). */
  maxFrame: number;

  private readonly clock: () => number;

  constructor(readonly opts: { mac: number; ip: number; transport: StackTransport; mtu?: number; now?: () => number }) {
    this.maxFrame = (opts.mtu ?? 1500) + ETH_HLEN;
    this.clock = opts.now ?? (() => performance.now());
    this.arpLayer = new ArpLayer({
      cache: this.arp,
      counters: this.counters,
      transport: opts.transport,
      mac: opts.mac,
      ip: opts.ip,
      now: () => this.now || this.clock(),
    });
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the ICMP layer reads the MTU as it is now
    const self = this;
    this.tcp = new TcpSockets(
      {
        ip: opts.ip,
        mss: () => this.maxFrame - ETH_HLEN - IP_HLEN - 20,
        sendIp: (dstIp, proto, seg, len, partial, gsoSize) => this.sendIp(dstIp, proto, seg, len, partial, gsoSize),
        openIp: (dstIp, proto, len, gsoSize) => this.openIp(dstIp, proto, len, gsoSize),
        commitIp: (partial) => this.commitIp(partial),
        txCsumOffload: () => this.offloads.txCsum,
        tsoMax: () => (this.offloads.txCsum ? (this.offloads.tsoMax ?? 0) : 0),
      },
      this.clock,
      (opts.mac % 0x1_0000_0000) ^ Math.floor(opts.mac / 0x1_0000_0000),
    );
    this.icmp = new IcmpLayer({
      counters: this.counters,
      arp: this.arp,
      get maxFrame() {
        return self.maxFrame;
      },
      open: (frameLen, dmac, dstIp, proto, payloadLen) => {
        const slot = this.opts.transport.reserve(frameLen);
        if (!slot) {
          this.counters.txBusy++;
          return null;
        }
        return { buf: slot.buf, off: slot.off, at: this.ipHeaders(slot.buf, slot.off, dmac, dstIp, proto, payloadLen) };
      },
      send: (buf, end, off, frameLen) => {
        if (end < off + frameLen) buf.fill(0, end, off + frameLen);
        this.opts.transport.commit(frameLen);
        this.counters.txFrames++;
        this.counters.txIcmp++;
      },
      resolve: (ip) => this.resolve(ip, this.clock()),
      time: () => this.now || this.clock(),
    });
  }

  /** The driver's offloads (after negotiation, or switched at run time). */
  setOffloads(o: StackOffloads): void {
    this.offloads = { ...o };
    this.tcp.offloadChanged();
  }

  /** Send an IP payload (valid during the call) to `dstIp`, or say why it could not go now (nothing was sent then). */
  sendIp(dstIp: number, proto: number, payload: Uint8Array, len: number, csumPartial: boolean, gsoSize = 0): IpSendResult {
    const slot = this.openIp(dstIp, proto, len, gsoSize);
    if (typeof slot === 'string') return slot;
    slot.buf.set(len === payload.length ? payload : payload.subarray(0, len), slot.off);
    this.commitIp(csumPartial);
    return 'sent';
  }

  /**
   * Open a frame for `len` octets of IP payload to `dstIp`: its Ethernet and
   * IP headers written, the payload to be written at the returned place (the
   * same object each time, valid until commitIp), then commitIp() sends it.
   * Or why it cannot go now (nothing was reserved then).
   * What builds its payload in place (TCP's segments) saves a copy.
   */
  openIp(dstIp: number, proto: number, len: number, gsoSize = 0): { buf: Uint8Array; off: number } | IpRefusal {
    const dmac = this.arp.lookup(dstIp);
    if (dmac === undefined) {
      this.counters.txArpPending++;
      this.resolve(dstIp, this.clock());
      return 'arp';
    }
    this.arpLayer.used(dstIp);
    const frame = Math.max(ETH_HLEN + IP_HLEN + len, ETH_ZLEN);
    // A TSO frame may exceed the MTU up to the largest IPv4 datagram; the driver cuts it.
    if (frame > (gsoSize > 0 ? ETH_HLEN + 65535 : this.maxFrame)) return 'tooBig';
    const slot = this.opts.transport.reserve(frame);
    if (!slot) {
      this.counters.txBusy++;
      return 'busy';
    }
    const o = this.opened;
    o.buf = slot.buf;
    o.off = this.ipHeaders(slot.buf, slot.off, dmac, dstIp, proto, len);
    o.payloadEnd = o.off + len;
    o.end = slot.off + frame;
    o.frame = frame;
    o.proto = proto;
    o.gsoSize = gsoSize;
    return o;
  }

  /** Send the frame openIp() opened, its payload written (`csumPartial`: its TCP or UDP checksum is for the driver to complete). */
  commitIp(csumPartial: boolean): void {
    const o = this.opened;
    // A frame padded to the Ethernet minimum: the padding is zeros.
    if (o.payloadEnd < o.end) o.buf.fill(0, o.payloadEnd, o.end);
    if (o.gsoSize > 0 && o.frame > this.maxFrame) {
      this.opts.transport.commit(o.frame, csumPartial, o.gsoSize);
      this.counters.txTso++;
    } else this.opts.transport.commit(o.frame, csumPartial);
    this.counters.txFrames++;
    if (o.proto === IPPROTO_TCP) this.counters.txTcp++;
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
    this.icmp.bindEcho(id, handler);
  }

  unbindEcho(id: number): void {
    this.icmp.unbindEcho(id);
  }

  /** Send an ICMP echo request of `dataLen` octets of data (`fill` writes them); false if it could not go now, as sendUdp. */
  sendEcho(dstIp: number, id: number, seq: number, dataLen: number, fill: PayloadFill): boolean {
    return this.icmp.sendEcho(dstIp, id, seq, dataLen, fill);
  }

  /** Ethernet and IPv4 headers of a frame at `off`; returns where the IP payload starts. */
  private ipHeaders(buf: Uint8Array, off: number, dmac: number, dstIp: number, proto: number, payloadLen: number): number {
    writeMac(buf, off, dmac);
    writeMac(buf, off + 6, this.opts.mac);
    writeU16(buf, off + 12, ETH_P_IP);
    writeIpHeader(buf, off + ETH_HLEN, this.opts.ip, dstIp, this.ipId++, proto, payloadLen);
    return off + ETH_HLEN + IP_HLEN;
  }

  /** Timers: confirm stale neighbours that are in use, expire dead ones, run TCP's due timers. */
  tick(now: number): void {
    this.now = now;
    this.arpLayer.tick(now);
    if (this.tcp.nextTimer() <= now) this.tcp.tick(now);
  }

  /** A gratuitous ARP: after a migration, bridges, switches and neighbours learn where our MAC is (arp-layer.ts). */
  announce(): boolean {
    return this.arpLayer.announce();
  }

  /** Start resolving `ip` (sends a request unless one went out just now). */
  resolve(ip: number, now = this.clock()): boolean {
    return this.arpLayer.resolve(ip, now);
  }

  /** Send one UDP datagram; false if it could not go now (ARP pending or no room), and nothing was sent. */
  sendUdp(dstIp: number, srcPort: number, dstPort: number, payloadLen: number, fill: PayloadFill): boolean {
    const at = this.openIp(dstIp, IPPROTO_UDP, UDP_HLEN + payloadLen);
    if (at === 'tooBig') {
      const len = GuestStack.udpFrameLen(payloadLen);
      throw new StackError(
        'EMSGSIZE',
        `a UDP payload of ${payloadLen} bytes makes a ${len}-byte frame, over this interface's MTU ${this.maxFrame - ETH_HLEN} (+${ETH_HLEN}-byte header)`,
      );
    }
    if (typeof at === 'string') return false;
    const { buf, off } = at;
    // No checksum (0: allowed over IPv4, RFC 768): the payload is the app's to fill after the header.
    writeU16(buf, off, srcPort);
    writeU16(buf, off + 2, dstPort);
    writeU16(buf, off + 4, UDP_HLEN + payloadLen);
    writeU16(buf, off + 6, 0);
    fill(buf, off + UDP_HLEN);
    this.commitIp(false);
    this.counters.txUdp++;
    return true;
  }

  /**
   * A received frame; the view is only valid during the call. `rxFlags`:
   * the driver's word on its checksum, Xen's NETRXF bits (data_validated: it
   * was checked; csum_blank: a sender on this host left it partial): either
   * spares the transport's checksum check.
   */
  receive(buf: Uint8Array, off: number, len: number, rxFlags = 0): void {
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
    if (type === ETH_P_ARP) return this.arpLayer.receive(buf, l3, l3len);
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
    if (proto === IPPROTO_ICMP) return this.icmp.receive(buf, l3, ihl, total, srcMac);
    if (proto === IPPROTO_TCP) {
      c.rxTcp++;
      this.tcp.input(buf, l3 + ihl, total - ihl, readU32(buf, l3 + 12), this.opts.ip, (rxFlags & (NETRXF_data_validated | NETRXF_csum_blank)) !== 0);
      return;
    }
    if (proto !== IPPROTO_UDP) {
      c.rxNotUdp++;
      this.icmp.unreachable(ICMP_PROT_UNREACH, buf, l3, ihl, total, srcMac);
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
      this.icmp.unreachable(ICMP_PORT_UNREACH, buf, l3, ihl, total, srcMac);
      return;
    }
    c.rxUdp++;
    h(buf, u + UDP_HLEN, ulen - UDP_HLEN, readU32(buf, l3 + 12), readU16(buf, u));
  }
}
