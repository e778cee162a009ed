/**
 * The virtio NIC's admin commands from its dom0 (@xsim/hypervisor's
 * abi/vdpa.ts: VDPA_OPS names each and checks its arguments once, before
 * they reach the device here), over the privileged channel only dom0 holds.
 * fn_start takes the function's interrupt beside the message (shared: its
 * binding and the driver domain's doorbell) and answers with the notify area
 * made for the attachment.
 */
import { RpcOpServer, VDPA_OPS, WithShared, type OpHandlers, type RpcValue, type VdpaOp, type VdpaOps } from '@xsim/hypervisor';
import type { VqNic } from './vq-nic.ts';

export function vdpaHandlers(nic: VqNic): OpHandlers<VdpaOps> {
  return {
    iotlb_map: (a) => nic.iotlbMap(a.fn, a.domid, a.iova, a.frames),
    iotlb_unmap: (a) => nic.iotlbUnmap(a.fn, a.iova, a.count),
    fn_start: (a, { shared }) => {
      const irq = a.irq === true && shared.length >= 2 ? { binding: shared[0], doorbell: shared[1] } : null;
      return new WithShared(true, [nic.fnStart(a.fn, a.domid, a.rx, a.tx, irq, a.macs, a.features ?? 0)]);
    },
    fn_stop: (a) => nic.fnStop(a.fn, a.count !== false),
    steer_add: (a) => {
      if (!nic.fn(a.fn).running) throw new Error(`function ${a.fn} is not running (fn_start it first; a faulted or stopped function takes no rule)`);
      return nic.filters.insert(a.fn, a.match, a.ageMs ?? 0);
    },
    steer_del: (a) => nic.filters.remove(a.id),
    steer_list: () => nic.filters.list(),
    steer_hits: (a) => nic.filters.hitsOf(a.ids),
    fn_stats: (a) => {
      const f = nic.fn(a.fn);
      return { ...f.c, running: f.running, fault: f.faultReason, pages: nic.iommu.mapped(f.id) };
    },
    dev_stats: () => nic.stats(),
    link_set: (a) => {
      nic.linkUp = a.up;
      return nic.linkUp;
    },
    dev_reset: () => nic.reset(),
    mtu_set: (a) => {
      nic.setMtu(a.mtu);
      return nic.spec.mtu;
    },
  };
}

export function vdpaServer(nic: VqNic, log?: (line: string) => void): RpcOpServer<VdpaOps> {
  return new RpcOpServer('vdpa admin', VDPA_OPS, vdpaHandlers(nic), { log });
}

/** One admin command, in process (tests drive the device this way). */
export function handleVdpa(nic: VqNic, op: VdpaOp, raw: RpcValue, shared: readonly SharedArrayBuffer[] = []): RpcValue {
  return vdpaServer(nic).call(op, raw, shared);
}
