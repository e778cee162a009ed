/**
 * A wire end may be a VXLAN tunnel (issue 24, item 1): what a well-formed one
 * normalises to, and each fault reported with the path of the field at fault.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { issues } from './topo-issues.ts';
import { validateTopology } from '../src/topo/index.ts';

const DEFAULT_JSON = new URL('../../../topologies/default.json', import.meta.url);
type Loose = Record<string, unknown> & { hosts: Loose[]; wires: unknown[] };

function base(): Loose {
  return JSON.parse(readFileSync(DEFAULT_JSON, 'utf8')) as Loose;
}

const tunnel = (o: Record<string, unknown>) => ({ vxlan: { remote: '192.0.2.2:14789', local: '192.0.2.1:14789', vni: 42, ...o } });

/** host-a and host-b each on a tunnel (a topology split in two: each half reached through its tunnel). */
function tunnels(a: unknown, b: unknown = tunnel({ vni: 43 })): Loose {
  const t = base();
  t.wires = [
    { a: 'host-a', b: a },
    { a: b, b: 'host-b' },
  ];
  return t;
}

describe('topology: VXLAN wire ends', () => {
  it('a tunnel end normalises: the port filled in (4789), the underlay MTU filled in (1500); a host beyond a tunnel is reached', () => {
    const t = validateTopology(tunnels({ vxlan: { remote: '192.0.2.2', local: '192.0.2.1', vni: 0 } }));
    expect(t.wires[0]).toEqual({ a: 'host-a', b: { vxlan: { remote: '192.0.2.2:4789', local: '192.0.2.1:4789', vni: 0, mtu: 1500 } } });
    expect(t.wires[1]).toEqual({ a: { vxlan: { remote: '192.0.2.2:14789', local: '192.0.2.1:14789', vni: 43, mtu: 1500 } }, b: 'host-b' });
  });

  it('a tunnel beside an in-topology wire, through a switch, with a line rate', () => {
    const t = base();
    t.switches = [{ name: 'sw', ports: 4 }];
    t.wires = [
      { a: 'host-a', b: 'sw' },
      { a: 'host-b', b: 'sw' },
      { a: 'sw', b: tunnel({ mtu: 9000 }), gbps: 10 },
    ];
    expect(validateTopology(t).wires[2]).toEqual({ a: 'sw', b: tunnel({ mtu: 9000 }), gbps: 10 });
  });

  it('a VNI out of 24 bits, or not an integer', () => {
    expect(issues(tunnels(tunnel({ vni: 16777216 })))).toEqual(['wires[0].b.vxlan.vni: must be an integer from 0 to 16777215 (24 bits), got 16777216']);
    expect(issues(tunnels(tunnel({ vni: -1 })))).toEqual(['wires[0].b.vxlan.vni: must be an integer from 0 to 16777215 (24 bits), got -1']);
    expect(issues(tunnels(tunnel({ vni: '42' })))).toEqual(['wires[0].b.vxlan.vni: must be an integer from 0 to 16777215 (24 bits), got "42"']);
  });

  it('a bad address or port', () => {
    expect(issues(tunnels(tunnel({ remote: '192.0.2.300:4789' })))).toEqual([
      'wires[0].b.vxlan.remote: "192.0.2.300" is not an IPv4 address in dotted-quad form without leading zeros',
    ]);
    expect(issues(tunnels(tunnel({ local: '192.0.2.1:70000' })))).toEqual(['wires[0].b.vxlan.local: port "70000" is not from 1 to 65535 (no leading zeros)']);
    expect(issues(tunnels(tunnel({ remote: 4789 })))).toEqual([
      'wires[0].b.vxlan.remote: must be a string "ADDR:PORT" (IPv4; ADDR alone: port 4789), got 4789',
    ]);
    expect(issues(tunnels(tunnel({ remote: '239.1.1.1:4789' })))).toEqual([
      'wires[0].b.vxlan.remote: 239.1.1.1 is not a unicast address (multicast groups are not supported)',
    ]);
  });

  it('a tunnel to its own local address', () => {
    expect(issues(tunnels(tunnel({ remote: '192.0.2.1:14789' })))).toEqual([
      'wires[0].b.vxlan.remote: the tunnel leads to its own local address 192.0.2.1:14789',
    ]);
  });

  it('an underlay MTU too small for a minimal frame, or past an IPv4 packet', () => {
    expect(issues(tunnels(tunnel({ mtu: 100 })))).toEqual(["wires[0].b.vxlan.mtu: must be the underlay's IP MTU, an integer from 104 to 65535, got 100"]);
    expect(issues(tunnels(tunnel({ mtu: 65536 })))).toEqual(["wires[0].b.vxlan.mtu: must be the underlay's IP MTU, an integer from 104 to 65535, got 65536"]);
  });

  it('unknown keys, a missing remote, and an end that is neither a name nor a tunnel', () => {
    expect(issues(tunnels({ vxlan: { local: '192.0.2.1', vni: 1, port: 4789 } }))).toEqual([
      'wires[0].b.vxlan.port: unknown key (allowed: remote, local, vni, mtu)',
      'wires[0].b.vxlan.remote: must be a string "ADDR:PORT" (IPv4; ADDR alone: port 4789), got undefined',
    ]);
    expect(issues(tunnels({ vxlan: 'x', gre: {} }))).toEqual([
      'wires[0].b.gre: unknown key (a wire end is a host or switch name, or {"vxlan": {...}})',
      'wires[0].b.vxlan: must be an object {"remote": "ADDR:PORT", "vni": N, "local": "ADDR:PORT"}, got "x"',
    ]);
  });

  it('both ends tunnels', () => {
    const t = base();
    t.wires = [
      { a: 'host-a', b: 'host-b' },
      { a: tunnel({}), b: tunnel({ vni: 9 }) },
    ];
    expect(issues(t)).toEqual(['wires[1]: both ends are VXLAN tunnels: a tunnel wire joins a host or switch of this topology to the tunnel']);
  });

  it('one VNI twice on one local address (a datagram would have two wires to go to); on another local address it may', () => {
    expect(issues(tunnels(tunnel({}), tunnel({})))).toEqual([
      'wires[1].a.vxlan.vni: VNI 42 on 192.0.2.1:14789 is already carried by wires[0].b.vxlan: an arriving datagram would have two wires to go to',
    ]);
    expect(issues(tunnels(tunnel({}), tunnel({ local: '192.0.2.1:14790' })))).toEqual([]);
  });

  it('a NIC wired twice, once to a tunnel, is still a NIC with one port', () => {
    const t = base();
    t.wires = [
      { a: 'host-a', b: 'host-b' },
      { a: 'host-a', b: tunnel({}) },
    ];
    expect(issues(t)).toEqual(["wires[1]: host-a's NIC is already wired by wires[0]: a NIC has one port (join three or more hosts through a switch)"]);
  });

  it('a host with no wire at all is still unreachable', () => {
    const t = base();
    t.wires = [{ a: 'host-a', b: tunnel({}) }];
    expect(issues(t)).toEqual(['wires: host(s) host-b cannot be reached from host-a: no wire path leads there']);
  });
});
