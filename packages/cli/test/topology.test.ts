import { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TopologyError, defaultTopology, loadTopology, validateTopology } from '../src/topo/index.ts';

const DEFAULT_JSON = new URL('../../../topologies/default.json', import.meta.url);

function issues(input: unknown): string[] {
  try {
    validateTopology(input);
  } catch (e) {
    if (e instanceof TopologyError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
}

type Loose = Record<string, unknown> & { hosts: Loose[]; wires?: unknown };

function base(): Loose {
  return JSON.parse(readFileSync(DEFAULT_JSON, 'utf8')) as Loose;
}

describe('topology validation', () => {
  it('the built-in default is valid and equals topologies/default.json', () => {
    expect(defaultTopology()).toEqual(base());
    expect(defaultTopology().hosts.map((h) => h.domUs.length)).toEqual([2, 2]);
  });

  it('names the exact field at fault', () => {
    const t = base();
    (t.hosts[1].domUs as Loose[])[0].vifs = [{ mac: 'ff:ff:ff:ff:ff:ff', ip: '10.0.11.1' }];
    expect(issues(t)).toEqual(['hosts[1].domUs[0].vifs[0].mac: "ff:ff:ff:ff:ff:ff" is not a unicast MAC address']);
  });

  it('reports every problem at once, including unknown keys and duplicates', () => {
    const t = base();
    t.hosts[0].colour = 'blue';
    (t.hosts[0].dom0 as Loose).ip = '10.0.10.1'; // also a1's
    t.hosts[1].name = 'host-a';
    (t.hosts[1].nic as Loose).mtu = 10000;
    const out = issues(t);
    expect(out).toContain('hosts[0].colour: unknown key (allowed: name, nic, dom0, domUs)');
    expect(out).toContain('hosts[0].domUs[0].vifs[0].ip: IP 10.0.10.1 is already used by hosts[0].dom0.ip');
    expect(out).toContain('hosts[1].name: host name "host-a" is used twice');
    expect(out.some((l) => l.startsWith('hosts[1].nic.mtu: must be an integer from 68 to 9000'))).toBe(true);
  });

  it('checks wires and reachability', () => {
    const t = base();
    t.wires = [{ a: 'host-a', b: 'host-z' }];
    expect(issues(t)).toEqual(['wires[0].b: no host named "host-z"']);
    t.wires = [];
    expect(issues(t)).toEqual(['wires: host(s) host-b cannot be reached from host-a']);
    t.wires = [{ a: 'host-a', b: 'host-a' }];
    expect(issues(t)).toContain('wires[0]: a wire from host-a to itself');
  });

  it('explains thread limits and subnet rules', () => {
    const t = base();
    const d = t.hosts[0].domUs as unknown[];
    for (let i = 0; i < 16; i++) d.push({ name: `x${i}`, vifs: [{ mac: `00:16:3e:99:00:${(i + 16).toString(16)}`, ip: `10.0.99.${i + 1}` }] });
    expect(issues(t).some((l) => /at most 16 domUs per host \(one worker each on a 2-core machine\)/.test(l))).toBe(true);
    const u = base();
    (u.hosts[0].dom0 as Loose).ip = '192.168.0.1';
    expect(issues(u).some((l) => /outside the \/16 shared by every domain/.test(l))).toBe(true);
  });

  it('reports a file that is not JSON with its name', async () => {
    const p = `/tmp/xsim-bad-${process.pid}.json`;
    writeFileSync(p, '{ "name": ');
    await expect(loadTopology(p)).rejects.toThrow(`${p} is not valid JSON`);
  });

  it('only ever throws TopologyError, whatever the input (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        try {
          validateTopology(v);
        } catch (e) {
          expect(e).toBeInstanceOf(TopologyError);
        }
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 30 }), fc.jsonValue(), (which, junk) => {
        const t = base();
        const targets: [Loose, string][] = [
          [t, 'name'],
          [t, 'wires'],
          [t.hosts as unknown as Loose, '0'],
          [t.hosts[0], 'nic'],
          [t.hosts[0], 'dom0'],
          [t.hosts[1], 'domUs'],
          [(t.hosts[1].domUs as Loose[])[0], 'vifs'],
        ];
        const [obj, key] = targets[which % targets.length];
        obj[key] = junk;
        try {
          validateTopology(t);
        } catch (e) {
          expect(e).toBeInstanceOf(TopologyError);
        }
      }),
    );
  });
});
