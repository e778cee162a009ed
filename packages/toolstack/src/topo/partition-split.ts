/**
 * The topology one partition runs (issue 24, item 2): its own hosts and
 * switches, every wire inside it as it is, and every wire between two
 * partitions as a VXLAN tunnel end on each side (topo/vxlan.ts), the two
 * halves pointing at each other with a VNI of the wire's own.
 *
 * Numbering, so that both sides derive the same tunnel from the same file:
 * the cut wire `wires[i]` carries VNI vniBase + i (default 10000 + i); the
 * partition listed k-th (0-based) sends and receives on one UDP address:
 * its `address` (default 127.0.0.1) and `port` (default basePort + k,
 * basePort 14789: containerlab's VXLAN port, as 4789 is often taken or
 * blocked). `--partition-address NAME=ADDR[:PORT]` overrides the file
 * (withPartitionAddresses), so one file serves machines whose addresses are
 * known only at start; DNS names are resolved before the split
 * (resolvePartitionAddresses), as the tunnels take IPv4 addresses.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { VNI_MAX, VXLAN_IP_OVERHEAD, formatUdpAddr, parseUdpAddr } from '@xsim/nic';
import { DEFAULT_PARTITION_ADDRESS, partitionAddressProblem } from './partitions.ts';
import type { PartitionSpec, Topology, WireEndSpec, WireSpec } from './types.ts';
import { validateTopology } from './validate.ts';

/** The first UDP port of the partitions' tunnels unless --vxlan-base-port says otherwise. */
export const DEFAULT_VXLAN_BASE_PORT = 14789;
/** A cut wire's VNI is this plus the wire's index in the topology. */
export const DEFAULT_VNI_BASE = 10000;
/** How long a partition's DNS name may take to resolve (a peer's pod may start after this one). */
export const DEFAULT_RESOLVE_MS = 120_000;

/** Where each partition's tunnels send and receive: "ADDR:PORT" by partition name. */
export type PartitionAddrs = Record<string, string>;

/** A partition's address and port given on the command line (--partition-address NAME=ADDR[:PORT]), by partition name. */
export type PartitionAddressOverrides = Record<string, { address: string; port?: number; flag: string }>;

/** One partition's UDP address, and where each half of it came from (for the errors). */
export interface PartitionEndpoint {
  name: string;
  address: string;
  port: number;
  /** "--partition-address p0=...", "partitions.p0", or "the default". */
  from: { address: string; port: string };
}

/**
 * Every partition's address and port: the command line's (`overrides`), else
 * the file's, else `addr` (default 127.0.0.1) and basePort + k for the k-th
 * partition listed. Two partitions given one address and port are refused,
 * naming where each half came from.
 */
export function partitionEndpoints(topo: Topology, o: { basePort?: number; addr?: string; overrides?: PartitionAddressOverrides } = {}): PartitionEndpoint[] {
  const names = partitionNames(topo);
  const base = o.basePort ?? DEFAULT_VXLAN_BASE_PORT;
  const spec = (n: string): PartitionSpec => topo.partitions![n];
  const over = o.overrides ?? {};
  const defaulted = names.map((n, k) => (over[n]?.port === undefined && spec(n).port === undefined ? k : -1)).filter((k) => k >= 0);
  const kmax = defaulted.length ? defaulted[defaulted.length - 1] : 0;
  if (!Number.isInteger(base) || base < 1 || base + kmax > 65535)
    throw new RangeError(
      `the VXLAN base port must be an integer from 1 to ${65535 - kmax} (${kmax === names.length - 1 ? `${names.length} partitions take one port each` : `partition ${names[kmax]} takes base + ${kmax}`}), got ${base}`,
    );
  const out: PartitionEndpoint[] = [];
  const seen = new Map<string, PartitionEndpoint>();
  names.forEach((n, k) => {
    const ov = over[n];
    const s = spec(n);
    const e: PartitionEndpoint = {
      name: n,
      address: ov?.address ?? s.address ?? o.addr ?? DEFAULT_PARTITION_ADDRESS,
      port: ov?.port ?? s.port ?? base + k,
      from: {
        address: ov ? ov.flag : s.address !== undefined ? `partitions.${n}.address` : 'the default',
        port: ov?.port !== undefined ? ov.flag : s.port !== undefined ? `partitions.${n}.port` : `the base port ${base} + ${k}`,
      },
    };
    const key = `${e.address.toLowerCase()}:${e.port}`;
    const prev = seen.get(key);
    if (prev)
      throw new Error(
        `partitions ${prev.name} and ${n} are both given ${e.address}:${e.port} (${prev.name}: address from ${prev.from.address}, port from ${prev.from.port}; ` +
          `${n}: address from ${e.from.address}, port from ${e.from.port}): each partition's tunnels need a UDP address of their own`,
      );
    seen.set(key, e);
    out.push(e);
  });
  return out;
}

