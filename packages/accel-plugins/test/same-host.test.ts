/**
 * The same-host fast path (issue 21) of vnic and vdpa, in process on a real
 * NIC of each model (same-host-rig.ts): when a vif's VI runs, its backend
 * steers the guest's MAC to it with a switch-only filter and tells the other
 * vifs `localmac` (a vif attaching later finds it in its `ready`), so guests
 * of one host send to each other through the NIC's internal switch; when a
 * vif leaves its fast path, whatever the reason, the others are told
 * `slowpath` at once and its filter goes before its VI. One test per way of
 * leaving; every frame a sender took ends delivered, on the wire, or counted.
 */
import { describe, expect, it } from 'vitest';
import { LOCALMAC_COUNTERS } from '../src/vnic/localmac.ts';
import { REMOTE_MAC, sameHostRig, udpTo, type Guest, type Model, type SameHostRig } from './same-host-rig.ts';

/** The frontend counters that differ by plugin (vdpa prefixes its own). */
const names = (m: Model) =>
  m === 'vnic'
    ? { taken: 'taken', local: 'takenLocal', unknown: 'declinedUnknown', dests: 'localDestinations' }
    : { taken: 'vdpaTaken', local: 'vdpaTakenLocal', unknown: 'vdpaDeclinedUnknown', dests: 'vdpaLocalDestinations' };

const beStats = (r: SameHostRig) => r.be.stats() as Record<string, number> & { vifs: { vif: string; stage: string; filters: number }[] };

/** Three guests, two of them (g1, g2) with their VIs running, g3 attached too unless told not to. */
function up(model: Model, o: { third?: boolean } = {}) {
  const r = sameHostRig(model);
  const [g1, g2, g3] = r.guests;
  r.attach(g1, g2, ...(o.third === false ? [] : [g3]));
  return { r, g1, g2, g3 };
}

/** What every way of leaving must have done by now: the others were told, none takes a frame for it, its filter is gone. */
function leftEverywhere(r: SameHostRig, gone: Guest, others: Guest[]): void {
  for (const g of others) {
    expect(r.toldMacs(g, 'slowpath'), `${g.vif.key} told slowpath`).toContain(gone.vif.mac);
    expect(g.takes(gone.vif.mac), `${g.vif.key} still takes frames for ${gone.vif.key}`).toBe(false);
    expect(r.send(g, gone), `${g.vif.key} took a frame for ${gone.vif.key}`).toBe(false);
  }
  expect(r.localFilters().map(([, mac]) => mac)).not.toContain(gone.vif.mac);
  expect(beStats(r)).toMatchObject({ localMacs: r.localFilters().length, localMacLeaves: expect.any(Number) as number });
  expect(beStats(r).localMacLeaves).toBeGreaterThanOrEqual(1);
}

