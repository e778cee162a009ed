/** What the toolstack allocates for a NIC before anything starts: one shared buffer per VI. */
import type { NicSpec } from './hw-nic.ts';
import { FABRIC_WAKE_BYTES, VI_BYTES } from './layout.ts';

export interface NicResources {
  spec: NicSpec;
  viSabs: SharedArrayBuffer[];
}

export function createNicResources(spec: NicSpec): NicResources {
  if (!(spec.vis >= 1 && spec.vis <= 1024)) throw new RangeError(`a NIC has 1..1024 VIs, not ${spec.vis}`);
  return { spec, viSabs: Array.from({ length: spec.vis }, () => new SharedArrayBuffer(VI_BYTES)) };
}

export function createFabricWake(): SharedArrayBuffer {
  return new SharedArrayBuffer(FABRIC_WAKE_BYTES);
}

export function nicAlias(vendor: string, device: string): string {
  return `nic:${vendor.toLowerCase()}-${device.toLowerCase()}`;
}
