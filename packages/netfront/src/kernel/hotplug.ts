/**
 * Hotplug: the toolstack writes a new vif's frontend directory (xl
 * network-attach) or removes a closed one's (network-detach); like Linux's
 * xenbus frontend, the kernel watches the device directory and probes or
 * removes. A probe that fails is xenbus_dev_fatal: the reason goes where the
 * toolstack looks, the device is Closed, and the guest carries on without it.
 */
import { VIF_KEY, XenbusState, vifErrorPath, vifFrontendPath, vifFrontendRoot } from '@xsim/hypervisor';
import type { GuestParts } from './compose.ts';
import { probe, remove } from './probe.ts';

export function watchHotplug(k: GuestParts): void {
  const { xs, domid, devices, log } = k;
  const vifRoot = vifFrontendRoot(domid);
  /** Handles whose probe failed: not retried until the toolstack removes the node. */
  const failed = new Set<number>();
  xs.watch(vifRoot, 'vif-hotplug', (path) => {
    // Our own writes under a device we run (its state, rings, features) need no look at the directory.
    const m = /^\/(\d+)(\/.*)?$/.exec(path.slice(vifRoot.length));
    if (m && m[2] !== undefined && (m[2] !== `/${VIF_KEY.state}` || devices.some((d) => d.nf.handle === Number(m[1])))) return;
    const handles = new Set((xs.tryRead(vifRoot) === undefined ? [] : xs.directory(vifRoot)).map(Number));
    for (const d of [...devices]) if (!handles.has(d.nf.handle)) remove(k, d);
    for (const h of [...failed]) if (!handles.has(h)) failed.delete(h);
    for (const h of handles) {
      if (devices.some((d) => d.nf.handle === h) || failed.has(h)) continue;
      const fe = vifFrontendPath(domid, h);
      const mac = xs.tryRead(`${fe}/${VIF_KEY.mac}`);
      const ip = xs.tryRead(`${fe}/${VIF_KEY.ip}`);
      // Wait until the toolstack has written the whole directory (the state key comes last).
      if (mac === undefined || ip === undefined || xs.tryRead(`${fe}/${VIF_KEY.state}`) === undefined) continue;
      const be = xs.tryRead(`${fe}/${VIF_KEY.backend}`);
      const cfgMtu = k.env.config.mtu;
      const mtu = Number((be !== undefined ? xs.tryRead(`${be}/${VIF_KEY.mtu}`) : undefined) ?? cfgMtu);
      try {
        probe(k, { handle: h, mac, ip, mtu: Number.isInteger(mtu) && mtu >= 68 && mtu <= cfgMtu ? mtu : cfgMtu });
        log(`vif${h} plugged: ${mac} ${ip}`);
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        log(`vif${h}: probe failed: ${why}`);
        xs.write(vifErrorPath(domid, h), `probe failed: ${why}`);
        xs.write(`${fe}/${VIF_KEY.state}`, String(XenbusState.Closed));
        failed.add(h);
      }
    }
  });
}
