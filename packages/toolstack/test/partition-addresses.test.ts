/**
 * Partitions on other machines (issue 24, item 6): a partition's `address`
 * and `port` in the topology, `--partition-address NAME=ADDR[:PORT]` over
 * them, DNS names resolved before the split, and --bind-any. Validation
 * refuses each malformed input naming the path or flag at fault; both halves
 * of every cut wire get each other's address as remote and their own as local.
 */
import { describe, expect, it } from 'vitest';
import { issues } from './topo-issues.ts';
import {
  defaultTopology,
  parsePartitionAddresses,
  partitionAddrs,
  partitionEndpoints,
  partitionTopology,
  rackTopology,
  resolvePartitionAddresses,
  validateTopology,
  withPartitionAddresses,
  type Topology,
  type WireSpec,
} from '../src/topo/index.ts';

type Loose = Record<string, unknown>;

/** The built-in 2-host topology split p0 (host-a) / p1 (host-b), each partition's spec extended by `p0` and `p1`. */
function twoHosts(p0: Loose = {}, p1: Loose = {}): Loose {
  return { ...(structuredClone(defaultTopology()) as unknown as Loose), partitions: { p0: { hosts: ['host-a'], ...p0 }, p1: { hosts: ['host-b'], ...p1 } } };
}

const valid = (p0: Loose = {}, p1: Loose = {}): Topology => validateTopology(twoHosts(p0, p1));

type Vx = { local: string; remote: string; vni: number };
/** A partition topology's tunnel ends (the VXLAN side of each wire). */
function vx(t: Topology): Vx[] {
  const end = (e: WireSpec['a']) => (typeof e === 'object' ? [e.vxlan] : []);
  return t.wires.flatMap((w) => [...end(w.a), ...end(w.b)]);
}

describe('a partition\'s "address" and "port", validated', () => {
  it('an IPv4 address, a DNS name and a port are kept; absent, they stay absent', () => {
    expect(valid({ address: '192.0.2.10', port: 4789 }, { address: 'xsim-1.xsim.default.svc.cluster.local' }).partitions).toEqual({
      p0: { hosts: ['host-a'], switches: [], address: '192.0.2.10', port: 4789 },
      p1: { hosts: ['host-b'], switches: [], address: 'xsim-1.xsim.default.svc.cluster.local' },
    });
    expect(valid({ address: 'localhost' }, { address: 'peer.example.' }).partitions?.p1.address).toBe('peer.example.');
    expect(valid().partitions?.p0).toEqual({ hosts: ['host-a'], switches: [] });
  });

  it('an address that is not a string', () => {
    expect(issues(twoHosts({ address: 3232235521 }))).toEqual(['partitions.p0.address: must be a string (an IPv4 address or a DNS name), got 3232235521']);
  });

  it('a dotted quad out of range', () => {
    expect(issues(twoHosts({ address: '10.0.0.256' }))).toEqual([
      'partitions.p0.address: "10.0.0.256" is not an IPv4 address in dotted-quad form without leading zeros',
    ]);
  });

  it('a dotted quad with a leading zero', () => {
    expect(issues(twoHosts({}, { address: '10.0.0.01' }))).toEqual([
      'partitions.p1.address: "10.0.0.01" is not an IPv4 address in dotted-quad form without leading zeros',
    ]);
  });

  it('a port written into the address', () => {
    expect(issues(twoHosts({ address: '192.0.2.10:4789' }))).toEqual([
      'partitions.p0.address: "192.0.2.10:4789" is neither an IPv4 address nor a DNS name (labels of letters, digits and -, at most 63 each and 253 in all)',
    ]);
  });

  it('a name with an underscore', () => {
    expect(issues(twoHosts({ address: 'xsim_0.xsim' }))).toMatchObject([expect.stringMatching(/^partitions\.p0\.address: "xsim_0\.xsim" is neither an IPv4/)]);
  });

  it('a label starting with a hyphen', () => {
    expect(issues(twoHosts({ address: '-xsim.example' }))).toMatchObject([expect.stringMatching(/^partitions\.p0\.address: "-xsim\.example" is neither/)]);
  });

  it('a label of 64 octets', () => {
    expect(issues(twoHosts({ address: `${'a'.repeat(64)}.example` }))).toMatchObject([expect.stringMatching(/^partitions\.p0\.address: .* is neither/)]);
  });

  it('an empty address', () => {
    expect(issues(twoHosts({ address: '' }))).toMatchObject([expect.stringMatching(/^partitions\.p0\.address: "" is neither/)]);
  });

  it('0.0.0.0 (bind-any is a flag, not an address the others can send to)', () => {
    expect(issues(twoHosts({ address: '0.0.0.0' }))).toEqual([
      'partitions.p0.address: 0.0.0.0 is not a unicast address: the other partitions send to it (to bind every interface instead, run with --bind-any)',
    ]);
  });

  it('a multicast group', () => {
    expect(issues(twoHosts({}, { address: '239.1.2.3' }))).toMatchObject([
      expect.stringMatching(/^partitions\.p1\.address: 239\.1\.2\.3 is not a unicast address/),
    ]);
  });

  it('port 0', () => {
    expect(issues(twoHosts({ port: 0 }))).toEqual(['partitions.p0.port: must be a UDP port, an integer from 1 to 65535, got 0']);
  });

  it('port 65536', () => {
    expect(issues(twoHosts({}, { port: 65536 }))).toEqual(['partitions.p1.port: must be a UDP port, an integer from 1 to 65535, got 65536']);
  });

  it('a port that is a string', () => {
    expect(issues(twoHosts({ port: '4789' }))).toEqual(['partitions.p0.port: must be a UDP port, an integer from 1 to 65535, got "4789"']);
  });

  it('a port that is not an integer', () => {
    expect(issues(twoHosts({ port: 4789.5 }))).toEqual(['partitions.p0.port: must be a UDP port, an integer from 1 to 65535, got 4789.5']);
  });

  it('an unknown key next to address and port', () => {
    expect(issues(twoHosts({ addr: '192.0.2.1' }))).toEqual(['partitions.p0.addr: unknown key (allowed: hosts, switches, address, port)']);
  });

  it('two partitions with one address and port', () => {
    expect(issues(twoHosts({ address: '192.0.2.10', port: 4789 }, { address: '192.0.2.10', port: 4789 }))).toEqual([
      "partitions.p1.port: 192.0.2.10:4789 is already partition p0's: each partition's tunnels need a UDP address of their own",
    ]);
  });

  it('two partitions with one port and no address (both 127.0.0.1)', () => {
    expect(issues(twoHosts({ port: 5000 }, { port: 5000, address: '127.0.0.1' }))).toEqual([
      "partitions.p1.port: 127.0.0.1:5000 is already partition p0's: each partition's tunnels need a UDP address of their own",
    ]);
  });

  it('one DNS name written in two cases, one port', () => {
    expect(issues(twoHosts({ address: 'Peer.Example', port: 4789 }, { address: 'peer.example', port: 4789 }))).toEqual([
      "partitions.p1.port: peer.example:4789 is already partition p0's: each partition's tunnels need a UDP address of their own",
    ]);
  });
});

