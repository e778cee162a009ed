/**
 * A migrating guest keeps its place (issue 20, item 6): from the migration's
 * check to its landing, its name on the destination and its MACs and IPs are
 * reserved, though for a while no host's records hold them; and operations on
 * one domain do not overlap (an end refuses a second end or a hotplug in
 * flight, a hotplug refuses a domain that is moving), each refusal naming
 * what the domain is busy with.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, validateTopology, type DomainRef } from '@xsim/toolstack';

describe.each([
  { name: 'deterministic, seed 3', opts: { deterministic: { seed: 3 } } },
  { name: 'threads', opts: { pcpus: 2 } },
])('operations during a migration ($name)', ({ opts }) => {
  let sim: Simulation;

  beforeAll(async () => {
    const t = structuredClone(defaultTopology());
    for (const h of t.hosts) for (const d of h.domUs) d.memPages = 4096;
    sim = await Simulation.start(validateTopology(t), { ...opts, log: () => {} });
  });

  afterAll(async () => {
    await sim?.shutdown();
  });

  it('a guest of the same name, or with its IP or MAC, cannot be created where it is going, at any moment of the move', async () => {
    const mv = await sim.createDomain('host-b', 'mv', { memPages: 4096 });
    const ref: DomainRef = { host: 'host-b', domain: 'mv' };
    let landed = false;
    const moving = sim.migrateDomain(ref, 'host-a', { live: true, settleMs: 10 }).finally(() => (landed = true));
    // Try all through the move, including the stretch where neither host's records hold mv.
    const why: string[] = [];
    for (let i = 0; i < 2000 && !landed; i++) {
      const rows = (await sim.listDomains()).filter((d) => d.name === 'mv');
      if (landed) break;
      // One row throughout (a list between its landing and its resume shows it migrating to host-a).
      expect(rows.length).toBe(1);
      if (rows[0].state === 'migrating') expect(rows[0].migratingTo).toBe('host-a');
      const tries = await Promise.allSettled([
        sim.createDomain('host-a', 'mv'),
        sim.createDomain('host-a', 'other-ip', { ip: mv.vifs[0].ip }),
        sim.createDomain('host-b', 'other-mac', { mac: mv.vifs[0].mac }),
        sim.addVif({ host: 'host-a', domain: 'a1' }, { ip: mv.vifs[0].ip }),
      ]);
      for (const t of tries) {
        if (t.status === 'fulfilled') throw new Error(`created beside a migrating mv: ${JSON.stringify(t.value)}`);
        why.push(String((t.reason as Error).message));
      }
      await sim.sleep(1);
    }
    await moving;
    expect(why.length).toBeGreaterThanOrEqual(4);
    // Its source holds its addresses until it lands; only the reservation holds its name on host-a.
    expect(why.some((w) => /host-a\/mv is taken: a guest of that name is migrating there from host-b/.test(w))).toBe(true);
    expect(
      why
        .filter((w) => w.includes('other-ip') || w.includes('other-mac') || w.includes('host-a/a1'))
        .every((w) => w.includes('already used') || w.includes('is taken by mv')),
    ).toBe(true);
    const list = await sim.listDomains();
    expect(list.filter((d) => d.name === 'mv').map((d) => d.host)).toEqual(['host-a']);
    const ips = list.flatMap((d) => d.vifs.map((v) => v.ip));
    expect(new Set(ips).size).toBe(ips.length);
    // Once it has landed, the reservation is gone: mv can go back, and its name is free again on host-a.
    await sim.migrateDomain({ host: 'host-a', domain: 'mv' }, 'host-b', { settleMs: 10 });
    await sim.destroyDomain({ host: 'host-b', domain: 'mv' });
    const again = await sim.createDomain('host-a', 'mv', { ip: mv.vifs[0].ip });
    await sim.destroyDomain({ host: 'host-a', domain: again.name });
  });

  it('a hotplug is refused while its guest moves, and an end is refused while a hotplug runs', async () => {
    await sim.createDomain('host-a', 'hp', { memPages: 4096 });
    const ref: DomainRef = { host: 'host-a', domain: 'hp' };
    const moving = sim.migrateDomain(ref, 'host-b', { settleMs: 10 });
    await expect(sim.addVif(ref)).rejects.toThrow(/host-a\/hp is busy with its migration to host-b: dev add refused/);
    await moving;
    const there: DomainRef = { host: 'host-b', domain: 'hp' };
    const adding = sim.addVif(there);
    await expect(sim.destroyDomain(there)).rejects.toThrow(/host-b\/hp has dev add in progress: refused/);
    await expect(sim.migrateDomain(there, 'host-a')).rejects.toThrow(/host-b\/hp has dev add in progress: refused/);
    const v = await adding;
    expect(v.dev).toBe('host-b/hp/vif1');
    await sim.destroyDomain(there);
    const left = await sim.listDomains();
    expect(left.some((d) => d.name === 'hp')).toBe(false);
  });
});
