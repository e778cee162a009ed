/**
 * netfront against a hostile backend, in process: a real Netfront connected
 * through the real xenstore tree, and a "backend" that is the test, writing
 * whatever it likes into the response halves of the rings. netfront must
 * never walk an impossible number of responses, never hand the stack bytes
 * outside the buffer a response names, and never throw: a backend that breaks
 * the protocol marks the device broken (logged once, counted), the guest lives.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FrameAllocator,
  GrantRefAllocator,
  GrantTable,
  GuestMemory,
  NETIF_RSP_OKAY,
  NETIF_RX_SLOT_SIZE,
  NETIF_TX_SLOT_SIZE,
  NETRXF_more_data,
  PAGE_SIZE,
  RXREQ_ID,
  RXRSP_FLAGS,
  RXRSP_ID,
  RXRSP_OFFSET,
  RXRSP_STATUS,
  SRING_RSP_PROD,
  SharedRing,
  Store,
  TXREQ_ID,
  TXRSP_ID,
  TXRSP_STATUS,
  VIF_KEY,
  XenbusState,
  vifBackendPath,
  vifFrontendPath,
} from '@xsim/hypervisor';
import { Netfront } from '@xsim/netfront';
import { storeClient } from '../../../test/fixtures/netback-harness.ts';

const DOMID = 4;

function rig(mtu = 1500) {
  const store = new Store();
  const mem = GuestMemory.allocate(1024);
  const frames = new FrameAllocator(mem);
  const gnttab = GrantTable.create(2048);
  const grefs = new GrantRefAllocator(gnttab);
  const log: string[] = [];
  const fe = vifFrontendPath(DOMID, 0);
  const be = vifBackendPath(0, DOMID, 0);
  store.write(0, `${fe}/${VIF_KEY.backend}`, be);
  store.write(0, `${fe}/${VIF_KEY.backendId}`, '0');
  store.write(0, `${fe}/${VIF_KEY.mac}`, '00:16:3e:00:00:04');
  store.write(0, `${fe}/${VIF_KEY.state}`, '1');
  // A backend that copies into our buffers (netfront connects to no other).
  store.write(0, `${be}/${VIF_KEY.featureRxCopy}`, '1');
  store.write(0, `${be}/${VIF_KEY.state}`, String(XenbusState.InitWait));
  const evtchn = { allocUnbound: () => 9, bindHandler: () => {}, send: () => true, close: () => {} };
  const nf = new Netfront({ domid: DOMID, handle: 0, mem, frames, gnttab, grefs, evtchn, xs: storeClient(store, 0), mtu, log: (m) => log.push(m) });
  const received: { ram: Uint8Array; off: number; len: number }[] = [];
  nf.onReceive = (ram, off, len) => received.push({ ram, off, len });
  nf.start();
  store.write(0, `${be}/${VIF_KEY.state}`, String(XenbusState.Connected));
  const ring = (key: string, size: number) => new SharedRing(mem.page(gnttab.read(Number(store.read(0, `${fe}/${key}`))).frame), size);
  const tx = ring(VIF_KEY.txRingRef, NETIF_TX_SLOT_SIZE);
  const rx = ring(VIF_KEY.rxRingRef, NETIF_RX_SLOT_SIZE);
  return { nf, mem, tx, rx, log, received, gnttab };
}

/** The backend publishes TX responses (id, status) at its own pace. */
function txRespond(tx: SharedRing, rsps: { id: number; status: number }[], prod = tx.rspProd + rsps.length): void {
  const base = tx.rspProd;
  rsps.forEach((r, i) => {
    const o = tx.slotOffset(base + i);
    tx.dv.setUint16(o + TXRSP_ID, r.id, true);
    tx.dv.setInt16(o + TXRSP_STATUS, r.status, true);
  });
  Atomics.store(tx.idx, SRING_RSP_PROD >> 2, prod | 0);
}

