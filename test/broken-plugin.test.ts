/**
 * A broken plugin is bad input like any other: whichever hook throws, in dom0
 * or in the guest, the domain carries on, the plugin is failed and reported,
 * its vifs fall back to the slow path, its NIC resources are released, and
 * every frame of a stream running through the failure is delivered or counted.
 * The "flaky" fixture is vnic with one hook made to throw. Deterministic, over several seeds.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, dom0Stats, guestStats, type DomainRef } from '@xsim/toolstack';
import { conservedStream, replayOnFailure, seededModes } from './helpers.ts';

const FLAKY = fileURLToPath(new URL('./fixtures/flaky/', import.meta.url));
const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const a2: DomainRef = { host: 'host-a', domain: 'a2' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };
const b2: DomainRef = { host: 'host-b', domain: 'b2' };

describe.each(seededModes())('$name', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);
  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), mode.opts);
  });
  afterAll(async () => {
    await sim?.shutdown();
  });
  // Whatever a test left loaded (it failed half-way) must not fail the next one too.
  afterEach(async () => {
    const s = await sim.stats();
    for (const host of ['host-a', 'host-b']) {
      for (const name of Object.keys(dom0Stats(s, host).accel.plugins)) await sim.unloadPlugin(name, { host }).catch(() => {});
    }
  });

  const stats = () => sim.stats();

  /** After a failure: no plugin left anywhere, every vif on the slow path, vnic loads and accelerates again. */
  async function recovers(): Promise<void> {
    await sim.waitFor('every vif back on the slow path', async () => {
      const s = await stats();
      return [a1, a2, b1, b2].every((d) => guestStats(s, d).vifs[0].accel?.plugin === null);
    });
    const s = await stats();
    for (const h of ['host-a', 'host-b']) expect(s[`${h}/dom0`], h).not.toHaveProperty('crashed');
    expect(Object.keys(dom0Stats(s, 'host-a').accel.plugins)).toEqual([]);
    // The VIs the broken plugin held were released: vnic gets them again and takes frames.
    await sim.loadPlugin('vnic');
    await sim
      .waitFor('vnic attached to a1', async () => guestStats(await stats(), a1).vifs[0].accel?.current?.ready === true)
      .catch(async (e: Error) => {
        const s = await stats();
        throw new Error(`${e.message}: a1 ${JSON.stringify(guestStats(s, a1).vifs[0].accel)} dom0 ${JSON.stringify(dom0Stats(s, 'host-a').accel)}`);
      });
    await conservedStream(sim, { from: a1, to: b1, count: 3000, frameSize: 1500, window: 128, srcPort: 43100 });
    expect(guestStats(await stats(), a1).vifs[0].txAccel).toBeGreaterThan(0);
    await sim.unloadPlugin('vnic');
  }

  describe('a broken accelerator plugin', () => {
    it('backend throws in a hook on the data path mid-stream: dom0 lives, the plugin is failed, nothing is lost', async () => {
      // onSlowPathRx runs in dom0 for every frame netback delivers to an attached vif; the stream's
      // first frames always take the slow path (no filter is learnt yet), so the first of them breaks it.
      await sim.loadPlugin(FLAKY, { host: 'host-b', args: { failIn: 'onSlowPathRx', after: 0 } });
      await sim.loadPlugin('vnic', { host: 'host-a' });
      // No credit window (here and below): credits would be a second flow, b1 -> a1, whose frames
      // on a torn-down VI are counted too but are not this stream's.
      const { r } = await conservedStream(sim, { from: a1, to: b1, count: 20_000, frameSize: 1500, window: 0, srcPort: 43000 });
      expect(r.delivered).toBeGreaterThan(0);
      const s = await stats();
      const failures = dom0Stats(s, 'host-b').accel.failures;
      expect(failures).toContainEqual({ plugin: 'flaky', hook: 'onSlowPathRx', error: 'flaky: onSlowPathRx broke on purpose' });
      expect(dom0Stats(s, 'host-b').accel.plugins.flaky).toBeUndefined();
      expect(dom0Stats(s, 'host-b').driverlink).toContain('remove flaky');
      await sim.unloadPlugin('vnic', { host: 'host-a' });
      await recovers();
    });

    it('frontend throws from startXmit mid-stream: the guest lives, the frame in hand and every later one take the slow path', async () => {
      await sim.loadPlugin(FLAKY, { args: { frontendFailIn: 'startXmit', frontendAfter: 5000 } });
      await sim.waitFor('flaky attached to a1', async () => guestStats(await stats(), a1).vifs[0].accel?.current?.ready === true);
      const { r, before } = await conservedStream(sim, { from: a1, to: b1, count: 20_000, frameSize: 1500, window: 0, srcPort: 43001 });
      expect(r.delivered).toBeGreaterThan(0);
      const s = await stats();
      expect(s['host-a/a1']).not.toHaveProperty('crashed');
      expect(guestStats(s, a1).vifs[0].accel?.pluginErrors).toBeGreaterThan(0);
      expect(guestStats(s, a1).vifs[0].accel?.lastError).toBe('startXmit: flaky: startXmit broke on purpose');
      expect(dom0Stats(s, 'host-a').accel.frontendFailures).toBe(1);
      // 5000 frames went on the fast path, then the rest through netback on host-a.
      expect(guestStats(s, a1).vifs[0].txAccel - guestStats(before, a1).vifs[0].txAccel).toBe(5000);
      expect(dom0Stats(s, 'host-a').vifs['vif1.0'].txPackets - dom0Stats(before, 'host-a').vifs['vif1.0'].txPackets).toBeGreaterThanOrEqual(15_000);
      await sim.waitFor('a1 detached', async () => guestStats(await stats(), a1).vifs[0].accel?.plugin === null);
      await sim.unloadPlugin('flaky');
      await recovers();
    });

    it('backend throws while attaching a vif: the load fails naming the hook, and the host is as before', async () => {
      await expect(sim.loadPlugin(FLAKY, { host: 'host-a', args: { failIn: 'attachVif', after: 0 } })).rejects.toThrow('flaky: attachVif broke on purpose');
      const s = await stats();
      expect(dom0Stats(s, 'host-a').accel.failures).toContainEqual({ plugin: 'flaky', hook: 'attachVif', error: 'flaky: attachVif broke on purpose' });
      await recovers();
    });

    it('a driverlink hook that throws (link change) drops the plugin; both drivers still see the link go down and up', async () => {
      await sim.loadPlugin(FLAKY, { host: 'host-a', args: { failIn: 'linkChange', after: 0 } });
      await sim.waitFor('flaky attached to a1', async () => guestStats(await stats(), a1).vifs[0].accel?.current?.ready === true);
      await sim.setLink('host-a', false);
      await sim.setLink('host-a', true);
      const s = await stats();
      expect(dom0Stats(s, 'host-a').accel.failures).toContainEqual({ plugin: 'flaky', hook: 'linkChange', error: 'flaky: linkChange broke on purpose' });
      expect(dom0Stats(s, 'host-a').accel.driverErrors).toBeGreaterThan(0);
      expect(dom0Stats(s, 'host-a').driverlink).toEqual(
        expect.arrayContaining(['link down', 'flaky failed in linkChange: flaky: linkChange broke on purpose', 'link up']),
      );
      await recovers();
    });
  });
});
