/**
 * vnic leaves no buffer-table entry behind when an attachment fails half-way
 * (found while writing docs/plugins.md): if the guest's interrupt port or
 * vi_init is refused after its pages were registered, the teardown finalised
 * nothing (the vif was still 'offered'), so the entries outlived the grant
 * unmap and the VI's next owner could DMA through them.
 */
import { describe, expect, it } from 'vitest';
import type { McdiOp } from '@xsim/hypervisor';
import { parseIp } from '@xsim/netstack';
import { HwNic, mcdiServer } from '@xsim/nic';
import type { AccelVif } from '@xsim/netback';
import { createBackend } from '../src/vnic/backend.ts';

function rig(failIn: 'deviceIrq' | 'vi_init') {
  const rams = new Map([[1, new Uint8Array(new SharedArrayBuffer(64 * 4096))]]);
  const nic = new HwNic({ name: 'nic-a', host: 'host-a', mac: 0x000f53000000, mtu: 1500, vendor: '1924', device: '0903', vis: 8 }, rams);
  const server = mcdiServer(nic);
  const ctx = {
    nic: () => ({ mtu: 1500, vis: 8, alias: 'nic:1924-0903', mac: 0, linkUp: true }),
    dom0: 0,
    allocVi: () => 3,
    freeVi: () => {},
    mcdi: (op: McdiOp, a: unknown) => server.call(op, a as never),
    mcdiShared: (op: McdiOp) => {
      if (failIn === 'vi_init' && op === 'vi_init') throw new Error('vi_init refused');
      return { value: true, shared: [new SharedArrayBuffer(64)] };
    },
    deviceIrq: () => {
      if (failIn === 'deviceIrq') throw new Error('port 5 is not an unbound port of domain 1');
      return { binding: new SharedArrayBuffer(8), doorbell: new SharedArrayBuffer(8) };
    },
    mapGrants: (_d: number, grefs: number[]) => ({ frames: grefs, handles: grefs }),
    unmapGrants: () => {},
    send: () => {},
    uplinkMacs: () => [],
    detached: () => {},
    log: () => {},
  };
  const be = createBackend(ctx as never, {});
  const vif: AccelVif = { key: 'host-a/1/0', domid: 1, handle: 0, mac: 0x00163e000001, ip: parseIp('10.0.1.1') };
  return { be, vif, nic };
}

describe('vnic teardown after a failed accept', () => {
  it.each(['deviceIrq', 'vi_init'] as const)('%s refused after the pages were registered: the VI finalised, no entry left', (failIn) => {
    const { be, vif, nic } = rig(failIn);
    be.attachVif!(vif);
    const grefs = Array.from({ length: 16 }, (_, i) => 8 + i);
    expect(() => be.onFrontendMessage!(vif, 'accept', { grefs, irqPort: 5 })).toThrow();
    expect(nic.buffers.inUse()).toBe(16);
    // The framework answers a hook that threw for one guest by detaching that vif; its frontend, never started, is drained at once.
    be.detachVif!(vif);
    be.onFrontendMessage!(vif, 'drained', {});
    expect(nic.buffers.inUse()).toBe(0);
  });
});