describe('--partition-address NAME=ADDR[:PORT]', () => {
  const t = valid();

  it('an address, a name and a port are taken', () => {
    expect(parsePartitionAddresses(t, ['p0=127.0.0.2', 'p1=xsim-1.xsim:4000'])).toEqual({
      p0: { address: '127.0.0.2', flag: '--partition-address p0=127.0.0.2' },
      p1: { address: 'xsim-1.xsim', port: 4000, flag: '--partition-address p1=xsim-1.xsim:4000' },
    });
    expect(parsePartitionAddresses(t, [])).toEqual({});
  });

  it('an unknown partition', () => {
    expect(() => parsePartitionAddresses(t, ['p7=127.0.0.2'])).toThrow(
      '--partition-address p7=127.0.0.2: no partition "p7" in topology "default" (partitions: p0, p1)',
    );
  });

  it('no NAME=', () => {
    expect(() => parsePartitionAddresses(t, ['127.0.0.2'])).toThrow('--partition-address 127.0.0.2: must be NAME=ADDR or NAME=ADDR:PORT');
  });

  it('a bad address', () => {
    expect(() => parsePartitionAddresses(t, ['p0=10.0.0.300'])).toThrow(
      '--partition-address p0=10.0.0.300: "10.0.0.300" is not an IPv4 address in dotted-quad form without leading zeros',
    );
  });

  it('a port out of range', () => {
    expect(() => parsePartitionAddresses(t, ['p0=127.0.0.2:65536'])).toThrow(
      '--partition-address p0=127.0.0.2:65536: port "65536" is not an integer from 1 to 65535',
    );
    expect(() => parsePartitionAddresses(t, ['p0=127.0.0.2:0'])).toThrow('--partition-address p0=127.0.0.2:0: port "0" is not an integer from 1 to 65535');
    expect(() => parsePartitionAddresses(t, ['p0=127.0.0.2:'])).toThrow('--partition-address p0=127.0.0.2:: port "" is not an integer from 1 to 65535');
  });

  it('one partition given twice', () => {
    expect(() => parsePartitionAddresses(t, ['p1=127.0.0.2', 'p1=127.0.0.3'])).toThrow(
      '--partition-address p1=127.0.0.3: partition p1 is already given p1=127.0.0.2',
    );
  });

  it("an override that lands on another partition's address and port, named with where each came from", () => {
    const f = valid({ address: '192.0.2.10', port: 4789 });
    expect(() => withPartitionAddresses(f, parsePartitionAddresses(f, ['p1=192.0.2.10:4789']))).toThrow(
      'partitions p0 and p1 are both given 192.0.2.10:4789 (p0: address from partitions.p0.address, port from partitions.p0.port; ' +
        'p1: address from --partition-address p1=192.0.2.10:4789, port from --partition-address p1=192.0.2.10:4789)',
    );
    // p1's default port is base + 1: an override to 127.0.0.1 with p0's port given as base + 1 collides.
    const g = valid({ port: 14790 });
    expect(() => withPartitionAddresses(g, parsePartitionAddresses(g, ['p1=127.0.0.1']))).toThrow(
      'partitions p0 and p1 are both given 127.0.0.1:14790 (p0: address from the default, port from partitions.p0.port; ' +
        'p1: address from --partition-address p1=127.0.0.1, port from the base port 14789 + 1)',
    );
  });

  it('the override wins over the file; the file over the defaults; the base port only where no port is given', () => {
    const f = valid({ address: '192.0.2.10', port: 4789 }, { address: '192.0.2.11' });
    expect(partitionAddrs(f)).toEqual({ p0: '192.0.2.10:4789', p1: '192.0.2.11:14790' });
    const o = withPartitionAddresses(f, parsePartitionAddresses(f, ['p0=127.0.0.2']), 30000);
    expect(o.partitions?.p0).toEqual({ hosts: ['host-a'], switches: [], address: '127.0.0.2', port: 4789 });
    expect(partitionAddrs(o, { basePort: 30000 })).toEqual({ p0: '127.0.0.2:4789', p1: '192.0.2.11:30001' });
    expect(f.partitions?.p0.address).toBe('192.0.2.10'); // the file's topology is left as it was
    expect(partitionEndpoints(f).map((e) => e.from)).toEqual([
      { address: 'partitions.p0.address', port: 'partitions.p0.port' },
      { address: 'partitions.p1.address', port: 'the base port 14789 + 1' },
    ]);
  });

  it('the base port is checked only against the partitions that take their port from it', () => {
    expect(() => partitionAddrs(valid(), { basePort: 65535 })).toThrow('from 1 to 65534 (2 partitions take one port each), got 65535');
    expect(partitionAddrs(valid({}, { port: 4789 }), { basePort: 65535 })).toEqual({ p0: '127.0.0.1:65535', p1: '127.0.0.1:4789' });
  });
});

