/**
 * The NIC's filter table as a finite resource (issue 19, item 4): it has a
 * size, and an insert into a full table is refused with ENOSPC (counted, over
 * MCDI too); each filter counts the frames it matched (what MCDI filter_hits
 * tells a plugin choosing a victim); and a filter inserted with an idle age
 * is removed by the table once no frame matched it for that long on the
 * simulation's clock, swept on a timer the NIC's thread waits for.
 */
import { describe, expect, it } from 'vitest';
import { MCDI_ENOSPC, VirtualClock } from '@xsim/hypervisor';
import { DEFAULT_FILTER_TABLE_SIZE, FilterTable, HwNic, mcdiServer, VI_RING_PAGES } from '../src/index.ts';

const ADDR = 0x0a000105;

/** An Ethernet + IPv4 + UDP header to ADDR:port, as the table's lookup reads it. */
function udp(port: number): Uint8Array {
  const f = new Uint8Array(64);
  f[0] = 0x00;
  f[12] = 8;
  f[14] = 0x45;
  f[23] = 17;
  new DataView(f.buffer).setUint32(30, ADDR);
  new DataView(f.buffer).setUint16(36, port);
  return f;
}

const flow = (port: number) => ({ kind: 'ipv4' as const, proto: 17, addr: ADDR, port });

/** Start VIs on the NIC (it takes filters only for a running VI): rings in the VI_RING_PAGES pages of domain 0's RAM, no interrupt. */
function running(server: ReturnType<typeof mcdiServer>, vis: number[]): void {
  for (const vi of vis) {
    const rings = server.call('buffer_table_alloc', { vi, domid: 0, frames: Array.from({ length: VI_RING_PAGES }, (_, i) => i) }) as number;
    server.call('vi_init', { vi, domid: 0, rings, macs: null });
  }
}

describe('a full filter table', () => {
  it('refuses the next insert with ENOSPC, counted in filterNoSpace; a removal makes room again', () => {
    const t = new FilterTable({ size: 4 });
    const ids = [1, 2, 3, 4].map((p) => t.insert(1, flow(p)));
    expect(t.size).toBe(4);
    expect(() => t.insert(2, flow(5))).toThrow(`${MCDI_ENOSPC}: the filter table is full (4 of 4 entries)`);
    expect(() => t.insert(2, { kind: 'mac', mac: 0x00163e000001 })).toThrow(/^ENOSPC/);
    expect(t.c.filterNoSpace).toBe(2);
    // The refused flow is not steered; the others still are.
    expect(t.lookup(udp(5), 0, 64)).toBe(-1);
    expect(t.lookup(udp(4), 0, 64)).toBe(1);
    expect(t.remove(ids[0])).toBe(true);
    expect(t.insert(2, flow(5))).toBeGreaterThan(ids[3]);
    expect(t.lookup(udp(5), 0, 64)).toBe(2);
    expect(t.c.filterNoSpace).toBe(2);
    expect(new FilterTable().capacity).toBe(DEFAULT_FILTER_TABLE_SIZE);
    expect(() => new FilterTable({ size: 0 })).toThrow(/positive integer/);
  });

  it("is the topology's size at the NIC: MCDI filter_insert answers ENOSPC there, and the NIC's stats show the size and the refusals", () => {
    const rams = new Map([[0, new Uint8Array(new SharedArrayBuffer(16 * 4096))]]);
    const nic = new HwNic({ name: 'nic-a', host: 'host-a', mac: 0x000f53000000, mtu: 1500, vendor: '1924', device: '0803', vis: 3, filters: 2 }, rams);
    const mcdi = mcdiServer(nic);
    running(mcdi, [1, 2]);
    mcdi.call('filter_insert', { vi: 1, match: flow(1) });
    mcdi.call('filter_insert', { vi: 2, match: flow(2) });
    expect(() => mcdi.call('filter_insert', { vi: 1, match: flow(3) })).toThrow(/^ENOSPC: the filter table is full \(2 of 2 entries\)/);
    // A refusal of the hardware, not a malformed command: MCDI's refused count stays at 0.
    expect(mcdi.refused).toBe(0);
    expect(nic.stats()).toMatchObject({ filters: 2, filterTableSize: 2, filterNoSpace: 1, filtersAged: 0 });
  });
});

