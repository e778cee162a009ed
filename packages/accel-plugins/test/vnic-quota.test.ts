/**
 * vnic's per-vif quotas (issue 19, item 4), in process, on quota-rig.ts's
 * stub context over a real NIC's MCDI: eviction (CLOCK, FIFO, none), limits
 * read and watched in the vif's backend directory, a full NIC table, aging.
 */
import { describe, expect, it } from 'vitest';
import { VIF_KEY } from '@xsim/hypervisor';
import { VNIC_BACKEND_COUNTERS } from '../src/vnic/backend.ts';
import { rig } from './quota-rig.ts';

describe('vnic quota: eviction', () => {
  it('a new flow on a full vif evicts the one CLOCK picks (not hit since the hand passed), counted and logged once', () => {
    const r = rig({}, { keys: { [VIF_KEY.maxFilters]: '4' } });
    // Four flows learnt: 1000..1003 (the hand at 1000).
    for (const p of [1000, 1001, 1002, 1003]) expect(r.frame(p)).toBe(false);
    expect(r.filtersOfVif()).toBe(4);
    // 1000, 1001 and 1003 busy; 1002 idle.
    for (const p of [1000, 1001, 1003, 1000, 1001, 1003]) expect(r.frame(p)).toBe(true);
    // A fifth flow: the hand passes 1000 and 1001 (hit: second chance, their counts noted) and takes 1002.
    expect(r.frame(2000)).toBe(false);
    expect(r.ports()).toEqual([1000, 1001, 1003, 2000]);
    expect(r.frame(2000)).toBe(true);
    // Now 1001 and 2000 are hit, 1000 is not: a sixth flow gives 1003 (never passed yet, hit) its chance and takes 1000.
    for (const p of [1001, 2000]) expect(r.frame(p)).toBe(true);
    expect(r.frame(3000)).toBe(false);
    expect(r.ports()).toEqual([1001, 1003, 2000, 3000]);
    expect(r.counters()).toMatchObject({ filtersInserted: 6, filtersEvicted: 2, filterCapReached: 0 });
    expect(r.filtersOfVif()).toBe(4);
    expect(r.logs.filter((l) => /4 flow filters \(limits\/max-filters\) are in use; new flows evict a learnt filter \(CLOCK/.test(l))).toHaveLength(1);
  });

  it('CLOCK and FIFO differ in their victim: with one busy flow, FIFO evicts it, CLOCK keeps it', () => {
    const kept = (eviction: string) => {
      const r = rig({ eviction, maxFilters: 3 }, { config: false });
      for (const p of [1, 2, 3]) r.frame(p);
      expect(r.frame(1)).toBe(true);
      r.frame(4); // full: a victim goes
      return r.ports();
    };
    // FIFO took the oldest, flow 1, though it was busy; CLOCK gave 1 its second chance and took 2.
    expect(kept('fifo')).toEqual([2, 3, 4]);
    expect(kept('clock')).toEqual([1, 3, 4]);
  });

  it('with eviction off, a full vif keeps new flows on the slow path, counted in filterCapReached; a quota of 0 learns nothing', () => {
    const r = rig({ eviction: 'none', maxFilters: 2 }, { config: false });
    for (const p of [1, 2, 3, 4, 3]) r.frame(p);
    expect(r.counters()).toMatchObject({ filtersInserted: 2, filterCapReached: 3, filtersEvicted: 0 });
    expect(r.logs.filter((l) => /new flows stay on the slow path \(eviction none/.test(l))).toHaveLength(1);
    const z = rig({ maxFilters: 0 }, { config: false });
    for (const p of [1, 2]) z.frame(p);
    expect(z.counters()).toMatchObject({ filtersInserted: 0, filterCapReached: 2 });
    expect(z.flowFilters()).toBe(0);
  });
});

describe('vnic quota: limits from xenstore', () => {
  it('reads limits/max-filters at attach, and a lowered value evicts down to it at once; a raised one lets it learn more', () => {
    const r = rig({}, { keys: { [VIF_KEY.maxFilters]: '8' } });
    for (let p = 0; p < 8; p++) r.frame(100 + p);
    expect(r.filtersOfVif()).toBe(8);
    r.setKey(VIF_KEY.maxFilters, '3');
    expect(r.filtersOfVif()).toBe(3);
    expect(r.flowFilters()).toBe(3);
    expect(r.counters()).toMatchObject({ filtersEvicted: 5, limitChanges: 1 });
    expect((r.be.stats() as { vifs: object[] }).vifs[0]).toMatchObject({ maxFilters: 3 });
    expect(r.logs.some((l) => /limits now max-filters 3, max-buf-pages 2048; 5 filters evicted to meet it/.test(l))).toBe(true);
    // Not a limit: ignored (logged), the limit stays.
    r.setKey(VIF_KEY.maxFilters, 'lots');
    expect(r.filtersOfVif()).toBe(3);
    expect(r.logs.some((l) => /limits\/max-filters "lots" is not a limit/.test(l))).toBe(true);
    r.setKey(VIF_KEY.maxFilters, '10');
    for (let p = 0; p < 10; p++) r.frame(200 + p);
    expect(r.filtersOfVif()).toBe(10);
  });

  it('refuses an attachment whose DMA area is over limits/max-buf-pages: the vif stays on the slow path, counted', () => {
    const r = rig({}, { keys: { [VIF_KEY.maxBufPages]: '3' } });
    // The rig's guest offered 4 pages: refused, nothing mapped, no filter learnt.
    expect(r.counters()).toMatchObject({ bufPagesRefused: 1, attached: 0 });
    expect(r.frame(5)).toBe(false);
    expect(r.counters().filtersInserted).toBe(0);
    expect(r.logs.some((l) => /its DMA area is 4 pages, over its limits\/max-buf-pages 3/.test(l))).toBe(true);
  });
});

describe('vnic quota: the NIC', () => {
  it("when the NIC's whole table is full the flow stays on the slow path (counted, logged once) and is tried again later", () => {
    // Room for five: the vif's switch-only MAC filter (issue 21), and four flows.
    const r = rig({ maxFilters: 64 }, { nicFilters: 5, config: false });
    for (let p = 0; p < 6; p++) r.frame(p);
    expect(r.flowFilters()).toBe(4);
    expect(r.counters()).toMatchObject({ filtersInserted: 4, flowsNicFull: 2, filtersEvicted: 0 });
    expect(r.nic.stats()).toMatchObject({ filterNoSpace: 2 });
    expect(r.logs.filter((l) => /the NIC's filter table is full \(ENOSPC\)/.test(l))).toHaveLength(1);
    // The flow's frames come the slow way without asking the NIC each time...
    for (let k = 0; k < 100; k++) expect(r.frame(4)).toBe(false);
    expect(r.nic.stats()).toMatchObject({ filterNoSpace: 2 });
    // ...and once there is room (another vif's filters went), it is learnt at its next retry.
    r.nic.filters.remove(r.nic.filters.list().find((e) => e.match.kind === 'ipv4')!.id);
    let fastAt = -1;
    for (let k = 0; k < 300 && fastAt < 0; k++) if (r.frame(4)) fastAt = k;
    expect(fastAt).toBeGreaterThan(0);
    expect(r.counters().filtersInserted).toBe(5);
  });

  it('idle filters age out at the NIC; vnic learns the flow again when it comes back, and an aged one frees quota without an eviction', () => {
    const r = rig({ filterIdleMs: 1000, maxFilters: 2 }, { config: false });
    r.frame(1);
    r.frame(2);
    expect(r.frame(1)).toBe(true);
    // 5 s of the simulation's clock with no frames: the NIC's sweeps take both out.
    for (let t = 0; t <= 5000; t += 100) {
      r.clock.advanceTo(t);
      r.nic.filters.age();
    }
    expect(r.flowFilters()).toBe(0);
    expect(r.nic.stats()).toMatchObject({ filtersAged: 2 });
    // A new flow: the quota looked full, but both had aged out: no eviction.
    expect(r.frame(3)).toBe(false);
    expect(r.frame(3)).toBe(true);
    expect(r.counters()).toMatchObject({ filtersAgedOut: 2, filtersEvicted: 0 });
    // Flow 1 again: its frames go the slow way until vnic's check finds its filter gone, then it is learnt again.
    let back = -1;
    for (let k = 0; k < 100 && back < 0; k++) if (r.frame(1)) back = k;
    expect(back).toBeGreaterThan(0);
    expect(back).toBeLessThanOrEqual(33);
  });

  it('its counters are declared', () => {
    const names = VNIC_BACKEND_COUNTERS.names();
    for (const n of ['filtersEvicted', 'filtersAgedOut', 'flowsNicFull', 'bufPagesRefused', 'limitChanges', 'filterCapReached']) expect(names).toContain(n);
  });
});