describe('partitionTopology with addresses of their own: both halves of a cut wire', () => {
  it('two machines: each half local on its own address, remote on the other', () => {
    const t = valid({ address: '192.0.2.10', port: 4789 }, { address: '192.0.2.11', port: 4789 });
    const [a] = vx(partitionTopology(t, 'p0', partitionAddrs(t)));
    const [b] = vx(partitionTopology(t, 'p1', partitionAddrs(t)));
    expect(a).toMatchObject({ local: '192.0.2.10:4789', remote: '192.0.2.11:4789', vni: 10000 });
    expect(b).toMatchObject({ local: '192.0.2.11:4789', remote: '192.0.2.10:4789', vni: 10000 });
  });

  it('a rack in three partitions on three addresses (ports by default): every half agrees with its other half', () => {
    const r = rackTopology({ hosts: 8, domUsPerHost: 1 });
    const t = validateTopology({
      ...r,
      partitions: {
        left: { hosts: ['h00', 'h01', 'h02', 'h03'], switches: ['tor0', 'spine'], address: '198.18.0.1' },
        right: { hosts: ['h04', 'h05', 'h06'], switches: ['tor1'], address: '198.18.0.2' },
        lone: { hosts: ['h07'], address: '198.18.0.3', port: 4789 },
      },
    });
    const addrs = partitionAddrs(t);
    expect(addrs).toEqual({ left: '198.18.0.1:14789', right: '198.18.0.2:14790', lone: '198.18.0.3:4789' });
    const ends = ['left', 'right', 'lone'].flatMap((p) => vx(partitionTopology(t, p, addrs)).map((e) => ({ p, ...e })));
    expect(ends.map((e) => `${e.p} ${e.vni} ${e.local} -> ${e.remote}`).sort()).toEqual([
      'left 10009 198.18.0.1:14789 -> 198.18.0.2:14790',
      'lone 10007 198.18.0.3:4789 -> 198.18.0.2:14790',
      'right 10007 198.18.0.2:14790 -> 198.18.0.3:4789',
      'right 10009 198.18.0.2:14790 -> 198.18.0.1:14789',
    ]);
  });

  it('--bind-any: its own half binds 0.0.0.0 on its port; the other half still sends to its address', () => {
    const t = valid({ address: '203.0.113.7', port: 4789 }, { address: '192.0.2.11', port: 4789 });
    const [a] = vx(partitionTopology(t, 'p0', partitionAddrs(t), { bindAny: true }));
    const [b] = vx(partitionTopology(t, 'p1', partitionAddrs(t)));
    expect(a).toMatchObject({ local: '0.0.0.0:4789', remote: '192.0.2.11:4789' });
    expect(b).toMatchObject({ local: '192.0.2.11:4789', remote: '203.0.113.7:4789' });
  });

  it('a DNS name must be resolved first; bound to every interface, its own need not be', () => {
    const t = valid({ address: 'xsim-0.xsim' }, { address: 'xsim-1.xsim' });
    expect(() => partitionTopology(t, 'p0', partitionAddrs(t))).toThrow(
      'partition p0\'s VXLAN address: "xsim-0.xsim" is a DNS name: resolve it first (resolvePartitionAddresses)',
    );
    const peer = { ...t, partitions: { ...t.partitions!, p1: { ...t.partitions!.p1, address: '10.244.1.5' } } };
    const [a] = vx(partitionTopology(peer, 'p0', partitionAddrs(peer), { bindAny: true }));
    expect(a).toMatchObject({ local: '0.0.0.0:14789', remote: '10.244.1.5:14790' });
  });
});

