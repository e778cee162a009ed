/**
 * The vif device's xenstore protocol (io/netif.h's "Feature and Parameter
 * Negotiation" and io/xenbus.h), in one place: where the toolstack puts each
 * end's directory, the keys each end writes, and the XenbusState values. No
 * other module spells these paths or keys.
 *
 *   /local/domain/<domU>/device/vif/<n>/            frontend (owned by the guest)
 *       backend, backend-id, handle, mac, state      written by the toolstack
 *       tx-ring-ref, rx-ring-ref, event-channel
 *       (or event-channel-tx and event-channel-rx),
 *       request-rx-copy, feature-*                   written by netfront
 *       multi-queue-num-queues, queue-N/{tx-ring-ref,
 *       rx-ring-ref, event-channel(-tx/-rx)},
 *       ctrl-ring-ref, event-channel-ctrl            written by netfront with several queues
 *   /local/domain/<dom0>/backend/vif/<domU>/<n>/     backend (owned by dom0)
 *       frontend, frontend-id, handle, mac, ip,
 *       bridge, online, state, hotplug-status, mtu,
 *       rate, limits/max-filters, limits/max-buf-pages
 *                                                    written by the toolstack
 *       feature-*, multi-queue-max-queues, accel     written by netback
 *
 * README's "The vif's xenstore keys" lists every key with who writes it, who
 * reads it, and xsim's value beside Linux's.
 */
import { XenbusState } from '../xs/index.ts';

export function vifFrontendPath(domid: number, handle: number): string {
  return `${vifFrontendRoot(domid)}/${handle}`;
}

/** Where xenstored keeps every domain's directory. */
export const LOCAL_DOMAIN = '/local/domain';

/** A domain's device directory (its frontends, one directory per device type). */
export function deviceRoot(domid: number): string {
  return `${domainPath(domid)}/device`;
}

/** The directory of a guest's vif frontends (the one its hotplug watch watches). */
export function vifFrontendRoot(domid: number): string {
  return `${deviceRoot(domid)}/vif`;
}

export function vifBackendRoot(backendDomid: number): string {
  return `${domainPath(backendDomid)}/backend/vif`;
}

export function vifBackendPath(backendDomid: number, frontendDomid: number, handle: number): string {
  return `${vifBackendRoot(backendDomid)}/${frontendDomid}/${handle}`;
}

/** Where a frontend says why its device failed (Linux's xenbus_dev_fatal writes error/<nodename>/error). */
export function vifErrorPath(domid: number, handle: number): string {
  return `${domainPath(domid)}/error/device/vif/${handle}/error`;
}

export function domainPath(domid: number): string {
  return `${LOCAL_DOMAIN}/${domid}`;
}

/**
 * The toolstack's request to a guest (xl shutdown writes "poweroff" here; the
 * guest closes its devices and stops), as Linux's drivers/xen/manage.c reads it.
 */
export function controlShutdownPath(domid: number): string {
  return `${domainPath(domid)}/control/shutdown`;
}

export const SHUTDOWN_POWEROFF = 'poweroff';

/** Keys of a vif's directories. */
export const VIF_KEY = {
  state: 'state',
  backend: 'backend',
  backendId: 'backend-id',
  frontend: 'frontend',
  frontendId: 'frontend-id',
  handle: 'handle',
  mac: 'mac',
  ip: 'ip',
  bridge: 'bridge',
  online: 'online',
  hotplugStatus: 'hotplug-status',
  /** The vif's MTU (io/netif.h: written by the toolstack in the backend directory, read by the frontend). */
  mtu: 'mtu',
  txRingRef: 'tx-ring-ref',
  rxRingRef: 'rx-ring-ref',
  eventChannel: 'event-channel',
  /** Split event channels (io/netif.h): the frontend's two ports, TX notifications on one, RX on the other. */
  eventChannelTx: 'event-channel-tx',
  eventChannelRx: 'event-channel-rx',
  requestRxCopy: 'request-rx-copy',
  /**
   * Multi-queue (io/netif.h "Multiple transmit and receive queues"): the
   * backend offers up to multi-queue-max-queues; a frontend that wants
   * several writes multi-queue-num-queues and each queue's ring refs and
   * event channels under queue-N/ (queueDir); one queue keeps the flat keys.
   */
  multiQueueMaxQueues: 'multi-queue-max-queues',
  multiQueueNumQueues: 'multi-queue-num-queues',
  /**
   * The control ring (feature-ctrl-ring from the backend): the frontend
   * grants its page as ctrl-ring-ref with one event channel,
   * event-channel-ctrl, before it says Connected.
   */
  featureCtrlRing: 'feature-ctrl-ring',
  ctrlRingRef: 'ctrl-ring-ref',
  eventChannelCtrl: 'event-channel-ctrl',
  /**
   * Features (io/netif.h "Feature and Parameter Negotiation"): each end
   * writes its own in its own directory and reads the other's. Absent reads
   * as 0, except feature-no-csum-offload's opposite (IPv4 checksum offload
   * is assumed on unless the frontend writes feature-no-csum-offload = 1).
   */
  featureSg: 'feature-sg',
  featureGsoTcpv4: 'feature-gso-tcpv4',
  featureGsoTcpv6: 'feature-gso-tcpv6',
  featureIpv6CsumOffload: 'feature-ipv6-csum-offload',
  featureNoCsumOffload: 'feature-no-csum-offload',
  featureRxCopy: 'feature-rx-copy',
  featureRxFlip: 'feature-rx-flip',
  featureRxNotify: 'feature-rx-notify',
  featureSplitEventChannels: 'feature-split-event-channels',
  /**
   * Multicast control: the backend offers to drop multicast frames the
   * frontend did not list (MCAST_ADD/DEL extra-info requests), and to let it
   * turn that on and off at any time (dynamic); the frontend asks for it with
   * request-multicast-control, which the backend watches.
   */
  featureMulticastControl: 'feature-multicast-control',
  featureDynamicMulticastControl: 'feature-dynamic-multicast-control',
  requestMulticastControl: 'request-multicast-control',
  /**
   * The vif's TX rate limit, "BYTES,USEC" (BYTES of credit every USEC
   * microseconds): written by the toolstack in the backend directory (xl's
   * rate=10Mb/s@20ms becomes "25000,20000"), read at connect and watched by
   * netback. Absent or malformed: unlimited.
   */
  rate: 'rate',
  accel: 'accel',
  /**
   * A vif's accelerator quotas (the 2007 accelerator's): written by the
   * toolstack in the backend directory (from the topology's limits, or `xsim
   * dev set`), read and watched by the plugin's backend in dom0.
   */
  limits: 'limits',
  /** Flow filters the vif may hold on the NIC at once. */
  maxFilters: 'limits/max-filters',
  /** Pages of the guest's DMA area the NIC may register for the vif. */
  maxBufPages: 'limits/max-buf-pages',
} as const;