describe.each(['vnic', 'vdpa'] as const)('%s: joining the same-host fast path', (model) => {
  const n = names(model);

  it('a vif whose VI runs is steered on the switch and announced to the others; one attaching later finds it in its ready', () => {
    const r = sameHostRig(model);
    const [g1, g2, g3] = r.guests;
    r.attach(g1);
    expect(r.localFilters()).toHaveLength(1);
    expect(r.guests[0].told.find((m) => m.op === 'ready')!.args.localMacs).toEqual([]);
    r.attach(g2, g3);
    // g2 and g3 came up together: each one's ready carries g1, and the later joiner is announced to the others.
    expect(g2.told.find((m) => m.op === 'ready')!.args.localMacs).toEqual([g1.vif.mac]);
    expect(r.toldMacs(g1, 'localmac').sort()).toEqual([g2.vif.mac, g3.vif.mac].sort());
    const g3ready = g3.told.findIndex((m) => m.op === 'ready');
    // A localmac reaching a vif whose VI is starting comes after its ready (which would clear it): kept.
    for (const g of [g2, g3]) expect(g.told.findIndex((m) => m.op === 'localmac')).toBeGreaterThan(g.told.findIndex((m) => m.op === 'ready'));
    expect(g3ready).toBeGreaterThan(0);
    for (const g of r.guests) {
      // Nobody is told its own MAC, and every frontend now takes frames for the two others.
      expect(r.toldMacs(g, 'localmac')).not.toContain(g.vif.mac);
      expect(g.takes(g.vif.mac)).toBe(false);
      for (const o of r.guests) if (o !== g) expect(g.takes(o.vif.mac), `${g.vif.key} -> ${o.vif.key}`).toBe(true);
      expect(g.stats()[n.dests]).toBe(2);
    }
    expect(
      r
        .localFilters()
        .map(([, mac]) => mac)
        .sort(),
    ).toEqual(r.guests.map((g) => g.vif.mac).sort());
    expect(beStats(r)).toMatchObject({ localMacs: 3, localMacJoins: 3, localMacLeaves: 0, localMacFailures: 0 });
    expect(Object.keys(LOCALMAC_COUNTERS.decls).every((k) => k in beStats(r))).toBe(true);
  });

  it('a frame between two guests goes through the switch to the other VI; broadcast, ARP and guests not up still take the slow path', () => {
    const { r, g1, g2 } = up(model, { third: false });
    const g3 = r.guests[2];
    expect(r.send(g1, g2)).toBe(true);
    expect(r.send(g2, g1)).toBe(true);
    r.pump();
    expect(g2.delivered.map((f) => f[6 + 5])).toEqual([1]); // from g1 (its domid in its MAC's last octet)
    expect(g1.delivered.map((f) => f[6 + 5])).toEqual([2]);
    expect(r.fnStats(g1).txSwitchedLocal).toBe(1);
    expect(r.fnStats(g2).txSwitchedLocal).toBe(1);
    expect(r.wire).toHaveLength(0);
    expect(g1.stats()).toMatchObject({ [n.taken]: 1, [n.local]: 1 });
    // To the uplink: taken, not local.
    expect(r.send(g1, REMOTE_MAC)).toBe(true);
    r.pump();
    expect(r.wire).toHaveLength(1);
    expect(g1.stats()).toMatchObject({ [n.taken]: 2, [n.local]: 1 });
    // Broadcast and ARP to a guest are declined as before; a guest whose VI is not up is no destination.
    const bcast = udpTo(0xffffffffffff, g1.vif.mac);
    expect(g1.fe.startXmit(bcast, 0, bcast.length)).toBe(false);
    const arp = udpTo(g2.vif.mac, g1.vif.mac);
    arp[13] = 0x06;
    expect(g1.fe.startXmit(arp, 0, arp.length)).toBe(false);
    expect(r.send(g1, g3)).toBe(false);
    expect(g1.stats()[n.unknown]).toBe(1);
  });

  it('from the wire a guest MAC keeps its path: no flow filter, so function 0 (the local filter is the switch only)', () => {
    const { r, g2 } = up(model);
    const before = r.nic.stats().rxDefault;
    const f = udpTo(g2.vif.mac, REMOTE_MAC, '10.0.1.2');
    r.nic.fromWire(f, 0, f.length);
    r.pump();
    expect(r.nic.stats().rxDefault).toBe(before + 1);
    expect(g2.delivered).toHaveLength(0);
  });

  it("the switch filter is in no vif's flow quota: with max-filters 0 every vif still joins", () => {
    const r = sameHostRig(model, { args: { maxFilters: 0 } });
    r.attach(...r.guests);
    expect(r.localFilters()).toHaveLength(3);
    expect(beStats(r).vifs.map((v) => v.filters)).toEqual([0, 0, 0]);
  });

  it('a full NIC table refuses the switch filter: counted and logged, the others are not told, the vif keeps its fast path to the uplink', () => {
    const r = sameHostRig(model, { filters: 1 });
    const [g1, g2] = r.guests;
    r.attach(g1, g2);
    expect(r.localFilters()).toHaveLength(1);
    expect(beStats(r)).toMatchObject({ localMacs: 1, localMacJoins: 1, localMacFailures: 1 });
    expect(r.logs.some((l) => l.includes('no switch-only filter for its MAC (ENOSPC'))).toBe(true);
    const [refused, joined] = r.localFilters()[0][1] === g1.vif.mac ? [g2, g1] : [g1, g2];
    expect(joined.takes(refused.vif.mac)).toBe(false);
    expect(refused.takes(joined.vif.mac)).toBe(true);
    expect(refused.stats().ready).toBe(true);
    expect(r.send(refused, REMOTE_MAC)).toBe(true);
  });
});

