/**
 * A wire with a line rate (issue 21): a NIC port serialises what it sends at
 * the wire's bit rate, frames wait in its TX FIFO, and a full FIFO holds the
 * NIC's TX queues back instead of dropping. The clock is driven by hand, so
 * every departure time is checked exactly.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock, WithShared } from '@xsim/hypervisor';
import { ETH_LINE_OVERHEAD, HwNic, LINE_FIFO_BYTES, LineRate, VI_RING_PAGES, ViQueues, handleMcdi } from '../src/index.ts';

const PAGE = 4096;
const MAC_A = 0x00163e0a0101;

describe('LineRate', () => {
  it('each frame leaves when its last bit has: its octets plus 24 of Ethernet overhead at the bit rate, one after the other', () => {
    let now = 0;
    const line = new LineRate(1, () => now);
    const src = new Uint8Array(2000).map((_, i) => i & 0xff);
    line.push(src, 0, 1500);
    line.push(src, 100, 64);
    // 1 Gbit/s: 8 ns an octet.
    expect(line.nextDue()).toBeCloseTo(((1500 + ETH_LINE_OVERHEAD) * 8) / 1e6, 12);
    const out: number[][] = [];
    now = 0.012;
    expect(line.due((ram, o, l) => out.push([l, ram[o], ram[o + l - 1]]))).toBe(0);
    now = 0.0123;
    expect(line.due((ram, o, l) => out.push([l, ram[o], ram[o + l - 1]]))).toBe(1);
    now = 1;
    expect(line.due((ram, o, l) => out.push([l, ram[o], ram[o + l - 1]]))).toBe(1);
    // The bytes as they were pushed (the FIFO holds a copy: the sender's buffer may be reused).
    expect(out).toEqual([
      [1500, 0, 1499 & 0xff],
      [64, 100, 163],
    ]);
    expect([line.framesSent, line.octetsSent, line.queued]).toEqual([2, 1564, 0]);
  });

  it('an idle line starts a frame now, not where the last one ended', () => {
    let now = 5;
    const line = new LineRate(10, () => now);
    line.push(new Uint8Array(100), 0, 100);
    expect(line.nextDue()).toBeCloseTo(5 + (124 * 8) / 1e7, 12);
    now = 100;
    line.due(() => {});
    line.push(new Uint8Array(100), 0, 100);
    expect(line.nextDue()).toBeCloseTo(100 + (124 * 8) / 1e7, 12);
  });

  it('the FIFO is a ring of fixed size: room until it is full, then again as frames leave, wrapping round', () => {
    let now = 0;
    const line = new LineRate(1, () => now, 4000);
    const f = new Uint8Array(1500);
    expect(line.room(1500)).toBe(true);
    line.push(f, 0, 1500);
    line.push(f, 0, 1500);
    expect(line.room(1500)).toBe(false); // 3000 of 4000 used: 1000 left at the end, none before the oldest
    now = line.nextDue();
    line.due(() => {});
    expect(line.room(1500)).toBe(true); // the first frame's 1500 free at the start: the ring wraps
    line.push(f.fill(7), 0, 1500);
    expect(line.queuedOctets).toBe(3000);
    now = 1e9;
    const lens: number[] = [];
    line.due((ram, o, l) => lens.push(l, ram[o]));
    expect(lens).toEqual([1500, 0, 1500, 7]);
    expect(line.room(4000)).toBe(true);
    expect(line.room(4001)).toBe(false);
  });

  it('refuses a rate that is not a positive number', () => {
    expect(() => new LineRate(0, () => 0)).toThrow(/positive number of Gbit\/s, got 0/);
    expect(() => new LineRate(Number.NaN, () => 0)).toThrow(/positive/);
  });
});

describe('a NIC port with a line rate', () => {
  /** NIC a (VI 1 for guest domain 1) wired to NIC b at `gbps`; b's VI 0 is dom0's with RX buffers posted. */
  function rig(gbps: number) {
    const clock = new VirtualClock();
    const RAM_PAGES = 16 + VI_RING_PAGES;
    const rams = new Map<number, Uint8Array>([0, 1].map((d) => [d, new Uint8Array(new SharedArrayBuffer(RAM_PAGES * PAGE))]));
    const mk = (name: string) => new HwNic({ name, host: name, mac: 0x000f53000000, mtu: 1500, vendor: '1924', device: '0803', vis: 2 }, rams, clock);
    const a = mk('nic-a');
    const b = mk('nic-b');
    a.wire = b.fromWire;
    b.wire = a.fromWire;
    a.setLineRate(gbps);
    const attach = (nic: HwNic, vi: number, domid: number, macs: number[] | null) => {
      const frames = Array.from({ length: RAM_PAGES }, (_, f) => f);
      const base = handleMcdi(nic, 'buffer_table_alloc', { vi, domid, frames }) as number;
      const r = handleMcdi(nic, 'vi_init', { vi, domid, rings: base + 16, irq: false, macs }) as WithShared;
      const q = new ViQueues(r.shared[0], rams.get(domid)!.buffer as SharedArrayBuffer, 16 * PAGE, () => {});
      return { q, base, ram: rams.get(domid)! };
    };
    const g = attach(a, 1, 1, [MAC_A]);
    const d0 = attach(b, 0, 0, null);
    return { clock, a, b, g, d0 };
  }

  it('holds frames back at a full FIFO (they stay in the VI ring, none dropped) and sends them at the line rate', () => {
    const { clock, a, b, g, d0 } = rig(1);
    // dom0's VI 0 on NIC b: 500 RX buffers of a page each, in its first 16 pages (reposted as they fill).
    let posted = 0;
    const postRx = (n: number) => {
      for (let i = 0; i < n; i++) d0.q.postRx(d0.base + (posted++ % 16), 0, PAGE);
      d0.q.pushRx();
    };
    postRx(500);
    // 300 frames of 1500 octets from guest 1: more than the 64 KiB FIFO holds (43).
    const frame = g.ram.subarray(0, 1500);
    frame.set([0x00, 0x16, 0x3e, 0x0b, 0x01, 0x01, 0x00, 0x16, 0x3e, 0x0a, 0x01, 0x01, 0x88, 0xb5]);
    for (let i = 0; i < 300; i++) g.q.postTx(g.base, 0, 1500, 0);
    g.q.pushTx();
    a.poll();
    const fifoFrames = Math.floor(LINE_FIFO_BYTES / 1500);
    expect(a.vi(1).c.txFrames).toBe(fifoFrames);
    expect(a.c.lineWaits).toBe(1);
    expect(a.txPending()).toBe(false); // work waits for the line, not for a doorbell: the NIC thread may sleep till nextLineDue
    expect(b.c.wireRx).toBe(0);
    // Run the NIC as the fabric does, jumping the clock to each departure.
    let rounds = 0;
    while (b.c.wireRx < 300 && rounds++ < 10_000) {
      clock.advanceTo(Math.max(clock.now(), a.nextLineDue()));
      a.drainLine();
      a.poll();
    }
    expect(b.c.wireRx).toBe(300);
    expect(a.c.wireTx).toBe(300);
    expect(a.vi(1).c.txFrames).toBe(300);
    expect(a.c.linkDownDrops + a.c.txNoLink).toBe(0);
    // 300 frames back to back on a 1 Gbit/s line: exactly (1500 + 24) octets x 8 ns each.
    expect(clock.now()).toBeCloseTo((300 * (1500 + ETH_LINE_OVERHEAD) * 8) / 1e6, 9);
    expect(a.stats()).toMatchObject({ line: { gbps: 1, queued: 0, framesSent: 300 } });
  });

  it('a frame whose last bit leaves while the link is down is counted there (linkDownDrops), not sent', () => {
    const { clock, a, b, g } = rig(0.001);
    g.ram.set([0x00, 0x16, 0x3e, 0x0b, 0x01, 0x01, 0x00, 0x16, 0x3e, 0x0a, 0x01, 0x01], 0);
    g.q.postTx(g.base, 0, 100, 0);
    g.q.pushTx();
    a.poll();
    a.linkUp = false;
    clock.advanceTo(a.nextLineDue());
    a.drainLine();
    expect([a.c.linkDownDrops, b.c.wireRx]).toEqual([1, 0]);
  });
});
