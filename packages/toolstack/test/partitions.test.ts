/**
 * A topology split into partitions (issue 24, item 2): what validation
 * accepts and every fault it reports with its path; the topology each
 * partition runs (its hosts and switches, its wires, each cut wire a VXLAN
 * end), and both halves of every cut wire agreeing on VNI and addresses.
 */
import { describe, expect, it } from 'vitest';
import { issues } from './topo-issues.ts';
import {
  cutWires,
  defaultTopology,
  partitionAddrs,
  partitionTopology,
  rackTopology,
  validateTopology,
  type Topology,
  type WireSpec,
} from '../src/topo/index.ts';

type Loose = Record<string, unknown>;

/** The built-in 2-host topology with `partitions` set. */
function twoHosts(partitions: unknown = { p0: { hosts: ['host-a'] }, p1: { hosts: ['host-b'] } }): Loose {
  return { ...(structuredClone(defaultTopology()) as unknown as Loose), partitions };
}

/** A rack of 8 hosts under tor0, tor1 and a spine, in three partitions: each tor with its hosts, the spine with h00. */
function rack(): Topology {
  const r = rackTopology({ hosts: 8, domUsPerHost: 1 });
  return validateTopology({
    ...r,
    partitions: {
      left: { hosts: ['h00', 'h01', 'h02', 'h03'], switches: ['tor0', 'spine'] },
      right: { hosts: ['h04', 'h05', 'h06'], switches: ['tor1'] },
      lone: { hosts: ['h07'] },
    },
  });
}

type Tunnel = { vxlan: { local: string; remote: string; vni: number; mtu: number } };
const isTunnel = (e: WireSpec['a']): e is Tunnel => typeof e === 'object';
/** A partition topology's tunnel ends, with the named end they are wired to. */
function tunnels(t: Topology): { named: string; vxlan: Tunnel['vxlan'] }[] {
  return t.wires.flatMap((w) => {
    if (isTunnel(w.b)) return [{ named: w.a as string, vxlan: w.b.vxlan }];
    if (isTunnel(w.a)) return [{ named: w.b as string, vxlan: w.a.vxlan }];
    return [];
  });
}

describe('topology: partitions, validated', () => {
  it('a well-formed split normalises (switches: [] when absent) and is kept', () => {
    expect(validateTopology(twoHosts()).partitions).toEqual({ p0: { hosts: ['host-a'], switches: [] }, p1: { hosts: ['host-b'], switches: [] } });
    expect(rack().partitions?.left).toEqual({ hosts: ['h00', 'h01', 'h02', 'h03'], switches: ['tor0', 'spine'] });
    expect(validateTopology(defaultTopology()).partitions).toBeUndefined();
  });

  it('a host in two partitions, or listed twice in one', () => {
    expect(issues(twoHosts({ p0: { hosts: ['host-a', 'host-b'] }, p1: { hosts: ['host-b'] } }))).toEqual([
      'partitions.p1.hosts[0]: host host-b is already in partition p0: a host runs in one partition',
      "partitions.p1.hosts: partition p1 has no host: every partition runs at least one (a switch alone goes with a host's partition)",
    ]);
    expect(issues(twoHosts({ p0: { hosts: ['host-a', 'host-a'] }, p1: { hosts: ['host-b'] } }))).toEqual([
      'partitions.p0.hosts[1]: host host-a is already in partition p0 (listed twice): a host runs in one partition',
    ]);
  });

  it('a host or switch in no partition', () => {
    expect(issues(twoHosts({ p0: { hosts: ['host-a'] } }))).toEqual(['partitions: host host-b is in no partition: every host and switch must be in one']);
    const r = rackTopology({ hosts: 8, domUsPerHost: 1 }) as unknown as Loose;
    r.partitions = { all: { hosts: ['h00', 'h01', 'h02', 'h03', 'h04', 'h05', 'h06', 'h07'], switches: ['tor0'] } };
    expect(issues(r)).toEqual(['partitions: switch tor1, switch spine are in no partition: every host and switch must be in one']);
  });

  it('an unknown host or switch name, and a host listed as a switch', () => {
    expect(issues(twoHosts({ p0: { hosts: ['host-a', 'host-c'] }, p1: { hosts: ['host-b'], switches: ['host-a'] } }))).toEqual([
      'partitions.p0.hosts[1]: no host named "host-c" (hosts: host-a, host-b)',
      'partitions.p1.switches[0]: no switch named "host-a" (switches: none)',
    ]);
  });

  it('an empty partition, no partitions at all, and malformed entries', () => {
    expect(issues(twoHosts({ p0: { hosts: ['host-a', 'host-b'] }, p1: { hosts: [] } }))).toEqual([
      "partitions.p1.hosts: partition p1 has no host: every partition runs at least one (a switch alone goes with a host's partition)",
    ]);
    expect(issues(twoHosts({ p0: { hosts: ['host-a', 'host-b'] }, p1: {} }))).toEqual([
      "partitions.p1.hosts: partition p1 has no host: every partition runs at least one (a switch alone goes with a host's partition)",
    ]);
    expect(issues(twoHosts({}))).toEqual(['partitions: names no partition (leave it out to run the topology in one process)']);
    expect(issues(twoHosts(['p0']))).toEqual(['partitions: must be an object of partition name -> {"hosts": [...], "switches": [...]}, got an array']);
    expect(issues(twoHosts({ p0: { hosts: 'host-a', vms: [] }, p1: { hosts: ['host-b', 7] } }))).toEqual([
      'partitions.p0.vms: unknown key (allowed: hosts, switches, address, port)',
      'partitions.p0.hosts: must be an array of host names, got "host-a"',
      'partitions.p1.hosts[1]: must be a host name, got 7',
      'partitions: host host-a is in no partition: every host and switch must be in one',
    ]);
  });

  it('a partition name that is not a simple identifier', () => {
    for (const bad of ['0p', 'p 0', 'p.0', '', 'x'.repeat(33)])
      expect(issues(twoHosts({ [bad]: { hosts: ['host-a'] }, p1: { hosts: ['host-b'] } }))).toEqual([
        `partitions.${bad}: ${JSON.stringify(bad)} is not a partition name (a letter, then letters, digits, _ or -; at most 32)`,
      ]);
  });
});