describe('filter hits', () => {
  it('each filter counts the frames it matched; filter_hits answers them by id, null for a filter that is gone', () => {
    const rams = new Map([[0, new Uint8Array(new SharedArrayBuffer(16 * 4096))]]);
    const nic = new HwNic({ name: 'nic-a', host: 'host-a', mac: 0x000f53000000, mtu: 1500, vendor: '1924', device: '0803', vis: 3 }, rams);
    const mcdi = mcdiServer(nic);
    running(mcdi, [1, 2]);
    const a = mcdi.call('filter_insert', { vi: 1, match: flow(10) }) as number;
    const b = mcdi.call('filter_insert', { vi: 2, match: flow(11) }) as number;
    for (let i = 0; i < 3; i++) nic.filters.lookup(udp(10), 0, 64);
    nic.filters.lookup(udp(12), 0, 64);
    expect(mcdi.call('filter_hits', { ids: [a, b] })).toEqual([3, 0]);
    mcdi.call('filter_remove', { id: a });
    expect(mcdi.call('filter_hits', { ids: [a, b, 999] })).toEqual([null, 0, null]);
    expect(() => mcdi.call('filter_hits', { ids: [-1] })).toThrow(/refused/);
  });
});

describe('aging', () => {
  it('a filter with an idle age goes between ageMs and 1.5 x ageMs after its last hit; a hit one stays, one without an age never goes', () => {
    const clock = new VirtualClock();
    const t = new FilterTable({ clock });
    expect(t.nextAgeAt()).toBe(Infinity);
    const idle = t.insert(1, flow(1), 1000);
    const busy = t.insert(1, flow(2), 1000);
    const forever = t.insert(1, flow(3));
    // The timer the NIC's thread waits for: a quarter of the shortest age.
    expect(t.nextAgeAt()).toBe(250);
    let idleGoneAt = -1;
    for (let now = 0; now <= 3000; now += 10) {
      clock.advanceTo(now);
      // `busy` is hit every 100 ms until 1000, then no more.
      if (now % 100 === 0 && now <= 1000) t.lookup(udp(2), 0, 64);
      if (now >= t.nextAgeAt()) t.age();
      if (idleGoneAt < 0 && t.hitsOf([idle])[0] === null) idleGoneAt = now;
    }
    expect(idleGoneAt).toBeGreaterThanOrEqual(1000);
    expect(idleGoneAt).toBeLessThanOrEqual(1500);
    // `busy` aged from its last hit (1000), `forever` never.
    expect(t.hitsOf([busy, forever])).toEqual([null, 0]);
    expect(t.c.filtersAged).toBe(2);
    expect(t.size).toBe(1);
    // Nothing ages any more: no timer.
    expect(t.nextAgeAt()).toBe(Infinity);
  });

  it('a busy filter is kept however long it lives; the sweep is not due before its time', () => {
    const clock = new VirtualClock();
    const t = new FilterTable({ clock });
    const id = t.insert(3, flow(7), 200);
    for (let now = 0; now <= 10_000; now += 40) {
      clock.advanceTo(now);
      t.lookup(udp(7), 0, 64);
      t.age();
    }
    expect(t.hitsOf([id])).toEqual([251]);
    expect(t.c.filtersAged).toBe(0);
    // Without a clock nothing ages (the table cannot tell time).
    const still = new FilterTable();
    still.insert(1, flow(1), 1);
    expect(still.age()).toBe(0);
    expect(still.size).toBe(1);
  });
});
