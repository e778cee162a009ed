/**
 * `xsim run topo.json --partition NAME [--vxlan-base-port N]`: run one
 * partition of a partitioned topology (the toolstack's partitions/one.ts
 * cuts it); its wires to the other partitions are VXLAN tunnels on
 * 127.0.0.1, port N + the partition's index. Parses and checks; runs nothing.
 */
import { DEFAULT_VXLAN_BASE_PORT, onePartition, partitionEnds, type DomainRef, type Topology } from '@xsim/toolstack';
import { intFlag, type Parsed } from '../args.ts';

export const PARTITION_VALUED = ['partition', 'vxlan-base-port'];

export interface PartitionRun {
  /** The whole topology, as the file gives it. */
  full: Topology;
  name: string;
  basePort: number;
}

/** --partition and --vxlan-base-port, checked against the topology; undefined without --partition. */
export function partitionFlags(p: Parsed, full: Topology): PartitionRun | undefined {
  if (p.flags.has('vxlan-base-port') && !p.flags.has('partition'))
    throw new Error('--vxlan-base-port goes with --partition NAME or --partitions local (the ports of the tunnels between partitions)');
  const v = p.flags.get('partition');
  if (v === undefined) return undefined;
  if (!p.positional[0]) throw new Error('--partition NAME runs a partition of a topology file: give the file (its "partitions" name them)');
  if (p.flags.has('deterministic')) throw new Error('--partition and --deterministic exclude each other: a partition reaches the others over UDP');
  return { full, name: String(v), basePort: intFlag(p, 'vxlan-base-port', DEFAULT_VXLAN_BASE_PORT, 1, 65535) };
}

/** The topology the partition runs (an unknown partition, or a topology without partitions, is refused naming them). */
export function partitionTopo(r: PartitionRun): Topology {
  return onePartition(r.full, { partition: r.name, basePort: r.basePort });
}

/** The ends checked against the partition: the receiver's IP when it is another partition's (ping only). */
export function partitionRemote(r: PartitionRun, ends: { from: DomainRef; to: DomainRef }, workload: string): string | undefined {
  return partitionEnds(r.full, r.name, ends, workload).remoteIp;
}