/** Every partition's "ADDR:PORT" (partitionEndpoints): by default 127.0.0.1 with port basePort + k for the k-th partition listed. */
export function partitionAddrs(topo: Topology, o: { basePort?: number; addr?: string; overrides?: PartitionAddressOverrides } = {}): PartitionAddrs {
  return Object.fromEntries(partitionEndpoints(topo, o).map((e) => [e.name, `${e.address}:${e.port}`]));
}

/**
 * The values of `--partition-address NAME=ADDR[:PORT]` (repeatable), checked
 * against the topology: a partition it has, an IPv4 address or DNS name, a
 * port 1..65535, each partition at most once. Errors name the flag.
 */
export function parsePartitionAddresses(topo: Topology, values: readonly string[]): PartitionAddressOverrides {
  const out: PartitionAddressOverrides = {};
  if (values.length === 0) return out;
  const names = partitionNames(topo);
  for (const v of values) {
    const flag = `--partition-address ${v}`;
    const m = /^([^=]*)=(.*)$/.exec(v);
    if (!m) throw new Error(`${flag}: must be NAME=ADDR or NAME=ADDR:PORT (a partition of the topology, an IPv4 address or DNS name, a UDP port)`);
    const [, name, rest] = m;
    if (!names.includes(name)) throw new Error(`${flag}: no partition ${JSON.stringify(name)} in topology "${topo.name}" (partitions: ${names.join(', ')})`);
    if (out[name]) throw new Error(`${flag}: partition ${name} is already given ${out[name].flag.slice('--partition-address '.length)}`);
    const pm = /^(.*?)(?::([^:]*))?$/.exec(rest)!;
    const address = pm[1];
    const why = partitionAddressProblem(address);
    if (why) throw new Error(`${flag}: ${why}`);
    let port: number | undefined;
    if (pm[2] !== undefined) {
      port = Number(pm[2]);
      if (!/^[1-9][0-9]{0,4}$/.test(pm[2]) || port > 65535) throw new Error(`${flag}: port ${JSON.stringify(pm[2])} is not an integer from 1 to 65535`);
    }
    out[name] = { address, ...(port === undefined ? {} : { port }), flag };
  }
  return out;
}

/**
 * The topology with the command line's addresses in its partitions (each
 * override's address, and its port when it gives one, in place of the
 * file's), after checking that no two partitions then share an address and
 * port (partitionEndpoints, naming the flag or key each came from).
 */
export function withPartitionAddresses(topo: Topology, overrides: PartitionAddressOverrides, basePort = DEFAULT_VXLAN_BASE_PORT): Topology {
  partitionEndpoints(topo, { basePort, overrides });
  if (Object.keys(overrides).length === 0) return topo;
  const partitions = Object.fromEntries(
    Object.entries(topo.partitions!).map(([n, s]) => {
      const ov = overrides[n];
      if (!ov) return [n, s];
      return [n, { ...s, address: ov.address, ...(ov.port === undefined ? {} : { port: ov.port }) }];
    }),
  );
  return { ...topo, partitions };
}

/** Is `address` a dotted quad already (nothing to resolve)? */
function isQuad(address: string): boolean {
  return typeof parseUdpAddr(address) !== 'string';
}

