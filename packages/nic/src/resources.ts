/** A NIC's alias, as plugins name the NICs they drive (like a module alias): nic:<vendor>-<device>. */
export function nicAlias(vendor: string, device: string): string {
  return `nic:${vendor.toLowerCase()}-${device.toLowerCase()}`;
}

/**
 * The NIC models xsim simulates, by queue design:
 *   vi      sfc-style VIs: descriptor rings, an event queue and a doorbell page per VI,
 *           a buffer table, MCDI (hw-nic.ts, layout.ts, abi/mcdi.ts); every alias but the one below
 *   virtio  a vDPA device: each function a virtio-net queue pair (split virtqueues), an IOMMU
 *           (IOTLB) per function, flow steering (vq-nic.ts, vq-layout.ts, abi/vdpa.ts)
 */
export type NicModel = 'vi' | 'virtio';

/** The virtio NIC's PCI ids: virtio's vendor and the modern virtio-net device id (a vDPA device presents these). */
export const VIRTIO_NIC = { vendor: '1af4', device: '1041' } as const;
export const VIRTIO_NIC_ALIAS = nicAlias(VIRTIO_NIC.vendor, VIRTIO_NIC.device);

/** A NIC's model from its PCI ids. */
export function nicModel(vendor: string, device: string): NicModel {
  return nicAlias(vendor, device) === VIRTIO_NIC_ALIAS ? 'virtio' : 'vi';
}
