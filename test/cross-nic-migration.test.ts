/**
 * An accelerated guest migrating between hosts with different NICs (issue
 * 19, item 3), the reason the 2007 accelerator hooks had suspend and resume:
 * host-a has the VI NIC (nic:1924-0803, plugin vnic), host-b the virtio NIC
 * (nic:1af4-1041, plugin vdpa). A streaming receiver and a streaming sender
 * each move live between them: off the fast path at the source, the slow
 * path in between, re-accelerated at the destination by the plugin matching
 * that NIC, and every frame of the stream delivered once or counted.
 * Deterministically over seeds, and on real pCPU threads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, movedStats, runStream, streamAccount, type DomainRef, type GuestStats, type StreamOptions } from '@xsim/toolstack';
import { THREADS, afterFrames, replayOnFailure, seededModes } from './helpers.ts';

const at = (host: string, domain: string): DomainRef => ({ host, domain });
const vif0 = (g: GuestStats) => g.vifs[0];

/** A stream to or from `mover`, which moves live to `to` once 1500 frames arrived; accounted over the whole stream. */
async function moveMidStream(sim: Simulation, o: StreamOptions, mover: DomainRef, to: string) {
  const before = await sim.stats();
  const p = runStream(sim, o);
  await afterFrames(sim, o.to, 1500);
  const rep = await sim.migrateDomain(mover, to, { live: true });
  const r = await p;
  const after = await sim.stats();
  const acc = streamAccount(movedStats(before, mover.domain, mover.host, to), after, r);
  const why = `sent ${r.sent}, delivered ${r.delivered}, drops ${JSON.stringify([...acc.drops])}, copies ${acc.copies}, report ${JSON.stringify(rep)}`;
  expect(r.duplicated, why).toBe(0);
  expect(acc.conserved, why).toBe(true);
  expect(r.sent - r.delivered - r.tooOld, why).toBeLessThanOrEqual(rep.lostTotal);
  return { rep, r, drops: acc.drops };
}

/** The guest's vif is attached and ready on `plugin`, and a stream to `peer` (on the other host) goes over it. */
async function carriedBy(sim: Simulation, ref: DomainRef, plugin: string, peer: DomainRef): Promise<void> {
  await sim.waitFor(`${ref.host}/${ref.domain} accelerated by ${plugin}`, async () => {
    const a = vif0(await sim.guestStats(ref)).accel;
    return a?.plugin === plugin && a.current?.ready === true;
  });
  const before = vif0(await sim.guestStats(ref)).txAccel;
  const r = await runStream(sim, { from: ref, to: peer, count: 2000, frameSize: 1000, window: 64 });
  expect(r.delivered).toBe(2000);
  expect(vif0(await sim.guestStats(ref)).txAccel - before, `frames ${ref.domain} sent through ${plugin}`).toBeGreaterThan(1500);
}

describe.each([THREADS, ...seededModes()])('migration between NIC models ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology({ nics: ['vi', 'virtio'] }), { ...mode.opts, log: () => {} });
    // Each goes to the host whose NIC it drives: vnic to host-a, vdpa to host-b.
    expect(await sim.loadPlugin('vnic')).toHaveLength(1);
    expect(await sim.loadPlugin('vdpa')).toHaveLength(1);
    await sim.waitFor('every vif accelerated by its host NIC plugin', async () =>
      (await sim.listDomains()).every((d) => d.domid === 0 || d.vifs.every((v) => v.accel === (d.host === 'host-a' ? 'vnic' : 'vdpa'))),
    );
  });

  afterAll(async () => {
    await sim?.shutdown();
  });

  it('a streaming receiver moves live from the virtio NIC to the VI NIC: vdpa before, vnic after, nothing lost uncounted', async () => {
    await runStream(sim, { from: at('host-a', 'a1'), to: at('host-b', 'b1'), count: 500, frameSize: 1000, window: 64, srcPort: 7101 });
    const { rep, r } = await moveMidStream(
      sim,
      { from: at('host-a', 'a1'), to: at('host-b', 'b1'), count: 20_000, frameSize: 1000, window: 64, srcPort: 7101 },
      at('host-b', 'b1'),
      'host-a',
    );
    expect(rep.fastPath).toMatchObject({ before: ['vdpa'], after: ['vnic'] });
    expect(rep.fastPath.backAfterMs).not.toBeNull();
    expect(r.delivered).toBeGreaterThan(15_000);
    await carriedBy(sim, at('host-a', 'b1'), 'vnic', at('host-b', 'b2'));
  });

  it('a streaming sender moves live from the VI NIC to the virtio NIC: vnic before, vdpa after, nothing sent twice', async () => {
    const { rep } = await moveMidStream(
      sim,
      { from: at('host-a', 'a2'), to: at('host-b', 'b2'), count: 20_000, frameSize: 1000, window: 128 },
      at('host-a', 'a2'),
      'host-b',
    );
    expect(rep.fastPath).toMatchObject({ before: ['vnic'], after: ['vdpa'] });
    await carriedBy(sim, at('host-b', 'a2'), 'vdpa', at('host-a', 'a1'));
  });

  it('and back: each guest returns to its first NIC and its first plugin carries it again', async () => {
    const back1 = await sim.migrateDomain(at('host-a', 'b1'), 'host-b', { live: true });
    const back2 = await sim.migrateDomain(at('host-b', 'a2'), 'host-a', { live: true });
    expect(back1.fastPath).toMatchObject({ before: ['vnic'], after: ['vdpa'] });
    expect(back2.fastPath).toMatchObject({ before: ['vdpa'], after: ['vnic'] });
    await carriedBy(sim, at('host-b', 'b1'), 'vdpa', at('host-a', 'a1'));
    await carriedBy(sim, at('host-a', 'a2'), 'vnic', at('host-b', 'b2'));
  });
});
