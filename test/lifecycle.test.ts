/**
 * Domains at run time (xl create / shutdown / destroy, and a guest that
 * crashes): a created guest connects through the full xenbus handshake and
 * streams at once; whatever way it ends, nothing of it is left behind
 * (xenstore nodes and watches, event-channel ports, grant mappings, VIs,
 * filters, MAC entries, the NIC's and dom0's view of its RAM), and every
 * frame in flight is in a named counter. Deterministically over seeds, and
 * on real pCPU threads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, runStream, totalDrops, validateTopology, type DomainRef } from '@xsim/toolstack';
import { THREADS, afterFrames, conservedStream, replayOnFailure, seededModes } from './helpers.ts';

const HOSTILE = new URL('./fixtures/hostile-guest.ts', import.meta.url).href;
const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };
const b2: DomainRef = { host: 'host-b', domain: 'b2' };

/** Everything a domain can hold that must come back when it goes. */
async function holdings(sim: Simulation) {
  const fabric = await sim.fabricStats();
  const hosts: Record<string, unknown> = {};
  for (const h of sim.hosts) {
    const d0 = await sim.dom0Stats(h.spec.name);
    const nic = fabric.nics[h.index];
    hosts[h.spec.name] = {
      xenstore: h.xenstore.usage(),
      evtchn: h.hv.usage(),
      grantMappings: d0.grantMappings,
      visRunning: Object.values(nic.vis).filter((v) => v.running).length,
      filters: nic.filters,
      bridgePorts: d0.bridge.ports,
      // Static entries are the vifs' pinned MACs; learnt ones are the traffic's, kept only for live guests.
      fdbStatic: d0.bridge.fdb.filter((e) => e.static).length,
      vifsLive: Object.values(d0.vifs).filter((v) => !('removed' in v)).length,
      accelChannels: Object.keys(d0.accel.vifs).length,
      skbsFree: d0.skbsFree,
    };
  }
  return { ...hosts, switchMacs: fabric.switches.map((s) => s.macs) };
}

