/**
 * Conservation covers plugins (issue 20, item 9): a frame a plugin frontend
 * took (startXmit answered true) is either on its hardware (the plugin's
 * txPosted), or dropped under the plugin's own counter (its txDropped), or
 * counted by netfront's accel host as txUnaccounted, a declared drop counter
 * that every conservation check includes. The swallow fixture (vnic, but
 * every second unicast IPv4 frame is answered "taken" and thrown away) loses
 * frames inside the plugin: before, they vanished ("sent 3000 delivered 0
 * dropped 0 conserved false"); now each is counted where it was lost.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, guestStats, type DomainRef } from '@xsim/toolstack';
import { conservedStream, replayOnFailure, seededModes, THREADS } from './helpers.ts';

const SWALLOW = fileURLToPath(new URL('./fixtures/swallow/', import.meta.url));
const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };

describe.each([...seededModes().slice(0, 1), THREADS])('a plugin that loses frames ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);
  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, log: () => {} });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  it('every frame it took and lost is counted txUnaccounted, and the stream is conserved', async () => {
    await sim.loadPlugin(SWALLOW);
    await sim.waitFor('swallow attached to a1', async () => guestStats(await sim.stats(), a1).vifs[0].accel?.current?.ready === true);
    const { r, before, after, drops } = await conservedStream(sim, { from: a1, to: b1, count: 3000, frameSize: 1500, window: 0, srcPort: 43200 });
    const acc = (s: typeof before) => guestStats(s, a1).vifs[0].accel!;
    const lost = acc(after).txUnaccounted - acc(before).txUnaccounted;
    const taken = acc(after).txTaken - acc(before).txTaken;
    expect(lost).toBeGreaterThan(0);
    expect(taken).toBeGreaterThanOrEqual(lost);
    // The loss is named where it happened, and nothing else explains the frames that did not arrive.
    expect(drops.get('host-a/a1.vifs.0.accel.txUnaccounted')).toBe(lost);
    expect(r.sent - r.delivered).toBe([...drops.values()].reduce((a, b) => a + b, 0));
    await sim.unloadPlugin('swallow');
  });

  it('a plugin that accounts for what it takes (vnic) shows none unaccounted', async () => {
    await sim.loadPlugin('vnic');
    await sim.waitFor('vnic attached to a1', async () => guestStats(await sim.stats(), a1).vifs[0].accel?.current?.ready === true);
    const { before, after } = await conservedStream(sim, { from: a1, to: b1, count: 3000, frameSize: 1500, window: 0, srcPort: 43201 });
    const acc = (s: typeof before) => guestStats(s, a1).vifs[0].accel!;
    expect(acc(after).txTaken - acc(before).txTaken).toBeGreaterThan(0);
    expect(acc(after).txUnaccounted - acc(before).txUnaccounted).toBe(0);
    await sim.unloadPlugin('vnic');
  });
});
