/**
 * A guest created again under an old guest's IP (a new domid, so a new MAC)
 * announces itself when its vif connects, as Linux netfront does
 * (netdev_notify_peers): peers that had the old MAC in their ARP cache learn
 * the new one at once, instead of sending to a MAC nobody has until their
 * entry ages out (60 s), every frame counted lost meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, guestStats, runStream, type DomainRef } from '@xsim/toolstack';
import { replayOnFailure, seededModes } from './helpers.ts';

describe.each(seededModes().slice(0, 2))('$name', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);
  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, log: () => {} });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  it('a peer streams to the new guest at once, every frame delivered', async () => {
    const b1: DomainRef = { host: 'host-b', domain: 'b1' };
    const old = await sim.createDomain('host-a', 'rc');
    const rc: DomainRef = { host: 'host-a', domain: 'rc' };
    const first = await runStream(sim, { from: b1, to: rc, count: 500, frameSize: 600, window: 64 });
    expect(first.delivered).toBe(500);
    await sim.destroyDomain(rc);
    const heard = async () => guestStats(await sim.stats(), b1).endpoint?.stack.rxGratuitousArp ?? 0;
    const before = await heard();
    const again = await sim.createDomain('host-a', 'rc', { ip: old.vifs[0].ip });
    expect(again.vifs[0].mac).not.toBe(old.vifs[0].mac);
    // The new rc's announcement is heard by b1 (its stack counts gratuitous ARPs).
    await sim.waitFor("b1 to hear rc's announcement", async () => (await heard()) > before);
    const second = await runStream(sim, { from: b1, to: rc, count: 500, frameSize: 600, window: 64 });
    expect(second.delivered).toBe(500);
    await sim.destroyDomain(rc);
  });
});
