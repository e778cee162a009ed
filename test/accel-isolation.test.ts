/**
 * The fast path holds the line against a guest that misbehaves through its
 * plugin channel and its own VI (the hostile-guest kernel on a2, the
 * hostile-vnic plugin: vnic plus misbehaviour on demand): it cannot steer
 * traffic to itself, a forged source MAC is dropped and counted by the NIC,
 * and a bad descriptor faults its VI alone while everyone else carries on.
 * On real pCPU threads and deterministically over several seeds.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, dom0Stats, guestStats, type DomainRef } from '@xsim/toolstack';
import { VNIC_BACKEND_COUNTERS } from '../packages/accel-plugins/src/vnic/backend.ts';
import { THREADS, conservedStream, pluginCounters, replayOnFailure, seededModes, vnicVifs } from './helpers.ts';

const HOSTILE = new URL('./fixtures/hostile-guest.ts', import.meta.url).href;
const HOSTILE_VNIC = fileURLToPath(new URL('./fixtures/hostile-vnic/', import.meta.url));
const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const a2: DomainRef = { host: 'host-a', domain: 'a2' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };
const b2: DomainRef = { host: 'host-b', domain: 'b2' };

describe.each([THREADS, ...seededModes()])('$name', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);
  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, kernels: { 'host-a/a2': HOSTILE } });
    await sim.loadPlugin(HOSTILE_VNIC);
    await sim.waitFor('every vif accelerated', async () => {
      const s = await sim.stats();
      return [a1, a2, b1, b2].every((d) => guestStats(s, d).vifs[0].accel?.current?.ready === true);
    });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  const stats = () => sim.stats();

  describe('isolation on the fast path', () => {
    it('a guest cannot insert filters: the request is refused and counted', async () => {
      const before = dom0Stats(await stats(), 'host-a').accel.refusedFilterRequests;
      await sim.request(a2, 'accel_filter_request');
      await sim.waitFor('the refusal', async () => dom0Stats(await stats(), 'host-a').accel.refusedFilterRequests === before + 1);
      await sim.waitFor('the guest to hear it', async () => guestStats(await stats(), a2).vifs[0].accel!.refused >= 1);
    });

    it('a frame with a forged source MAC on a guest VI is dropped and counted by the NIC', async () => {
      const f0 = (await sim.fabricStats()).nics[0];
      const vi = vnicVifs(dom0Stats(await stats(), 'host-a').accel.plugins['hostile-vnic']).find((v) => v.vif === `${sim.domain(a2).domid}/0`)!.vi;
      await sim.request(a2, 'accel_inject', { kind: 'spoof' });
      await sim.waitFor('the spoof drop', async () => (await sim.fabricStats()).nics[0].vis[vi]?.txSpoofDrops === (f0.vis[vi]?.txSpoofDrops ?? 0) + 1);
    });

    it('a buffer-table violation faults only that VI; its guest falls back to the slow path', async () => {
      const idA2 = sim.domain(a2).domid;
      await sim.request(a2, 'accel_inject', { kind: 'bad-desc' });
      await sim.waitFor('the fault to be handled', async () => {
        const s = await stats();
        return (
          pluginCounters(VNIC_BACKEND_COUNTERS, dom0Stats(s, 'host-a').accel.plugins['hostile-vnic']).faults === 1 &&
          dom0Stats(s, 'host-a').accel.vifs[`${idA2}/0`] === null
        );
      });
      const f = (await sim.fabricStats()).nics[0];
      expect(Object.values(f.vis).filter((v) => v.faults > 0).length).toBe(1);
      // a2 still talks (slow path) and a1 is still accelerated.
      const { r } = await conservedStream(sim, { from: a2, to: b2, count: 2000, frameSize: 1500, window: 128 });
      expect(r.delivered).toBe(2000);
      const { r: r1 } = await conservedStream(sim, { from: a1, to: b1, count: 2000, frameSize: 1500, window: 128 });
      expect(r1.delivered).toBe(2000);
      expect(guestStats(await stats(), a1).vifs[0].accel?.current?.ready).toBe(true);
    });

    it.each([
      ['no grants', { grefs: [], irqPort: 3 }],
      ['grants that are not a list', { grefs: 5, irqPort: 3 }],
      ['300,000 copies of one grant', { grefs: new Array(300_000).fill(8), irqPort: 3 }],
      ['a field the plugin does not know', { grefs: [8], irqPort: 3, extra: true }],
      ['an op the plugin does not take', undefined],
    ])("a malformed channel message (%s) fails that vif's attachment alone; the plugin serves the others", async (_what, args) => {
      await reattach();
      const before = dom0Stats(await stats(), 'host-a').accel;
      await sim.request(a2, 'accel_send', args === undefined ? { op: 'frobnicate', args: {} } : { op: 'accept', args });
      await sim.waitFor('a2 detached', async () => dom0Stats(await stats(), 'host-a').accel.vifs[`${sim.domain(a2).domid}/0`] === null);
      const s = await stats();
      const acc = dom0Stats(s, 'host-a').accel;
      expect(acc.vifFailures).toBe(before.vifFailures + 1);
      expect(acc.badFrontendMessages).toBe(before.badFrontendMessages + 1);
      expect(acc.vifFailureLog.at(-1)?.reason).toMatch(/bad message from the guest/);
      expect(Object.keys(acc.plugins)).toEqual(['hostile-vnic']);
      expect(acc.failures).toEqual([]);
      expect(guestStats(s, a1).vifs[0].accel?.current?.ready).toBe(true);
      // The failed vif left nothing on the NIC.
      const vis = (await sim.fabricStats()).nics[0].vis;
      expect(Object.values(vis).filter((v) => v.domid === sim.domain(a2).domid && v.running)).toEqual([]);
    });

    it('a decline after the VI is up tears the VI down: no zombie VI, no lost frame, the plugin reloads', async () => {
      await reattach();
      // Learn a flow onto a2's VI, so a zombie would have a filter to swallow frames with.
      await conservedStream(sim, { from: b2, to: a2, count: 500, frameSize: 1500, window: 64, srcPort: 45000 });
      const vi = vnicVifs(dom0Stats(await stats(), 'host-a').accel.plugins['hostile-vnic']).find((v) => v.vif === `${sim.domain(a2).domid}/0`)!.vi;
      await sim.request(a2, 'accel_send', { op: 'decline', args: { reason: 'changed my mind' } });
      await sim.waitFor('a2 detached', async () => dom0Stats(await stats(), 'host-a').accel.vifs[`${sim.domain(a2).domid}/0`] === null);
      const nic = (await sim.fabricStats()).nics[0];
      expect(nic.vis[vi]?.running ?? false).toBe(false);
      const filters = await sim.dom0Stats('host-a');
      expect(vnicVifs(filters.accel.plugins['hostile-vnic']).some((v) => v.vi === vi)).toBe(false);
      // Frames of the learnt flow reach a2 on the slow path: none vanish (E = 0).
      const { r } = await conservedStream(sim, { from: b2, to: a2, count: 2000, frameSize: 1500, window: 128, srcPort: 45000 });
      expect(r.delivered).toBe(2000);
      await reattach();
    });
  });

  /** Unload and load the plugin again, and wait until every vif is accelerated. */
  async function reattach(): Promise<void> {
    await sim.unloadPlugin('hostile-vnic');
    await sim.loadPlugin(HOSTILE_VNIC);
    await sim.waitFor('every vif accelerated again', async () => {
      const s = await sim.stats();
      return [a1, a2].every((d) => guestStats(s, d).vifs[0].accel?.current?.ready === true);
    });
  }
});
