/** A topology: hosts (dom0 + NIC + domUs) and L2 switches joined by wires. Plain JSON data. */
import type { VifOffloads } from './offloads.ts';

export interface Topology {
  name: string;
  hosts: HostSpec[];
  /** L2 switches between hosts (any tree of hosts and switches). */
  switches: SwitchSpec[];
  /** Each wire joins two of: a host's NIC (by host name), a switch (by name). */
  wires: WireSpec[];
  /** Named sets of pCPUs domains may be placed in ("cpupool": NAME), as xl cpupool-create. */
  cpupools?: Record<string, number[]>;
  /**
   * The topology split into partitions, each run by a process of its own
   * (topo/partitions.ts): every host and switch in exactly one; a wire between
   * two partitions becomes a VXLAN tunnel in each.
   */
  partitions?: Record<string, PartitionSpec>;
}

/**
 * One partition: the hosts (at least one) and switches it runs, and where its
 * tunnels send and receive: `address` (an IPv4 address or a DNS name; absent:
 * 127.0.0.1) and UDP `port` (absent: the base port + the partition's index).
 */
export interface PartitionSpec {
  hosts: string[];
  switches: string[];
  address?: string;
  port?: number;
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
  /** Entries of the NIC's RX filter table (validation fills in 16384): a full table refuses inserts. */
  filters?: number;
}

/**
 * Per-vif quotas of an accelerator (the 2007 accelerator's limits/max-filters
 * and limits/max-buf-pages): written by the toolstack under the vif's backend
 * directory, read by the plugin's backend. Absent: the plugin's defaults.
 */
export interface VifLimits {
  /** Flow filters the vif may hold on the NIC at once. */
  maxFilters?: number;
  /** Pages of the guest's DMA area (rings and buffers) the NIC may register for it. */
  maxBufPages?: number;
}

/** Where a domain's vCPU may run: one pCPU, or a cpupool (at most one of the two). */
export interface Pinning {
  pcpu?: number;
  cpupool?: string;
}

export interface HostSpec {
  name: string;
  nic: NicSpecJson;
  /**
   * maxQueues: netback's max_queues on this host (multi-queue-max-queues, the
   * most queues a vif may ask for; Linux's default is dom0's online CPUs,
   * xsim's 4). Absent: netback's default.
   */
  dom0: { ip: string; memPages: number; maxQueues?: number } & Pinning;
  domUs: DomUSpec[];
  /** Limits for every vif of the host's guests (a vif's own limits win, key by key). */
  limits?: VifLimits;
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
  /**
   * The vif's TX rate limit in xl's syntax ("10Mb/s@20ms": topo/rate.ts):
   * the toolstack writes it as the backend's rate node ("25000,20000"),
   * which netback reads and watches. Absent: unlimited.
   */
  rate?: string;
  /**
   * The most queues the guest's netfront asks for (Linux's netfront
   * max_queues, min(8, the guest's vCPUs); xsim's guests have one vCPU):
   * it uses min(this, the host's maxQueues). Absent: 1.
   */
  queues?: number;
  /** Offloads switched off for this vif (offloads.ts: csum, gso; each on unless false). */
  offloads?: VifOffloads;
  /** After validation: the host's limits with the vif's own over them. */
  limits?: VifLimits;
}

export interface SwitchSpec {
  name: string;
  ports: number;
}

/**
 * A wire end outside this topology: a VXLAN tunnel (RFC 7348). Frames that
 * leave onto the wire go out as UDP datagrams to `remote`; datagrams that
 * arrive on `local` with this VNI come in. Addresses are IPv4 "ADDR:PORT"
 * (after validation always with the port; ADDR alone means port 4789).
 */
export interface VxlanSpec {
  remote: string;
  local: string;
  /** The VXLAN Network Identifier, 0..16777215. */
  vni: number;
  /** The underlay's IP MTU (validation fills in 1500): a frame of n octets needs n + 36 (IPv4, UDP, VXLAN headers). */
  mtu?: number;
}

export interface VxlanWireEnd {
  vxlan: VxlanSpec;
}

/** A wire end: a host's NIC or a switch (by name), or a VXLAN tunnel. */
export type WireEndSpec = string | VxlanWireEnd;

export interface WireSpec {
  /** At most one of the two ends is a tunnel. */
  a: WireEndSpec;
  b: WireEndSpec;
  /**
   * The line rate in Gbit/s (0.001..400): each NIC on this wire serialises what
   * it sends at this rate (preamble, inter-frame gap and FCS counted), queueing
   * behind its port; absent, a frame crosses at once.
   */
  gbps?: number;
}
