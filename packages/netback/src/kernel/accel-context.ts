/**
 * What dom0 gives an accelerator plugin's backend (its AccelBackendContext,
 * less the per-plugin send/detached the manager adds): MCDI to this host's
 * NIC, its free VIs, grant mapping of guests' pages, the guests' interrupt
 * bindings for the NIC, and the NIC's wake line.
 */
import type { EventChannels, GrantOps, McdiOps, RpcEndpoint } from '@xsim/hypervisor';
import type { Driverlink } from '@xsim/nic';
import type { HostContext } from '../accel-held.ts';

export interface AccelContextDeps {
  dom0: number;
  driverlink: Driverlink;
  mcdi: RpcEndpoint<McdiOps> | undefined;
  /** Guest VIs of the NIC (1..vis-1): VI 0 is dom0's. */
  vis: number;
  ops: GrantOps;
  evtchn: EventChannels;
  uplinkMacs(): number[];
  log(msg: string): void;
}

export function accelContext(d: AccelContextDeps): HostContext {
  // A queue, not a stack: a VI freed goes to the back, so the next attachment takes the one free
  // longest (whatever handles an old owner kept point at a VI that stays idle as long as possible).
  const freeVis: number[] = [];
  for (let v = 1; v < d.vis; v++) freeVis.push(v);
  const mcdi = (): RpcEndpoint<McdiOps> => {
    if (!d.mcdi) throw new Error('this host has no NIC');
    return d.mcdi;
  };
  return {
    nic: () => d.driverlink.nic(),
    dom0: d.dom0,
    mcdi: (op, args) => mcdi().requestSync(op, args),
    mcdiShared: (op, args, shared) => mcdi().requestSyncShared(op, args, 10_000, shared),
    allocVi: () => (d.mcdi ? (freeVis.shift() ?? null) : null),
    freeVi: (vi) => {
      if (vi >= 1 && vi < d.vis && !freeVis.includes(vi)) freeVis.push(vi);
    },
    deviceIrq: (domid, port) => d.evtchn.deviceIrq(domid, port),
    mapGrants: (gdom, grefs) => {
      const handles: number[] = [];
      const frames: number[] = [];
      for (const g of grefs) {
        const m = d.ops.map(gdom, g, false);
        if (m.status !== 0) {
          for (const h of handles) d.ops.unmap(h);
          return `cannot map gref ${g} of domain ${gdom}: status ${m.status}`;
        }
        handles.push(m.handle);
        frames.push(m.frame);
      }
      return { frames, handles };
    },
    unmapGrants: (handles) => {
      for (const h of handles) d.ops.unmap(h);
    },
    uplinkMacs: () => d.uplinkMacs(),
    log: (m) => d.log(m),
  };
}