describe('resolvePartitionAddresses', () => {
  const t = valid({ address: 'xsim-0.xsim' }, { address: 'xsim-1.xsim', port: 4789 });
  const table: Record<string, string> = { 'xsim-0.xsim': '10.244.0.7', 'xsim-1.xsim': '10.244.1.5' };

  it('every name to its IPv4 address (quads and absent addresses kept); the split then has both halves right', async () => {
    const r = await resolvePartitionAddresses(t, { lookup: async (n) => table[n] });
    expect(partitionAddrs(r)).toEqual({ p0: '10.244.0.7:14789', p1: '10.244.1.5:4789' });
    const [a] = vx(partitionTopology(r, 'p0', partitionAddrs(r)));
    const [b] = vx(partitionTopology(r, 'p1', partitionAddrs(r)));
    expect([a.local, a.remote, b.local, b.remote]).toEqual(['10.244.0.7:14789', '10.244.1.5:4789', '10.244.1.5:4789', '10.244.0.7:14789']);
    expect(await resolvePartitionAddresses(valid({ address: '192.0.2.1' }), { lookup: () => Promise.reject(new Error('not called')) })).toEqual(
      valid({ address: '192.0.2.1' }),
    );
  });

  it('a name not there yet is retried (told once) until it resolves; skipped partitions are not looked up', async () => {
    let calls = 0;
    const waits: string[] = [];
    const r = await resolvePartitionAddresses(t, {
      skip: ['p0'],
      timeoutMs: 10_000,
      onWait: (p, a, why) => waits.push(`${p} ${a} ${why}`),
      lookup: async (n) => {
        if (n !== 'xsim-1.xsim') throw new Error(`looked up ${n}`);
        if (++calls < 3) throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
        return table[n];
      },
    });
    expect(calls).toBe(3);
    expect(waits).toEqual(['p1 xsim-1.xsim ENOTFOUND']);
    expect(r.partitions?.p0.address).toBe('xsim-0.xsim');
    expect(r.partitions?.p1.address).toBe('10.244.1.5');
  });

  it('a name that never resolves: an error naming the partition and the name', async () => {
    await expect(
      resolvePartitionAddresses(t, { timeoutMs: 50, lookup: () => Promise.reject(Object.assign(new Error('x'), { code: 'EAI_AGAIN' })) }),
    ).rejects.toThrow("partition p0's address xsim-0.xsim does not resolve to an IPv4 address (EAI_AGAIN, tried for 50 ms)");
  });

  it('the system resolver: localhost is 127.0.0.1', async () => {
    const r = await resolvePartitionAddresses(valid({ address: 'localhost' }));
    expect(r.partitions?.p0.address).toBe('127.0.0.1');
  });
});
