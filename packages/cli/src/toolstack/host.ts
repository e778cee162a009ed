/**
 * Everything the toolstack builds for one host before its domains start:
 * each domain's RAM and grant table, the host's event-channel state, its
 * xenstore, the NIC's VI memory, and the xenstore nodes libxl would write
 * for every vif (frontend and backend directories with their permissions).
 */
import {
  EventChannelBus,
  GrantTable,
  GuestMemory,
  WakeWord,
  XenstoreServer,
} from '@xsim/hypervisor';
import { createNicResources, type NicResources } from '@xsim/nic';
import type { HostSpec } from '../topo/index.ts';
import { parseMac } from '../topo/index.ts';

export interface DomainMemory {
  domid: number;
  name: string;
  mem: GuestMemory;
  gnttab: GrantTable;
  wake: WakeWord;
  wakeOffset: number;
}

export interface HostResources {
  spec: HostSpec;
  index: number;
  evtchn: SharedArrayBuffer;
  xenstore: XenstoreServer;
  dom0: DomainMemory;
  domUs: DomainMemory[];
  nic: NicResources;
}

function domainMemory(evtchn: SharedArrayBuffer, domid: number, name: string, pages: number): DomainMemory {
  EventChannelBus.addDomain(evtchn, domid);
  const wakeOffset = EventChannelBus.wakeOffset(evtchn, domid);
  return { domid, name, mem: GuestMemory.allocate(pages), gnttab: GrantTable.create(), wake: new WakeWord(evtchn, wakeOffset), wakeOffset };
}

export function buildHost(spec: HostSpec, index: number): HostResources {
  const evtchn = EventChannelBus.create();
  const dom0 = domainMemory(evtchn, 0, 'Domain-0', spec.dom0.memPages ?? 4096);
  const domUs = spec.domUs.map((d, i) => domainMemory(evtchn, d.domid ?? i + 1, d.name, d.memPages ?? 1024));
  const xenstore = new XenstoreServer();
  const nic = createNicResources({
    name: `${spec.name}-nic`,
    host: spec.name,
    mac: parseMac(spec.nic.mac),
    mtu: spec.nic.mtu ?? 1500,
    vendor: spec.nic.vendor,
    device: spec.nic.device,
    vis: spec.nic.vis ?? 64,
  });
  const host: HostResources = { spec, index, evtchn, xenstore, dom0, domUs, nic };
  writeXenstore(host);
  return host;
}

/** The nodes libxl creates: domain directories, then per vif a frontend and a backend directory. */
function writeXenstore(h: HostResources): void {
  const xs = h.xenstore;
  xs.write(0, '/local/domain/0/name', 'Domain-0');
  xs.write(0, '/local/domain/0/domid', '0');
  h.spec.domUs.forEach((spec, i) => {
    const d = h.domUs[i].domid;
    const dom = `/local/domain/${d}`;
    xs.write(0, `${dom}/name`, spec.name);
    xs.write(0, `${dom}/domid`, String(d));
    xs.setPerms(0, dom, [{ domid: d, perm: 'n' }]);
    xs.mkdir(0, `${dom}/device/vif`);
    xs.setPerms(0, `${dom}/device`, [{ domid: d, perm: 'n' }]);
    xs.setPerms(0, `${dom}/device/vif`, [{ domid: d, perm: 'n' }]);
    spec.vifs.forEach((vif, n) => {
      const fe = `${dom}/device/vif/${n}`;
      const be = `/local/domain/0/backend/vif/${d}/${n}`;
      // Permissions go on each directory before its keys: new nodes inherit them.
      // dom0 owns the backend; the guest may read it (to follow the backend state).
      xs.mkdir(0, be);
      xs.setPerms(0, be, [{ domid: 0, perm: 'n' }, { domid: d, perm: 'r' }]);
      // The guest owns its frontend directory; dom0 may read it.
      xs.mkdir(0, fe);
      xs.setPerms(0, fe, [{ domid: d, perm: 'n' }, { domid: 0, perm: 'r' }]);
      xs.write(0, `${fe}/backend`, be);
      xs.write(0, `${fe}/backend-id`, '0');
      xs.write(0, `${fe}/handle`, String(n));
      xs.write(0, `${fe}/mac`, vif.mac);
      xs.write(0, `${fe}/state`, '1');
      // Backend keys last, state last of all: netback acts once it sees a state.
      xs.write(0, `${be}/frontend`, fe);
      xs.write(0, `${be}/frontend-id`, String(d));
      xs.write(0, `${be}/handle`, String(n));
      xs.write(0, `${be}/mac`, vif.mac);
      xs.write(0, `${be}/ip`, vif.ip);
      xs.write(0, `${be}/bridge`, 'xenbr0');
      xs.write(0, `${be}/online`, '1');
      xs.write(0, `${be}/state`, '1');
    });
  });
}
