import { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { issues } from './topo-issues.ts';
import { TopologyError, defaultTopology, loadTopology, rackTopology, validateTopology } from '../src/topo/index.ts';

const DEFAULT_JSON = new URL('../../../topologies/default.json', import.meta.url);

type Loose = Record<string, unknown> & { hosts: Loose[]; wires?: unknown };

function base(): Loose {
  return JSON.parse(readFileSync(DEFAULT_JSON, 'utf8')) as Loose;
}

/** Three hosts (the default two plus host-c) and what joins them. */
function three(switches: unknown[], wires: unknown[]): Loose {
  const t = base();
  const h = JSON.parse(JSON.stringify(t.hosts[1])) as Loose;
  h.name = 'host-c';
  (h.nic as Loose).mac = '00:0f:53:00:0c:00';
  (h.dom0 as Loose).ip = '10.0.0.3';
  (h.domUs as Loose[]).forEach((d, i) => {
    d.name = `c${i + 1}`;
    d.vifs = [{ mac: `00:16:3e:0c:0${i + 1}:01`, ip: `10.0.12.${i + 1}` }];
  });
  t.hosts.push(h);
  t.switches = switches;
  t.wires = wires;
  return t;
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

  it('refuses a domid Xen reserves (DOMID_FIRST_RESERVED, 0x7FF0, and up), and takes the highest one that is not', () => {
    for (const domid of [0x7ff0, 0x7ff2, 32767]) {
      const t = structuredClone(defaultTopology()) as unknown as { hosts: { domUs: { domid?: number }[] }[] };
      t.hosts[0].domUs[1].domid = domid;
      expect(() => validateTopology(t)).toThrow(/hosts\[0\]\.domUs\[1\]\.domid: must be an integer from 1 to 32751 \(Xen reserves 32752 and up/);
    }
    const t = structuredClone(defaultTopology()) as unknown as { hosts: { domUs: { domid?: number }[] }[] };
    t.hosts[0].domUs[1].domid = 0x7fef;
    expect(validateTopology(t).hosts[0].domUs[1].domid).toBe(32751);
  });

  it('reports every problem at once, including unknown keys and duplicates', () => {
    const t = base();
    t.hosts[0].colour = 'blue';
    (t.hosts[0].dom0 as Loose).ip = '10.0.10.1'; // also a1's
    t.hosts[1].name = 'host-a';
    (t.hosts[1].nic as Loose).mtu = 10000;
    const out = issues(t);
    expect(out).toContain('hosts[0].colour: unknown key (allowed: name, nic, dom0, domUs, limits)');
    expect(out).toContain('hosts[0].domUs[0].vifs[0].ip: IP 10.0.10.1 is already used by hosts[0].dom0.ip');
    expect(out).toContain('hosts[1].name: host name "host-a" is used twice');
    expect(out.some((l) => l.startsWith('hosts[1].nic.mtu: must be an integer from 68 to 9000'))).toBe(true);
  });

  it('checks wires and reachability', () => {
    const t = base();
    t.wires = [{ a: 'host-a', b: 'host-z' }];
    expect(issues(t)).toEqual(['wires[0].b: no host or switch named "host-z"']);
    t.wires = [];
    expect(issues(t)).toEqual(['wires: host(s) host-b cannot be reached from host-a: no wire path leads there']);
    t.wires = [{ a: 'host-a', b: 'host-a' }];
    expect(issues(t)).toContain('wires[0]: a wire from host-a to itself');
  });

  it("takes a wire's line rate in Gbit/s (0.001 to 400) and refuses anything else, naming the wire", () => {
    const t = base();
    t.wires = [{ a: 'host-a', b: 'host-b', gbps: 10 }];
    expect(validateTopology(t).wires).toEqual([{ a: 'host-a', b: 'host-b', gbps: 10 }]);
    for (const bad of [0, -1, 401, '10', Number.NaN, null])
      expect(issues({ ...t, wires: [{ a: 'host-a', b: 'host-b', gbps: bad }] }), String(bad)).toEqual([
        expect.stringMatching(/^wires\[0\]\.gbps: must be a line rate in Gbit\/s from 0\.001 to 400, got /),
      ]);
    expect(validateTopology(base()).wires[0]).not.toHaveProperty('gbps');
  });

  it('explains the limits and subnet rules', () => {
    const t = base();
    const d = t.hosts[0].domUs as unknown[];
    for (let i = 0; i < 255; i++)
      d.push({
        name: `x${i}`,
        vifs: [
          {
            mac: `00:16:3e:99:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
            ip: `10.0.${99 + (i >> 8)}.${(i & 255) + 1}`,
          },
        ],
      });
    const out = issues(t);
    expect(out).toContain('hosts[0].domUs: at most 256 domUs per host');
    expect(out).toContain("hosts[0].nic.vis: 64 VIs (one is dom0's) cannot give each of the host's 257 vifs one: at least 258");
    const u = base();
    (u.hosts[0].dom0 as Loose).ip = '192.168.0.1';
    expect(issues(u).some((l) => /outside the \/16 shared by every domain/.test(l))).toBe(true);
  });

  it.each([
    [
      'a domU named dom0',
      (t: Loose) => ((t.hosts[0].domUs as Loose[])[0].name = 'dom0'),
      'hosts[0].domUs[0].name: "dom0" is reserved: it names the host\'s dom0',
    ],
    [
      'an IP with a leading zero',
      (t: Loose) => (((t.hosts[0].domUs as Loose[])[1].vifs as Loose[])[0].ip = '10.0.010.1'),
      'hosts[0].domUs[1].vifs[0].ip: "10.0.010.1" is not an IPv4 address in dotted-quad form without leading zeros',
    ],
    [
      'the network address',
      (t: Loose) => ((t.hosts[0].dom0 as Loose).ip = '10.0.0.0'),
      "hosts[0].dom0.ip: 10.0.0.0 is the network address of the /16 every domain shares, not a host's",
    ],
    [
      'the broadcast address',
      (t: Loose) => ((t.hosts[0].dom0 as Loose).ip = '10.0.255.255'),
      "hosts[0].dom0.ip: 10.0.255.255 is the broadcast address of the /16 every domain shares, not a host's",
    ],
    [
      'the all-zero MAC',
      (t: Loose) => ((t.hosts[1].nic as Loose).mac = '00:00:00:00:00:00'),
      'hosts[1].nic.mac: "00:00:00:00:00:00": the all-zero MAC is no station\'s address',
    ],
    [
      'a domU too small for its vif',
      (t: Loose) => ((t.hosts[0].domUs as Loose[])[0].memPages = 512),
      'hosts[0].domUs[0].memPages: must be an integer from 530 to 65536 (4 KiB pages: 1 vif(s) at MTU 1500 take 514 pages each, plus 16), got 512',
    ],
    [
      'a dom0 too small for jumbo frames',
      (t: Loose) => {
        (t.hosts[0].nic as Loose).mtu = 9000;
        (t.hosts[0].dom0 as Loose).memPages = 1024;
      },
      "hosts[0].dom0.memPages: must be an integer from 2480 to 262144 (4 KiB pages: the NIC driver's RX ring and skbs need 2480 at MTU 9000), got 1024",
    ],
  ])('refuses %s before anything starts, naming the field', (_what, mutate, message) => {
    const t = base();
    mutate(t);
    expect(issues(t)).toEqual([message]);
  });

  it('gives a domU with many vifs enough memory by default, and refuses less', () => {
    const t = base();
    const d = (t.hosts[0].domUs as Loose[])[0];
    d.vifs = Array.from({ length: 8 }, (_, i) => ({ mac: `00:16:3e:0a:01:1${i}`, ip: `10.0.10.${100 + i}` }));
    delete d.memPages;
    expect(validateTopology(t).hosts[0].domUs[0].memPages).toBe(8 * 514 + 16);
    d.memPages = 1024;
    expect(issues(t)).toEqual([
      'hosts[0].domUs[0].memPages: must be an integer from 4128 to 65536 (4 KiB pages: 8 vif(s) at MTU 1500 take 514 pages each, plus 16), got 1024',
    ]);
  });

  it("a vif's queues and a host's maxQueues: kept, bounded 1..64; a multi-queue guest's default RAM adds each further queue's pages to a one-queue guest's", () => {
    const t = base();
    const d = (t.hosts[0].domUs as Loose[])[0];
    (d.vifs as Loose[])[0].queues = 4;
    (t.hosts[0].dom0 as Loose).maxQueues = 8;
    delete d.memPages;
    const v = validateTopology(t);
    expect(v.hosts[0].domUs[0].vifs[0].queues).toBe(4);
    expect(v.hosts[0].dom0.maxQueues).toBe(8);
    // 1024 as before, plus 3 more queues of 514 pages and the control ring's 3.
    expect(v.hosts[0].domUs[0].memPages).toBe(1024 + 3 * 514 + 3);
    d.memPages = 1024;
    (t.hosts[1].dom0 as Loose).maxQueues = 0;
    ((t.hosts[1].domUs as Loose[])[0].vifs as Loose[])[0].queues = 65;
    expect(issues(t)).toEqual([
      'hosts[0].domUs[0].memPages: must be an integer from 2075 to 65536 (4 KiB pages: 1 vif(s) with 4 queues at MTU 1500 take 2059, plus 16), got 1024',
      "hosts[1].dom0.maxQueues: must be an integer from 1 to 64 (netback's max_queues), got 0",
      "hosts[1].domUs[0].vifs[0].queues: must be an integer from 1 to 64 (the most queues this vif's netfront asks for), got 65",
    ]);
  });

  it("a vif's offloads: csum and gso kept as given (each true or false), anything else refused by path", () => {
    const t = base();
    ((t.hosts[0].domUs as Loose[])[0].vifs as Loose[])[0].offloads = { csum: false, gso: false };
    expect(validateTopology(t).hosts[0].domUs[0].vifs[0].offloads).toEqual({ csum: false, gso: false });
    ((t.hosts[1].domUs as Loose[])[0].vifs as Loose[])[0].offloads = { csum: 'off', tso: true };
    ((t.hosts[0].domUs as Loose[])[0].vifs as Loose[])[0].offloads = [];
    expect(issues(t)).toEqual([
      'hosts[0].domUs[0].vifs[0].offloads: must be an object like {"csum": false, "gso": false}, got []',
      'hosts[1].domUs[0].vifs[0].offloads.csum: must be true or false, got "off"',
      'hosts[1].domUs[0].vifs[0].offloads.tso: unknown offload (offloads: csum, gso)',
    ]);
  });

  it('refuses a NIC wired twice (three hosts in a chain), naming the wire', () => {
    const t = three(
      [],
      [
        { a: 'host-a', b: 'host-b' },
        { a: 'host-b', b: 'host-c' },
      ],
    );
    expect(issues(t)).toEqual(["wires[1]: host-b's NIC is already wired by wires[0]: a NIC has one port (join three or more hosts through a switch)"]);
  });

  describe('switches', () => {
    it('joins three hosts through a switch', () => {
      const t = three(
        [{ name: 'sw', ports: 4 }],
        [
          { a: 'host-a', b: 'sw' },
          { a: 'host-b', b: 'sw' },
          { a: 'sw', b: 'host-c' },
        ],
      );
      expect(issues(t)).toEqual([]);
      expect(validateTopology(t).switches).toEqual([{ name: 'sw', ports: 4 }]);
    });

    it('refuses a loop, naming the wire that closes it', () => {
      const t = three(
        [{ name: 's1' }, { name: 's2' }],
        [
          { a: 'host-a', b: 's1' },
          { a: 's1', b: 's2' },
          { a: 'host-b', b: 's2' },
          { a: 's2', b: 's1' },
          { a: 'host-c', b: 's1' },
        ],
      );
      expect(issues(t)).toEqual(['wires[3]: wiring s2 to s1 closes a loop: they are already connected (a tree of hosts and switches has no loops)']);
    });

    it('refuses a NIC wired twice, a switch out of ports, an end that names nothing, a switch named like a host', () => {
      expect(
        issues(
          three(
            [{ name: 'sw' }],
            [
              { a: 'host-a', b: 'sw' },
              { a: 'host-a', b: 'host-b' },
              { a: 'host-c', b: 'sw' },
            ],
          ),
        ),
      ).toEqual(["wires[1]: host-a's NIC is already wired by wires[0]: a NIC has one port (join three or more hosts through a switch)"]);
      expect(
        issues(
          three(
            [{ name: 'sw', ports: 2 }],
            [
              { a: 'host-a', b: 'sw' },
              { a: 'host-b', b: 'sw' },
              { a: 'host-c', b: 'sw' },
            ],
          ),
        ),
      ).toEqual(['wires[2]: switch sw has 2 ports, all wired already']);
      expect(
        issues(
          three(
            [{ name: 'sw' }],
            [
              { a: 'host-a', b: 'sw' },
              { a: 'host-b', b: 'sw' },
              { a: 'host-c', b: 'swx' },
            ],
          ),
        ),
      ).toEqual(['wires[2].b: no host or switch named "swx"']);
      expect(issues(three([{ name: 'host-c' }], [{ a: 'host-a', b: 'host-b' }]))).toContain(
        'switches[0].name: "host-c" is a host\'s name too: a wire end must name one thing',
      );
    });

    it('names a host no wire path reaches', () => {
      const t = three(
        [{ name: 'sw' }],
        [
          { a: 'host-a', b: 'sw' },
          { a: 'host-b', b: 'sw' },
        ],
      );
      expect(issues(t)).toEqual(['wires: host(s) host-c cannot be reached from host-a: no wire path leads there']);
    });

    it('ships a rack: 16 hosts under 4 top-of-rack switches and a spine, 16 domUs each', () => {
      const rack = validateTopology(JSON.parse(readFileSync(new URL('../../../topologies/rack.json', import.meta.url), 'utf8')));
      expect(rack.hosts).toHaveLength(16);
      expect(rack.hosts.reduce((n, h) => n + h.domUs.length, 0)).toBe(256);
      expect(rack.switches.map((s) => s.name)).toEqual(['tor0', 'tor1', 'tor2', 'tor3', 'spine']);
      // The file is the generator's output (what xsim scale measures), kept equal.
      expect(rack).toEqual(rackTopology({ hosts: 16, domUsPerHost: 16 }));
    });

    it.each([
      [1, 3, 0],
      [2, 8, 1],
      [5, 2, 3],
      [64, 16, 17],
    ])('generates a valid rack of %i hosts x %i domUs with %i switches (a tree: validation accepts it)', (hosts, per, switches) => {
      const t = rackTopology({ hosts, domUsPerHost: per });
      expect(t.hosts).toHaveLength(hosts);
      expect(t.switches).toHaveLength(switches);
      expect(t.wires).toHaveLength(hosts === 1 ? 0 : hosts + (switches > 1 ? switches - 1 : 0));
    });

    it('refuses a rack it cannot address', () => {
      expect(() => rackTopology({ hosts: 65, domUsPerHost: 1 })).toThrow(/1 to 64 hosts, not 65/);
      expect(() => rackTopology({ hosts: 2, domUsPerHost: 201 })).toThrow(/0 to 200 domUs, not 201/);
    });
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
