/**
 * MCDI: the management commands dom0's drivers send the NIC, over a msgpackr
 * channel that only dom0 holds. Guests never get one, so they can never
 * program filters or the buffer table.
 */
import { WithShared, type RpcValue } from '@xsim/hypervisor';
import type { FilterMatch } from './filter-table.ts';
import type { HwNic } from './hw-nic.ts';

export type McdiOp =
  | 'vi_init'
  | 'vi_fini'
  | 'buffer_table_alloc'
  | 'buffer_table_free'
  | 'filter_insert'
  | 'filter_remove'
  | 'filter_list'
  | 'vi_stats'
  | 'nic_stats'
  | 'link_set'
  | 'nic_reset'
  | 'mtu_set';

type Args = Record<string, unknown>;

function int(a: Args, k: string): number {
  const v = a[k];
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`MCDI: argument ${k} must be an integer, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * One MCDI command from this NIC's dom0. vi_init takes the VI's device
 * interrupt beside the message (shared: its binding and the driver domain's
 * doorbell) and answers with the attachment's doorbell beside the reply.
 */
export function handleMcdi(nic: HwNic, op: string, raw: RpcValue, shared: readonly SharedArrayBuffer[] = []): RpcValue {
  const a = (raw === null || typeof raw !== 'object' ? {} : raw) as Args;
  switch (op as McdiOp) {
    case 'vi_init': {
      const macs = a.macs;
      if (macs !== null && macs !== undefined && (!Array.isArray(macs) || macs.some((m) => !Number.isInteger(m) || m < 0 || m >= 2 ** 48))) throw new Error('MCDI vi_init: macs must be null or a list of 48-bit MACs');
      const irq = a.irq === true && shared.length >= 2 ? { binding: shared[0], doorbell: shared[1] } : null;
      const doorbell = nic.viInit(int(a, 'vi'), int(a, 'domid'), int(a, 'rings'), irq, (macs as number[] | null | undefined) ?? null);
      return new WithShared(true, [doorbell]);
    }
    case 'vi_fini':
      return nic.viFini(int(a, 'vi'), a.count !== false);
    case 'buffer_table_alloc': {
      const frames = a.frames as number[];
      if (!Array.isArray(frames) || frames.length === 0 || frames.length > 65536 || frames.some((f) => !Number.isInteger(f) || f < 0)) throw new Error('MCDI buffer_table_alloc: frames must be 1..65536 frame numbers');
      return nic.buffers.alloc(int(a, 'vi'), int(a, 'domid'), frames);
    }
    case 'buffer_table_free':
      nic.buffers.free(int(a, 'vi'), int(a, 'base'), int(a, 'count'));
      return true;
    case 'filter_insert': {
      const vi = int(a, 'vi');
      nic.vi(vi);
      return nic.filters.insert(vi, a.match as FilterMatch);
    }
    case 'filter_remove':
      return nic.filters.remove(int(a, 'id'));
    case 'filter_list':
      return nic.filters.list();
    case 'vi_stats': {
      const v = nic.vi(int(a, 'vi'));
      return { ...v.c, running: v.running, fault: v.faultReason, buffers: nic.buffers.entries(v.id) };
    }
    case 'nic_stats':
      return nic.stats();
    case 'link_set':
      nic.linkUp = a.up === true;
      return nic.linkUp;
    case 'nic_reset':
      return nic.reset();
    case 'mtu_set':
      nic.setMtu(int(a, 'mtu'));
      return nic.spec.mtu;
    default:
      throw new Error(`MCDI: unknown command ${op}`);
  }
}
