/**
 * Concurrent `dev add`s reserve what they take before their first await
 * (issue 20, item 5): each gets its own handle, MAC and IP, the guests' vif
 * lists stay in step with their handles, every vif can be deleted by the name
 * it was given, and a later create is not refused for an address a vanished
 * add left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, validateTopology, type DomainRef } from '@xsim/toolstack';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const a2: DomainRef = { host: 'host-a', domain: 'a2' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };

describe.each([
  { name: 'deterministic, seed 1', opts: { deterministic: { seed: 1 } } },
  { name: 'threads', opts: { pcpus: 2 } },
])('concurrent dev add ($name)', ({ opts }) => {
  let sim: Simulation;

  beforeAll(async () => {
    // Room for a few more vifs' buffers in each guest (the default's 1024 pages hold one).
    const t = structuredClone(defaultTopology());
    for (const h of t.hosts) for (const d of h.domUs) d.memPages = 4096;
    sim = await Simulation.start(validateTopology(t), { ...opts, log: () => {} });
  });

  afterAll(async () => {
    await sim?.shutdown();
  });

  it('five adds at once over three guests: distinct handles, MACs and IPs, lists in step, all deletable', async () => {
    const added = await Promise.all([a1, a1, a2, b1, a2].map((ref) => sim.addVif(ref)));
    expect(new Set(added.map((v) => v.ip)).size).toBe(5);
    expect(new Set(added.map((v) => v.mac)).size).toBe(5);
    expect(new Set(added.map((v) => v.dev)).size).toBe(5);
    const list = await sim.listDomains();
    const all = list.flatMap((d) => d.vifs.map((v) => v.ip));
    expect(new Set(all).size).toBe(all.length);
    for (const ref of [a1, a2, b1]) {
      const d = list.find((x) => x.host === ref.host && x.name === ref.domain)!;
      expect(d.vifs.length).toBe(1 + added.filter((v) => v.dev.startsWith(`${ref.host}/${ref.domain}/`)).length);
    }
    for (const v of added) {
      const [host, domain] = v.dev.split('/');
      await sim.delVif({ host, domain }, v.handle);
    }
    const after = await sim.listDomains();
    for (const ref of [a1, a2, b1]) expect(after.find((x) => x.host === ref.host && x.name === ref.domain)!.vifs.length).toBe(1);
    // Nothing of the five is left reserved: a new guest may take the first address they had.
    const d = await sim.createDomain('host-a', 'late', { ip: added[0].ip });
    expect(d.vifs[0].ip).toBe(added[0].ip);
  });
});