function rxRespond(rx: SharedRing, rsps: { id: number; offset: number; flags: number; status: number }[], prod = rx.rspProd + rsps.length): void {
  const base = rx.rspProd;
  rsps.forEach((r, i) => {
    const o = rx.slotOffset(base + i);
    rx.dv.setUint16(o + RXRSP_ID, r.id, true);
    rx.dv.setUint16(o + RXRSP_OFFSET, r.offset, true);
    rx.dv.setUint16(o + RXRSP_FLAGS, r.flags, true);
    rx.dv.setInt16(o + RXRSP_STATUS, r.status, true);
  });
  Atomics.store(rx.idx, SRING_RSP_PROD >> 2, prod | 0);
}

/** Queue one frame on the TX ring; returns the request id netfront used. */
function sendOne(nf: Netfront, tx: SharedRing, len = 100): number {
  const at = nf.txReserve(len);
  expect(at).toBeGreaterThanOrEqual(0);
  nf.txCommit(len);
  nf.flush();
  return tx.dv.getUint16(tx.slotOffset(tx.reqProd - 1) + TXREQ_ID, true);
}

/** netfront's own FRONT_RING state (its queue's): the requests it made, the responses it took. */
interface RingState {
  reqProdPvt: number;
  rspCons: number;
  readonly size: number;
}
function frontRings(nf: Netfront): { tx: RingState; rx: RingState } {
  const rings = nf.queue(0)?.rings;
  if (!rings) throw new Error('netfront has no rings');
  return { tx: rings.tx, rx: rings.rx };
}

function expectBroken(r: ReturnType<typeof rig>, reason: RegExp): void {
  r.nf.poll();
  r.nf.poll();
  expect(r.nf.brokenReason).toMatch(reason);
  expect(r.nf.c.brokenBackend).toBe(1);
  expect(r.log.filter((l) => l.includes('disabled for further use'))).toHaveLength(1);
  expect(r.nf.txReserve(100)).toBe(-1);
}

