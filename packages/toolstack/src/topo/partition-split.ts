/**
 * The topology one partition runs (issue 24, item 2): its own hosts and
 * switches, every wire inside it as it is, and every wire between two
 * partitions as a VXLAN tunnel end on each side (topo/vxlan.ts), the two
 * halves pointing at each other with a VNI of the wire's own.
 *
 * Numbering, so that both sides derive the same tunnel from the same file:
 * the cut wire `wires[i]` carries VNI vniBase + i (default 10000 + i); the
 * partition listed k-th (0-based) sends and receives on one UDP address,
 * by default 127.0.0.1:(basePort + k), basePort 14789 (containerlab's VXLAN
 * port, as 4789 is often taken or blocked).
 */
import { VNI_MAX, VXLAN_IP_OVERHEAD, formatUdpAddr, parseUdpAddr } from '@xsim/nic';
import type { Topology, WireEndSpec, WireSpec } from './types.ts';
import { validateTopology } from './validate.ts';

/** The first UDP port of the partitions' tunnels unless --vxlan-base-port says otherwise. */
export const DEFAULT_VXLAN_BASE_PORT = 14789;
/** A cut wire's VNI is this plus the wire's index in the topology. */
export const DEFAULT_VNI_BASE = 10000;

/** Where each partition's tunnels send and receive: "ADDR:PORT" by partition name. */
export type PartitionAddrs = Record<string, string>;

/** The default addresses: `addr` (127.0.0.1) with port basePort + k for the k-th partition listed. */
export function partitionAddrs(topo: Topology, o: { basePort?: number; addr?: string } = {}): PartitionAddrs {
  const names = partitionNames(topo);
  const base = o.basePort ?? DEFAULT_VXLAN_BASE_PORT;
  if (!Number.isInteger(base) || base < 1 || base + names.length - 1 > 65535)
    throw new RangeError(
      `the VXLAN base port must be an integer from 1 to ${65536 - names.length} (${names.length} partitions take one port each), got ${base}`,
    );
  return Object.fromEntries(names.map((n, k) => [n, `${o.addr ?? '127.0.0.1'}:${base + k}`]));
}

/** The topology's partition names, in the order it lists them; throws if it has none. */
export function partitionNames(topo: Topology): string[] {
  if (!topo.partitions) throw new Error(`topology "${topo.name}" has no "partitions": nothing to split (see README, "Partitions")`);
  return Object.keys(topo.partitions);
}

/** The partition that runs host or switch `name`. */
export function partitionOf(topo: Topology, name: string): string {
  for (const [p, s] of Object.entries(topo.partitions ?? {})) if (s.hosts.includes(name) || s.switches.includes(name)) return p;
  throw new Error(`${name} is in no partition of topology "${topo.name}"`);
}

/** A wire between two partitions: its index in the topology, its VNI, and each end with its partition. */
export interface CutWire {
  wire: number;
  vni: number;
  a: { end: string; partition: string };
  b: { end: string; partition: string };
}

/** Every wire whose ends are in two partitions, in wire order (a wire that is already a tunnel is not cut again). */
export function cutWires(topo: Topology, vniBase = DEFAULT_VNI_BASE): CutWire[] {
  partitionNames(topo);
  const out: CutWire[] = [];
  topo.wires.forEach((w, i) => {
    if (typeof w.a !== 'string' || typeof w.b !== 'string') return;
    const pa = partitionOf(topo, w.a);
    const pb = partitionOf(topo, w.b);
    if (pa === pb) return;
    const vni = vniBase + i;
    if (!Number.isInteger(vni) || vni < 0 || vni > VNI_MAX) throw new RangeError(`wires[${i}]: VNI ${vni} (base ${vniBase} + ${i}) is outside 0..${VNI_MAX}`);
    out.push({ wire: i, vni, a: { end: w.a, partition: pa }, b: { end: w.b, partition: pb } });
  });
  return out;
}

