/**
 * One partition of a partitioned topology run on its own (`xsim run topo.json
 * --partition p0`): the topology it runs (topo/partition-split.ts), which
 * stream ends it can drive, and a ping from one of its guests to a guest of
 * another partition, by the address the topology gives it (the other
 * partition answers with its own kernel; nothing there needs driving).
 */
import { partitionAddrs, partitionNames, partitionOf, partitionTopology, type PartitionOptions } from '../topo/partition-split.ts';
import type { Topology } from '../topo/types.ts';
import type { DomainRef } from '../domain-ref.ts';
import type { Simulation } from '../simulation.ts';
import type { PingResult } from '../traffic.ts';

export interface PartitionChoice {
  /** The partition to run. */
  partition: string;
  /** The k-th partition's tunnels use port basePort + k (default 14789). */
  basePort?: number;
  /** The address every partition's tunnels use (default 127.0.0.1: all on this machine). */
  addr?: string;
}

/** The topology `c.partition` runs, its tunnels on the addresses `c` gives. */
export function onePartition(full: Topology, c: PartitionChoice, o: PartitionOptions = {}): Topology {
  return partitionTopology(full, c.partition, partitionAddrs(full, { basePort: c.basePort, addr: c.addr }), o);
}

/** A stream end's IP in the whole topology (dom0's or a guest's first vif's), or an error naming what exists. */
function endIp(full: Topology, ref: DomainRef): string {
  const h = full.hosts.find((x) => x.name === ref.host);
  if (!h) throw new Error(`no host "${ref.host}" in topology "${full.name}" (hosts: ${full.hosts.map((x) => x.name).join(', ')})`);
  if (ref.domain === 'dom0') return h.dom0.ip;
  const d = h.domUs.find((x) => x.name === ref.domain);
  if (!d) throw new Error(`no domain "${ref.domain}" on ${ref.host} (domUs: ${h.domUs.map((x) => x.name).join(', ')})`);
  return d.vifs[0].ip;
}

/**
 * Check the ends of a `--partition` run: the sender must be this partition's;
 * the receiver too, unless the workload is a ping (answered by the far
 * guest's kernel), in which case its IP is returned. Throws naming the end
 * and the partition that holds it.
 */
export function partitionEnds(full: Topology, partition: string, ends: { from: DomainRef; to: DomainRef }, workload: string): { remoteIp?: string } {
  partitionNames(full);
  const where = (ref: DomainRef) => {
    endIp(full, ref);
    return partitionOf(full, ref.host);
  };
  const pf = where(ends.from);
  if (pf !== partition)
    throw new Error(
      `--from ${ends.from.host}/${ends.from.domain} is in partition ${pf}, not ${partition}: a partition sends from its own guests (run --partition ${pf}, or --partitions local for all)`,
    );
  const pt = where(ends.to);
  if (pt === partition) return {};
  if (workload !== 'ping')
    throw new Error(
      `--to ${ends.to.host}/${ends.to.domain} is in partition ${pt}, not ${partition}: with --partition only --workload ping reaches another partition's guest (its kernel answers); a ${workload} across partitions needs both ends driven: --partitions local`,
    );
  return { remoteIp: endIp(full, ends.to) };
}

/** Ping `ip` (a guest of another partition, over the tunnel) from `from`: ARP first, then `count` echo requests. */
export async function pingAcross(sim: Simulation, from: DomainRef, ip: string, count: number, size = 64): Promise<PingResult> {
  await sim.request(from, 'arp_resolve', { ip });
  return (await sim.request(from, 'ping', { dstIp: ip, count, size })) as PingResult;
}
