import type { Topology } from './types.ts';
import { validateTopology } from './validate.ts';

/** The NIC models a generated topology can give a host, by their PCI ids (@xsim/nic's nicModel). */
export const NIC_MODELS = {
  /** sfc-style VIs (Solarflare's ids; MACs in its OUI). */
  vi: { vendor: '1924', device: '0803', oui: '00:0f:53' },
  /** The virtio (vDPA) NIC: virtio's ids; MACs in QEMU's locally administered range. */
  virtio: { vendor: '1af4', device: '1041', oui: '52:54:00' },
} as const;
export type NicModelName = keyof typeof NIC_MODELS;

export function isNicModelName(s: string): s is NicModelName {
  return Object.hasOwn(NIC_MODELS, s);
}

/**
 * The built-in topology: 2 hosts joined by one wire, each with dom0 and two
 * domUs; `nics` picks each host's NIC model (host-a's, host-b's).
 */
export function defaultTopology(o: { nics?: readonly [NicModelName, NicModelName] } = {}): Topology {
  const nics = o.nics ?? ['vi', 'vi'];
  const host = (x: 'a' | 'b', n: number) => {
    const m = NIC_MODELS[nics[n - 1]];
    return {
      name: `host-${x}`,
      nic: { vendor: m.vendor, device: m.device, mac: `${m.oui}:00:0${x}:00`, vis: 64, mtu: 1500 },
      dom0: { ip: `10.0.0.${n}`, memPages: 4096 },
      domUs: [1, 2].map((i) => ({
        name: `${x}${i}`,
        domid: i,
        memPages: 1024,
        vifs: [{ mac: `00:16:3e:0${x}:0${i}:01`, ip: `10.0.${9 + n}.${i}` }],
      })),
    };
  };
  return validateTopology({ name: 'default', hosts: [host('a', 1), host('b', 2)], wires: [{ a: 'host-a', b: 'host-b' }] });
}