describe('netfront against a hostile backend', () => {
  it('connects and takes a well-formed TX response', () => {
    const r = rig();
    expect(r.nf.state).toBe(XenbusState.Connected);
    const id = sendOne(r.nf, r.tx);
    txRespond(r.tx, [{ id, status: NETIF_RSP_OKAY }]);
    expect(r.nf.poll()).toBeGreaterThan(0);
    expect(r.nf.brokenReason).toBe('');
    expect(r.nf.txAvailable()).toBeGreaterThan(0);
  });

  it('an impossible TX response producer: broken at once, never a walk of 2^32 entries', () => {
    const r = rig();
    sendOne(r.nf, r.tx);
    txRespond(r.tx, [], 0xfffffff0);
    const { tx } = frontRings(r.nf);
    const cons = tx.rspCons;
    expectBroken(r, /Illegal number of TX responses/);
    // The producer was refused before any response was taken: not one slot walked.
    expect(tx.rspCons).toBe(cons);
    expect(r.nf.c.txLostBroken).toBe(1);
  });

  it('an impossible RX response producer', () => {
    const r = rig();
    rxRespond(r.rx, [], r.rx.rspProd + 100_000);
    expectBroken(r, /Illegal number of RX responses/);
  });

  it('a TX response with an id out of range', () => {
    const r = rig();
    sendOne(r.nf, r.tx);
    txRespond(r.tx, [{ id: 999, status: 0 }]);
    expectBroken(r, /TX response has incorrect id \(999\)/);
  });

  it('a TX response for a request not in flight', () => {
    const r = rig();
    const id = sendOne(r.nf, r.tx);
    txRespond(r.tx, [{ id: (id + 1) & 255, status: 0 }]);
    expectBroken(r, /TX response for inactive request/);
  });

  it('an RX response for a buffer not posted', () => {
    const r = rig();
    // Take buffer 0's response twice: the second is for a buffer no longer posted.
    const id = r.rx.dv.getUint16(r.rx.slotOffset(0) + RXREQ_ID, true);
    rxRespond(r.rx, [
      { id, offset: 0, flags: 0, status: 60 },
      { id, offset: 0, flags: 0, status: 60 },
    ]);
    expectBroken(r, /RX response for a buffer not posted/);
    expect(r.received).toHaveLength(1);
  });

  it('an RX response whose offset and size run past its page: that frame is dropped, counted, the device stays', () => {
    const r = rig();
    const id = r.rx.dv.getUint16(r.rx.slotOffset(0) + RXREQ_ID, true);
    rxRespond(r.rx, [{ id, offset: 4000, flags: 0, status: 500 }]);
    r.nf.poll();
    expect(r.nf.c.rxBadResponse).toBe(1);
    expect(r.nf.brokenReason).toBe('');
    expect(r.received).toHaveLength(0);
  });

  it("an error status is the backend's drop: an event here, not a second drop", () => {
    const r = rig();
    const id = r.rx.dv.getUint16(r.rx.slotOffset(0) + RXREQ_ID, true);
    rxRespond(r.rx, [{ id, offset: 0, flags: 0, status: -8 }]);
    r.nf.poll();
    expect(r.nf.c.rxErrorStatus).toBe(1);
    expect(r.nf.c.rxBadResponse).toBe(0);
  });

  it('whatever the backend writes, netfront never throws, does bounded work, and hands the stack only bytes of the buffer named (property)', () => {
    const rsp = fc.record({
      id: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xffff })),
      offset: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })),
      flags: fc.oneof(fc.constant(0), fc.constant(NETRXF_more_data), fc.integer({ min: 0, max: 0xffff })),
      status: fc.oneof(fc.integer({ min: 14, max: 1500 }), fc.integer({ min: -32768, max: 32767 })),
    });
    const step = fc.record({
      send: fc.integer({ min: 0, max: 4 }),
      tx: fc.array(fc.record({ id: fc.integer({ min: 0, max: 300 }), status: fc.integer({ min: -3, max: 2 }) }), { maxLength: 8 }),
      txBump: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }),
      rx: fc.array(rsp, { maxLength: 8 }),
      rxBump: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }),
    });
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 10 }), (steps) => {
        const r = rig();
        for (const s of steps) {
          for (let i = 0; i < s.send && r.nf.txReserve(100) >= 0; i++) {
            r.nf.txCommit(100);
          }
          r.nf.flush();
          txRespond(r.tx, s.tx, r.tx.rspProd + s.tx.length + s.txBump);
          rxRespond(r.rx, s.rx, r.rx.rspProd + s.rx.length + s.rxBump);
          r.received.length = 0;
          const rings = r.nf.brokenReason === '' ? Object.values(frontRings(r.nf)) : [];
          const before = rings.map((g) => ({ cons: g.rspCons, outstanding: (g.reqProdPvt - g.rspCons) >>> 0 }));
          r.nf.poll();
          // Bounded work: a poll takes only responses to requests outstanding when it began (at most
          // a ring's worth, whatever rsp_prod claims), and never consumes past the requests it made.
          rings.forEach((g, i) => {
            expect((g.rspCons - before[i].cons) >>> 0, 'responses taken in one poll').toBeLessThanOrEqual(before[i].outstanding);
            expect((g.reqProdPvt - g.rspCons) >>> 0, 'requests outstanding').toBeLessThanOrEqual(g.size);
          });
          for (const f of r.received) {
            // A frame from a page of RAM never runs past the page it starts in; a gathered one is in scratch.
            if (f.ram === r.mem.u8) expect(Math.floor(f.off / PAGE_SIZE)).toBe(Math.floor((f.off + Math.max(f.len, 1) - 1) / PAGE_SIZE));
            expect(f.len).toBeGreaterThanOrEqual(0);
          }
        }
        expect(r.log.filter((l) => l.includes('disabled')).length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 1500 },
    );
  });
});