export interface ResolveOptions {
  /** Partitions whose address is left as it is (a partition bound to every interface needs only its port). */
  skip?: readonly string[];
  /** How long each name may take to resolve, retrying once a second (default DEFAULT_RESOLVE_MS). */
  timeoutMs?: number;
  /** Told once per name that does not resolve yet (it is retried). */
  onWait?: (partition: string, address: string, why: string) => void;
  /** The resolver (default: the system's, as dgram uses, IPv4 only). */
  lookup?: (name: string) => Promise<string>;
  signal?: AbortSignal;
}

const systemLookup = async (name: string): Promise<string> => (await dnsLookup(name, { family: 4 })).address;

/**
 * The topology with every partition's DNS name replaced by its IPv4 address,
 * each name retried once a second until it resolves (a peer's pod may come up
 * after this one, and its name with it) or `timeoutMs` passes, which is an
 * error naming the partition and the name. Quads are kept as they are.
 */
export async function resolvePartitionAddresses(topo: Topology, o: ResolveOptions = {}): Promise<Topology> {
  const lookup = o.lookup ?? systemLookup;
  const timeoutMs = o.timeoutMs ?? DEFAULT_RESOLVE_MS;
  const entries = Object.entries(topo.partitions ?? {});
  const settled = await Promise.allSettled(
    entries.map(async ([n, s]): Promise<[string, PartitionSpec]> => {
      if (s.address === undefined || isQuad(s.address) || o.skip?.includes(n)) return [n, s];
      const name = s.address;
      const t0 = Date.now();
      let told = false;
      for (;;) {
        o.signal?.throwIfAborted();
        let why: string;
        try {
          const ip = await lookup(name);
          return [n, { ...s, address: ip }];
        } catch (e) {
          why = (e as { code?: string }).code ?? (e as Error).message;
        }
        if (Date.now() - t0 >= timeoutMs)
          throw new Error(
            `partition ${n}'s address ${name} does not resolve to an IPv4 address (${why}, tried for ${timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`})`,
          );
        if (!told) o.onWait?.(n, name, why);
        told = true;
        await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(1, timeoutMs - (Date.now() - t0)))));
      }
    }),
  );
  // Every name tried to its end; the first failure in the partitions' order is the one reported (not whichever gave up first).
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const resolved = settled.map((r) => (r as PromiseFulfilledResult<[string, PartitionSpec]>).value);
  return entries.length ? { ...topo, partitions: Object.fromEntries(resolved) } : topo;
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
  /**
   * Bind this partition's tunnels to every interface (0.0.0.0, its own port)
   * instead of its own address: for an address that is not on any interface
   * here (a NAT's, a load balancer's). Its own address need not be resolved then.
   */
  bindAny?: boolean;
}

/**
 * The addresses given for every partition, each a valid "ADDR:PORT" and no
 * two the same (each is one process's socket); `loose`'s address may be
 * anything (it binds 0.0.0.0: only its port is taken).
 */
function checkAddrs(names: readonly string[], addrs: PartitionAddrs, loose?: string): PartitionAddrs {
  const out: PartitionAddrs = {};
  const seen = new Map<string, string>();
  for (const n of names) {
    const s = addrs[n];
    if (s === undefined) throw new Error(`no VXLAN address for partition ${n} (addresses given: ${Object.keys(addrs).join(', ') || 'none'})`);
    const port = /:[0-9]+$/.exec(s)?.[0] ?? '';
    const a = parseUdpAddr(n === loose ? `0.0.0.0${port}` : s);
    if (typeof a === 'string') {
      const host = s.replace(/:[0-9]+$/, '');
      if (!partitionAddressProblem(host) && !/^[0-9.]+$/.test(host))
        throw new Error(`partition ${n}'s VXLAN address: ${JSON.stringify(host)} is a DNS name: resolve it first (resolvePartitionAddresses)`);
      throw new Error(`partition ${n}'s VXLAN address: ${a}`);
    }
    const f = formatUdpAddr(a);
    const prev = seen.get(f);
    if (prev !== undefined) throw new Error(`partitions ${prev} and ${n} are both given ${f}: each partition's tunnels need a UDP address of their own`);
    if (n !== loose) seen.set(f, n);
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
  const at = checkAddrs(names, addrs, o.bindAny ? name : undefined);
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
