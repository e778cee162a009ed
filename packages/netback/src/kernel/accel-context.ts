/**
 * What dom0 gives an accelerator plugin's backend (its AccelBackendContext,
 * less the per-plugin send/detached the manager adds): the admin channel to
 * this host's NIC (MCDI to the VI NIC, the vDPA ops to the virtio NIC), its
 * free VIs or functions, grant mapping of guests' pages, the guests'
 * interrupt bindings for the NIC, and the NIC's wake line.
 */
import type { EventChannels, GrantOps, McdiOps, RpcEndpoint, VdpaOps } from '@xsim/hypervisor';
import type { Driverlink } from '@xsim/nic';
import type { HostContext } from '../accel-held.ts';
import type { NicAdminChannel } from '../nic-admin.ts';

export interface AccelContextDeps {
  dom0: number;
  driverlink: Driverlink;
  /** The NIC's admin channel, by model; undefined on a host without a NIC. */
  admin: NicAdminChannel | undefined;
  /** Guest VIs (virtio: functions) of the NIC (1..vis-1): 0 is dom0's. */
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
  const mcdi = (op: string): RpcEndpoint<McdiOps> => {
    const a = admin(d, op, 'vi');
    if (a.model !== 'vi') throw new Error(wrongModel(d, `mcdi('${op}')`, 'the virtio model: its commands go through ctx.vdpa (VDPA_OPS)'));
    return a.mcdi;
  };
  const vdpa = (op: string): RpcEndpoint<VdpaOps> => {
    const a = admin(d, op, 'virtio');
    if (a.model !== 'virtio') throw new Error(wrongModel(d, `vdpa('${op}')`, 'the VI model: its commands go through ctx.mcdi (MCDI_OPS)'));
    return a.vdpa;
  };
  return {
    nic: () => d.driverlink.nic(),
    dom0: d.dom0,
    mcdi: (op, args) => mcdi(op).requestSync(op, args),
    mcdiShared: (op, args, shared) => mcdi(op).requestSyncShared(op, args, 10_000, shared),
    vdpa: (op, args) => vdpa(op).requestSync(op, args),
    vdpaShared: (op, args, shared) => vdpa(op).requestSyncShared(op, args, 10_000, shared),
    allocVi: () => (d.admin ? (freeVis.shift() ?? null) : null),
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

function admin(d: AccelContextDeps, op: string, model: NicAdminChannel['model']): NicAdminChannel {
  if (!d.admin) throw new Error(`ctx.${model === 'vi' ? 'mcdi' : 'vdpa'}('${op}'): this host has no NIC`);
  return d.admin;
}

/** Why a plugin's call does not fit the host's NIC: it names the NIC's alias and the call that fits. */
function wrongModel(d: AccelContextDeps, call: string, what: string): string {
  return `ctx.${call}: this host's NIC ${d.driverlink.nic().alias} is ${what}`;
}
