/**
 * vif hotplug (vdpa's dev add/del, xl network-attach/-detach) on running
 * guests: a vif added while another of the same guest streams goes through
 * the whole handshake (netback waiting for the hotplug script's
 * hotplug-status), is offered to the loaded plugin, and streams; deleted, it
 * leaves nothing behind, and the guest gets its memory back. Threads and seeds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, mgmtdevList, runStream, type DomainRef } from '@xsim/toolstack';
import { THREADS, conservedStream, replayOnFailure, seededModes } from './helpers.ts';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const a2: DomainRef = { host: 'host-a', domain: 'a2' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };

/** What a host's parts hold (the kinds of thing a vif takes), to compare before and after. */
type Holdings = Awaited<ReturnType<typeof holdings>>;

async function holdings(sim: Simulation) {
  const fabric = await sim.fabricStats();
  const h = sim.host('host-a');
  const d0 = await sim.dom0Stats('host-a');
  const g = await sim.guestStats(a1);
  return {
    xenstore: h.xenstore.usage(),
    evtchn: h.hv.usage(),
    grantMappings: d0.grantMappings,
    visRunning: Object.values(fabric.nics[0].vis).filter((v) => v.running).length,
    filters: fabric.nics[0].filters,
    bridgePorts: d0.bridge.ports,
    accelChannels: Object.keys(d0.accel.vifs).length,
    guestFreeFrames: g.freeFrames,
    guestFreeGrants: g.freeGrants,
    guestVifs: g.vifs.length,
  };
}

/**
 * What dom0, the NIC and xenstore hold is back when delVif returns; the guest
 * lets go of the device when it sees its node removed, on its own vCPU, a
 * moment later (as a Linux frontend does): give it that moment, then compare.
 */
async function expectBack(sim: Simulation, before: Holdings): Promise<void> {
  await sim.waitFor('the guest to let go of the vif', async () => JSON.stringify(await holdings(sim)) === JSON.stringify(before), 2000).catch(() => {});
  expect(await holdings(sim)).toEqual(before);
}

describe.each([THREADS, ...seededModes()])('vif hotplug ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    // a1 gets room for a second vif's buffers (the validator says how much a vif needs).
    const t = defaultTopology();
    t.hosts[0].domUs[0].memPages = 2048;
    sim = await Simulation.start(t, { ...mode.opts, log: () => {} });
    await sim.loadPlugin('vnic');
    await sim.waitFor('vnic on every vif', async () => (await sim.listDomains()).every((d) => d.domid === 0 || d.vifs.every((v) => v.accel === 'vnic')));
  });

  afterAll(async () => {
    await sim?.shutdown();
  });

  it('adds a vif while the guest streams on its first one: handshake through hotplug-status, accelerated, streams; deleted, nothing is left', async () => {
    // Warm, from the port the measured stream uses: vnic's filter for its credits back to a1 exists before the baseline.
    for (let i = 0; i < 2; i++) await runStream(sim, { from: a1, to: b1, count: 500, frameSize: 600, window: 64, srcPort: 7000 });
    const before = await holdings(sim);
    const { r } = await conservedStream(sim, { from: a1, to: b1, count: 20_000, frameSize: 1000, window: 256, srcPort: 7000 }, async () => {
      const v = await sim.addVif(a1, { ip: '10.0.10.50', mtu: 1400 });
      expect(v).toMatchObject({ dev: 'host-a/a1/vif1', handle: 1, ip: '10.0.10.50', mtu: 1400 });
      // The toolstack ran the hotplug script (netback waited for it: see packages/netback/test/xenbus.test.ts).
      expect(sim.host('host-a').xenstore.read(0, '/local/domain/0/backend/vif/1/1/hotplug-status')).toBe('connected');
      await sim.waitFor('vnic on vif1', async () => (await sim.listDomains()).find((d) => d.name === 'a1')?.vifs[1]?.accel === 'vnic');
      // The new vif streams both ways while vif0 keeps streaming.
      const out = await runStream(sim, { from: a1, fromVif: 1, to: b1, count: 2000, frameSize: 1000, window: 128, srcPort: 7001, port: 5002 });
      const back = await runStream(sim, { from: b1, to: a1, toVif: 1, count: 2000, frameSize: 1000, window: 128, srcPort: 7002, port: 5003 });
      expect([out.delivered, back.delivered]).toEqual([2000, 2000]);
      // Its MTU is its own: a frame over 1400 is refused by the guest's stack on vif1 only.
      await expect(runStream(sim, { from: a1, fromVif: 1, to: b1, count: 1, frameSize: 1500 })).rejects.toThrow(/frame size 1500/);
      const del = await sim.delVif(a1, 1);
      expect(del).toEqual({ dev: 'host-a/a1/vif1', forced: false });
    });
    expect(r.delivered).toBe(20_000);
    await expectBack(sim, before);
    const d0 = await sim.dom0Stats('host-a');
    expect(d0.vifs['vif1.1']).toMatchObject({ removed: true, state: 6 });
  });

  it("add and delete 10 times: the guest's memory and grants come back each time, nothing leaks", async () => {
    const before = await holdings(sim);
    for (let i = 0; i < 10; i++) {
      // a1 has memory for two vifs: a third add would fail unless each deleted vif's buffers came back.
      const v = await sim.addVif(a1, {});
      expect(v.dev).toMatch(/^host-a\/a1\/vif\d+$/);
      await sim.delVif(a1, v.handle);
    }
    await expectBack(sim, before);
  });

  it('refuses what cannot be plugged, naming what is wrong', async () => {
    await expect(sim.addVif({ host: 'host-a', domain: 'dom0' })).rejects.toThrow(/is dom0/);
    await expect(sim.addVif({ host: 'host-a', domain: 'zz' })).rejects.toThrow(/no domain "zz" on host-a/);
    await expect(sim.addVif(a1, { mac: '00:16:3e:0b:01:01' })).rejects.toThrow(/00:16:3e:0b:01:01/);
    await expect(sim.addVif(a1, { mtu: 9000 })).rejects.toThrow(/mtu 9000: a vif's MTU is 68..1500/);
    await expect(sim.addVif(a1, { name: 'vif0' })).rejects.toThrow(/already has vif0/);
    await expect(sim.addVif(a1, { name: 'eth0' })).rejects.toThrow(/is not vifN/);
    // The default guest's RAM holds one vif's buffers: the refusal says so and what would do, not a topology path.
    await expect(sim.addVif(a2, { ip: '10.0.10.60' })).rejects.toThrow(
      /cannot add a vif to host-a\/a2: its RAM \(1024 pages\) holds the buffers of 1 vif\(s\); 2 need 1044 pages \(514 per vif at MTU 1500, plus 16\), and a domain's RAM is fixed when it is created: create it with --mem 1044 or more/,
    );
    await expect(sim.delVif(a1, 7)).rejects.toThrow(/has no vif7 \(vifs: vif0\)/);
    const nics = await mgmtdevList(sim);
    expect(nics[0]).toMatchObject({ host: 'host-a', vifs: 2, vifsFree: 64 - 1 - 2, visInUse: 3 });
  });
});
