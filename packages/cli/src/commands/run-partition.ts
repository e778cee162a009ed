/**
 * `xsim run topo.json --partition NAME [--vxlan-base-port N]
 * [--partition-address NAME=ADDR[:PORT]]... [--bind-any]`: run one partition
 * of a partitioned topology (the toolstack's partitions/one.ts cuts it); its
 * wires to the other partitions are VXLAN tunnels on each partition's
 * address (the flag's, else the file's, else 127.0.0.1) and port (else N +
 * the partition's index). Parses, checks and resolves names; runs nothing.
 */
import {
  DEFAULT_RESOLVE_MS,
  DEFAULT_VXLAN_BASE_PORT,
  onePartition,
  parsePartitionAddresses,
  partitionAddrs,
  partitionEndpoints,
  partitionEnds,
  partitionNet,
  partitionNames,
  resolvePartitionAddresses,
  withPartitionAddresses,
  type DomainRef,
  type PartitionAddressOverrides,
  type PartitionNet,
  type Topology,
} from '@xsim/toolstack';
import { intFlag, type Parsed } from '../args.ts';

export const PARTITION_VALUED = ['partition', 'vxlan-base-port', 'partition-address'];
export const PARTITION_BOOLEANS = ['bind-any'];
/** Given once per partition whose address the command line sets. */
export const PARTITION_REPEATABLE = ['partition-address'];

export interface PartitionRun {
  /** The whole topology, as the file gives it. */
  full: Topology;
  name: string;
  basePort: number;
  /** --partition-address, by partition. */
  overrides: PartitionAddressOverrides;
  /** --bind-any: this partition's tunnels bind 0.0.0.0 (its port) rather than its own address. */
  bindAny: boolean;
}

/** --partition, --vxlan-base-port, --partition-address and --bind-any, checked against the topology; undefined without --partition. */
export function partitionFlags(p: Parsed, full: Topology): PartitionRun | undefined {
  if (p.flags.has('vxlan-base-port') && !p.flags.has('partition'))
    throw new Error('--vxlan-base-port goes with --partition NAME or --partitions local (the ports of the tunnels between partitions)');
  for (const f of ['partition-address', 'bind-any'])
    if (p.flags.has(f) && !p.flags.has('partition')) throw new Error(`--${f} goes with --partition NAME (where the partitions' tunnels are)`);
  const v = p.flags.get('partition');
  if (v === undefined) return undefined;
  if (!p.positional[0]) throw new Error('--partition NAME runs a partition of a topology file: give the file (its "partitions" name them)');
  if (p.flags.has('deterministic')) throw new Error('--partition and --deterministic exclude each other: a partition reaches the others over UDP');
  const names = partitionNames(full);
  const name = String(v);
  if (!names.includes(name)) throw new Error(`no partition ${JSON.stringify(name)} in topology "${full.name}" (partitions: ${names.join(', ')})`);
  const basePort = intFlag(p, 'vxlan-base-port', DEFAULT_VXLAN_BASE_PORT, 1, 65535);
  const overrides = parsePartitionAddresses(full, p.lists?.get('partition-address') ?? []);
  // Two partitions on one address and port, or ports past 65535, refused now (naming the flag or key at fault).
  withPartitionAddresses(full, overrides, basePort);
  return { full, name, basePort, overrides, bindAny: p.flags.has('bind-any') };
}

/**
 * The topology the partition runs, its peers' DNS names resolved (each
 * retried until it resolves, up to DEFAULT_RESOLVE_MS: a peer may start
 * later), and a line saying where its tunnels are.
 */
export async function partitionTopo(r: PartitionRun): Promise<{ topo: Topology; line: string; net: PartitionNet }> {
  const named = withPartitionAddresses(r.full, r.overrides, r.basePort);
  const resolved = await resolvePartitionAddresses(named, {
    skip: r.bindAny ? [r.name] : [],
    onWait: (p, a, why) =>
      process.stderr.write(`xsim: partition ${p}'s address ${a} does not resolve yet (${why}); retrying for up to ${DEFAULT_RESOLVE_MS / 1000} s\n`),
  });
  const topo = onePartition(resolved, { partition: r.name, basePort: r.basePort }, { bindAny: r.bindAny });
  const addrs = partitionAddrs(resolved, { basePort: r.basePort });
  const who = new Map(Object.entries(addrs).map(([n, a]) => [a, n]));
  const tunnels = topo.wires.flatMap((w) => [w.a, w.b]).flatMap((e) => (typeof e === 'object' ? [e.vxlan] : []));
  const line =
    `xsim: partition ${r.name} on ${tunnels[0]?.local ?? addrs[r.name]}` +
    (tunnels.length
      ? `; tunnels: ${tunnels.map((t) => `VNI ${t.vni} to ${who.get(t.remote) ?? '?'} at ${t.remote}`).join(', ')}`
      : '; no wire to another partition');
  // Migrations from the other partitions come in on TCP at our tunnels' address and port number.
  const net = partitionNet(resolved, r.name, partitionEndpoints(resolved, { basePort: r.basePort }), { bindAny: r.bindAny });
  return { topo, line: `${line}; migrations on TCP ${net.listen!.address}:${net.listen!.port}`, net };
}

/** The ends checked against the partition: the receiver's IP when it is another partition's (ping only). */
export function partitionRemote(r: PartitionRun, ends: { from: DomainRef; to: DomainRef }, workload: string): string | undefined {
  return partitionEnds(r.full, r.name, ends, workload).remoteIp;
}
