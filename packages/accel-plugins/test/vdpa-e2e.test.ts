/**
 * The vdpa plugin end to end (issue 19, item 3), on deterministic
 * simulations: the conformance suite on a simulation of its own (which gives
 * both hosts the virtio NIC, the one vdpa drives), and a host of each NIC
 * model, each with its own plugin, carrying one stream on both fast paths.
 */
import { describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, guestStats, runConformance, runStream, streamAccount, type DomainRef } from '@xsim/toolstack';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };

describe('vdpa end to end', () => {
  it('passes the conformance suite, on the virtio NIC the suite chose for it', async () => {
    const r = await runConformance('vdpa');
    const explain = r.results.map((x) => `${x.id} ${x.status.toUpperCase()}: ${x.reason}`).join('\n');
    expect(r.passed, explain).toBe(true);
    expect(r.features).toEqual(['vif']);
    expect(r.results.filter((x) => x.status === 'skip').map((x) => x.id)).toEqual(['intercept']);
    const reason = (id: string) => r.results.find((x) => x.id === id)!.reason;
    expect(reason('traffic')).toMatch(/100\.0% of the sender's frames on the fast path/);
    expect(reason('quota')).toMatch(/vdpaFiltersEvicted \+\d+/);
  });

  it('a VI host with vnic and a virtio host with vdpa: vdpa refuses the VI NIC, and the stream takes both fast paths, conserved', async () => {
    const sim = await Simulation.start(defaultTopology({ nics: ['vi', 'virtio'] }), { deterministic: { seed: 3 }, log: () => {} });
    try {
      // Each plugin, loaded without a host, goes to the hosts whose NIC it drives; asked onto the other, it is refused.
      await expect(sim.loadPlugin('vdpa', { host: 'host-a' })).rejects.toThrow(/plugin vdpa 1\.0\.0 drives nic:1af4-1041; this host's NIC is nic:1924-0803/);
      expect(((await sim.loadPlugin('vdpa')) as { name: string }[]).map((x) => x.name)).toEqual(['vdpa']);
      expect(((await sim.loadPlugin('vnic')) as { name: string }[]).map((x) => x.name)).toEqual(['vnic']);
      await sim.waitFor('every vif accelerated', async () =>
        (await sim.listDomains()).every((d) => d.domid === 0 || d.vifs.every((v) => v.accel === (d.host === 'host-a' ? 'vnic' : 'vdpa'))),
      );
      const before = await sim.stats();
      const r = await runStream(sim, { from: a1, to: b1, count: 4000, frameSize: 1500, window: 256 });
      const after = await sim.stats();
      expect(streamAccount(before, after, r).conserved).toBe(true);
      expect(r.delivered).toBe(4000);
      const rx = guestStats(after, b1).vifs[0].accel!;
      expect(rx.plugin).toBe('vdpa');
      const cur = rx.current as Record<string, number>;
      // All but the frames before the flow was learnt came in on b1's function.
      expect(cur.vdpaRxFrames).toBeGreaterThan(3900);
      expect(cur.vdpaRxMalformed).toBe(0);
      // b1's credits back to a1 went out on its transmitq.
      expect(cur.vdpaTaken).toBeGreaterThan(0);
      expect(cur.txPosted).toBe(cur.vdpaTaken);
      expect(guestStats(after, a1).vifs[0].accel?.plugin).toBe('vnic');
    } finally {
      await sim.shutdown();
    }
  });
});