/** The partition whose end a wire has (a tunnel end goes with the other end's partition). */
function wireSide(topo: Topology, w: WireSpec): string {
  const named = [w.a, w.b].find((e): e is string => typeof e === 'string');
  if (named === undefined) throw new Error('a wire with two tunnel ends is not part of a topology');
  return partitionOf(topo, named);
}

export interface PartitionOptions {
  /** VNI of the cut wire `wires[i]`: vniBase + i (default DEFAULT_VNI_BASE). */
  vniBase?: number;
  /** The underlay's IP MTU for the tunnels (default: the largest NIC MTU + 50, so that every frame fits with its outer headers). */
  underlayMtu?: number;
}

/** The addresses given for every partition, each a valid "ADDR:PORT" and no two the same (each is one process's socket). */
function checkAddrs(names: readonly string[], addrs: PartitionAddrs): PartitionAddrs {
  const out: PartitionAddrs = {};
  const seen = new Map<string, string>();
  for (const n of names) {
    const s = addrs[n];
    if (s === undefined) throw new Error(`no VXLAN address for partition ${n} (addresses given: ${Object.keys(addrs).join(', ') || 'none'})`);
    const a = parseUdpAddr(s);
    if (typeof a === 'string') throw new Error(`partition ${n}'s VXLAN address: ${a}`);
    const f = formatUdpAddr(a);
    const prev = seen.get(f);
    if (prev !== undefined) throw new Error(`partitions ${prev} and ${n} are both given ${f}: each partition's tunnels need a UDP address of their own`);
    seen.set(f, n);
    out[n] = f;
  }
  return out;
}

/**
 * The topology partition `name` runs: its hosts and switches, the wires inside
 * it, and each wire to another partition as a VXLAN end (local: this
 * partition's address, remote: the other's, VNI: vniBase + the wire's index).
 * Validated like any topology; pure (the same input gives the same output).
 */
export function partitionTopology(topo: Topology, name: string, addrs: PartitionAddrs = partitionAddrs(topo), o: PartitionOptions = {}): Topology {
  const names = partitionNames(topo);
  if (!Object.hasOwn(topo.partitions!, name))
    throw new Error(`no partition ${JSON.stringify(name)} in topology "${topo.name}" (partitions: ${names.join(', ')})`);
  const part = topo.partitions![name];
  const at = checkAddrs(names, addrs);
  const cut = new Map(cutWires(topo, o.vniBase).map((c) => [c.wire, c]));
  const mtu = o.underlayMtu ?? Math.max(...topo.hosts.map((h) => h.nic.mtu)) + 14 + VXLAN_IP_OVERHEAD;
  const tunnel = (c: CutWire, far: string): WireEndSpec => ({ vxlan: { local: at[name], remote: at[far], vni: c.vni, mtu } });
  const wires: WireSpec[] = [];
  topo.wires.forEach((w, i) => {
    const c = cut.get(i);
    const rate = w.gbps === undefined ? {} : { gbps: w.gbps };
    if (!c) {
      if (wireSide(topo, w) === name) wires.push(w);
    } else if (c.a.partition === name) wires.push({ a: c.a.end, b: tunnel(c, c.b.partition), ...rate });
    else if (c.b.partition === name) wires.push({ a: tunnel(c, c.a.partition), b: c.b.end, ...rate });
  });
  const mine = (n: string) => part.hosts.includes(n) || part.switches.includes(n);
  const t: Topology = {
    name: `${topo.name}:${name}`,
    hosts: topo.hosts.filter((h) => mine(h.name)),
    switches: topo.switches.filter((s) => mine(s.name)),
    wires,
    ...(topo.cpupools ? { cpupools: topo.cpupools } : {}),
  };
  try {
    return validateTopology(structuredClone(t));
  } catch (e) {
    throw new Error(`partition ${name} of topology "${topo.name}" is not a topology of its own: ${(e as Error).message}`);
  }
}
