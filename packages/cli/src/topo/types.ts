/** A topology: hosts (dom0 + NIC + domUs) joined by wires. Plain JSON data. */
export interface Topology {
  name: string;
  hosts: HostSpec[];
  wires: WireSpec[];
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

export interface HostSpec {
  name: string;
  nic: NicSpecJson;
  dom0: { ip: string; memPages: number };
  domUs: DomUSpec[];
}

export interface DomUSpec {
  name: string;
  domid: number;
  memPages: number;
  vifs: VifSpec[];
}

export interface VifSpec {
  mac: string;
  ip: string;
}

export interface WireSpec {
  a: string;
  b: string;
}
