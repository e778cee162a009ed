/**
 * Accelerator plugins end to end, deterministically over several seeds: bypass
 * of dom0 after filter learning, hot swap of plugins in the middle of a
 * stream, NIC reset, link and MTU events through driverlink, and alias
 * matching. Every frame of every stream is delivered once or counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Simulation,
  defaultTopology,
  dom0Stats,
  dropDelta,
  guestStats,
  validateTopology,
  type DomainRef,
  type StatsTree,
  type StreamOptions,
} from '@xsim/toolstack';
import { VNIC_BACKEND_COUNTERS } from '../packages/accel-plugins/src/vnic/backend.ts';
import { VNIC_FRONTEND_COUNTERS } from '../packages/accel-plugins/src/vnic/frontend.ts';
import { afterFrames, conservedStream, pluginCounters, replayOnFailure, rxUdp, seededModes } from './helpers.ts';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };
const b2: DomainRef = { host: 'host-b', domain: 'b2' };

describe.each(seededModes())('accelerator plugins ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), mode.opts);
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  function stats(): Promise<StatsTree> {
    return sim.stats();
  }

  const conserved = (o: StreamOptions, during?: () => Promise<void>) => conservedStream(sim, o, during);

  function vif(s: StatsTree, host: string, domid: number) {
    return dom0Stats(s, host).vifs[`vif${domid}.0`];
  }

  describe('vnic bypasses dom0', () => {
    it('refuses a plugin whose aliases do not match the NIC, with a clear error', async () => {
      const other = await Simulation.start(
        validateTopology({
          name: 'other-nic',
          hosts: [
            {
              name: 'h',
              nic: { vendor: '8086', device: '10fb', mac: '00:1b:21:00:00:01', vis: 4 },
              dom0: { ip: '10.0.0.1' },
              domUs: [{ name: 'g', vifs: [{ mac: '00:16:3e:00:00:01', ip: '10.0.0.5' }] }],
            },
          ],
          wires: [],
        }),
        mode.opts,
      );
      try {
        // Asked of every host: none has a NIC it drives (each host's NIC named); asked of that host: its dom0 refuses, naming it.
        await expect(other.loadPlugin('vnic')).rejects.toThrow(
          "plugin vnic drives nic:1924-0803, nic:1924-0903; no host's NIC is one of them (h: nic:8086-10fb)",
        );
        await expect(other.loadPlugin('vnic', { host: 'h' })).rejects.toThrow(
          "plugin vnic 1.0.0 drives nic:1924-0803, nic:1924-0903; this host's NIC is nic:8086-10fb",
        );
        // A plugin matching any NIC binds fine there.
        await expect(other.loadPlugin('null')).resolves.toEqual([{ name: 'null', version: '1.0.0', api: { host: '1.5', plugin: '1.1' }, vifs: 1 }]);
        await expect(other.loadPlugin('nonesuch')).rejects.toThrow(/no plugin "nonesuch"/);
      } finally {
        await other.shutdown();
      }
    });

    it('after learning, a 10,000-frame cross-host stream never touches dom0 on either host', async () => {
      await sim.loadPlugin('vnic');
      const idA1 = sim.domain(a1).domid;
      const idB1 = sim.domain(b1).domid;
      await sim.waitFor('vnic to attach a1 and b1', async () => {
        const s = await stats();
        return guestStats(s, a1).vifs[0].accel?.current?.ready === true && guestStats(s, b1).vifs[0].accel?.current?.ready === true;
      });
      // Learning: the first frames of the flow reach b1 through dom0-b, which installs a filter.
      // Both streams use one sender port, so the reverse (credit) flow is learnt during the first too.
      await conserved({ from: a1, to: b1, count: 500, frameSize: 1500, window: 64, srcPort: 41000 });
      const { r, before, after } = await conserved({ from: a1, to: b1, count: 10_000, frameSize: 1500, window: 256, srcPort: 41000 });
      // Conservation is exact (checked in conserved). The window fits b1's RX ring, so nothing is lost.
      expect(r.stalls).toBe(0);
      expect(r.delivered).toBe(r.sent);
      expect(r.reordered).toBe(0);
      // The data flow a1 -> b1: nothing through netback or the bridge on either host.
      expect(vif(after, 'host-a', idA1).txPackets - vif(before, 'host-a', idA1).txPackets, 'host-a netback, from a1').toBe(0);
      expect(vif(after, 'host-b', idB1).rxPackets - vif(before, 'host-b', idB1).rxPackets, 'host-b netback, to b1').toBe(0);
      expect(dom0Stats(after, 'host-b').bridge.forwarded - dom0Stats(before, 'host-b').bridge.forwarded, 'host-b bridge').toBe(0);
      expect(vif(after, 'host-a', idA1).rxPackets - vif(before, 'host-a', idA1).rxPackets, 'host-a netback, to a1').toBe(0);
      expect(dom0Stats(after, 'host-a').bridge.forwarded - dom0Stats(before, 'host-a').bridge.forwarded, 'host-a bridge').toBe(0);
      expect(guestStats(after, a1).vifs[0].txAccel - guestStats(before, a1).vifs[0].txAccel).toBe(10_000);
      expect(guestStats(after, b1).vifs[0].rxAccel - guestStats(before, b1).vifs[0].rxAccel).toBe(r.delivered);
      expect(pluginCounters(VNIC_BACKEND_COUNTERS, dom0Stats(after, 'host-b').accel.plugins.vnic).filtersInserted).toBeGreaterThan(0);
    });

    it('broadcast and ARP still go through dom0', async () => {
      const before = await stats();
      // b2 has never talked to a1: its ARP request is a broadcast, declined by the fast path.
      await sim.request(b2, 'arp_resolve', { ip: sim.domain(a1).ip });
      const after = await stats();
      const fb = pluginCounters(VNIC_FRONTEND_COUNTERS, guestStats(after, b2).vifs[0].accel?.current);
      expect(fb.declinedMulticast + fb.declinedArp).toBeGreaterThan(0);
      expect(dom0Stats(after, 'host-b').bridge.flooded).toBeGreaterThan(dom0Stats(before, 'host-b').bridge.flooded);
      expect(vif(after, 'host-b', sim.domain(b2).domid).txPackets).toBeGreaterThan(vif(before, 'host-b', sim.domain(b2).domid).txPackets);
    });
  });

  describe('swapping plugins while traffic flows', () => {
    it('load -> unload -> load another plugin mid-stream: every frame delivered once or counted', async () => {
      let rxBefore = 0;
      let rxAfterSwaps = 0;
      const { r, after } = await conserved({ from: a1, to: b1, count: 30_000, frameSize: 1500, window: 256 }, async () => {
        rxBefore = await rxUdp(sim, b1);
        await afterFrames(sim, b1, 5000);
        await sim.unloadPlugin('vnic');
        await sim.loadPlugin('null');
        await afterFrames(sim, b1, 5000);
        await sim.unloadPlugin('null');
        await sim.loadPlugin('vnic');
        rxAfterSwaps = await rxUdp(sim, b1);
      });
      // The swaps happened while the stream ran.
      expect(rxAfterSwaps - rxBefore).toBeLessThan(30_000);
      expect(r.delivered).toBeGreaterThan(29_000);
      expect(guestStats(after, a1).vifs[0].accel?.attachments).toBeGreaterThanOrEqual(2);
      expect(Object.keys(dom0Stats(after, 'host-a').accel.plugins)).toEqual(['vnic']);
    });
  });

  describe('a swap storm', () => {
    it('20 plugin swaps under an unpaced stream: every frame delivered once, counted, or too old to track (never lost silently)', async () => {
      if (!dom0Stats(await stats(), 'host-a').accel.plugins.vnic) await sim.loadPlugin('vnic');
      let swaps = 0;
      const { r } = await conserved({ from: a1, to: b1, count: 60_000, frameSize: 1500, window: 0 }, async () => {
        for (let i = 0; i < 10; i++) {
          await sim.unloadPlugin('vnic');
          await sim.loadPlugin('null');
          await sim.unloadPlugin('null');
          await sim.loadPlugin('vnic');
          swaps += 2;
        }
      });
      expect(swaps).toBe(20);
      expect(r.duplicated).toBe(0);
      expect(Object.keys(dom0Stats(await stats(), 'host-a').accel.plugins)).toEqual(['vnic']);
    });
  });

  describe('driverlink events', () => {
    it('NIC reset suspends the plugins, traffic falls back to the slow path, then resumes accelerated', async () => {
      const { r } = await conserved({ from: a1, to: b1, count: 20_000, frameSize: 1500, window: 256 }, async () => {
        await afterFrames(sim, b1, 3000);
        await sim.nicReset('host-a');
      });
      expect(r.delivered).toBeGreaterThan(19_000);
      const s = await stats();
      expect(dom0Stats(s, 'host-a').driverlink).toEqual(expect.arrayContaining(['suspend', 'resume']));
      await sim.waitFor('a1 to be accelerated again', async () => guestStats(await stats(), a1).vifs[0].accel?.current?.ready === true);
      const before = await stats();
      await conserved({ from: a1, to: b1, count: 1000, frameSize: 1500, window: 128 });
      const after = await stats();
      expect(guestStats(after, a1).vifs[0].txAccel - guestStats(before, a1).vifs[0].txAccel).toBe(1000);
    });

    it('two NIC resets asked for at once are run one after the other, and both are answered', async () => {
      const before = dom0Stats(await stats(), 'host-a').driverlink;
      const [r1, r2] = await Promise.all([sim.nicReset('host-a'), sim.nicReset('host-a')]);
      // Each reset ran with the plugins suspended and every vif detached: the hardware found no VI in use.
      expect([r1, r2]).toEqual([
        { vis: 0, filters: 0 },
        { vis: 0, filters: 0 },
      ]);
      // What the primary driver logged meanwhile (stats show the newest entries only, however many)
      // is one whole reset and then the other, nothing between: never suspend, suspend, resume, resume.
      const after = dom0Stats(await stats(), 'host-a').driverlink;
      const expected = [...before, 'suspend', 'resume', 'suspend', 'resume'];
      expect(after.length).toBeGreaterThanOrEqual(4);
      expect(after).toEqual(expected.slice(-after.length));
      await sim.waitFor('a1 accelerated again', async () => guestStats(await stats(), a1).vifs[0].accel?.current?.ready === true);
    });

    it('link down/up reaches both drivers; frames sent while down are counted', async () => {
      await sim.setLink('host-a', false);
      const s = await stats();
      expect(dom0Stats(s, 'host-a').nic?.linkUp).toBe(false);
      expect(dom0Stats(s, 'host-a').driverlink.at(-1)).toBe('link down');
      await sim.waitFor('the guest to hear it', async () => guestStats(await stats(), a1).vifs[0].accel?.current?.linkUp === false);
      try {
        const { r } = await conserved({ from: a1, to: b1, count: 100, frameSize: 1500, window: 0, timeoutMs: 1500 });
        expect(r.delivered).toBe(0);
      } finally {
        await sim.setLink('host-a', true);
      }
      expect(dom0Stats(await stats(), 'host-a').driverlink.at(-1)).toBe('link up');
      await sim.waitFor('the guest to hear link up', async () => guestStats(await stats(), a1).vifs[0].accel?.current?.linkUp === true);
    });

    it('an MTU change refused by a secondary driver is refused for everyone, and reported', async () => {
      await sim.loadPlugin('firewall', { host: 'host-a', args: { rules: [] } });
      await expect(sim.setMtu('host-a', 1400)).resolves.toEqual({ mtu: 1400 });
      await expect(sim.setMtu('host-a', 1500)).resolves.toEqual({ mtu: 1500 });
      await expect(sim.setMtu('host-a', 4000)).rejects.toThrow(/primary driver refused MTU 4000|firewall refused MTU 4000/);
      const s = await stats();
      expect(dom0Stats(s, 'host-a').nic?.mtu).toBe(1500);
      await sim.unloadPlugin('firewall', { host: 'host-a' });
    });

    it('the firewall vetoes matching frames on the primary driver, counted', async () => {
      await sim.unloadPlugin('vnic');
      await sim.loadPlugin('firewall', { host: 'host-b', args: { rules: [{ proto: 17, dstPort: 5009 }] } });
      const { r, before, after } = await conserved({ from: a1, to: b1, count: 500, frameSize: 1500, window: 0, port: 5009, timeoutMs: 1500 });
      expect(r.delivered).toBe(0);
      // Every frame was vetoed by the rule, unless the unpaced sender overran dom0-b's queue first.
      const drops = dropDelta(before, after);
      expect(drops.get('host-b/dom0.nic.vetoedRx')).toBeGreaterThan(0);
      expect(
        [...drops.keys()].every((k) => k === 'host-b/dom0.nic.vetoedRx' || k === 'fabric.nics.1.vis.0.rxNoDesc'),
        JSON.stringify([...drops]),
      ).toBe(true);
      const ok = await conserved({ from: a1, to: b1, count: 500, frameSize: 1500, window: 64, port: 5010 });
      expect(ok.r.delivered).toBe(500);
      await sim.unloadPlugin('firewall', { host: 'host-b' });
    });
  });
});
