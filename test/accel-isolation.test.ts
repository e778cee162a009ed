/**
 * The fast path holds the line against a guest that misbehaves through its
 * plugin channel and its own VI (the hostile-guest kernel on a2, the
 * hostile-vnic plugin: vnic plus misbehaviour on demand): it cannot steer
 * traffic to itself, a forged source MAC is dropped and counted by the NIC,
 * and a bad descriptor faults its VI alone while everyone else carries on.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, type DomainRef } from '@xsim/cli';
import { conservedStream, waitFor, type Json } from './helpers.ts';

const HOSTILE = new URL('./fixtures/hostile-guest.ts', import.meta.url).href;
const HOSTILE_VNIC = fileURLToPath(new URL('./fixtures/hostile-vnic/', import.meta.url));
const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const a2: DomainRef = { host: 'host-a', domain: 'a2' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };
const b2: DomainRef = { host: 'host-b', domain: 'b2' };

let sim: Simulation;
beforeAll(async () => {
  sim = await Simulation.start(defaultTopology(), { kernels: { 'host-a/a2': HOSTILE } });
  await sim.loadPlugin(HOSTILE_VNIC);
  await waitFor('every vif accelerated', async () => {
    const s = (await sim.stats()) as Json;
    return ['host-a/a1', 'host-a/a2', 'host-b/b1', 'host-b/b2'].every((d) => s[d].vifs[0].accel?.current?.ready === true);
  });
});
afterAll(async () => {
  await sim?.shutdown();
});

const stats = async () => (await sim.stats()) as Json;

describe('isolation on the fast path', () => {
  it('a guest cannot insert filters: the request is refused and counted', async () => {
    const before = (await stats())['host-a/dom0'].accel.refusedFilterRequests;
    await sim.request(a2, 'accel_filter_request');
    await waitFor('the refusal', async () => (await stats())['host-a/dom0'].accel.refusedFilterRequests === before + 1);
    await waitFor('the guest to hear it', async () => (await stats())['host-a/a2'].vifs[0].accel.refused >= 1);
  });

  it('a frame with a forged source MAC on a guest VI is dropped and counted by the NIC', async () => {
    const f0 = ((await sim.fabricStats()) as Json).nics[0];
    const vi = (await stats())['host-a/dom0'].accel.plugins['hostile-vnic'].vifs.find((v: Json) => v.vif === `${sim.domain(a2).domid}/0`).vi;
    await sim.request(a2, 'accel_inject', { kind: 'spoof' });
    await waitFor('the spoof drop', async () => ((await sim.fabricStats()) as Json).nics[0].vis[vi].txSpoofDrops === (f0.vis[vi]?.txSpoofDrops ?? 0) + 1);
  });

  it('a buffer-table violation faults only that VI; its guest falls back to the slow path', async () => {
    const idA2 = sim.domain(a2).domid;
    await sim.request(a2, 'accel_inject', { kind: 'bad-desc' });
    await waitFor('the fault to be handled', async () => {
      const s = await stats();
      return s['host-a/dom0'].accel.plugins['hostile-vnic'].faults === 1 && s['host-a/dom0'].accel.vifs[`${idA2}/0`] === null;
    });
    const f = ((await sim.fabricStats()) as Json).nics[0];
    expect(Object.values(f.vis as Record<string, Json>).filter((v) => v.faults > 0).length).toBe(1);
    // a2 still talks (slow path) and a1 is still accelerated.
    const { r } = await conservedStream(sim, { from: a2, to: b2, count: 2000, frameSize: 1500, window: 128 });
    expect(r.delivered).toBe(2000);
    const { r: r1 } = await conservedStream(sim, { from: a1, to: b1, count: 2000, frameSize: 1500, window: 128 });
    expect(r1.delivered).toBe(2000);
    expect((await stats())['host-a/a1'].vifs[0].accel.current.ready).toBe(true);
  });
});
