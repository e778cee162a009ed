/**
 * What the toolstack fills in and checks for guests and vifs made at run
 * time: addresses when the user gives none (Xen's 00:16:3e prefix then the
 * host's index, the domid and the vif's handle; an IPv4 address from the
 * host's 10.0.(10 + host index).x range), and the validator's verdict on the
 * running topology with the addition made.
 */
import { parseMac, validateTopology, type Topology } from './topo/index.ts';

const hex2 = (n: number) => (n & 0xff).toString(16).padStart(2, '0');

/** A MAC no guest of `t` (nor any of `taken`: guests on their way) has. */
export function freshMac(t: Topology, hostIndex: number, domid: number, handle: number, taken: ReadonlySet<number> = new Set()): string {
  const used = new Set([...taken, ...t.hosts.flatMap((x) => x.domUs.flatMap((d) => d.vifs.map((v) => parseMac(v.mac))))]);
  for (let k = 0; k < 256; k++) {
    const mac = `00:16:3e:${hex2(hostIndex)}:${hex2(domid)}:${hex2((domid >> 8) + handle + 1 + k)}`;
    if (!used.has(parseMac(mac))) return mac;
  }
  throw new Error('no free MAC address: give one');
}

/** An IPv4 address of the host's range no domain of `t` (nor any of `taken`) has. */
export function freshIp(t: Topology, hostIndex: number, taken: ReadonlySet<string> = new Set()): string {
  const used = new Set([...taken, ...t.hosts.flatMap((x) => [x.dom0.ip, ...x.domUs.flatMap((d) => d.vifs.map((v) => v.ip))])]);
  for (let third = 10 + hostIndex; third < 255; third += 64) {
    for (let last = 1; last < 255; last++) {
      const ip = `10.0.${third}.${last}`;
      if (!used.has(ip)) return ip;
    }
  }
  throw new Error(`no free IPv4 address in 10.0.${10 + hostIndex}.0/24: give one`);
}

/**
 * Check something added at run time exactly as a topology file's content is:
 * make the addition on a copy, validate the copy, and return what the
 * validator made of the addition. A refusal names the addition in the user's
 * words (`names`: validator paths to replace, most specific first).
 */
export function validateAddition<T>(t: Topology, add: (copy: Topology) => void, pick: (valid: Topology) => T, names: [string, string][], what: string): T {
  const copy = structuredClone(t);
  add(copy);
  try {
    return pick(validateTopology(copy));
  } catch (e) {
    let msg = (e as Error).message;
    for (const [from, to] of names) msg = msg.replaceAll(from, to);
    throw new Error(`${what}: ${msg}`);
  }
}