describe.each(['vnic', 'vdpa'] as const)('%s: leaving the same-host fast path', (model) => {
  it('detach (an unload, a swap, a failed frontend): the others are told at once; the filter stays while the VI drains, delivers what was on the way, and goes at drained', () => {
    const { r, g1, g2, g3 } = up(model);
    // g1 had posted a frame for g2 that the NIC has not taken yet.
    expect(r.send(g1, g2)).toBe(true);
    r.be.detachVif!(g2.vif);
    // At once, before any guest ran: slowpath {g2} is on its way to g1 and g3.
    for (const g of [g1, g3]) expect(g.toFrontend.map((m) => [m.op, m.args.mac])).toContainEqual(['slowpath', g2.vif.mac]);
    expect(r.localFilters().map(([, mac]) => mac)).toContain(g2.vif.mac);
    r.pump();
    expect(g2.drained && g2.detached).toBe(true);
    // The frame in flight reached g2 through its draining VI: nothing went to the wire.
    expect(g2.delivered).toHaveLength(1);
    expect(r.wire).toHaveLength(0);
    expect(r.fnStats(g1).txSwitchedLocal).toBe(1);
    leftEverywhere(r, g2, [g1, g3]);
    expect(beStats(r)).toMatchObject({ localMacs: 2, localMacLeaves: 1 });
    // g1 and g3 still reach each other.
    expect(r.send(g1, g3)).toBe(true);
  });

  it('a fault of its VI: the others are told and its filter goes at once', () => {
    const { r, g1, g2, g3 } = up(model);
    r.be.onFrontendMessage!(g2.vif, 'fault', { reason: 'buffer-owner' });
    expect(r.localFilters().map(([, mac]) => mac)).not.toContain(g2.vif.mac);
    r.pump();
    leftEverywhere(r, g2, [g1, g3]);
  });

  it('a decline from its frontend: the others are told and its filter goes at once', () => {
    const { r, g1, g2, g3 } = up(model);
    r.be.onFrontendMessage!(g2.vif, 'decline', { reason: 'changed its mind' });
    expect(r.localFilters().map(([, mac]) => mac)).not.toContain(g2.vif.mac);
    r.pump();
    leftEverywhere(r, g2, [g1, g3]);
  });

  it('vifGone (the guest went, or crashed): the filter goes before its VI; a frame already on a sender ring then goes to the wire, never to the finalised VI', () => {
    const { r, g1, g2, g3 } = up(model);
    expect(r.send(g1, g2)).toBe(true);
    r.be.vifGone!(g2.vif);
    expect(r.localFilters().map(([, mac]) => mac)).not.toContain(g2.vif.mac);
    r.pump();
    leftEverywhere(r, g2, [g1, g3]);
    // The NIC took g1's frame after the filter had gone: a miss, to the wire like any other (the far side delivers or
    // counts it); no function of this NIC was handed it, and it is accounted for on g1's function.
    expect(r.wire).toHaveLength(1);
    expect(r.wire[0].slice(0, 6)).toEqual(udpTo(g2.vif.mac, 0).slice(0, 6));
    expect(r.fnStats(g1)).toMatchObject({ txFrames: 1, txSwitchedLocal: 0 });
    expect(r.nic.stats().rxViDown).toBe(0);
  });

  it('remove (the plugin unloaded by force, or failed): every vif leaves, no switch filter is left', () => {
    const { r, g1, g2, g3 } = up(model);
    r.be.remove();
    expect(r.localFilters()).toEqual([]);
    expect(beStats(r)).toMatchObject({ localMacs: 0, localMacLeaves: 3 });
    // Each vif was torn down in turn; those still up then were told of the ones before them.
    const queued = (g: Guest) => g.toFrontend.filter((m) => m.op === 'slowpath').map((m) => Number(m.args.mac));
    expect(queued(g2)).toEqual([g1.vif.mac]);
    expect(queued(g3).sort()).toEqual([g1.vif.mac, g2.vif.mac].sort());
  });

  it('a NIC reset (every vif detached, then offered again): all leave, then all join again, each ready naming the others already back', () => {
    const { r, g1, g2, g3 } = up(model);
    for (const g of r.guests) r.be.detachVif!(g.vif);
    r.pump();
    expect(r.localFilters()).toEqual([]);
    expect(beStats(r)).toMatchObject({ localMacs: 0, localMacLeaves: 3 });
    for (const g of r.guests) expect(g.detached).toBe(true);
    r.attach(g1);
    r.attach(g2, g3);
    expect(r.localFilters()).toHaveLength(3);
    expect(beStats(r)).toMatchObject({ localMacs: 3, localMacJoins: 6 });
    for (const g of r.guests) for (const o of r.guests) if (o !== g) expect(g.takes(o.vif.mac)).toBe(true);
    expect(r.send(g3, g1)).toBe(true);
    r.pump();
    expect(g1.delivered).toHaveLength(1);
  });

  it('migration away (saveState, then detach): the others stop at once; the saved state carries flows only', () => {
    const { r, g1, g2, g3 } = up(model);
    expect(r.be.saveState!(g2.vif)).toEqual({ flows: [] });
    r.be.detachVif!(g2.vif);
    expect(g1.toFrontend.map((m) => m.op)).toContain('slowpath');
    r.pump();
    leftEverywhere(r, g2, [g1, g3]);
  });
});
