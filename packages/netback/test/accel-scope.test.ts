/**
 * A plugin's NIC commands are kept to what is its own (accel-scope.ts): its
 * VIs or virtio functions, the filters it inserted, the read-only views; the
 * device-wide administration (link, MTU, reset) is dom0's. One test per kind
 * of call a plugin has no business making.
 */
import { describe, expect, it } from 'vitest';
import type { EventChannels, GrantOps, McdiOps, RpcEndpoint, VdpaOps } from '@xsim/hypervisor';
import { Driverlink } from '@xsim/nic';
import { accelContext } from '../src/kernel/accel-context.ts';
import { trackedContext, type Held } from '../src/accel-held.ts';

/** A plugin's context over a NIC that records each command and answers filter inserts with ids 100, 101, … */
function rig(model: 'vi' | 'virtio') {
  const calls: string[] = [];
  let nextFilter = 100;
  const answer = (op: string, args: unknown) => {
    calls.push(`${op} ${JSON.stringify(args)}`);
    return op === 'filter_insert' || op === 'steer_add' ? nextFilter++ : true;
  };
  const ep = { requestSync: answer, requestSyncShared: (op: string, args: unknown) => ({ value: answer(op, args), shared: [] }) };
  const alias = model === 'vi' ? 'nic:1924-0803' : 'nic:1af4-1041';
  const host = accelContext({
    dom0: 0,
    driverlink: new Driverlink(() => ({ alias, mac: 1, mtu: 1500, vis: 8, linkUp: true })),
    admin: model === 'vi' ? { model, mcdi: ep as unknown as RpcEndpoint<McdiOps> } : { model, vdpa: ep as unknown as RpcEndpoint<VdpaOps> },
    vis: 8,
    ops: {} as GrantOps,
    evtchn: {} as EventChannels,
    uplinkMacs: () => [],
    log: () => {},
  });
  const held: Held = { vis: new Set(), handles: new Set(), filters: new Map() };
  const ctx = trackedContext(host, 'p', held, { send: () => {}, detached: () => {} });
  // Another plugin on the same host, holding a VI of its own.
  const otherHeld: Held = { vis: new Set(), handles: new Set(), filters: new Map() };
  const other = trackedContext(host, 'q', otherHeld, { send: () => {}, detached: () => {} });
  return { ctx, other, held, calls };
}

const match = { kind: 'ipv4' as const, proto: 17, addr: 0x0a000b01, port: 5001 };

describe("a plugin's NIC commands", () => {
  it.each(['link_set', 'mtu_set', 'nic_reset'] as const)("MCDI %s is dom0's administration: refused, nothing sent", (op) => {
    const { ctx, calls } = rig('vi');
    const args = op === 'link_set' ? { up: false } : op === 'mtu_set' ? { mtu: 1400 } : {};
    expect(() => ctx.mcdi(op, args as never)).toThrow(`plugin p: ctx.mcdi('${op}') is dom0's NIC administration (xsim mgmtdev set), not a plugin's: refused`);
    expect(calls).toEqual([]);
  });

  it("the virtio NIC's dev_reset, link_set and mtu_set likewise", () => {
    const { ctx, calls } = rig('virtio');
    expect(() => ctx.vdpa('dev_reset', {})).toThrow(/ctx.vdpa\('dev_reset'\) is dom0's NIC administration/);
    expect(() => ctx.vdpa('link_set', { up: false })).toThrow(/ctx.vdpa\('link_set'\) is dom0's/);
    expect(() => ctx.vdpa('mtu_set', { mtu: 1400 })).toThrow(/ctx.vdpa\('mtu_set'\) is dom0's/);
    expect(calls).toEqual([]);
  });

  it("a command about a VI it was not given (dom0's VI 0, another plugin's, one never allocated) is refused", () => {
    const { ctx, other, calls } = rig('vi');
    const mine = ctx.allocVi()!;
    const theirs = other.allocVi()!;
    expect(() => ctx.mcdi('vi_stats', { vi: 0 })).toThrow(
      `plugin p: ctx.mcdi('vi_stats'): VI 0 is not one it was given (ctx.allocVi gave it ${mine}): refused`,
    );
    expect(() => ctx.mcdi('vi_fini', { vi: theirs })).toThrow(`VI ${theirs} is not one it was given`);
    expect(() => ctx.mcdi('buffer_table_alloc', { vi: 7, domid: 1, frames: [1] })).toThrow('VI 7 is not one it was given');
    expect(() => ctx.mcdi('filter_insert', { vi: theirs, match })).toThrow(`VI ${theirs} is not one it was given`);
    expect(calls).toEqual([]);
    ctx.mcdi('vi_stats', { vi: mine });
    expect(calls).toEqual([`vi_stats {"vi":${mine}}`]);
  });

  it('on the virtio NIC, a function it was not given likewise (iotlb_map, fn_start, steer_add)', () => {
    const { ctx, calls } = rig('virtio');
    const fn = ctx.allocVi()!;
    expect(() => ctx.vdpa('iotlb_map', { fn: 0, domid: 1, iova: 0, frames: [1] })).toThrow('function 0 is not one it was given');
    const q = { size: 256, desc: 0, avail: 4096, used: 8192 };
    expect(() => ctx.vdpaShared('fn_start', { fn: fn + 1, domid: 1, rx: q, tx: q, macs: [1] }, [])).toThrow(`function ${fn + 1} is not one it was given`);
    expect(() => ctx.vdpa('steer_add', { fn: 0, match })).toThrow('function 0 is not one it was given');
    expect(calls).toEqual([]);
  });

  it('it may remove only filters it inserted; those its VI took with it are no longer its own', () => {
    const { ctx, other, held, calls } = rig('vi');
    const mine = ctx.allocVi()!;
    const theirs = other.allocVi()!;
    const a = ctx.mcdi('filter_insert', { vi: mine, match });
    const b = other.mcdi('filter_insert', { vi: theirs, match: { ...match, port: 5002 } });
    expect([a, b]).toEqual([100, 101]);
    expect(() => ctx.mcdi('filter_remove', { id: b })).toThrow(`plugin p: ctx.mcdi('filter_remove'): filter ${b} is not one it inserted: refused`);
    expect(() => ctx.mcdi('filter_remove', { id: 999 })).toThrow('filter 999 is not one it inserted');
    ctx.mcdi('filter_remove', { id: a });
    expect(() => ctx.mcdi('filter_remove', { id: a })).toThrow(`filter ${a} is not one it inserted`);
    const c = ctx.mcdi('filter_insert', { vi: mine, match });
    expect(held.filters).toEqual(new Map([[c, mine]]));
    ctx.mcdi('vi_fini', { vi: mine });
    expect(held.filters.size).toBe(0);
    expect(calls.filter((l) => l.startsWith('filter_remove'))).toEqual([`filter_remove {"id":${a}}`]);
  });

  it('read-only views of the whole NIC stay open to it', () => {
    const { ctx, calls } = rig('vi');
    ctx.mcdi('nic_stats', {});
    ctx.mcdi('filter_list', {});
    ctx.mcdi('filter_hits', { ids: [1, 2] });
    expect(calls.map((l) => l.split(' ')[0])).toEqual(['nic_stats', 'filter_list', 'filter_hits']);
  });
});
