/**
 * Feature negotiation, netback's side (Linux xen-netback's xenbus.c): the
 * keys netback_probe writes in the backend directory, and what
 * read_xenbus_vif_flags and connect_data_rings read of the frontend's.
 * Each reader takes the node's value as xenbus_scanf("%u") would
 * (scanUnsigned), so a value Linux accepts is accepted here too.
 */
import { BACKEND_FEATURES, VIF_KEY, readUnsigned, scanUnsigned } from '@xsim/hypervisor';

/** netback's parameters, as Linux's module parameters where Linux has one. */
export interface NetbackParams {
  /** separate_tx_rx_irq (Linux's, default on): offer split event channels (feature-split-event-channels). */
  separateTxRxIrq?: boolean;
  /**
   * xsim's own (Linux's netback always writes feature-sg = 1): off stands for
   * a backend without scatter-gather, an older or another OS's, so its
   * frontend's side of the negotiation can be exercised.
   */
  sg?: boolean;
  /**
   * max_queues (Linux's xenvif_max_queues, module parameter; 0 there means
   * num_online_cpus() of dom0): the most queues a frontend may ask for,
   * written as multi-queue-max-queues. xsim's dom0 has one vCPU, so the
   * default is a fixed MAX_QUEUES_DEFAULT instead; a host's topology may set
   * its own (hosts[].dom0.maxQueues).
   */
  maxQueues?: number;
  /**
   * Offer feature-gso-tcpv4 (default on, as Linux): the frontend may send
   * TCPv4 frames up to 64 KiB with a GSO extra-info slot, which netback
   * segments in software (gso.ts). xsim offers no GSO for IPv6 (no IPv6 stack).
   */
  gso?: boolean;
}

/** xsim's default max_queues (Linux's: dom0's online CPUs). */
export const MAX_QUEUES_DEFAULT = 4;

export function maxQueuesOf(p: NetbackParams = {}): number {
  return p.maxQueues ?? MAX_QUEUES_DEFAULT;
}

/** netback_probe's keys, for these parameters (feature-ctrl-ring 1 and multi-queue-max-queues with them). */
export function backendFeatures(p: NetbackParams = {}): Record<string, string> {
  return {
    ...BACKEND_FEATURES,
    [VIF_KEY.featureSg]: p.sg === false ? '0' : '1',
    [VIF_KEY.featureGsoTcpv4]: p.gso === false ? '0' : '1',
    [VIF_KEY.featureSplitEventChannels]: p.separateTxRxIrq === false ? '0' : '1',
    [VIF_KEY.multiQueueMaxQueues]: String(maxQueuesOf(p)),
  };
}

/** What the frontend advertised, as read_xenbus_vif_flags keeps it in struct xenvif. */
export interface FrontendFlags {
  /** feature-rx-notify: the frontend kicks us when it posts RX buffers (without it Linux polls every 30 ms). */
  rxNotify: boolean;
  /** feature-sg (vif->can_sg): it takes a frame over several RX slots. Without it, nothing over ETH_DATA_LEN reaches it. */
  canSg: boolean;
  /** feature-gso-tcpv4/v6 (vif->gso_mask): GSO frames it can take on RX (xsim sends TCPv4 ones, VifBackend.takesGso). */
  gsoTcpv4: boolean;
  gsoTcpv6: boolean;
  /** !feature-no-csum-offload, feature-ipv6-csum-offload (vif->ip_csum, ipv6_csum): partial checksums it can take (without ip_csum, rx.ts completes them on a copy first; xsim sends no IPv6). */
  ipCsum: boolean;
  ipv6Csum: boolean;
}

/** A node of the frontend's directory (undefined: absent). */
export type ReadKey = (key: string) => string | undefined;

/**
 * read_xenbus_vif_flags. request-rx-copy absent reads as 0, which Linux
 * answers -EOPNOTSUPP (a frontend that wants page flipping, which Linux's
 * netback dropped): a reason to refuse the frontend. One that is there but
 * no number is xenbus_dev_fatal in Linux: a reason too.
 */
export function readFrontendFlags(read: ReadKey, fePath: string): FrontendFlags | string {
  const raw = read(VIF_KEY.requestRxCopy);
  const rxCopy = raw === undefined ? 0 : scanUnsigned(raw);
  if (rxCopy === undefined) return `reading ${fePath}/${VIF_KEY.requestRxCopy}: ${JSON.stringify(raw)} is not a number`;
  if (rxCopy === 0) return 'frontend does not request the copying receive path (request-rx-copy); page flipping is not supported (EOPNOTSUPP)';
  const on = (k: string, def = 0) => readUnsigned(read(k), def) !== 0;
  return {
    rxNotify: on(VIF_KEY.featureRxNotify),
    canSg: on(VIF_KEY.featureSg),
    gsoTcpv4: on(VIF_KEY.featureGsoTcpv4),
    gsoTcpv6: on(VIF_KEY.featureGsoTcpv6),
    ipCsum: !on(VIF_KEY.featureNoCsumOffload),
    ipv6Csum: on(VIF_KEY.featureIpv6CsumOffload),
  };
}

/** The frontend's ports: one for both directions (the legacy event-channel), or a TX and an RX port. */
export interface FrontendPorts {
  tx: number;
  rx: number;
}

/**
 * connect_data_rings' event channels: event-channel-tx and event-channel-rx
 * if both read as numbers, else the single event-channel (a legacy frontend,
 * or one whose backend offered no split channels), else a reason to refuse.
 */
export function readFrontendPorts(read: ReadKey, fePath: string): FrontendPorts | string {
  const tx = scanUnsigned(read(VIF_KEY.eventChannelTx));
  const rx = scanUnsigned(read(VIF_KEY.eventChannelRx));
  if (tx !== undefined && rx !== undefined) return { tx, rx };
  const one = scanUnsigned(read(VIF_KEY.eventChannel));
  if (one === undefined) {
    const seen = [VIF_KEY.eventChannelTx, VIF_KEY.eventChannelRx, VIF_KEY.eventChannel].map((k) => `${k} ${JSON.stringify(read(k) ?? null)}`).join(', ');
    return `reading ${fePath}/event-channel(-tx/rx): ${seen}`;
  }
  return { tx: one, rx: one };
}

/** connect_data_rings' ring references (xenbus_gather "%lu"), or a reason to refuse. */
export function readRingRefs(read: ReadKey, fePath: string): { tx: number; rx: number } | string {
  const tx = scanUnsigned(read(VIF_KEY.txRingRef));
  const rx = scanUnsigned(read(VIF_KEY.rxRingRef));
  if (tx === undefined || rx === undefined)
    return `reading ${fePath}/ring-ref: tx-ring-ref ${JSON.stringify(read(VIF_KEY.txRingRef) ?? null)}, rx-ring-ref ${JSON.stringify(read(VIF_KEY.rxRingRef) ?? null)}`;
  return { tx, rx };
}
