/**
 * Generated topologies: a rack of hosts under top-of-rack switches under a
 * spine, as datacenters are wired. topologies/rack.json is this generator's
 * output for 16 hosts of 16 domUs (a test keeps the two equal), and
 * `xsim scale` measures its points with it.
 *
 * Addressing, per host h (0-based) and guest g (1-based), both < 256:
 *   host name hHH, NIC MAC 00:0f:53:00:HH:00, dom0 IP 10.0.0.(h+1)
 *   guest name hHHgGG, vif MAC 00:16:3e:HH:GG:01, IP 10.0.(10+h).g
 */
import type { HostSpec, Topology } from './types.ts';
import { validateTopology } from './validate.ts';

export interface RackOptions {
  name?: string;
  hosts: number;
  domUsPerHost: number;
  /** Hosts under each top-of-rack switch (default 4). */
  hostsPerTor?: number;
  /** VIs per NIC (default 32). */
  vis?: number;
  /** Pages of RAM per domU (default 640) and per dom0 (default 4096). */
  domUPages?: number;
  dom0Pages?: number;
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0');
const dec2 = (n: number) => String(n).padStart(2, '0');

export function rackTopology(o: RackOptions): Topology {
  const perTor = o.hostsPerTor ?? 4;
  if (!(o.hosts >= 1 && o.hosts <= 64)) throw new RangeError(`a rack has 1 to 64 hosts, not ${o.hosts}`);
  if (!(o.domUsPerHost >= 0 && o.domUsPerHost <= 200)) throw new RangeError(`a generated host has 0 to 200 domUs, not ${o.domUsPerHost}`);
  const hosts: HostSpec[] = [];
  for (let h = 0; h < o.hosts; h++) {
    const hn = `h${dec2(h)}`;
    hosts.push({
      name: hn,
      nic: { vendor: '1924', device: '0803', mac: `00:0f:53:00:${hex2(h)}:00`, vis: o.vis ?? 32, mtu: 1500 },
      dom0: { ip: `10.0.0.${h + 1}`, memPages: o.dom0Pages ?? 4096 },
      domUs: Array.from({ length: o.domUsPerHost }, (_, i) => {
        const g = i + 1;
        return {
          name: `${hn}g${dec2(g)}`,
          domid: g,
          memPages: o.domUPages ?? 640,
          vifs: [{ mac: `00:16:3e:${hex2(h)}:${hex2(g)}:01`, ip: `10.0.${10 + h}.${g}` }],
        };
      }),
    });
  }
  const tors = Math.ceil(o.hosts / perTor);
  const switches =
    o.hosts === 1
      ? []
      : tors === 1
        ? [{ name: 'tor0', ports: Math.max(8, o.hosts) }]
        : [...Array.from({ length: tors }, (_, t) => ({ name: `tor${t}`, ports: Math.max(8, perTor + 1) })), { name: 'spine', ports: Math.max(8, tors) }];
  const wires =
    o.hosts === 1
      ? []
      : [
          ...hosts.map((h, i) => ({ a: h.name, b: `tor${Math.floor(i / perTor)}` })),
          ...(tors > 1 ? Array.from({ length: tors }, (_, t) => ({ a: `tor${t}`, b: 'spine' })) : []),
        ];
  return validateTopology({ name: o.name ?? 'rack', hosts, switches, wires });
}
