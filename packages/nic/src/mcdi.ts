/**
 * MCDI: the management commands dom0's drivers send the NIC, over a msgpackr
 * channel that only dom0 holds. Guests never get one, so they can never
 * program filters or the buffer table. The commands and their arguments are
 * @xsim/hypervisor's abi/mcdi.ts (MCDI_OPS); each is checked there, once,
 * before it reaches the hardware here.
 */
import { MCDI_OPS, RpcOpServer, WithShared, declareCounters, type McdiOp, type McdiOps, type OpHandlers, type RpcValue } from '@xsim/hypervisor';
import type { HwNic } from './hw-nic.ts';

export type { McdiOp };

/**
 * The NIC's handler of each MCDI command from its dom0. vi_init takes the
 * VI's device interrupt beside the message (shared: its binding and the
 * driver domain's doorbell) and answers with the attachment's doorbell
 * beside the reply.
 */
export function mcdiHandlers(nic: HwNic): OpHandlers<McdiOps> {
  return {
    vi_init: (a, { shared }) => {
      const irq = a.irq === true && shared.length >= 2 ? { binding: shared[0], doorbell: shared[1] } : null;
      const doorbell = nic.viInit(a.vi, a.domid, a.rings, irq, a.macs, a.csum === true, a.tso === true);
      return new WithShared(true, [doorbell]);
    },
    vi_fini: (a) => nic.viFini(a.vi, a.count !== false),
    buffer_table_alloc: (a) => nic.bufferAlloc(a.vi, a.domid, a.frames),
    buffer_table_free: (a) => {
      nic.buffers.free(a.vi, a.base, a.count);
      return true;
    },
    filter_insert: (a) => {
      // A filter to a VI nobody drives would only drop what it steers (rxViDown): refused instead, naming why.
      if (!nic.vi(a.vi).running) throw new Error(`VI ${a.vi} is not running (vi_init it first; a faulted or finalised VI takes no filter)`);
      return nic.filters.insert(a.vi, a.match, a.ageMs ?? 0);
    },
    filter_remove: (a) => nic.filters.remove(a.id),
    filter_list: () => nic.filters.list(),
    filter_hits: (a) => nic.filters.hitsOf(a.ids),
    vi_stats: (a) => {
      const v = nic.vi(a.vi);
      return { ...v.c, running: v.running, fault: v.faultReason, buffers: nic.buffers.entries(v.id) };
    },
    nic_stats: () => nic.stats(),
    link_set: (a) => {
      nic.linkUp = a.up;
      return nic.linkUp;
    },
    nic_reset: () => nic.reset(),
    mtu_set: (a) => {
      nic.setMtu(a.mtu);
      return nic.spec.mtu;
    },
  };
}

/** The NIC's MCDI dispatcher: refusals (a malformed command) are counted on it and logged. */
/**
 * What the fabric's stats show of each NIC's MCDI server (control.mcdiRefused,
 * one per NIC). Stored by the server itself, the generic RpcOpServer's
 * `refused`, which counts its refusals on every control channel.
 */
export const MCDI_COUNTERS = declareCounters('nic MCDI', {
  mcdiRefused: { kind: 'event', help: 'MCDI commands a NIC refused at the boundary (unknown op, or arguments failing its schema: abi/mcdi.ts), per NIC' },
});

export function mcdiServer(nic: HwNic, log?: (line: string) => void): RpcOpServer<McdiOps> {
  return new RpcOpServer('MCDI', MCDI_OPS, mcdiHandlers(nic), { log });
}

/** One MCDI command, in process (tests drive the hardware this way). */
export function handleMcdi(nic: HwNic, op: McdiOp, raw: RpcValue, shared: readonly SharedArrayBuffer[] = []): RpcValue {
  return mcdiServer(nic).call(op, raw, shared);
}
