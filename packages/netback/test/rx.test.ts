/**
 * netback's RX path in process: a frame copied into a guest's buffer counts
 * as delivered only once its response is published, and a vif that goes
 * between the copy and the push (a guest suspending for migration, a
 * toolstack unplug) publishes what it copied first, so the guest still reads
 * it; on a ring the guest broke, the copied frames are counted lost instead.
 */
import { describe, expect, it } from 'vitest';
import { RXREQ_GREF, RXREQ_ID, RXRSP_ID, RXRSP_STATUS, SRING_REQ_PROD } from '@xsim/hypervisor';
import { NetbackHarness } from '../../../test/fixtures/netback-harness.ts';

/** The guest posts `n` RX buffers (pages granted writable to dom0, refs 100..). */
function postBuffers(h: NetbackHarness, n: number): void {
  const prod = h.rx.reqProd;
  for (let i = 0; i < n; i++) {
    const ref = 100 + prod + i;
    h.guestGnttab.grantAccess(ref, 0, 400 + ((prod + i) % 100), false);
    const o = h.rx.slotOffset(prod + i);
    h.rx.dv.setUint16(o + RXREQ_ID, prod + i, true);
    h.rx.dv.setUint32(o + RXREQ_GREF, ref, true);
  }
  Atomics.store(h.rx.idx, SRING_REQ_PROD >> 2, prod + n);
}

/** A frame in a dom0 skb, as the bridge hands one to the vif. */
function frame(h: NetbackHarness, len: number, fill: number): { addr: number; len: number } {
  const skb = h.skbs.alloc();
  const addr = h.skbs.addr(skb);
  h.dom0Mem.u8.fill(fill, addr, addr + len);
  return { addr, len };
}

describe('netback RX', () => {
  it('counts a frame delivered when its response is published, not when it is copied', () => {
    const h = new NetbackHarness();
    postBuffers(h, 4);
    const f = frame(h, 600, 0x5a);
    h.vif.deliver(f.addr, f.len, -1);
    expect(h.rx.rspProd).toBe(0);
    expect(h.vif.c.rxPackets).toBe(0);
    h.vif.poll();
    expect(h.rx.rspProd).toBe(1);
    expect(h.vif.c.rxPackets).toBe(1);
    expect(h.rx.dv.getInt16(h.rx.slotOffset(0) + RXRSP_STATUS, true)).toBe(600);
  });

  it('a vif removed between copy and push publishes what it copied: the guest reads every frame', () => {
    const h = new NetbackHarness();
    postBuffers(h, 8);
    for (let i = 0; i < 3; i++) {
      const f = frame(h, 200 + i, i + 1);
      h.vif.deliver(f.addr, f.len, -1);
    }
    h.vif.remove();
    expect(h.rx.rspProd).toBe(3);
    expect([0, 1, 2].map((i) => h.rx.dv.getUint16(h.rx.slotOffset(i) + RXRSP_ID, true))).toEqual([0, 1, 2]);
    expect(h.vif.c.rxPackets).toBe(3);
    expect(h.vif.c.rxDropFatal).toBe(0);
  });

  it('a guest that breaks its RX ring after frames were copied: those frames and the one in hand are counted lost, none published', () => {
    const h = new NetbackHarness();
    postBuffers(h, 8);
    for (let i = 0; i < 2; i++) {
      const f = frame(h, 300, i + 1);
      h.vif.deliver(f.addr, f.len, -1);
    }
    // An impossible request producer: more requests than the ring holds.
    Atomics.store(h.rx.idx, SRING_REQ_PROD >> 2, h.rx.reqProd + 10_000);
    const f = frame(h, 300, 9);
    h.vif.deliver(f.addr, f.len, -1);
    expect(h.vif.connected).toBe(false);
    expect(h.rx.rspProd).toBe(0);
    expect(h.vif.c.rxPackets).toBe(0);
    expect(h.vif.c.rxDropFatal).toBe(3);
  });
});
