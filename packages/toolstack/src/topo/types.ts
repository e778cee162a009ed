/** A topology: hosts (dom0 + NIC + domUs) and L2 switches joined by wires. Plain JSON data. */
export interface Topology {
  name: string;
  hosts: HostSpec[];
  /** L2 switches between hosts (any tree of hosts and switches). */
  switches: SwitchSpec[];
  /** Each wire joins two of: a host's NIC (by host name), a switch (by name). */
  wires: WireSpec[];
  /** Named sets of pCPUs domains may be placed in ("cpupool": NAME), as xl cpupool-create. */
  cpupools?: Record<string, number[]>;
}

export interface NicSpecJson {
  /** PCI vendor and device ids, 4 hex digits each; the NIC's alias is `nic:<vendor>-<device>`. */
  vendor: string;
  device: string;
  /** dom0's uplink MAC. */
  mac: string;
  /** Virtual interfaces (VI 0 is dom0's). */
  vis: number;
  mtu: number;
}

/** Where a domain's vCPU may run: one pCPU, or a cpupool (at most one of the two). */
export interface Pinning {
  pcpu?: number;
  cpupool?: string;
}

export interface HostSpec {
  name: string;
  nic: NicSpecJson;
  dom0: { ip: string; memPages: number } & Pinning;
  domUs: DomUSpec[];
}

export interface DomUSpec extends Pinning {
  name: string;
  domid: number;
  memPages: number;
  vifs: VifSpec[];
}

export interface VifSpec {
  mac: string;
  ip: string;
}

export interface SwitchSpec {
  name: string;
  ports: number;
}

export interface WireSpec {
  a: string;
  b: string;
}
