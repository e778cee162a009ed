export * from './layout.ts';
export { ViQueues } from './vi-queues.ts';
export { BufferTable } from './buffer-table.ts';
export {
  FilterTable,
  FILTER_TABLE_COUNTERS,
  FILTER_TABLE_GAUGES,
  DEFAULT_FILTER_TABLE_SIZE,
  DEFAULT_VI,
  type FilterMatch,
  type FilterEntry,
  type FilterTableOptions,
} from './filter-table.ts';
export { HwNic } from './hw-nic.ts';
export { VqNic, type VqSetup } from './vq-nic.ts';
export { NicPort, type NicFunction, type NicStats, type NicFnStats } from './nic-port.ts';
export { Iommu } from './iommu.ts';
export { handleVdpa, vdpaHandlers, vdpaServer } from './vdpa-admin.ts';
export { NIC_COUNTERS, type NicSpec, type NicCounters, type WireEnd } from './nic-spec.ts';
export { HwVi, VI_COUNTERS, type ViCounters } from './hw-vi.ts';
export { L2Switch, SWITCH_COUNTERS, SWITCH_PORT_COUNTERS } from './switch.ts';
export { handleMcdi, mcdiHandlers, mcdiServer, MCDI_COUNTERS, type McdiOp } from './mcdi.ts';
export {
  NetDriver,
  NET_DRIVER_COUNTERS,
  netDriverPages,
  netDriverRxBuf,
  type NetDriverOptions,
  type NetDriverStats,
  type RxCallback,
  type TxDoneCallback,
} from './net-driver.ts';
export { Driverlink, DRIVERLINK_COUNTERS, type SecondaryDriver, type NicInfo, type DriverFailure } from './driverlink.ts';
export { nicAlias, nicModel, VIRTIO_NIC, VIRTIO_NIC_ALIAS, type NicModel } from './resources.ts';
export * from './vq-layout.ts';
export { Virtqueue, VqNotify, type VqArea, type VqUsed } from './vq-queues.ts';
// FABRIC_COUNTERS as a value: whoever imports @xsim/nic (the toolstack's drop accounting) knows the fabric thread's counters.
export { LineRate, ETH_LINE_OVERHEAD, LINE_FIFO_BYTES } from './line-rate.ts';
export { FABRIC_COUNTERS, type FabricConfig, type FabricNicConfig, type FabricStats, type WireRef } from './fabric.ts';

/** The NIC hardware's kernel module (a device kernel), for DomainSpec.kernel. */
export const FABRIC_KERNEL = new URL('./fabric.ts', import.meta.url).href;
export { VqNetDriver, VQ_NET_DRIVER_COUNTERS, vqNetDriverPages, vqNetDriverRxBuf, type VqNetDriverOptions, type VqNetDriverStats } from './vq-net-driver.ts';
export {
  VXLAN_HEADER,
  VXLAN_OVERHEAD,
  VXLAN_IP_OVERHEAD,
  VXLAN_PORT,
  VNI_MAX,
  parseVxlan,
  writeVxlanHeader,
  parseUdpAddr,
  formatUdpAddr,
  type UdpAddr,
  type VxlanParse,
} from './vxlan/codec.ts';
export { VXLAN_TUNNEL_COUNTERS, VXLAN_SOCKET_COUNTERS, type VxlanEnd } from './vxlan/tunnel.ts';
export { VXLAN_RING_BYTES, VXLAN_MAX_IN_FLIGHT } from './vxlan/io.ts';