/** The directory of queue `q`'s keys under a frontend with several queues ("queue-0", ...). */
export function queueDir(q: number): string {
  return `queue-${q}`;
}

/** What the toolstack's vif hotplug script writes to hotplug-status when the vif is on its bridge. */
export const HOTPLUG_CONNECTED = 'connected';

/**
 * feature-* keys each end publishes, with the values xsim's drivers write by
 * default. Only what xsim does is claimed: TCPv4 GSO (each driver's
 * parameter may turn it off), no TCPv6 GSO and no IPv6 checksum offload (0
 * where Linux writes 1: xsim has no IPv6); IPv4 checksum offload is on, as
 * Linux's (netfront writes feature-no-csum-offload = 1 only with it switched
 * off); no multi-queue or control ring (not written);
 * netback's multicast control is Linux's (static and dynamic).
 * feature-sg and feature-split-event-channels follow each driver's
 * parameters (netback's separate_tx_rx_irq, as Linux's).
 */
export const BACKEND_FEATURES: Readonly<Record<string, string>> = {
  [VIF_KEY.featureSg]: '1',
  [VIF_KEY.featureGsoTcpv4]: '1',
  [VIF_KEY.featureGsoTcpv6]: '0',
  [VIF_KEY.featureIpv6CsumOffload]: '0',
  [VIF_KEY.featureRxCopy]: '1',
  [VIF_KEY.featureRxFlip]: '0',
  [VIF_KEY.featureSplitEventChannels]: '1',
  [VIF_KEY.featureMulticastControl]: '1',
  [VIF_KEY.featureDynamicMulticastControl]: '1',
  [VIF_KEY.featureCtrlRing]: '1',
};
export const FRONTEND_FEATURES: Readonly<Record<string, string>> = {
  [VIF_KEY.featureRxNotify]: '1',
  [VIF_KEY.featureSg]: '1',
  [VIF_KEY.featureGsoTcpv4]: '1',
  [VIF_KEY.featureGsoTcpv6]: '0',
  [VIF_KEY.featureIpv6CsumOffload]: '0',
};

/**
 * A node as Linux's xenbus_scanf("%u") reads it: optional leading white
 * space and sign, then digits up to the first non-digit ("5x" is 5), the
 * value modulo 2^32 (a minus sign negates it modulo 2^32, as the kernel's
 * vsscanf does). Undefined when the node is absent or starts with no digit.
 */
export function scanUnsigned(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*([+-]?)(\d+)/.exec(v);
  if (!m) return undefined;
  const n = Number(BigInt(m[2]) % 0x1_0000_0000n);
  return m[1] === '-' ? (0x1_0000_0000 - n) % 0x1_0000_0000 : n;
}

/** xenbus_read_unsigned: scanUnsigned, or `def` when that finds no number. */
export function readUnsigned(v: string | undefined, def: number): number {
  return scanUnsigned(v) ?? def;
}

export function parseState(value: string | undefined): XenbusState {
  if (value === undefined || !/^\d$/.test(value)) return XenbusState.Unknown;
  const n = Number(value);
  return n >= 0 && n <= 8 ? (n as XenbusState) : XenbusState.Unknown;
}

export const STATE_NAMES: readonly string[] = [
  'Unknown',
  'Initialising',
  'InitWait',
  'Initialised',
  'Connected',
  'Closing',
  'Closed',
  'Reconfiguring',
  'Reconfigured',
];

export function stateName(s: number): string {
  return STATE_NAMES[s] ?? `state ${s}`;
}

/** The xenstore calls a driver makes (XenstoreClient has them; in-process tests pass a store of their own). */
export interface XsLike {
  read(path: string, tx?: number): string;
  tryRead(path: string, tx?: number): string | undefined;
  write(path: string, value: string, tx?: number): void;
  rm(path: string, tx?: number): void;
  directory(path: string, tx?: number): string[];
  watch(path: string, token: string, cb: (path: string, token: string) => void): void;
  unwatch(path: string, token: string): void;
  transactionStart(): number;
  transactionEnd(tx: number, commit: boolean): boolean;
}
