/**
 * Where a guest's GSO frame goes from netback's TX (Linux segments an skb
 * in software only at a device that cannot take it whole:
 * validate_xmit_skb). The bridge says whether its destination is one port
 * that takes GSO frames (a vif whose frontend wrote feature-gso-tcpv4): then
 * the frame is copied whole into a chain of skbs and handed there; otherwise
 * (a wire, dom0's own stack, a vif without the feature, a broadcast) it is
 * segmented as it is copied (gso-tx.ts), and each segment forwarded.
 */
import { DIR_INBOUND, GNTST_okay, type Tap } from '@xsim/hypervisor';
import { tapFrame } from '@xsim/netstack';
import type { GsoFrame } from '../bridge.ts';
import { CSUM_PARTIAL } from '../skb.ts';
import { copyFromGuest, type VifCounters, type VifDeps } from './common.ts';
import { chainSource, copyGsoFrame, copyGsoWhole, slotSource, type GsoResult, type GsoSlots, type WholeResult } from './gso-tx.ts';
import { gatherChain } from './rx-gso.ts';

/** What forwarding needs of the vif a GSO frame came from. */
export interface GsoSender {
  readonly c: VifCounters;
  readonly tap: Tap;
  readonly portId: number;
}

/**
 * Copy the GSO frame in `slots` (`total` octets, gso_size `mss`) from the
 * guest: its MACs first into `head`, then whole if the bridge would hand it
 * to a port that takes it so (gsoPort), else segment by segment.
 */
export function copyGsoForBridge(
  d: VifDeps,
  portId: number,
  domid: number,
  slots: GsoSlots,
  head: number,
  total: number,
  mss: number,
): GsoResult | WholeResult {
  const { skbs, ops } = d;
  const k0 = slots.first;
  const macs = copyFromGuest(ops, domid, slots.gref[k0], slots.off[k0], skbs.addr(head), 12);
  if (macs === GNTST_okay && d.bridge.gsoPort(portId, skbs.addr(head)) !== null) return copyGsoWhole(d, domid, slots, head, total, mss);
  return copyGsoFrame(d, slotSource(ops, domid, slots), slots.size[k0], head, total, mss);
}

/**
 * A GSO frame copied whole: to the port that takes it so, or, if the bridge
 * no longer would hand it there (its destination moved, went or switched
 * GSO off since the copy), segmented from the chain here and forwarded as
 * segments; too few skbs for that: dropped, counted (txDropGsoLate).
 */
export function forwardGsoWhole(d: VifDeps, v: GsoSender, w: GsoFrame): void {
  const { skbs } = d;
  const at = skbs.addr(w.skbs[0]);
  if (d.bridge.gsoPort(v.portId, at)) {
    if (v.tap.on) tapFrame(v.tap, gatherChain(skbs, w), 0, w.len, DIR_INBOUND, true);
    d.bridge.forwardGso(v.portId, at, w);
    v.c.txGsoWhole++;
    return;
  }
  const r = copyGsoFrame(d, chainSource(skbs, w), skbs.len[w.skbs[0]], w.skbs[0], w.len, w.mss);
  if ('error' in r) {
    v.c.txDropGsoLate++;
    return;
  }
  v.c.txGsoSegments += r.segs.length;
  forwardGsoSegments(d, v, r.segs);
  r.segs.forEach((x) => skbs.put(x));
}

/** A GSO frame's segments to the bridge, each a partial-checksum frame of its own. */
export function forwardGsoSegments(d: VifDeps, v: GsoSender, segs: number[]): void {
  const { skbs } = d;
  for (const x of segs) {
    const at = skbs.addr(x);
    const len = skbs.len[x];
    if (v.tap.on) tapFrame(v.tap, skbs.mem.u8, at, len, DIR_INBOUND, true);
    d.bridge.forward(v.portId, at, len, x, CSUM_PARTIAL);
  }
}
