/**
 * The small plugins keep their counters in the storage their declaration
 * gives (CounterGroup.zero()), and count what they say they count.
 */
import { describe, expect, it } from 'vitest';
import { parseIp, writeIpUdp } from '@xsim/netstack';
import type { AccelFrontendContext } from '@xsim/netfront';
import { FIREWALL_COUNTERS, createBackend as firewall } from '../src/firewall/backend.ts';
import { NULL_FRONTEND_COUNTERS, createFrontend as nullFrontend } from '../src/null/frontend.ts';

/** An Ethernet + IPv4 + UDP frame of `len` octets at offset 2 of a buffer. */
function udpFrame(len: number, dstIp: string, dstPort: number): { b: Uint8Array; off: number } {
  const b = new Uint8Array(len + 2);
  const off = 2;
  b[off + 12] = 0x08;
  b[off + 13] = 0x00;
  writeIpUdp(b, off + 14, parseIp('10.0.1.1'), parseIp(dstIp), 1, 40000, dstPort, len - 42);
  return { b, off };
}

describe('firewall', () => {
  it('counts every frame it inspects and every one a rule matched, in its declared counters', () => {
    const fw = firewall(undefined, { rules: [{ proto: 17, dstPort: 5009 }, { dstIp: '10.0.2.9' }] });
    const hit = udpFrame(100, '10.0.2.2', 5009);
    const byIp = udpFrame(100, '10.0.2.9', 7);
    const miss = udpFrame(100, '10.0.2.2', 7);
    expect(fw.rxIntercept!(hit.b, hit.off, 100)).toBe(true);
    expect(fw.txIntercept!(byIp.b, byIp.off, 100)).toBe(true);
    expect(fw.rxIntercept!(miss.b, miss.off, 100)).toBe(false);
    // Too short for an IPv4 header: inspected, never matched.
    expect(fw.rxIntercept!(miss.b, miss.off, 20)).toBe(false);
    const s = fw.stats!();
    expect(Object.keys(s).sort()).toEqual(FIREWALL_COUNTERS.names().sort());
    expect(s).toEqual({ rules: 2, inspected: 4, matched: 2 });
  });
});

describe('null frontend', () => {
  it('declines every frame and counts each one offered; a new device starts from zero', () => {
    const sent: string[] = [];
    const ctx = { send: (op: string) => sent.push(op) } as unknown as AccelFrontendContext;
    const fe = nullFrontend(ctx);
    fe.newDevice({}, []);
    expect(sent).toEqual(['accept']);
    for (let i = 0; i < 3; i++) expect(fe.startXmit(new Uint8Array(64), 0, 64)).toBe(false);
    expect(fe.getStats!()).toEqual({ offered: 3 });
    expect(Object.keys(fe.getStats!())).toEqual(NULL_FRONTEND_COUNTERS.names());
    fe.newDevice({}, []);
    expect(fe.getStats!()).toEqual({ offered: 0 });
  });
});

describe('vnic backend', () => {
  it('a vif at its filter cap keeps new flows on the slow path, counted in filterCapReached and logged once', async () => {
    const { createBackend, VNIC_BACKEND_COUNTERS } = await import('../src/vnic/backend.ts');
    const logs: string[] = [];
    let nextFilter = 1;
    const ctx = {
      nic: () => ({ mtu: 1500, vis: 8, alias: 'nic:1924-0903' }),
      allocVi: () => 3,
      freeVi: () => {},
      mcdi: (op: string) => (op === 'filter_insert' ? nextFilter++ : op === 'buffer_table_alloc' ? 0 : undefined),
      mcdiShared: () => ({ value: undefined, shared: [new SharedArrayBuffer(64)] }),
      deviceIrq: () => ({ binding: new SharedArrayBuffer(8), doorbell: new SharedArrayBuffer(8) }),
      mapGrants: () => ({ frames: [1], handles: [1] }),
      unmapGrants: () => {},
      send: () => {},
      uplinkMacs: () => [],
      detached: () => {},
      log: (m: string) => logs.push(m),
    };
    // Eviction off: vnic's behaviour before quotas (issue 19, item 4: vnic-quota.test.ts has the evicting one).
    const be = createBackend(ctx as never, { eviction: 'none' });
    const vif = { key: 'host-a/1/0', domid: 1, handle: 0, mac: 0x00163e000001, ip: parseIp('10.0.1.1') };
    be.attachVif!(vif as never);
    be.onFrontendMessage!(vif as never, 'accept', { grefs: [1], irqPort: 5 });
    be.onFrontendMessage!(vif as never, 'running', {});
    // 70 flows to the guest: 64 get a filter, the 6 others stay on the slow path, each frame of them counted.
    for (let port = 1000; port < 1070; port++) {
      const f = udpFrame(100, '10.0.1.1', port);
      be.onSlowPathRx!(vif as never, f.b, f.off, 100);
    }
    const again = udpFrame(100, '10.0.1.1', 1069);
    be.onSlowPathRx!(vif as never, again.b, again.off, 100);
    const s = be.stats!() as Record<string, number>;
    expect(s.filtersInserted).toBe(64);
    expect(s.filterCapReached).toBe(7);
    expect(s.filterFailures).toBe(0);
    expect(logs.filter((l) => /its 64 flow filters \(limits\/max-filters\) are in use; new flows stay on the slow path/.test(l))).toHaveLength(1);
    expect(VNIC_BACKEND_COUNTERS.names()).toContain('filterCapReached');
  });
});
