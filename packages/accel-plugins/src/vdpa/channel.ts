/**
 * The virtio NIC's admin commands as the vdpa backend sends them: the
 * backend context's `vdpa` and `vdpaShared` (VDPA_OPS in @xsim/hypervisor),
 * dom0's channel to the device as `mcdi` is to the VI NIC. A context without
 * them (a netback that predates the virtio NIC) gives none, and the backend
 * refuses the NIC in probe.
 */
import type { OpArgs, OpReply, VdpaOp, VdpaOps } from '@xsim/hypervisor';
import type { AccelBackendContext } from '@xsim/netback';

export interface VdpaChannel {
  /** One command, synchronous; throws `OP: REASON` when the device refuses it. */
  call<K extends VdpaOp>(op: K, args: OpArgs<VdpaOps, K>): OpReply<VdpaOps, K>;
  /** The same with shared memory beside it both ways (fn_start: the interrupt in, the notify area out). */
  callShared<K extends VdpaOp>(
    op: K,
    args: OpArgs<VdpaOps, K>,
    shared: SharedArrayBuffer[],
  ): { value: OpReply<VdpaOps, K>; shared: readonly SharedArrayBuffer[] };
}

/** What a context that speaks to the virtio NIC adds to AccelBackendContext. */
interface VdpaMembers {
  vdpa<K extends VdpaOp>(op: K, args: OpArgs<VdpaOps, K>): OpReply<VdpaOps, K>;
  vdpaShared<K extends VdpaOp>(
    op: K,
    args: OpArgs<VdpaOps, K>,
    shared: SharedArrayBuffer[],
  ): { value: OpReply<VdpaOps, K>; shared: readonly SharedArrayBuffer[] };
}

/** The context's vDPA channel, or null when it has none. */
export function vdpaChannel(ctx: AccelBackendContext): VdpaChannel | null {
  const c = ctx as AccelBackendContext & Partial<VdpaMembers>;
  if (typeof c.vdpa !== 'function' || typeof c.vdpaShared !== 'function') return null;
  return {
    call: (op, args) => c.vdpa!(op, args),
    callShared: (op, args, shared) => c.vdpaShared!(op, args, shared),
  };
}
