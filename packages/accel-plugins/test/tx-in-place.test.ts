/**
 * Frames built in their final DMA buffer (plugin API 1.3), for vnic (the VI
 * NIC) and vdpa (the virtio NIC, the frame after its virtio-net header): txBuffer
 * lends a free TX slot, the stack builds the frame there, and startXmit
 * posts it from that slot with no copy; a frame it declines gives the slot
 * back; a frame built elsewhere is copied (counted); descriptors become
 * visible to the NIC at once, and a sleeping NIC woken at flush (once a
 * burst) or the next poll.
 */
import { describe, expect, it } from 'vitest';
import { sameHostRig, udpTo, type Guest, type Model, type SameHostRig } from './same-host-rig.ts';

function up(model: Model): { r: SameHostRig; g1: Guest; g2: Guest } {
  const r = sameHostRig(model);
  const [g1, g2] = r.guests;
  r.attach(g1, g2);
  return { r, g1, g2 };
}

/** Build `frame` where txBuffer lends, as netfront's stack does; the offset, or -1. */
function buildInPlace(g: Guest, frame: Uint8Array): number {
  const at = g.fe.txBuffer!(frame.length);
  if (at >= 0) g.ram.set(frame, at);
  return at;
}

const free = (g: Guest) => g.stats().freeTxSlots as number;

/** Each plugin's names for the counters the tests read. */
const names = (m: Model) =>
  m === 'vnic' ? { taken: 'taken', copied: 'txCopied', arp: 'declinedArp' } : { taken: 'vdpaTaken', copied: 'vdpaTxCopied', arp: 'vdpaDeclinedArp' };

describe.each(['vnic', 'vdpa'] as const)('%s: frames built in their final DMA buffer', (model) => {
  const n = names(model);

  it('a frame built in the lent slot goes out of it with no copy and arrives whole', () => {
    const { r, g1, g2 } = up(model);
    const f = udpTo(g2.vif.mac, g1.vif.mac, '10.0.9.2', 700, 0x33);
    const slots = free(g1);
    const at = buildInPlace(g1, f);
    expect(at).toBeGreaterThanOrEqual(0);
    expect(at + f.length).toBeLessThanOrEqual(g1.ram.length);
    expect(free(g1)).toBe(slots - 1);
    expect(g1.fe.startXmit(g1.ram, at, f.length)).toBe(true);
    g1.fe.flush!();
    r.pump();
    expect(g2.delivered).toHaveLength(1);
    expect(Array.from(g2.delivered[0])).toEqual(Array.from(f));
    expect(g1.stats()).toMatchObject({ [n.taken]: 1, [n.copied]: 0 });
    expect(free(g1)).toBe(slots); // completed: the slot is free again
  });

  it('a frame built in the lent slot and declined (ARP) gives the slot back', () => {
    const { g1, g2 } = up(model);
    const arp = udpTo(g2.vif.mac, g1.vif.mac);
    arp[13] = 0x06;
    const slots = free(g1);
    const at = buildInPlace(g1, arp);
    expect(g1.fe.startXmit(g1.ram, at, arp.length)).toBe(false);
    expect(free(g1)).toBe(slots);
    expect(g1.stats()).toMatchObject({ [n.taken]: 0, [n.arp]: 1 });
  });

  it('a frame offered from another buffer after a lend is copied into a slot; the lent one is not lost', () => {
    const { r, g1, g2 } = up(model);
    const f = udpTo(g2.vif.mac, g1.vif.mac, '10.0.9.2', 300, 0x44);
    const slots = free(g1);
    expect(buildInPlace(g1, new Uint8Array(64))).toBeGreaterThanOrEqual(0);
    expect(g1.fe.startXmit(f, 0, f.length)).toBe(true);
    g1.fe.flush!();
    r.pump();
    expect(Array.from(g2.delivered[0])).toEqual(Array.from(f));
    expect(g1.stats()).toMatchObject({ [n.taken]: 1, [n.copied]: 1 });
    expect(free(g1)).toBe(slots);
  });

  it('a second lend without a startXmit between gives the first slot back', () => {
    const { g1 } = up(model);
    const slots = free(g1);
    const a = g1.fe.txBuffer!(100);
    const b = g1.fe.txBuffer!(100);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(b).toBeGreaterThanOrEqual(0);
    expect(free(g1)).toBe(slots - 1);
  });

  it('no lend for a frame longer than a slot, or while the VI is not up', () => {
    const r = sameHostRig(model);
    const [g1, g2] = r.guests;
    expect(g1.fe.txBuffer!(100)).toBe(-1); // not attached yet
    r.attach(g1, g2);
    // Over the MTU: a TSO buffer where the VI does TSO (vnic, API 1.5), none over its 17 pages.
    expect(g1.fe.txBuffer!(70_000)).toBe(-1);
    expect(g1.fe.txBuffer!(1514)).toBeGreaterThanOrEqual(0);
  });

  it('each frame taken is visible to the NIC at once; a sleeping NIC is woken once a burst, at flush', () => {
    const { r, g1, g2 } = up(model);
    const f = udpTo(g2.vif.mac, g1.vif.mac, '10.0.9.2', 200);
    r.nic.markAsleep(true);
    const k0 = g1.kicks; // the attach may have rung already (RX buffers posted)
    for (let i = 0; i < 3; i++) expect(g1.fe.startXmit(f, 0, f.length)).toBe(true);
    expect(g1.kicks - k0).toBe(0);
    g1.fe.flush!();
    expect(g1.kicks - k0).toBe(1);
    g1.fe.flush!(); // nothing posted since: no wake
    expect(g1.kicks - k0).toBe(1);
    // Published with each frame: an awake NIC takes all three without the wake.
    r.nic.markAsleep(false);
    r.nic.poll();
    expect(r.fnStats(g1).txFrames).toBe(3);
  });

  it('a frame taken outside a burst (no flush) wakes a sleeping NIC at the next poll', () => {
    const { r, g1, g2 } = up(model);
    const f = udpTo(g2.vif.mac, g1.vif.mac, '10.0.9.2', 200);
    r.nic.markAsleep(true);
    const k0 = g1.kicks;
    expect(g1.fe.startXmit(f, 0, f.length)).toBe(true);
    expect(g1.kicks - k0).toBe(0);
    g1.fe.poll(64);
    expect(g1.kicks - k0).toBe(1);
    r.nic.markAsleep(false);
    r.pump();
    expect(g2.delivered).toHaveLength(1);
  });
});
