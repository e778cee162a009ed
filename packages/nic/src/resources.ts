/** A NIC's alias, as plugins name the NICs they drive (like a module alias): nic:<vendor>-<device>. */
export function nicAlias(vendor: string, device: string): string {
  return `nic:${vendor.toLowerCase()}-${device.toLowerCase()}`;
}
