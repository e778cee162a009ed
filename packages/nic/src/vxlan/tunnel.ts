/**
 * A tunnel wire's end in the fabric: frames handed to it leave as VXLAN
 * datagrams (queued for the I/O thread), datagrams the I/O thread received
 * come back as frames to the wire's other end. Every frame is sent, delivered
 * or counted under one of the counters below; the datagrams that are not
 * frames of ours (not VXLAN, malformed, another VNI) are counted by the socket
 * that received them.
 */
import { DIR_INBOUND, DIR_OUTBOUND, declareCounters, offTap, type CaptureSink, type Counters, type Tap } from '@xsim/hypervisor';
import type { WireEnd } from '../nic-spec.ts';
import { VXLAN_HEADER, VXLAN_IP_OVERHEAD, parseVxlan, writeVxlanHeader, type UdpAddr } from './codec.ts';
import { udpKernelDrops } from './kernel-drops.ts';
import { SOCKET_WORDS, TUNNEL_WORDS } from './io-layout.ts';
import type { DatagramRing } from './ring.ts';

export const VXLAN_TUNNEL_COUNTERS = declareCounters('vxlan tunnel', {
  vxlanTxFrames: { kind: 'event', help: 'frames queued to the I/O thread to leave as VXLAN datagrams' },
  vxlanTxOversize: {
    kind: 'drop',
    help: "frames that would not fit the underlay's MTU with the outer headers (a frame of n octets needs n + 36 of IP MTU: IPv4 20, UDP 8, VXLAN 8)",
  },
  vxlanTxRingFull: { kind: 'drop', help: "frames refused because the queue to the I/O thread was full (the socket's sends lag behind)" },
  vxlanTxDown: {
    kind: 'drop',
    help: "frames sent while the tunnel is down (its sockets not bound or connected, or its link set down: the far end's partition is gone)",
  },
  vxlanTxSendErrors: {
    kind: 'drop',
    help: 'datagrams the socket failed to send (an ICMP unreachable from the remote, no route, a full socket buffer): counted by the I/O thread',
  },
  vxlanTxSent: { kind: 'event', help: 'datagrams the socket sent (the I/O thread)' },
  vxlanTxQueued: { kind: 'gauge', help: 'frames queued to the I/O thread or in a send now: neither sent nor dropped yet' },
  vxlanRxFrames: { kind: 'event', help: "frames that arrived through the tunnel and went on to the wire's other end" },
});

export const VXLAN_SOCKET_COUNTERS = declareCounters('vxlan socket', {
  vxlanRxDatagrams: { kind: 'event', help: 'UDP datagrams the socket received (the I/O thread)' },
  vxlanRxRingFull: { kind: 'drop', help: 'datagrams refused because the queue to the fabric was full: counted by the I/O thread' },
  vxlanRxShort: { kind: 'drop', help: 'datagrams shorter than the 8-octet VXLAN header' },
  vxlanRxBadHeader: {
    kind: 'drop',
    help: "datagrams whose VXLAN header is not RFC 7348's: the flags not exactly I (0x08), or a reserved bit set (Linux drops these as malformed too)",
  },
  vxlanRxRunt: { kind: 'drop', help: 'VXLAN datagrams whose inner frame is shorter than an Ethernet header (14 octets)' },
  vxlanRxUnknownVni: { kind: 'drop', help: 'VXLAN datagrams for a VNI no tunnel on this socket carries' },
  vxlanRxErrors: { kind: 'event', help: 'errors the socket reported (the I/O thread)' },
  vxlanRxKernelDrops: {
    kind: 'drop',
    help: "datagrams the kernel dropped for the socket before the I/O thread read them (its receive buffer full): /proc/net/udp's drops column, read when stats are asked for (0 where there is no such file)",
  },
});

type TunnelCounters = Counters<typeof VXLAN_TUNNEL_COUNTERS.decls>;
type SocketCounters = Counters<typeof VXLAN_SOCKET_COUNTERS.decls>;
type TunnelDrop = 'vxlanTxOversize' | 'vxlanTxRingFull' | 'vxlanTxDown';

/** A tunnel end as the fabric is told it: addresses "ADDR:PORT", the underlay's IP MTU, and the topology path naming it. */
export interface VxlanEnd {
  local: string;
  remote: string;
  vni: number;
  mtu: number;
  path: string;
}

export class VxlanTunnel {
  readonly c: TunnelCounters = VXLAN_TUNNEL_COUNTERS.zero();
  /** Where frames that came through the tunnel go: the wire's other end (set when the wire is joined). */
  out: WireEnd = () => {};
  /** What the wire's other end hands frames to. */
  readonly input: WireEnd;
  private tap: Tap = offTap();
  /**
   * The wire end's link, as a NIC's: set down when the far end is gone (its
   * partition's process died), as a failed host's cable would go dark. A NIC
   * wired to the tunnel then counts what it sends in its linkDownDrops.
   */
  linkUp = true;
  private readonly header = new Uint8Array(VXLAN_HEADER);

