/**
 * Extra-info slots on a vif's TX ring, after Linux xen-netback's
 * xenvif_get_extras and xenvif_set_skb_gso, and its multicast filter
 * (xenvif_mcast_add, xenvif_mcast_del, xenvif_mcast_match).
 *
 * A request flagged NETTXF_extra_info is followed by extra-info slots, each
 * flagged XEN_NETIF_EXTRA_FLAG_MORE but the last. Each is copied out of the
 * ring once and kept by its type (a later one of a type replaces an earlier
 * one, as Linux's extras[type - 1]); a type of 0 or past the last
 * (XEN_NETIF_EXTRA_TYPE_MAX) or a chain running past the published requests
 * is malice: the frontend is disconnected. Every extra slot is answered
 * NETIF_RSP_NULL, whatever its type. What each type does:
 *
 *   MCAST_ADD, MCAST_DEL  the request is no frame but a change to the vif's
 *                         multicast list (answered OKAY, or ERROR when 64
 *                         addresses are listed); applied to RX only while the
 *                         frontend asks for it (request-multicast-control)
 *   GSO                   checked as xenvif_set_skb_gso checks it (a size of
 *                         0 or a type other than TCPv4/TCPv6 is malice); the
 *                         frame (up to 64 KiB) goes whole to a vif that takes
 *                         GSO frames, and is segmented in software for
 *                         anything else (tx-gso.ts, gso.ts, gso-tx.ts)
 *   HASH, XDP             nothing (xsim keeps no packet hash; XDP means
 *                         nothing on TX)
 */
import {
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_MAX,
  XEN_NETIF_GSO_TYPE_TCPV4,
  XEN_NETIF_GSO_TYPE_TCPV6,
  newExtraInfo,
  readExtraInfo,
  type NetifExtraInfo,
} from '@xsim/hypervisor';

/** XEN_NETBK_MCAST_MAX: multicast addresses a vif may list. */
export const MCAST_MAX = 64;

/** The extra-info slots of the request being taken, by type. */
export class TxExtras {
  /** extras[type - 1]: the last slot of each type seen. */
  private readonly byType: NetifExtraInfo[] = Array.from({ length: XEN_NETIF_EXTRA_TYPE_MAX - 1 }, () => newExtraInfo());
  private seen = 0;
  private readonly slot = newExtraInfo();

  /**
   * xenvif_get_extras: copy the slots after request `cons` (`work` requests
   * published from it). The number of extra slots, or why the frontend must go.
   */
  read(dv: DataView, slotOffset: (idx: number) => number, cons: number, work: number): number | string {
    this.seen = 0;
    let n = 0;
    do {
      if (1 + n >= work) return 'missing extra info: the extra-info chain runs past the published TX requests';
      const e = readExtraInfo(dv, slotOffset(cons + 1 + n), this.slot);
      n++;
      if (e.type === 0 || e.type >= XEN_NETIF_EXTRA_TYPE_MAX) return `invalid extra type: ${e.type}`;
      copyExtra(e, this.byType[e.type - 1]);
      this.seen |= 1 << e.type;
    } while (this.slot.flags & XEN_NETIF_EXTRA_FLAG_MORE);
    return n;
  }

  /** No extra slot with this request. */
  clear(): void {
    this.seen = 0;
  }

  /** The slot of `type` the request carried, or null. */
  get(type: number): NetifExtraInfo | null {
    return this.seen & (1 << type) ? this.byType[type - 1] : null;
  }

  /** xenvif_set_skb_gso's checks: why a GSO slot is malice, or ''. */
  gsoProblem(): string {
    const g = this.get(XEN_NETIF_EXTRA_TYPE_GSO);
    if (!g) return '';
    if (g.gsoSize === 0) return 'GSO size must not be zero';
    if (g.gsoType !== XEN_NETIF_GSO_TYPE_TCPV4 && g.gsoType !== XEN_NETIF_GSO_TYPE_TCPV6) return `bad GSO type ${g.gsoType}`;
    return '';
  }
}

function copyExtra(f: NetifExtraInfo, t: NetifExtraInfo): void {
  t.type = f.type;
  t.flags = f.flags;
  t.gsoSize = f.gsoSize;
  t.gsoType = f.gsoType;
  t.gsoFeatures = f.gsoFeatures;
  t.mcastAddr.set(f.mcastAddr);
  t.hashType = f.hashType;
  t.hashAlgorithm = f.hashAlgorithm;
  t.hashValue = f.hashValue;
  t.xdpHeadroom = f.xdpHeadroom;
}

/** A 6-byte address as a number (48 bits fit a double). */
export function macOf(a: Uint8Array, at = 0): number {
  return a[at] * 2 ** 40 + a[at + 1] * 2 ** 32 + ((a[at + 2] << 24) >>> 0) + (a[at + 3] << 16) + (a[at + 4] << 8) + a[at + 5];
}

/**
 * The multicast addresses a frontend listed (fe_mcast_addr), as a multiset:
 * Linux adds an address twice if asked twice and removes one per MCAST_DEL.
 */
export class McastList {
  private readonly addrs = new Map<number, number>();
  private count = 0;

  /** xenvif_mcast_add: false when MCAST_MAX addresses are listed already. */
  add(mac: number): boolean {
    if (this.count >= MCAST_MAX) return false;
    this.addrs.set(mac, (this.addrs.get(mac) ?? 0) + 1);
    this.count++;
    return true;
  }

  /** xenvif_mcast_del: one entry of `mac`, if listed. */
  del(mac: number): void {
    const n = this.addrs.get(mac);
    if (n === undefined) return;
    if (n > 1) this.addrs.set(mac, n - 1);
    else this.addrs.delete(mac);
    this.count--;
  }

  has(mac: number): boolean {
    return this.addrs.has(mac);
  }

  /**
   * xenvif_start_xmit's filter, for a frontend that asked for it: the frame at
   * `at` goes to a multicast address it did not list. Broadcast
   * (PACKET_BROADCAST, not PACKET_MULTICAST) and unicast always pass.
   */
  filters(ram: Uint8Array, at: number): boolean {
    if ((ram[at] & 1) === 0) return false;
    let bcast = true;
    for (let i = 0; i < 6 && bcast; i++) bcast = ram[at + i] === 0xff;
    return !bcast && !this.addrs.has(macOf(ram, at));
  }

  get size(): number {
    return this.count;
  }

  /** xenvif_mcast_addr_list_free: the vif disconnected. */
  clear(): void {
    this.addrs.clear();
    this.count = 0;
  }
}
