/**
 * Where each domain's vCPU runs: the default a Xen admin would choose (dom0s
 * on pCPUs of their own where there are enough), pins and cpupools from the
 * topology first, and a clear error for each placement that cannot be.
 */
import { describe, expect, it } from 'vitest';
import { issues } from './topo-issues.ts';
import { PlacementError, defaultTopology, placeDomains, rackTopology, validateTopology, type Topology } from '../src/index.ts';

const loose = (): Record<string, any> => JSON.parse(JSON.stringify(defaultTopology())); // eslint-disable-line @typescript-eslint/no-explicit-any

describe('default placement', () => {
  it('one pCPU: everyone shares it', () => {
    const p = placeDomains(defaultTopology(), 1);
    expect(p.dom0).toEqual([0, 0]);
    expect(p.guests).toEqual([
      [0, 0],
      [0, 0],
    ]);
  });

  it('two pCPUs: dom0s on pCPU 0, guests on pCPU 1', () => {
    const p = placeDomains(defaultTopology(), 2);
    expect(p.dom0).toEqual([0, 0]);
    expect(p.guests.flat()).toEqual([1, 1, 1, 1]);
    expect(p.policy).toMatch(/dom0s on pCPU 0, guests round-robin on pCPUs 1-1/);
  });

  it('eight pCPUs: a quarter for dom0s, guests round-robin over the rest', () => {
    const p = placeDomains(rackTopology({ hosts: 4, domUsPerHost: 6 }), 8);
    expect(p.dom0).toEqual([0, 1, 0, 1]);
    const load = new Map<number, number>();
    for (const c of p.guests.flat()) load.set(c, (load.get(c) ?? 0) + 1);
    expect([...load.keys()].sort()).toEqual([2, 3, 4, 5, 6, 7]);
    expect([...load.values()]).toEqual([4, 4, 4, 4, 4, 4]);
  });
});

describe('pins and cpupools', () => {
  it('a pin and a pool are honoured before the default', () => {
    const t = loose();
    t.cpupools = { fast: [2, 3] };
    t.hosts[0].domUs[0].pcpu = 1;
    t.hosts[1].domUs[1].cpupool = 'fast';
    t.hosts[1].dom0.pcpu = 3;
    const p = placeDomains(validateTopology(t), 4);
    expect(p.guests[0][0]).toBe(1);
    expect([2, 3]).toContain(p.guests[1][1]);
    expect(p.dom0[1]).toBe(3);
  });

  it('a pin beyond the pCPUs the run has is refused, saying how many there are', () => {
    const t = loose();
    t.hosts[0].domUs[1].pcpu = 5;
    expect(() => placeDomains(validateTopology(t), 2)).toThrow(
      new PlacementError(
        'hosts[0].domUs[1] (host-a/a2) is pinned to pCPU 5, but the simulation runs 2 pCPUs (0..1): run with --pcpus 6 or more, or change the pin',
      ),
    );
  });

  it('a pool none of whose pCPUs the run has is refused', () => {
    const t = loose();
    t.cpupools = { big: [6, 7] };
    t.hosts[0].domUs[0].cpupool = 'big';
    expect(() => placeDomains(validateTopology(t), 2)).toThrow(/cpupool "big" \(pCPUs 6, 7\) has none of the 2 pCPUs this simulation runs/);
  });

  it('a domain naming a pool that does not exist is a validation error, even one named like an Object property', () => {
    for (const name of ['nope', 'constructor', 'toString', '__proto__']) {
      const t = loose();
      t.cpupools = { fast: [1] };
      t.hosts[0].domUs[0].cpupool = name;
      expect(issues(t)).toContain(`hosts[0].domUs[0].cpupool: no cpupool named "${name}" (cpupools: fast)`);
    }
  });

  it('a pool with a bad name, no pCPUs or a pCPU twice is refused by name', () => {
    const t = loose();
    t.cpupools = { 'Bad Name': [1], empty: [], twice: [1, 1] };
    expect(issues(t)).toEqual(
      expect.arrayContaining([
        'cpupools.Bad Name: a pool name is [a-z0-9-]',
        'cpupools.empty: a cpupool needs at least one pCPU',
        'cpupools.twice: names a pCPU twice',
      ]),
    );
  });

  it('a pin and a pool at once, or a negative pin, are refused', () => {
    const t = loose();
    t.cpupools = { fast: [1] };
    t.hosts[0].domUs[0].pcpu = 1;
    t.hosts[0].domUs[0].cpupool = 'fast';
    t.hosts[0].domUs[1].pcpu = -1;
    const found = issues(t as Topology);
    expect(found.some((x) => x.startsWith('hosts[0].domUs[0]'))).toBe(true);
    expect(found.some((x) => x.startsWith('hosts[0].domUs[1].pcpu'))).toBe(true);
  });

  it('a pCPU count that is not a positive integer is refused', () => {
    expect(() => placeDomains(defaultTopology(), 0)).toThrow(/pCPUs must be a positive integer, got 0/);
  });
});
