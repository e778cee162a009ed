/**
 * Everything the toolstack builds for one host before its domains start:
 * each domain's RAM and grant table, the host's xenstored and hypervisor
 * (event-channel) service, and the xenstore nodes libxl would write for every
 * vif (frontend and backend directories with their permissions).
 */
import {
  EvtchnService,
  GrantTable,
  GuestMemory,
  VIF_KEY,
  XenbusState,
  HOTPLUG_CONNECTED,
  XenstoreServer,
  controlShutdownPath,
  deviceRoot,
  domainPath,
  hostServiceAddr,
  vifBackendPath,
  vifBackendRoot,
  vifFrontendPath,
  vifFrontendRoot,
  type Addr,
  type Bus,
  type PermEntry,
} from '@xsim/hypervisor';
import type { HostSpec, VifSpec } from './topo/index.ts';
import { parseXlRate, rateNode } from './topo/rate.ts';

export interface DomainMemory {
  domid: number;
  uid: Addr;
  name: string;
  mem: GuestMemory;
  gnttab: SharedArrayBuffer;
  pcpu: number;
}

export interface HostResources {
  spec: HostSpec;
  index: number;
  xenstore: XenstoreServer;
  hv: EvtchnService;
  dom0: DomainMemory;
  domUs: DomainMemory[];
  /** A guest's vif handles in the order of its spec's vifs, once a vif was hot-added or removed (else the indices). */
  handles: Map<number, number[]>;
}

export function domainMemory(domid: number, uid: Addr, name: string, pages: number, pcpu: number): DomainMemory {
  return { domid, uid, name, mem: GuestMemory.allocate(pages), gnttab: GrantTable.create().sab, pcpu };
}

export function buildHost(bus: Bus, spec: HostSpec, index: number, uids: () => Addr, dom0Pcpu: number, guestPcpus: number[]): HostResources {
  const addr = hostServiceAddr(index);
  const xenstore = new XenstoreServer(bus, addr);
  const hv = new EvtchnService(bus, addr);
  const dom0 = domainMemory(0, uids(), 'Domain-0', spec.dom0.memPages, dom0Pcpu);
  const domUs = spec.domUs.map((d, i) => domainMemory(d.domid, uids(), d.name, d.memPages, guestPcpus[i]));
  const host: HostResources = { spec, index, xenstore, hv, dom0, domUs, handles: new Map() };
  xenstore.write(0, `${domainPath(0)}/name`, 'Domain-0');
  xenstore.write(0, `${domainPath(0)}/domid`, '0');
  runHotplugScripts(xenstore);
  return host;
}

/**
 * The vif hotplug script, as libxl runs it: once a vif's backend reaches
 * InitWait (netback made the device), "put it on the bridge" and write
 * hotplug-status = connected, which netback waits for before it connects.
 * (Here netback itself joins the bridge when it connects; the script's part is
 * the handshake.)
 */
function runHotplugScripts(xs: XenstoreServer): void {
  const stateKey = `/${VIF_KEY.state}`;
  xs.watch(vifBackendRoot(0), 'hotplug-scripts', (path) => {
    if (!path.endsWith(stateKey) || xs.read(0, path) !== String(XenbusState.InitWait)) return;
    const dir = path.slice(0, -stateKey.length);
    // Not inside the write that fired us: the script runs after it.
    queueMicrotask(() => {
      if (xs.read(0, `${dir}/${VIF_KEY.hotplugStatus}`) === '') xs.write(0, `${dir}/${VIF_KEY.hotplugStatus}`, HOTPLUG_CONNECTED);
    });
  });
}

/**
 * The nodes libxl creates for a new domain (libxl__domain_make, then
 * libxl__build_post's domid), with libxl's permissions: the home directory
 * and what describes the domain are dom0's, readable by the guest (n0,rN),
 * so a guest cannot rename itself; the directories a guest writes into are
 * its own (nN): control/shutdown and its feature flags, data, drivers,
 * feature, attr and error (where a frontend reports a failed probe). device
 * stays (n0,rN): each device's frontend directory is the guest's
 * (writeVifNodes).
 */
export function writeDomainNodes(xs: XenstoreServer, domid: number, name: string): void {
  const dom = domainPath(domid);
  const roperm: PermEntry[] = [
    { domid: 0, perm: 'n' },
    { domid, perm: 'r' },
  ];
  const rwperm: PermEntry[] = [{ domid, perm: 'n' }];
  // libxl__xs_mknod: the node, then its permissions (the keys written under it inherit them).
  const mknod = (path: string, perms: PermEntry[]): void => {
    xs.mkdir(0, path);
    xs.setPerms(0, path, perms);
  };
  mknod(dom, roperm);
  xs.write(0, `${dom}/name`, name);
  xs.write(0, `${dom}/domid`, String(domid));
  mknod(deviceRoot(domid), roperm);
  // libxl makes device/vif with the first vif; made here at once, as the drivers have always found it.
  xs.mkdir(0, vifFrontendRoot(domid));
  // control/shutdown is where xl shutdown asks the guest to power off; the guest may acknowledge by writing it.
  mknod(`${dom}/control`, roperm);
  for (const k of [controlShutdownPath(domid), ...['feature-poweroff', 'feature-reboot', 'feature-suspend', 'sysrq'].map((f) => `${dom}/control/${f}`)])
    mknod(k, rwperm);
  xs.write(0, `${dom}/control/platform-feature-multiprocessor-suspend`, '1');
  xs.write(0, `${dom}/control/platform-feature-xs_reset_watches`, '1');
  for (const d of ['data', 'drivers', 'feature', 'attr', 'error']) mknod(`${dom}/${d}`, rwperm);
}

