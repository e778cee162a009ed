import type { Topology } from './types.ts';
import { validateTopology } from './validate.ts';

/** The built-in topology: 2 hosts joined by one wire, each with dom0 and two domUs. */
export function defaultTopology(): Topology {
  const host = (x: 'a' | 'b', n: number) => ({
    name: `host-${x}`,
    nic: { vendor: '1924', device: '0803', mac: `00:0f:53:00:0${x}:00`, vis: 64, mtu: 1500 },
    dom0: { ip: `10.0.0.${n}`, memPages: 4096 },
    domUs: [1, 2].map((i) => ({
      name: `${x}${i}`,
      domid: i,
      memPages: 1024,
      vifs: [{ mac: `00:16:3e:0${x}:0${i}:01`, ip: `10.0.${9 + n}.${i}` }],
    })),
  });
  return validateTopology({ name: 'default', hosts: [host('a', 1), host('b', 2)], wires: [{ a: 'host-a', b: 'host-b' }] });
}
