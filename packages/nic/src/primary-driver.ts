/**
 * What dom0's two primary drivers (net-driver.ts for the VI NIC,
 * vq-net-driver.ts for the virtio NIC) share: the link, MTU and driverlink
 * vetoes their stats show, and letting function 0 go at shutdown.
 */
import type { EventChannels } from '@xsim/hypervisor';
import type { Driverlink } from './driverlink.ts';

/** The part of a primary driver's stats that does not depend on its queue design. */
export function primaryStats(d: { linkUp: boolean; mtu: number }, dl: Driverlink | undefined) {
  return { linkUp: d.linkUp, mtu: d.mtu, vetoedRx: dl?.c.vetoedRx ?? 0, vetoedTx: dl?.c.vetoedTx ?? 0 };
}

/** Stop function 0 at the NIC (`stop`), then close its interrupt port; either may already be gone at shutdown. */
export function releasePrimary(stop: () => void, evtchn: EventChannels, port: number): void {
  try {
    stop();
  } catch {
    // The NIC may already be gone at shutdown; nothing left to undo on our side.
  }
  try {
    evtchn.close(port);
  } catch {
    // Likewise the hypervisor.
  }
}
