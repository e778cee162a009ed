/**
 * Feature negotiation, netfront's side (Linux xen-netfront's talk_to_netback,
 * xennet_connect, xennet_fix_features): the keys it writes, and what it
 * reads of the backend's and acts on. Numbers are read as xenbus_scanf("%u")
 * reads them (readUnsigned), absent as 0.
 */
import { FRONTEND_FEATURES, VIF_KEY, readUnsigned } from '@xsim/hypervisor';

/**
 * netfront's parameters. sg and splitEventChannels Linux's netfront has not:
 * each stands for another frontend (an older or another OS's), so the
 * backend's side of the negotiation meets one.
 */
export interface NetfrontParams {
  /** Off: no scatter-gather (feature-sg not written, MTU held to 1500). */
  sg?: boolean;
  /** Off: ignore feature-split-event-channels and write the single event-channel, as frontends before it did. */
  splitEventChannels?: boolean;
  /**
   * The most queues this frontend asks for (Linux's xennet_max_queues,
   * module parameter max_queues, default min(8, the guest's online CPUs)):
   * xsim's guests have one vCPU, so 1 unless the topology's vif says
   * "queues". It asks for min(this, the backend's multi-queue-max-queues).
   */
  maxQueues?: number;
  /**
   * With several queues and a backend offering feature-ctrl-ring, set up a
   * control ring and configure a Toeplitz hash over it (default on). Linux's
   * netfront has no control ring (the Windows PV drivers use one); off, the
   * backend steers by its own flow hash.
   */
  ctrlRing?: boolean;
  /**
   * Checksum offload (default on, as Linux's netfront, which never writes
   * feature-no-csum-offload): frames the stack hands down with a partial
   * checksum go with NETTXF_csum_blank | NETTXF_data_validated, and partial
   * or validated frames are taken from the backend (NETRXF_*). Off (the
   * topology's vif "offloads": {"csum": false}, or `xsim dev set ... csum
   * off`: ethtool -K tx off rx off in the guest): feature-no-csum-offload = 1
   * is written, the stack is told to complete its own checksums, and a
   * partial frame that still comes down is completed here.
   */
  csum?: boolean;
  /**
   * TCPv4 segmentation offload (default on, as Linux's NETIF_F_TSO): with a
   * backend offering feature-gso-tcpv4, the stack may hand down TCP frames up
   * to 64 KiB with their MSS, sent with a GSO extra-info slot; and
   * feature-gso-tcpv4 = 1 tells the backend it may send such frames here.
   * Off: neither.
   */
  gso?: boolean;
}

/** What the backend advertised that netfront acts on. */
export interface BackendFeatures {
  /** feature-rx-copy: without it, Linux's netfront will not connect ("backend does not support copying receive path"). */
  rxCopy: boolean;
  /** feature-sg: without it, no frame over several TX slots, so the MTU is cut to 1500 (xennet_set_features). */
  sg: boolean;
  /** feature-split-event-channels: allocate a TX and an RX port. */
  splitEventChannels: boolean;
  /** multi-queue-max-queues (absent, or no number: 1, as talk_to_netback reads it). */
  maxQueues: number;
  /** feature-ctrl-ring: the backend takes a control ring. */
  ctrlRing: boolean;
  /** feature-gso-tcpv4: the backend takes TCPv4 GSO frames (xennet_fix_features' NETIF_F_TSO). */
  gsoTcpv4: boolean;
}

export function readBackendFeatures(read: (key: string) => string | undefined): BackendFeatures {
  const on = (k: string) => readUnsigned(read(k), 0) !== 0;
  return {
    rxCopy: on(VIF_KEY.featureRxCopy),
    sg: on(VIF_KEY.featureSg),
    splitEventChannels: on(VIF_KEY.featureSplitEventChannels),
    maxQueues: readUnsigned(read(VIF_KEY.multiQueueMaxQueues), 1),
    ctrlRing: on(VIF_KEY.featureCtrlRing),
    gsoTcpv4: on(VIF_KEY.featureGsoTcpv4),
  };
}

/** talk_to_netback: min(the backend's multi-queue-max-queues, our own max), at least one. */
export function queuesToUse(be: BackendFeatures, p: NetfrontParams = {}): number {
  return Math.max(1, Math.min(be.maxQueues, p.maxQueues ?? 1));
}

/** The feature keys talk_to_netback writes (request-rx-copy is written with the rings). */
export function frontendFeatures(p: NetfrontParams = {}): Record<string, string> {
  const out = { ...FRONTEND_FEATURES };
  if (p.sg === false) delete out[VIF_KEY.featureSg];
  // Linux's netfront leaves feature-no-csum-offload out (IPv4 checksum offload on); only a frontend that cannot take partial checksums writes it.
  if (p.csum === false) out[VIF_KEY.featureNoCsumOffload] = '1';
  // RX of TCPv4 GSO frames (netfront gathers them whole): as Linux's netfront writes it.
  out[VIF_KEY.featureGsoTcpv4] = p.gso === false ? '0' : '1';
  return out;
}

/** ETH_DATA_LEN: the MTU of a device without scatter-gather. */
export const ETH_DATA_LEN = 1500;
