/**
 * netback's TX of a GSO frame (gso.ts cuts it): the frame is never held
 * whole in dom0 (its skbs are MTU-sized), but copied from the guest's slots
 * segment by segment: its headers once into the frame's skb, then for each
 * segment a fresh skb with the adjusted headers and its gso_size octets of
 * payload, grant-copied from wherever in the slots they lie.
 */
import { GNTST_okay, type GrantOps } from '@xsim/hypervisor';
import type { SkbPool } from '../skb.ts';
import { copyFromGuest } from './common.ts';
import { planTcpGso, segmentLen, writeSegmentHeaders } from './gso.ts';

/** Octets of a GSO frame's first slot copied as its headers (Ethernet, VLAN, IPv4 and TCP with all their options fit). */
export const GSO_HEADER_MAX = 18 + 60 + 60;

/** The frame's slots as the TX path copied them: grant, offset and size of each (the first slot's own size, not the frame's). */
export interface GsoSlots {
  gref: Uint32Array;
  off: Uint16Array;
  size: Uint16Array;
  first: number;
  count: number;
}

/** What became of a GSO frame: its segments' skbs and lengths, or why none (each a drop reason of the caller's). */
export type GsoResult = { segs: number[]; lens: number[] } | { error: 'plan' | 'noskb' | 'copy'; why: string; status: number };

/** Copy `n` octets from offset `from` of the frame (the slots' concatenation) to dom0 RAM at `dst`; a GNTST_* status. */
function copyStream(ops: GrantOps, domid: number, s: GsoSlots, from: number, n: number, dst: number): number {
  let pos = 0;
  for (let i = 0; i < s.count && n > 0; i++) {
    const k = s.first + i;
    const size = s.size[k];
    if (from < pos + size) {
      const skip = from - pos;
      const m = Math.min(size - skip, n);
      const st = copyFromGuest(ops, domid, s.gref[k], s.off[k] + skip, dst, m);
      if (st !== GNTST_okay) return st;
      from += m;
      n -= m;
      dst += m;
    }
    pos += size;
  }
  return GNTST_okay;
}

/**
 * Copy a GSO frame of `total` octets from the guest as segments of `mss`
 * payload octets, its headers first into `hdrSkb`. On any failure every skb
 * taken here is given back.
 */
export function copyGsoFrame(
  d: { ops: GrantOps; skbs: SkbPool; maxFrame: number },
  domid: number,
  s: GsoSlots,
  hdrSkb: number,
  total: number,
  mss: number,
): GsoResult {
  const { skbs, ops } = d;
  const ram = skbs.mem.u8;
  const hdrAt = skbs.addr(hdrSkb);
  const have = Math.min(s.size[s.first], GSO_HEADER_MAX, skbs.slotSize);
  let st = copyStream(ops, domid, s, 0, have, hdrAt);
  if (st !== GNTST_okay) return { error: 'copy', why: 'grant copy of the headers', status: st };
  const plan = planTcpGso(ram, hdrAt, have, total, mss, Math.min(d.maxFrame, skbs.slotSize));
  if (typeof plan === 'string') return { error: 'plan', why: plan, status: 0 };
  const segs: number[] = [];
  const lens: number[] = [];
  const giveBack = () => segs.forEach((x) => skbs.put(x));
  for (let k = 0; k < plan.segs; k++) {
    const skb = skbs.alloc();
    if (skb < 0) {
      giveBack();
      return { error: 'noskb', why: `no skb for segment ${k + 1} of ${plan.segs}`, status: 0 };
    }
    segs.push(skb);
    const at = skbs.addr(skb);
    const segLen = Math.max(0, segmentLen(plan, k));
    const len = writeSegmentHeaders(ram, hdrAt, at, plan, k, segLen);
    st = copyStream(ops, domid, s, plan.hlen + k * plan.mss, segLen, at + plan.hlen);
    if (st !== GNTST_okay) {
      giveBack();
      return { error: 'copy', why: `grant copy of segment ${k + 1}`, status: st };
    }
    skbs.len[skb] = len;
    lens.push(len);
  }
  return { segs, lens };
}