  constructor(
    readonly index: number,
    readonly end: VxlanEnd,
    private readonly ring: DatagramRing,
    /** TUNNEL_WORDS (the I/O thread's) and its socket's SOCKET_WORDS. */
    private readonly words: Int32Array,
    private readonly socketWords: Int32Array,
    private readonly kickIo: () => void,
  ) {
    writeVxlanHeader(this.header, 0, end.vni);
    this.input = (ram, off, len) => this.send(ram, off, len);
  }

  /** Up while its link is and its socket is bound and its sending socket connected. */
  get up(): boolean {
    return this.linkUp && Atomics.load(this.socketWords, SOCKET_WORDS.bound) === 1 && Atomics.load(this.words, TUNNEL_WORDS.ready) === 1;
  }

  tapInto(sink: CaptureSink): void {
    this.tap = sink.tap(`vxlan/wire${this.index}`);
  }

  private dropped(ram: Uint8Array, off: number, len: number, counter: TunnelDrop): void {
    this.c[counter]++;
    if (this.tap.on) this.tap.drop(ram, off, len, DIR_OUTBOUND, `vxlan.tunnels.${this.index}.${counter}`);
  }

  /** A frame into the tunnel: the VXLAN header and the frame queued for the I/O thread, or counted. */
  private send(ram: Uint8Array, off: number, len: number): void {
    if (!this.up) return this.dropped(ram, off, len, 'vxlanTxDown');
    if (len + VXLAN_IP_OVERHEAD > this.end.mtu) return this.dropped(ram, off, len, 'vxlanTxOversize');
    if (!this.ring.push(ram, off, len, this.header)) return this.dropped(ram, off, len, 'vxlanTxRingFull');
    this.c.vxlanTxFrames++;
    if (this.tap.on) this.tap.frame(ram, off, len, DIR_OUTBOUND);
    this.kickIo();
  }

  /** A frame out of the tunnel (private memory, valid for this call only). */
  deliver(buf: Uint8Array, off: number, len: number): void {
    this.c.vxlanRxFrames++;
    if (this.tap.on) this.tap.frame(buf, off, len, DIR_INBOUND);
    this.out(buf, off, len);
  }

  stats() {
    const sent = Atomics.load(this.words, TUNNEL_WORDS.sent) >>> 0;
    const errors = Atomics.load(this.words, TUNNEL_WORDS.sendErrors) >>> 0;
    return {
      wire: this.end.path,
      local: this.end.local,
      remote: this.end.remote,
      vni: this.end.vni,
      up: this.up,
      link: this.linkUp ? 'up' : 'down',
      ...this.c,
      vxlanTxSent: sent,
      vxlanTxSendErrors: errors,
      vxlanTxQueued: this.c.vxlanTxFrames - sent - errors,
    };
  }
}

/** Datagrams taken off a socket's ring per turn of the fabric. */
const RX_BUDGET = 256;

/** A UDP socket's arrivals in the fabric: parsed and handed to the tunnel of their VNI, or counted. */
export class VxlanSocket {
  readonly c: SocketCounters = VXLAN_SOCKET_COUNTERS.zero();
  readonly tunnels = new Map<number, VxlanTunnel>();
  /** Private memory each datagram is copied into once, before a byte of it is looked at. */
  private readonly buf: Uint8Array;

  constructor(
    readonly local: string,
    private readonly addr: UdpAddr,
    private readonly ring: DatagramRing,
    readonly words: Int32Array,
  ) {
    this.buf = new Uint8Array(ring.maxRecord);
  }

  pending(): boolean {
    return !this.ring.empty;
  }

  /** Take what arrived (at most RX_BUDGET datagrams); returns how many. */
  poll(): number {
    let n = 0;
    for (; n < RX_BUDGET; n++) {
      const len = this.ring.pop(this.buf);
      if (len < 0) break;
      const p = parseVxlan(this.buf, len);
      if (!p.ok) {
        this.c[p.why]++;
        continue;
      }
      const t = this.tunnels.get(p.vni);
      if (!t) {
        this.c.vxlanRxUnknownVni++;
        continue;
      }
      t.deliver(this.buf, p.frameOff, p.frameLen);
    }
    return n;
  }

  stats() {
    const w = (i: number) => Atomics.load(this.words, i) >>> 0;
    return {
      local: this.local,
      bound: w(SOCKET_WORDS.bound) === 1,
      ...this.c,
      vxlanRxDatagrams: w(SOCKET_WORDS.rxDatagrams),
      vxlanRxRingFull: w(SOCKET_WORDS.rxRingFull),
      vxlanRxErrors: w(SOCKET_WORDS.errors),
      vxlanRxKernelDrops: udpKernelDrops(this.addr) ?? 0,
    };
  }
}
