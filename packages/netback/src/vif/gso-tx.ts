/**
 * netback's TX of a GSO frame (gso.ts cuts it). Where the bridge would hand
 * it to a port that takes it whole (a vif whose frontend wrote
 * feature-gso-tcpv4), it is copied whole into a chain of dom0's skbs (an skb
 * with frags: copyGsoWhole); otherwise it is copied from the guest's slots
 * segment by segment (copyGsoFrame): its headers once into the frame's skb,
 * then for each segment a fresh skb with the adjusted headers and its
 * gso_size octets of payload, copied from wherever in the slots (or in the
 * chain, if the destination changed its mind after the copy) they lie.
 */
import { GNTST_okay, type GrantOps } from '@xsim/hypervisor';
import type { GsoFrame } from '../bridge.ts';
import { CSUM_PARTIAL, type SkbPool } from '../skb.ts';
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

/** Copies `n` octets from offset `from` of a frame to dom0 RAM at `dst`; a GNTST_* status. */
export type FrameSource = (from: number, n: number, dst: number) => number;

/** A frame in the guest's TX slots as a source. */
export function slotSource(ops: GrantOps, domid: number, s: GsoSlots): FrameSource {
  return (from, n, dst) => copyStream(ops, domid, s, from, n, dst);
}

/** A frame held whole in a chain of skbs (GsoFrame) as a source. */
export function chainSource(skbs: SkbPool, f: GsoFrame): FrameSource {
  const ram = skbs.mem.u8;
  const size = skbs.slotSize;
  return (from, n, dst) => {
    while (n > 0) {
      const k = Math.floor(from / size);
      const off = from - k * size;
      const m = Math.min(size - off, n);
      const at = skbs.addr(f.skbs[k]) + off;
      ram.copyWithin(dst, at, at + m);
      from += m;
      dst += m;
      n -= m;
    }
    return GNTST_okay;
  };
}

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
  d: { skbs: SkbPool; maxFrame: number },
  src: FrameSource,
  firstLen: number,
  hdrSkb: number,
  total: number,
  mss: number,
): GsoResult {
  const { skbs } = d;
  const ram = skbs.mem.u8;
  const hdrAt = skbs.addr(hdrSkb);
  const have = Math.min(firstLen, GSO_HEADER_MAX, skbs.slotSize);
  let st = src(0, have, hdrAt);
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
    st = src(plan.hlen + k * plan.mss, segLen, at + plan.hlen);
    if (st !== GNTST_okay) {
      giveBack();
      return { error: 'copy', why: `grant copy of segment ${k + 1}`, status: st };
    }
    skbs.len[skb] = len;
    lens.push(len);
  }
  return { segs, lens };
}

/** What became of a GSO frame copied whole: its chain, or why none (as GsoResult's). */
export type WholeResult = { frame: GsoFrame } | { error: 'plan' | 'noskb' | 'copy'; why: string; status: number };

/**
 * Copy a GSO frame of `total` octets whole from the guest's slots into
 * `headSkb` and as many more skbs as it needs, after checking (on its first
 * skb, where its headers are) that it could be segmented should it have to
 * be. On any failure every skb taken here is given back (`headSkb` stays the
 * caller's).
 */
export function copyGsoWhole(
  d: { ops: GrantOps; skbs: SkbPool; maxFrame: number },
  domid: number,
  s: GsoSlots,
  headSkb: number,
  total: number,
  mss: number,
): WholeResult {
  const { skbs } = d;
  const size = skbs.slotSize;
  const chain = [headSkb];
  const giveBack = () => chain.slice(1).forEach((x) => skbs.put(x));
  for (let k = 1; k * size < total; k++) {
    const skb = skbs.alloc();
    if (skb < 0) {
      giveBack();
      return { error: 'noskb', why: `no skb for part ${k + 1} of the frame`, status: 0 };
    }
    chain.push(skb);
  }
  for (let k = 0; k < chain.length; k++) {
    const n = Math.min(size, total - k * size);
    const st = copyStream(d.ops, domid, s, k * size, n, skbs.addr(chain[k]));
    if (st !== GNTST_okay) {
      giveBack();
      return { error: 'copy', why: `grant copy of part ${k + 1} of the frame`, status: st };
    }
    skbs.len[chain[k]] = n;
  }
  const have = Math.min(s.size[s.first], GSO_HEADER_MAX, size, total);
  const plan = planTcpGso(skbs.mem.u8, skbs.addr(headSkb), have, total, mss, Math.min(d.maxFrame, size));
  if (typeof plan === 'string') {
    giveBack();
    return { error: 'plan', why: plan, status: 0 };
  }
  return { frame: { skbs: chain, len: total, mss, csum: CSUM_PARTIAL } };
}
