/**
 * What the RX path needs to hand a guest a TCPv4 GSO frame whole (Linux
 * xen-netback's rx.c, xenvif_rx_next_skb and xenvif_rx_extra_slot, for a
 * vif whose frontend wrote feature-gso-tcpv4: vif->gso_mask): its octets
 * copied from the chain of skbs that holds it into the guest's pages, and
 * the GSO extra-info slot after its first response (netif.h's
 * XEN_NETIF_EXTRA_TYPE_GSO: gso.size the MSS, gso.type TCPV4, no features).
 */
import {
  GNTST_okay,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_GSO_TYPE_TCPV4,
  writeExtraInfo,
  type BackRing,
  type GrantOps,
  type NetifExtraInfo,
} from '@xsim/hypervisor';
import type { GsoFrame } from '../bridge.ts';
import type { SkbPool } from '../skb.ts';
import { copyToGuest } from './common.ts';

/** Copy `n` octets from offset `from` of the frame held in `f`'s chain into the guest's page `gref` at offset 0; a GNTST_* status. */
export function copyChainToGuest(ops: GrantOps, domid: number, skbs: SkbPool, f: GsoFrame, from: number, gref: number, n: number): number {
  const size = skbs.slotSize;
  let dstOff = 0;
  while (n > 0) {
    const k = Math.floor(from / size);
    const off = from - k * size;
    const m = Math.min(size - off, n);
    const st = copyToGuest(ops, domid, skbs.addr(f.skbs[k]) + off, gref, dstOff, m);
    if (st !== GNTST_okay) return st;
    from += m;
    dstOff += m;
    n -= m;
  }
  return GNTST_okay;
}

/** The frame in one piece (for a capture point, which wants it contiguous). */
export function gatherChain(skbs: SkbPool, f: GsoFrame): Uint8Array {
  const out = new Uint8Array(f.len);
  const ram = skbs.mem.u8;
  for (let k = 0, at = 0; at < f.len; k++) {
    const n = Math.min(skbs.slotSize, f.len - at);
    const a = skbs.addr(f.skbs[k]);
    out.set(ram.subarray(a, a + n), at);
    at += n;
  }
  return out;
}

/** The GSO extra-info slot in the next request's slot (its buffer goes back unused); `more`: another extra follows (HASH). */
export function writeGsoSlot(ring: BackRing, e: NetifExtraInfo, mss: number, more: boolean): void {
  ring.reqCons = (ring.reqCons + 1) >>> 0;
  e.type = XEN_NETIF_EXTRA_TYPE_GSO;
  e.flags = more ? XEN_NETIF_EXTRA_FLAG_MORE : 0;
  e.gsoSize = mss;
  e.gsoType = XEN_NETIF_GSO_TYPE_TCPV4;
  e.gsoFeatures = 0;
  writeExtraInfo(ring.sring.dv, ring.nextResponseOffset(), e);
  ring.rspProdPvt = (ring.rspProdPvt + 1) >>> 0;
}