describe('partitionTopology: the topology one partition runs', () => {
  it('two hosts: each half has its host, and the wire as a tunnel whose halves point at each other', () => {
    const t = validateTopology(twoHosts());
    const addrs = partitionAddrs(t);
    expect(addrs).toEqual({ p0: '127.0.0.1:14789', p1: '127.0.0.1:14790' });
    const p0 = partitionTopology(t, 'p0', addrs);
    const p1 = partitionTopology(t, 'p1', addrs);
    expect(p0.name).toBe('default:p0');
    expect(p0.hosts.map((h) => h.name)).toEqual(['host-a']);
    expect(p1.hosts.map((h) => h.name)).toEqual(['host-b']);
    expect(p0.hosts[0]).toEqual(t.hosts[0]);
    // The underlay carries the largest frame (MTU 1500 + 14) with its 36 octets of outer IPv4, UDP and VXLAN headers.
    expect(p0.wires).toEqual([{ a: 'host-a', b: { vxlan: { local: '127.0.0.1:14789', remote: '127.0.0.1:14790', vni: 10000, mtu: 1550 } } }]);
    expect(p1.wires).toEqual([{ a: { vxlan: { local: '127.0.0.1:14790', remote: '127.0.0.1:14789', vni: 10000, mtu: 1550 } }, b: 'host-b' }]);
    expect(p0.partitions).toBeUndefined();
  });

  it("the base port, the VNI base, the underlay MTU and the addresses are the caller's to choose", () => {
    const t = validateTopology(twoHosts());
    expect(partitionAddrs(t, { basePort: 30000 })).toEqual({ p0: '127.0.0.1:30000', p1: '127.0.0.1:30001' });
    const p1 = partitionTopology(t, 'p1', { p0: '192.0.2.1:4789', p1: '192.0.2.2' }, { vniBase: 7, underlayMtu: 9000 });
    expect(p1.wires).toEqual([{ a: { vxlan: { local: '192.0.2.2:4789', remote: '192.0.2.1:4789', vni: 7, mtu: 9000 } }, b: 'host-b' }]);
  });

  it('a rack: each partition has its hosts and switches, its own wires as they are, each cut wire a tunnel; both halves agree', () => {
    const t = rack();
    const addrs = partitionAddrs(t);
    const parts = Object.fromEntries(['left', 'right', 'lone'].map((p) => [p, partitionTopology(t, p, addrs)]));
    expect(parts.left.hosts.map((h) => h.name)).toEqual(['h00', 'h01', 'h02', 'h03']);
    expect(parts.left.switches.map((s) => s.name)).toEqual(['tor0', 'spine']);
    expect(parts.right.switches.map((s) => s.name)).toEqual(['tor1']);
    expect(parts.lone.switches).toEqual([]);
    // Wires h00..h07 -> tor (0..7), tor0 -> spine (8), tor1 -> spine (9). Cut: h07 -> tor1 (7), tor1 -> spine (9).
    expect(cutWires(t).map((c) => [c.wire, c.vni, `${c.a.end}@${c.a.partition}`, `${c.b.end}@${c.b.partition}`])).toEqual([
      [7, 10007, 'h07@lone', 'tor1@right'],
      [9, 10009, 'tor1@right', 'spine@left'],
    ]);
    expect(parts.left.wires.filter((w) => typeof w.b === 'string' && typeof w.a === 'string')).toEqual(t.wires.filter((_, i) => [0, 1, 2, 3, 8].includes(i)));
    expect(parts.right.wires.filter((w) => typeof w.b === 'string' && typeof w.a === 'string')).toEqual(t.wires.filter((_, i) => [4, 5, 6].includes(i)));
    const ends = Object.entries(parts).flatMap(([p, pt]) => tunnels(pt).map((x) => ({ p, ...x })));
    expect(ends.map((e) => `${e.p}:${e.named}:${e.vxlan.vni}`).sort()).toEqual(['left:spine:10009', 'lone:h07:10007', 'right:tor1:10007', 'right:tor1:10009']);
    // Both halves of each cut wire: one VNI, each one's local the other's remote, each local its partition's address.
    for (const c of cutWires(t)) {
      const halves = ends.filter((e) => e.vxlan.vni === c.vni);
      expect(halves.map((h) => h.p).sort()).toEqual([c.a.partition, c.b.partition].sort());
      const [x, y] = halves;
      expect(x.vxlan.local).toBe(y.vxlan.remote);
      expect(y.vxlan.local).toBe(x.vxlan.remote);
      for (const h of halves) expect(h.vxlan.local).toBe(addrs[h.p]);
    }
    // Every host and switch runs in exactly one partition.
    expect(
      Object.values(parts)
        .flatMap((p) => p.hosts.map((h) => h.name))
        .sort(),
    ).toEqual(t.hosts.map((h) => h.name).sort());
  });

  it('the same input gives the same output (both sides derive the same tunnels from the same file)', () => {
    expect(partitionTopology(rack(), 'right')).toEqual(partitionTopology(rack(), 'right'));
  });

  it('what cannot be split is refused, naming what is wrong', () => {
    const t = validateTopology(twoHosts());
    expect(() => partitionTopology(defaultTopology(), 'p0')).toThrow('topology "default" has no "partitions": nothing to split');
    expect(() => partitionTopology(t, 'p2')).toThrow('no partition "p2" in topology "default" (partitions: p0, p1)');
    expect(() => partitionTopology(t, 'constructor')).toThrow('no partition "constructor"');
    expect(() => partitionTopology(t, 'p0', { p0: '127.0.0.1:5000' })).toThrow('no VXLAN address for partition p1 (addresses given: p0)');
    expect(() => partitionTopology(t, 'p0', { p0: '127.0.0.1:5000', p1: '127.0.0.1:5000' })).toThrow(
      'partitions p0 and p1 are both given 127.0.0.1:5000: each partition',
    );
    expect(() => partitionTopology(t, 'p0', { p0: 'localhost:5000', p1: '127.0.0.1:5001' })).toThrow("partition p0's VXLAN address:");
    expect(() => partitionAddrs(t, { basePort: 65535 })).toThrow(
      'the VXLAN base port must be an integer from 1 to 65534 (2 partitions take one port each), got 65535',
    );
    expect(() => partitionTopology(t, 'p0', partitionAddrs(t), { vniBase: 0xffffff })).not.toThrow();
    expect(() => cutWires(t, 0x1000000)).toThrow('wires[0]: VNI 16777216 (base 16777216 + 0) is outside 0..16777215');
  });
});
