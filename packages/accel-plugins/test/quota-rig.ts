/**
 * A vnic backend on a stub context whose MCDI is a real NIC's (its filter
 * table with hits, ENOSPC and aging) and whose vifConfig is a map standing
 * for the vif's backend directory in xenstore: what the quota tests drive.
 * A frame of a flow either hits a filter at the NIC (the fast path) or comes
 * the slow way, where vnic learns its flow at once (the real slow path has a
 * few frames in flight while a filter goes in: this rig does not).
 */
import { expect } from 'vitest';
import { VIF_KEY, VirtualClock, type McdiOp } from '@xsim/hypervisor';
import { parseIp, writeIpUdp } from '@xsim/netstack';
import { HwNic, mcdiServer, VI_RING_PAGES } from '@xsim/nic';
import type { AccelBackend, AccelVif } from '@xsim/netback';
import { createBackend, type VifConfigFacility } from '../src/vnic/backend.ts';

const GUEST_IP = '10.0.1.1';

/** An Ethernet + IPv4 + UDP frame to the guest's port `port`, at offset 2 of a buffer. */
export function udp(port: number, len = 100): { b: Uint8Array; off: number } {
  const b = new Uint8Array(len + 2);
  b[2 + 12] = 0x08;
  writeIpUdp(b, 2 + 14, parseIp('10.0.2.2'), parseIp(GUEST_IP), 1, 40000, port, len - 42);
  return { b, off: 2 };
}

export interface Rig {
  be: AccelBackend;
  vif: AccelVif;
  nic: HwNic;
  clock: VirtualClock;
  logs: string[];
  /** The vif's backend directory's keys, and the watch callbacks on it. */
  xs: Map<string, string>;
  setKey(key: string, value: string): void;
  /** One frame of flow `port` from the wire: true if a filter took it to the guest's VI (fast), else it went the slow way (learning). */
  frame(port: number): boolean;
  counters(): Record<string, number>;
  filtersOfVif(): number;
  /** The ports of the flows the NIC has filters for, sorted. */
  ports(): number[];
  /** The NIC's flow filters now (the vif's switch-only MAC filter left out). */
  flowFilters(): number;
}

export function rig(args: Record<string, unknown> = {}, o: { nicFilters?: number; keys?: Record<string, string>; config?: boolean } = {}): Rig {
  const clock = new VirtualClock();
  const rams = new Map([[0, new Uint8Array(new SharedArrayBuffer(16 * 4096))]]);
  const nic = new HwNic(
    { name: 'nic-a', host: 'host-a', mac: 0x000f53000000, mtu: 1500, vendor: '1924', device: '0903', vis: 8, filters: o.nicFilters },
    rams,
    clock,
  );
  const server = mcdiServer(nic);
  const logs: string[] = [];
  const xs = new Map(Object.entries(o.keys ?? {}));
  const watchers = new Set<() => void>();
  const vifConfig: VifConfigFacility = {
    read: (_vif, key) => xs.get(key),
    watch: (_vif, dir, changed) => {
      expect(dir).toBe(VIF_KEY.limits);
      watchers.add(changed);
      return () => watchers.delete(changed);
    },
  };
  const mcdi = (op: McdiOp, a: unknown) => {
    // The guest's DMA pages are not what this test is about: the VI's rings and buffers are pages of the rig's own RAM.
    if (op === 'buffer_table_alloc')
      return server.call(op, { vi: (a as { vi: number }).vi, domid: 0, frames: Array.from({ length: VI_RING_PAGES }, (_, i) => i) });
    return server.call(op, a as never);
  };
  /** vi_init for real (the NIC takes filters only for a running VI), on the rig's RAM; no interrupt. */
  const mcdiShared = (op: McdiOp, a: unknown) => {
    const { irq: _irq, domid: _domid, ...rest } = a as { irq?: boolean; domid: number };
    server.call(op, { ...rest, domid: 0 } as never);
    return { value: true, shared: [new SharedArrayBuffer(64)] };
  };
  const ctx = {
    nic: () => ({ mtu: 1500, vis: 8, alias: 'nic:1924-0903', mac: 0, linkUp: true }),
    dom0: 0,
    allocVi: () => 3,
    freeVi: () => {},
    mcdi,
    mcdiShared,
    deviceIrq: () => ({ binding: new SharedArrayBuffer(8), doorbell: new SharedArrayBuffer(8) }),
    mapGrants: (_d: number, grefs: number[]) => ({ frames: grefs, handles: grefs }),
    unmapGrants: () => {},
    send: () => {},
    uplinkMacs: () => [],
    detached: () => {},
    log: (m: string) => logs.push(m),
    ...(o.config === false ? {} : { vifConfig }),
  };
  const be = createBackend(ctx as never, args);
  const vif: AccelVif = { key: 'host-a/1/0', domid: 1, handle: 0, mac: 0x00163e000001, ip: parseIp(GUEST_IP) };
  be.attachVif!(vif);
  be.onFrontendMessage!(vif, 'accept', { grefs: [1, 2, 3, 4], irqPort: 5 });
  be.onFrontendMessage!(vif, 'running', {});
  const frame = (port: number): boolean => {
    const f = udp(port);
    if (nic.filters.lookup(f.b, f.off, 100) === 3) return true;
    be.onSlowPathRx!(vif, f.b, f.off, 100);
    return false;
  };
  const counters = () => be.stats() as Record<string, number>;
  const filtersOfVif = () => (be.stats() as { vifs: { filters: number }[] }).vifs[0]?.filters ?? -1;
  const setKey = (key: string, value: string) => {
    xs.set(key, value);
    for (const w of [...watchers]) w();
  };
  const flows = () => nic.filters.list().filter((e) => e.match.kind === 'ipv4');
  const ports = () =>
    flows()
      .map((e) => (e.match.kind === 'ipv4' ? e.match.port : -1))
      .sort((x, y) => x - y);
  return { be, vif, nic, clock, logs, xs, setKey, frame, counters, filtersOfVif, ports, flowFilters: () => flows().length };
}