/** The nodes libxl creates for a vif: a frontend directory the guest owns, a backend directory dom0 owns. */
export function writeVifNodes(xs: XenstoreServer, domid: number, handle: number, vif: VifSpec, mtu?: number): void {
  const fe = vifFrontendPath(domid, handle);
  const be = vifBackendPath(0, domid, handle);
  // Permissions go on each directory before its keys: new nodes inherit them.
  // dom0 owns the backend; the guest may read it (to follow the backend state).
  xs.mkdir(0, be);
  xs.setPerms(0, be, [
    { domid: 0, perm: 'n' },
    { domid, perm: 'r' },
  ]);
  // The guest owns its frontend directory; dom0 may read it.
  xs.mkdir(0, fe);
  xs.setPerms(0, fe, [
    { domid, perm: 'n' },
    { domid: 0, perm: 'r' },
  ]);
  xs.write(0, `${fe}/${VIF_KEY.backend}`, be);
  xs.write(0, `${fe}/${VIF_KEY.backendId}`, '0');
  xs.write(0, `${fe}/${VIF_KEY.handle}`, String(handle));
  xs.write(0, `${fe}/${VIF_KEY.mac}`, vif.mac);
  // The guest's address (what DHCP would give it): a vif plugged at run time configures its stack from it.
  xs.write(0, `${fe}/${VIF_KEY.ip}`, vif.ip);
  xs.write(0, `${fe}/${VIF_KEY.state}`, String(XenbusState.Initialising));
  // Backend keys last, state last of all: netback acts once it sees a state.
  xs.write(0, `${be}/${VIF_KEY.frontend}`, fe);
  xs.write(0, `${be}/${VIF_KEY.frontendId}`, String(domid));
  xs.write(0, `${be}/${VIF_KEY.handle}`, String(handle));
  xs.write(0, `${be}/${VIF_KEY.mac}`, vif.mac);
  xs.write(0, `${be}/${VIF_KEY.ip}`, vif.ip);
  xs.write(0, `${be}/${VIF_KEY.bridge}`, 'xenbr0');
  xs.write(0, `${be}/${VIF_KEY.online}`, '1');
  if (mtu !== undefined) xs.write(0, `${be}/${VIF_KEY.mtu}`, String(mtu));
  // The accelerator's quotas for this vif (the topology's limits): the plugin's backend reads and watches them.
  if (vif.limits?.maxFilters !== undefined) xs.write(0, `${be}/${VIF_KEY.maxFilters}`, String(vif.limits.maxFilters));
  if (vif.limits?.maxBufPages !== undefined) xs.write(0, `${be}/${VIF_KEY.maxBufPages}`, String(vif.limits.maxBufPages));
  // The vif's rate limit, as libxl writes xl's rate=: "BYTES,USEC" (netback reads it at connect and watches it).
  if (vif.rate !== undefined) xs.write(0, `${be}/${VIF_KEY.rate}`, rateNode(parseXlRate(vif.rate)));
  // Empty until the hotplug script has run: netback waits for "connected" (libxl does the same).
  xs.write(0, `${be}/${VIF_KEY.hotplugStatus}`, '');
  xs.write(0, `${be}/${VIF_KEY.state}`, String(XenbusState.Initialising));
}

/** Whether a vif's frontend and backend (or only its frontend) are in `state` now. */
export function vifAt(xs: XenstoreServer, domid: number, handle: number, state: XenbusState, ends: 'both' | 'frontend' = 'both'): boolean {
  const st = vifStates(xs, domid, handle);
  return st.frontend === String(state) && (ends === 'frontend' || st.backend === String(state));
}

/** Remove a subtree if it is there: the toolstack's cleanup, safe to repeat. */
export function rmTree(xs: XenstoreServer, path: string): void {
  if (xs.directory(0, path) !== undefined) xs.rm(0, path);
}

/** A vif's two states as xenstore has them now. */
export function vifStates(xs: XenstoreServer, domid: number, handle: number): { frontend: string | undefined; backend: string | undefined } {
  return {
    frontend: xs.read(0, `${vifFrontendPath(domid, handle)}/${VIF_KEY.state}`),
    backend: xs.read(0, `${vifBackendPath(0, domid, handle)}/${VIF_KEY.state}`),
  };
}