describe.each([THREADS, ...seededModes()])('domain lifecycle ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, kernels: { 'host-a/crashy': HOSTILE }, log: () => {} });
    await sim.loadPlugin('vnic');
    // The topology's guests attach first, so their VIs are not what the loop below counts.
    await sim.waitFor('vnic on every vif', async () => (await sim.listDomains()).every((d) => d.domid === 0 || d.vifs.every((v) => v.accel === 'vnic')));
  });

  afterAll(async () => {
    await sim?.shutdown();
  });

  it('create -> stream both ways -> destroy, 50 times on one host: nothing leaks', async () => {
    // One cycle first, not counted: the long-lived guests' ARP entries, learnt MACs and vnic's flow
    // filters for b1's two flows (in to port 5001, credits back to 6000) exist before the baseline.
    let before: Awaited<ReturnType<typeof holdings>> | undefined;
    const domids = new Set<number>();
    for (let i = -1; i < 50; i++) {
      if (i === 0) before = await holdings(sim);
      const d = await sim.createDomain('host-a', `t${i + 1}`);
      if (i >= 0) domids.add(d.domid);
      expect(d.state).toBe('running');
      const me: DomainRef = { host: 'host-a', domain: `t${i + 1}` };
      const out = await runStream(sim, { from: me, to: b1, count: 300, frameSize: 600, window: 64 });
      // b1 sends from one port every time: one flow for vnic to learn on host-b, not one per guest.
      const back = await runStream(sim, { from: b1, to: me, count: 300, frameSize: 600, window: 64, srcPort: 6000 });
      expect([out.delivered, back.delivered]).toEqual([300, 300]);
      const end = i % 2 === 0 ? await sim.destroyDomain(me) : await sim.shutdownDomain(me);
      expect(end.vifsRemoved).toBe(1);
    }
    // Domids are never reused within a run.
    expect(domids.size).toBe(50);
    const after = await holdings(sim);
    expect(after).toEqual(before);
    expect(sim.endedDomains.length).toBeGreaterThanOrEqual(51);
  });

  it('a created guest is accelerated like any other, and a shut down one hands over its counters', async () => {
    const d = await sim.createDomain('host-a', 'fresh', { mac: '00:16:3e:0a:77:01', ip: '10.0.10.77' });
    expect(d.vifs).toEqual([{ handle: 0, mac: '00:16:3e:0a:77:01', ip: '10.0.10.77', accel: expect.any(String) }]);
    const me: DomainRef = { host: 'host-a', domain: 'fresh' };
    await sim.waitFor('vnic on the new vif', async () => (await sim.listDomains()).find((x) => x.name === 'fresh')?.vifs[0].accel === 'vnic');
    const { r } = await conservedStream(sim, { from: me, to: b2, count: 2000, frameSize: 1000, window: 256 });
    expect(r.delivered).toBe(2000);
    const end = await sim.shutdownDomain(me);
    expect(end.how).toBe('shutdown');
    expect(end.final!.vifs[0].state).toBe(6);
    expect(end.final!.endpoint!.stack.txUdp).toBeGreaterThanOrEqual(2000);
    expect(() => sim.domain(me)).toThrow(/no domain "fresh" on host-a/);
  });

  it('destroy mid-stream: the other guests stream on, conserved; frames for the dead guest are counted, and reach no one else', async () => {
    await sim.createDomain('host-a', 'doomed');
    const doomed: DomainRef = { host: 'host-a', domain: 'doomed' };
    const a2: DomainRef = { host: 'host-a', domain: 'a2' };
    const a2Before = await sim.guestStats(a2);
    const dropsBefore = totalDrops(await sim.stats());
    // ARP before anything is measured: its broadcast reaches every guest's stack.
    await sim.request(b2, 'arp_resolve', { ip: sim.domain(doomed).ip });
    // An unpaced stream into the guest that will be destroyed, so frames are in flight when it goes.
    const into = runStream(sim, { from: b2, to: doomed, count: 30_000, frameSize: 1000, window: 0, timeoutMs: 20_000 }).catch((e: Error) => e);
    // What the dead guest's stream leaves behind is not a1 -> b1's business (a1 -> b1 receives nothing on
    // host-a): dom0's stack refusing frames for a MAC no one has any more, host-a's NIC dropping them on
    // receive (VI 0 overrun, the dead guest's VI with no buffers posted, or left on it at vi_fini).
    const theirs = (path: string) => /^host-a\/dom0\.endpoint\.stack\.rxNotForUs$|^fabric\.nics\.0\.vis\.\d+\.rx|^host-a\/dom0\.vifs\.vif\d+\.0\.rx/.test(path);
    let delivered = 0;
    try {
      const { r } = await conservedStream(
        sim,
        { from: a1, to: b1, count: 5000, frameSize: 1000, window: 256 },
        async () => {
          await afterFrames(sim, doomed, 500);
          const end = await sim.destroyDomain(doomed);
          expect(end.how).toBe('destroy');
        },
        (path) => !theirs(path),
      );
      delivered = r.delivered;
    } finally {
      // The sender finishes; its receiver was destroyed under it, so the stream fails rather than hangs.
      expect(await into).toBeInstanceOf(Error);
    }
    expect(delivered).toBe(5000);
    const d0 = await sim.dom0Stats('host-a');
    const gone = Object.values(d0.vifs).find((v) => 'removed' in v && v.key === `${sim.endedDomains.at(-1)!.domid}/0`)!;
    expect(gone.state).toBe(6);
    expect(gone.history.at(-1)).toMatch(/toolstack removed the vif/);
    // Every frame that did not reach the guest before it died is in a drop counter somewhere...
    expect(totalDrops(await sim.stats())).toBeGreaterThan(dropsBefore);
    // ...and none of them reached its neighbour.
    const a2After = await sim.guestStats(a2);
    expect(a2After.endpoint!.stack.rxUdp).toBe(a2Before.endpoint!.stack.rxUdp);
  });

  it('a guest that crashes mid-stream is cleaned up like a destroy; dom0 and the others carry on', async () => {
    await sim.createDomain('host-a', 'crashy');
    const crashy: DomainRef = { host: 'host-a', domain: 'crashy' };
    const domid = sim.domain(crashy).domid;
    const { r } = await conservedStream(sim, { from: a1, to: b1, count: 3000, frameSize: 800, window: 256 }, async () => {
      await afterFrames(sim, b1, 300);
      await sim.request(crashy, 'crash');
      await sim.waitFor('the crash to be cleaned up', () => sim.endedDomains.some((e) => e.how === 'crash' && e.domid === domid));
    });
    expect(r.delivered).toBe(3000);
    expect(() => sim.domain(crashy)).toThrow(/no domain "crashy"/);
    const h = sim.host('host-a');
    expect(h.xenstore.read(0, `/local/domain/${domid}/name`)).toBeUndefined();
    expect(h.xenstore.directory(0, `/local/domain/0/backend/vif/${domid}`)).toBeUndefined();
    expect(h.hv.portsOf(domid)).toBe(0);
  });

  it('refuses what cannot be built, naming what is wrong, and leaves nothing behind', async () => {
    const before = await holdings(sim);
    await expect(sim.createDomain('host-z', 'x')).rejects.toThrow(/no host "host-z" \(hosts: host-a, host-b\)/);
    await expect(sim.createDomain('host-a', 'a1')).rejects.toThrow(/domU name "a1" is used twice on host-a/);
    await expect(sim.createDomain('host-a', 'dom0')).rejects.toThrow(/"dom0" is reserved/);
    await expect(sim.createDomain('host-a', 'Bad_Name')).rejects.toThrow(/the new domain\.name/);
    await expect(sim.createDomain('host-a', 'x', { mac: '00:16:3e:0a:01:01' })).rejects.toThrow(/00:16:3e:0a:01:01/);
    await expect(sim.createDomain('host-a', 'x', { mac: 'ff:ff:ff:ff:ff:ff' })).rejects.toThrow(/not a unicast MAC/);
    await expect(sim.createDomain('host-a', 'x', { ip: '10.0.10.1' })).rejects.toThrow(/10\.0\.10\.1/);
    await expect(sim.createDomain('host-a', 'x', { memPages: 10 })).rejects.toThrow(/memPages/);
    await expect(sim.createDomain('host-a', 'x', { pcpu: 99 })).rejects.toThrow(/pinned to pCPU 99/);
    await expect(sim.destroyDomain({ host: 'host-a', domain: 'dom0' })).rejects.toThrow(/is dom0/);
    await expect(sim.destroyDomain({ host: 'host-a', domain: 'nobody' })).rejects.toThrow(/no domain "nobody" on host-a \(domains: dom0, a1, a2\)/);
    await expect(sim.shutdownDomain({ host: 'host-q', domain: 'a1' })).rejects.toThrow(/no host "host-q"/);
    expect(await holdings(sim)).toEqual(before);
  });
});

describe('domids (deterministic, seed 1)', () => {
  it("a host whose last guest is domain 32751 gives the next guest a free domid below Xen's reserved range, and it connects", async () => {
    const t = structuredClone(defaultTopology());
    t.hosts[0].domUs[1].domid = 0x7fef;
    const sim = await Simulation.start(validateTopology(t), { deterministic: { seed: 1 }, log: () => {} });
    try {
      const d = await sim.createDomain('host-a', 'late');
      // a1 is 1 and a2 is 32751: the ids wrap to the lowest free one, never to 32752 (DOMID_SELF).
      expect(d.domid).toBe(2);
      const next = await sim.createDomain('host-a', 'later');
      expect(next.domid).toBe(3);
      // dom0 unharmed: its entry in the stats is its counters, not a hung or crashed report.
      const s = (await sim.stats())['host-a/dom0'];
      expect(s).not.toHaveProperty('hung');
      expect(s).not.toHaveProperty('crashed');
      expect(s).toHaveProperty('bridge');
      expect((await sim.listDomains()).filter((x) => x.host === 'host-a').map((x) => x.domid)).toEqual([0, 1, 32751, 2, 3]);
    } finally {
      await sim.shutdown();
    }
  });
});
