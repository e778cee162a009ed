/**
 * The vif device's xenstore protocol (io/netif.h's "Feature and Parameter
 * Negotiation" and io/xenbus.h), in one place: where the toolstack puts each
 * end's directory, the keys each end writes, and the XenbusState values. No
 * other module spells these paths or keys.
 *
 *   /local/domain/<domU>/device/vif/<n>/            frontend (owned by the guest)
 *       backend, backend-id, handle, mac, state      written by the toolstack
 *       tx-ring-ref, rx-ring-ref, event-channel,
 *       request-rx-copy, feature-*                   written by netfront
 *   /local/domain/<dom0>/backend/vif/<domU>/<n>/     backend (owned by dom0)
 *       frontend, frontend-id, handle, mac, ip,
 *       bridge, online, state, hotplug-status,
 *       limits/max-filters, limits/max-buf-pages     written by the toolstack
 *       feature-*, accel                             written by netback
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
  requestRxCopy: 'request-rx-copy',
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

/** What the toolstack's vif hotplug script writes to hotplug-status when the vif is on its bridge. */
export const HOTPLUG_CONNECTED = 'connected';

/** feature-* keys each end publishes, with the values xsim's drivers write. */
export const BACKEND_FEATURES: Readonly<Record<string, string>> = {
  'feature-sg': '1',
  'feature-gso-tcpv4': '0',
  'feature-rx-copy': '1',
  'feature-rx-flip': '0',
};
export const FRONTEND_FEATURES: Readonly<Record<string, string>> = {
  'feature-rx-notify': '1',
  'feature-sg': '1',
  'feature-gso-tcpv4': '0',
};

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
