/**
 * A wire's VXLAN end, as the topology writes it: `{"vxlan": {"remote":
 * "ADDR:PORT", "vni": N, "local": "ADDR:PORT", "mtu": M}}`. Checked here
 * (validate.ts asks for each object end): addresses IPv4 with a port (ADDR
 * alone: 4789), the remote a unicast address, the VNI 24 bits, the underlay's
 * IP MTU; no two tunnels carry one VNI on one local address (an arriving
 * datagram would have two wires to go to), and no tunnel leads to itself.
 */
import { VNI_MAX, VXLAN_IP_OVERHEAD, formatUdpAddr, parseUdpAddr, type UdpAddr } from '@xsim/nic';
import type { VxlanWireEnd } from './types.ts';

/** The underlay's IP MTU when the topology gives none (Ethernet's). */
export const VXLAN_DEFAULT_MTU = 1500;
/** The largest IP MTU (an IPv4 packet's length field). */
const MTU_MAX = 65535;

type Fail = (path: string, message: string) => void;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** Multicast (224/4), limited broadcast, 0.0.0.0: not a tunnel's remote (Linux's `group` is not supported). */
function unicast(a: UdpAddr): boolean {
  const first = Number(a.addr.split('.')[0]);
  return a.addr !== '0.0.0.0' && a.addr !== '255.255.255.255' && !(first >= 224 && first <= 239);
}

/** Every tunnel end of a topology's wires, checked one by one and against each other. */
export class TunnelEnds {
  /** "local/vni" -> the path of the end that carries it. */
  private readonly carried = new Map<string, string>();

  constructor(private readonly fail: Fail) {}

  /** undefined: `v` is not an object (a host or switch name, or a mistake validate.ts reports); null: a tunnel end with a fault (reported). */
  end(v: unknown, path: string): VxlanWireEnd | null | undefined {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    const fail = this.fail;
    let ok = true;
    const bad = (p: string, m: string) => {
      fail(p, m);
      ok = false;
    };
    for (const k of Object.keys(v)) if (k !== 'vxlan') bad(`${path}.${k}`, 'unknown key (a wire end is a host or switch name, or {"vxlan": {...}})');
    const x = (v as { vxlan?: unknown }).vxlan;
    const vp = `${path}.vxlan`;
    if (typeof x !== 'object' || x === null || Array.isArray(x)) {
      bad(vp, `must be an object {"remote": "ADDR:PORT", "vni": N, "local": "ADDR:PORT"}, got ${describe(x)}`);
      return null;
    }
    const o = x as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['remote', 'local', 'vni', 'mtu'].includes(k)) bad(`${vp}.${k}`, 'unknown key (allowed: remote, local, vni, mtu)');
    const addr = (k: 'remote' | 'local'): UdpAddr | undefined => {
      const s = o[k];
      if (typeof s !== 'string') return void bad(`${vp}.${k}`, `must be a string "ADDR:PORT" (IPv4; ADDR alone: port 4789), got ${describe(s)}`);
      const a = parseUdpAddr(s);
      if (typeof a === 'string') return void bad(`${vp}.${k}`, a);
      return a;
    };
    const remote = addr('remote');
    const local = addr('local');
    if (remote && !unicast(remote)) bad(`${vp}.remote`, `${remote.addr} is not a unicast address (multicast groups are not supported)`);
    if (remote && local && remote.addr === local.addr && remote.port === local.port)
      bad(`${vp}.remote`, `the tunnel leads to its own local address ${formatUdpAddr(local)}`);
    const vni = o.vni;
    if (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 0 || vni > VNI_MAX)
      bad(`${vp}.vni`, `must be an integer from 0 to ${VNI_MAX} (24 bits), got ${describe(vni)}`);
    const mtu = o.mtu ?? VXLAN_DEFAULT_MTU;
    if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 + VXLAN_IP_OVERHEAD || mtu > MTU_MAX)
      bad(`${vp}.mtu`, `must be the underlay's IP MTU, an integer from ${68 + VXLAN_IP_OVERHEAD} to ${MTU_MAX}, got ${describe(mtu)}`);
    if (!ok || !remote || !local) return null;
    const key = `${formatUdpAddr(local)}/${vni as number}`;
    const prev = this.carried.get(key);
    if (prev) {
      fail(`${vp}.vni`, `VNI ${vni as number} on ${formatUdpAddr(local)} is already carried by ${prev}: an arriving datagram would have two wires to go to`);
      return null;
    }
    this.carried.set(key, vp);
    return { vxlan: { remote: formatUdpAddr(remote), local: formatUdpAddr(local), vni: vni as number, mtu: mtu as number } };
  }
}

/** The name a tunnel end goes by in the wire checks (union-find, reachability): no host or switch is named so. */
export function tunnelNode(wirePath: string): string {
  return `vxlan:${wirePath}`;
}

export function isTunnelNode(name: string): boolean {
  return name.startsWith('vxlan:');
}
