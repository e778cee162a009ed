export type { Topology, HostSpec, DomUSpec, VifSpec, WireSpec, NicSpecJson, Pinning, SwitchSpec, PartitionSpec } from './types.ts';
export { validateTopology, guestPagesNeeded, TopologyError, LIMITS, type TopologyIssue } from './validate.ts';
export { loadTopology } from './load.ts';
export { parseXlRate, rateNode, describeRateNode, XL_RATE_DEFAULT_INTERVAL_US, type XlRate } from './rate.ts';
export { defaultTopology, NIC_MODELS, isNicModelName, type NicModelName } from './default.ts';

export function nicAlias(vendor: string, device: string): string {
  return `nic:${vendor.toLowerCase()}-${device.toLowerCase()}`;
}

export { parseMac } from '@xsim/netstack';
export { rackTopology, type RackOptions } from './generate.ts';
export {
  partitionTopology,
  partitionAddrs,
  partitionEndpoints,
  parsePartitionAddresses,
  withPartitionAddresses,
  resolvePartitionAddresses,
  partitionNames,
  partitionOf,
  cutWires,
  DEFAULT_VXLAN_BASE_PORT,
  DEFAULT_VNI_BASE,
  DEFAULT_RESOLVE_MS,
  type CutWire,
  type PartitionAddressOverrides,
  type PartitionEndpoint,
  type ResolveOptions,
  type PartitionAddrs,
  type PartitionOptions,
} from './partition-split.ts';
export { DEFAULT_PARTITION_ADDRESS, partitionAddressProblem } from './partitions.ts';
