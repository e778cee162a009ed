/**
 * dom0 on either NIC model (issue 19, item 3): NIC administration and the
 * plugin backend context speak MCDI to the VI NIC and the vDPA ops to the
 * virtio NIC (nic:1af4-1041), and a plugin's call that does not fit the
 * host's NIC is refused with the NIC's alias and the call that fits.
 */
import { describe, expect, it } from 'vitest';
import type { EventChannels, GrantOps, McdiOps, RpcEndpoint, VdpaOps } from '@xsim/hypervisor';
import { Driverlink, netDriverPages, vqNetDriverPages } from '@xsim/nic';
import { nicControl, type NicAdminChannel } from '../src/nic-admin.ts';
import { accelContext } from '../src/kernel/accel-context.ts';
import { releaseHeld } from '../src/accel-held.ts';
import { dom0MinPages, primaryDriverPages } from '../src/kernel/config.ts';

const VI_ALIAS = 'nic:1924-0803';
const VIRTIO_ALIAS = 'nic:1af4-1041';

/** An admin endpoint that records every request and answers `op:args`. */
function recorder<T extends McdiOps | VdpaOps>(calls: string[]): RpcEndpoint<T> {
  const rec = (op: string, args: unknown) => {
    calls.push(`${op} ${JSON.stringify(args)}`);
    return `${op} done`;
  };
  return {
    requestSync: rec,
    requestSyncShared: (op: string, args: unknown) => ({ value: rec(op, args), shared: [] }),
  } as unknown as RpcEndpoint<T>;
}

function channel(model: 'vi' | 'virtio', calls: string[]): NicAdminChannel {
  return model === 'vi' ? { model, mcdi: recorder<McdiOps>(calls) } : { model, vdpa: recorder<VdpaOps>(calls) };
}

function context(model: 'vi' | 'virtio', calls: string[]) {
  const alias = model === 'vi' ? VI_ALIAS : VIRTIO_ALIAS;
  const driverlink = new Driverlink(() => ({ alias, mac: 1, mtu: 1500, vis: 4, linkUp: true }));
  const logs: string[] = [];
  const ctx = accelContext({
    dom0: 0,
    driverlink,
    admin: channel(model, calls),
    vis: 4,
    ops: {} as GrantOps,
    evtchn: {} as EventChannels,
    uplinkMacs: () => [],
    log: (m) => void logs.push(m),
  });
  return { ctx, logs };
}

describe('dom0 on either NIC model', () => {
  it('NIC administration: link_set, mtu_set and a reset go to MCDI on the VI NIC and to the vDPA ops on the virtio NIC', () => {
    for (const [model, reset] of [
      ['vi', 'nic_reset'],
      ['virtio', 'dev_reset'],
    ] as const) {
      const calls: string[] = [];
      const c = nicControl(channel(model, calls));
      c.linkSet(false);
      c.mtuSet(1400);
      expect(c.reset()).toBe(`${reset} done`);
      expect(calls).toEqual(['link_set {"up":false}', 'mtu_set {"mtu":1400}', `${reset} {}`]);
    }
  });

  it('ctx.vdpa reaches the virtio NIC; ctx.mcdi there is refused naming the NIC and ctx.vdpa', () => {
    const calls: string[] = [];
    const { ctx } = context('virtio', calls);
    expect(ctx.vdpa('fn_stats', { fn: 1 })).toBe('fn_stats done');
    expect(ctx.vdpaShared('fn_start', { fn: 1, domid: 3, rx: q(), tx: q(), macs: null }, []).value).toBe('fn_start done');
    expect(() => ctx.mcdi('vi_fini', { vi: 1 })).toThrow(/nic:1af4-1041 is the virtio model.*ctx\.vdpa/);
    expect(() => ctx.mcdiShared('vi_init', { vi: 1, domid: 3, rings: 0, macs: null }, [])).toThrow(/nic:1af4-1041.*ctx\.vdpa/);
    expect(calls.map((c) => c.split(' ')[0])).toEqual(['fn_stats', 'fn_start']);
  });

  it('ctx.mcdi reaches the VI NIC; ctx.vdpa there is refused naming the NIC and ctx.mcdi', () => {
    const calls: string[] = [];
    const { ctx } = context('vi', calls);
    expect(ctx.mcdi('vi_stats', { vi: 1 })).toBe('vi_stats done');
    expect(() => ctx.vdpa('fn_stop', { fn: 1 })).toThrow(/nic:1924-0803 is the VI model.*ctx\.mcdi/);
    expect(() => ctx.vdpaShared('fn_start', { fn: 1, domid: 3, rx: q(), tx: q(), macs: null }, [])).toThrow(/nic:1924-0803.*ctx\.mcdi/);
    expect(calls.map((c) => c.split(' ')[0])).toEqual(['vi_stats']);
  });

  it("functions are given as VIs are, 1..vis-1 (0 is dom0's on either model)", () => {
    const { ctx } = context('virtio', []);
    const got = [ctx.allocVi(), ctx.allocVi(), ctx.allocVi(), ctx.allocVi()];
    expect(got).toEqual([1, 2, 3, null]);
  });

  it("a dropped plugin's functions are stopped with fn_stop on the virtio NIC, its VIs finalised with vi_fini on the VI NIC", () => {
    for (const [model, line] of [
      ['virtio', 'fn_stop {"fn":2,"count":false}'],
      ['vi', 'vi_fini {"vi":2,"count":false}'],
    ] as const) {
      const calls: string[] = [];
      const { ctx, logs } = context(model, calls);
      ctx.allocVi();
      expect(ctx.allocVi()).toBe(2);
      expect(releaseHeld(ctx, { vis: new Set([2]), handles: new Set(), filters: new Map() }, 'p')).toBe(1);
      expect(calls).toEqual([line]);
      expect(logs).toEqual([]);
      // Given back: it is the next one after 3.
      expect([ctx.allocVi(), ctx.allocVi()]).toEqual([3, 2]);
    }
  });

  it("dom0's page budget counts the driver its NIC's model takes", () => {
    expect(primaryDriverPages(1500, 'vi')).toBe(netDriverPages(1500));
    expect(primaryDriverPages(1500, 'virtio')).toBe(vqNetDriverPages(1500));
    expect(dom0MinPages(1500, 'virtio') - dom0MinPages(1500, 'vi')).toBe(vqNetDriverPages(1500) - netDriverPages(1500));
    expect(dom0MinPages(9000)).toBe(Math.max(dom0MinPages(9000, 'vi'), dom0MinPages(9000, 'virtio')));
  });
});

function q() {
  return { size: 256, desc: 0, avail: 4096, used: 8192 };
}
