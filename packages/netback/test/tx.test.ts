/**
 * netback's TX path against a hostile guest, in process: one test per
 * malformed request chain (as Firecracker's net device tests do), the double
 * fetch of XSA-155's class, and a property: whatever the guest writes into
 * its ring and grant table, whenever it writes it, dom0 never throws, never
 * writes its memory outside the skbs, answers every request it takes exactly
 * once (or disconnects the guest), and accounts for every frame it takes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  NETIF_RSP_ERROR,
  NETIF_RSP_OKAY,
  NETTXF_extra_info,
  NETTXF_more_data,
  SRING_REQ_PROD,
  TXREQ_FLAGS,
  TXREQ_GREF,
  TXREQ_ID,
  TXREQ_OFFSET,
  TXREQ_SIZE,
  TXRSP_ID,
  TXRSP_STATUS,
  XenbusState,
} from '@xsim/hypervisor';
import { VIF_TUNABLES } from '@xsim/netback';
import { NetbackHarness } from '../../../test/fixtures/netback-harness.ts';

interface Req {
  gref: number;
  offset?: number;
  flags?: number;
  id?: number;
  size: number;
}

/** Write requests at req_prod and publish them (plus `bump` impossible extra). */
function publish(h: NetbackHarness, reqs: Req[], bump = 0): void {
  const prod = h.tx.reqProd;
  reqs.forEach((r, i) => {
    const o = h.tx.slotOffset(prod + i);
    h.tx.dv.setUint32(o + TXREQ_GREF, r.gref, true);
    h.tx.dv.setUint16(o + TXREQ_OFFSET, r.offset ?? 0, true);
    h.tx.dv.setUint16(o + TXREQ_FLAGS, r.flags ?? 0, true);
    h.tx.dv.setUint16(o + TXREQ_ID, r.id ?? (prod + i) & 255, true);
    h.tx.dv.setUint16(o + TXREQ_SIZE, r.size, true);
  });
  Atomics.store(h.tx.idx, SRING_REQ_PROD >> 2, (prod + reqs.length + bump) | 0);
}

/** Every response pushed so far. */
function responses(h: NetbackHarness): { id: number; status: number }[] {
  const out = [];
  for (let i = 0; i !== h.tx.rspProd; i++) {
    const o = h.tx.slotOffset(i);
    out.push({ id: h.tx.dv.getUint16(o + TXRSP_ID, true), status: h.tx.dv.getInt16(o + TXRSP_STATUS, true) });
  }
  return out;
}

/** A frame-like page: unicast destination, the vif's MAC as source. */
function frameIn(h: NetbackHarness, page: number, len: number): void {
  const p = h.dataPage(page);
  p.fill(0xab, 0, len);
  p.set([0x00, 0x16, 0x3e, 0x11, 0x22, 0x33, 0x00, 0x16, 0x3e, 0x00, 0x00, 0x07, 0x08, 0x00], 0);
}

/** A chain of `n` slots of `each` bytes on data pages 0.., the first carrying the total. */
function chain(h: NetbackHarness, n: number, each: number): Req[] {
  for (let i = 0; i < n; i++) frameIn(h, i % h.dataRefs.length, each);
  return Array.from({ length: n }, (_, i) => ({
    gref: h.dataRefs[i % h.dataRefs.length],
    flags: i < n - 1 ? NETTXF_more_data : 0,
    size: i === 0 ? n * each : each,
  }));
}

function expectErrorTier(h: NetbackHarness, counter: string, slots: number): void {
  expect(h.vif.poll()).toBeGreaterThan(0);
  const rs = responses(h);
  expect(rs).toHaveLength(slots);
  expect(rs.every((r) => r.status === NETIF_RSP_ERROR)).toBe(true);
  expect((h.vif.c as Record<string, number>)[counter]).toBe(1);
  expect(h.vif.connected).toBe(true);
  expect(h.vif.state).toBe(XenbusState.Connected);
  expect(h.sink.frames).toHaveLength(0);
  // The vif still works: a good frame after the bad one goes through.
  frameIn(h, 0, 100);
  publish(h, [{ gref: h.dataRefs[0], size: 100 }]);
  h.vif.poll();
  expect(h.sink.frames).toHaveLength(1);
  expect(responses(h).at(-1)!.status).toBe(NETIF_RSP_OKAY);
}

function expectFatal(h: NetbackHarness, reason: RegExp): void {
  h.vif.poll();
  expect(h.vif.connected).toBe(false);
  expect(h.vif.state).toBe(XenbusState.Closing);
  expect(h.vif.fatalReason).toMatch(reason);
  expect(h.vif.c.disconnects).toBe(1);
  expect(h.log.filter((l) => l.includes('misbehaving'))).toHaveLength(1);
}

describe('netback TX: well-formed frames', () => {
  it('forwards a one-slot frame and answers it OKAY', () => {
    const h = new NetbackHarness();
    frameIn(h, 0, 1000);
    publish(h, [{ gref: h.dataRefs[0], size: 1000, id: 42 }]);
    h.vif.poll();
    expect(responses(h)).toEqual([{ id: 42, status: NETIF_RSP_OKAY }]);
    expect(h.sink.frames.map((f) => f.length)).toEqual([1000]);
    expect(h.vif.c.txPackets).toBe(1);
  });

  it('gathers a frame of three slots (MTU 9000)', () => {
    const h = new NetbackHarness({ mtu: 9000 });
    publish(h, chain(h, 3, 3000));
    h.vif.poll();
    expect(responses(h).map((r) => r.status)).toEqual([0, 0, 0]);
    expect(h.sink.frames.map((f) => f.length)).toEqual([9000]);
  });
});

describe('netback TX: malformed but harmless frames are answered XEN_NETIF_RSP_ERROR and the vif stays up', () => {
  it('a first slot shorter than an Ethernet header (runt)', () => {
    const h = new NetbackHarness();
    publish(h, [{ gref: h.dataRefs[0], size: 10 }]);
    expectErrorTier(h, 'txErrRunt', 1);
  });

  it('a zero-length frame', () => {
    const h = new NetbackHarness();
    publish(h, [{ gref: h.dataRefs[0], size: 0 }]);
    expectErrorTier(h, 'txErrRunt', 1);
  });

  it('a frame over the MTU', () => {
    const h = new NetbackHarness({ mtu: 1500 });
    frameIn(h, 0, 2000);
    publish(h, [{ gref: h.dataRefs[0], size: 2000 }]);
    expectErrorTier(h, 'txErrOversize', 1);
  });

  it('a follow-on slot larger than the size left', () => {
    const h = new NetbackHarness();
    publish(h, [
      { gref: h.dataRefs[0], flags: NETTXF_more_data, size: 300 },
      { gref: h.dataRefs[1], size: 400 },
    ]);
    expectErrorTier(h, 'txErrSlotSize', 2);
  });

  it.each([19, 20])('a frame of %i slots (over XEN_NETBK_LEGACY_SLOTS_MAX, not over fatal_skb_slots)', (n) => {
    const h = new NetbackHarness({ mtu: 9000 });
    publish(h, chain(h, n, 64));
    expectErrorTier(h, 'txErrTooManySlots', n);
  });

  it('a grant the guest never made (the grant copy fails)', () => {
    const h = new NetbackHarness();
    publish(h, [{ gref: 7, size: 100 }]);
    expectErrorTier(h, 'txErrGrantCopy', 1);
  });

  it('a grant made to another domain', () => {
    const h = new NetbackHarness();
    h.guestGnttab.grantAccess(100, 3, h.guestGnttab.read(h.dataRefs[0]).frame, true);
    publish(h, [{ gref: 100, size: 100 }]);
    expectErrorTier(h, 'txErrGrantCopy', 1);
  });
});

describe('netback TX: malice or a broken ring disconnects the vif alone', () => {
  it('an impossible producer index', () => {
    const h = new NetbackHarness();
    publish(h, [], h.tx.size + 7);
    expectFatal(h, /impossible number of TX requests/);
  });

  it(`more than fatal_skb_slots (${VIF_TUNABLES.fatalSkbSlots}) slots`, () => {
    const h = new NetbackHarness({ mtu: 9000 });
    publish(h, chain(h, VIF_TUNABLES.fatalSkbSlots + 1, 64));
    expectFatal(h, /malicious frontend using more than 20 slots/);
  });

  it('a chain that runs past the published requests', () => {
    const h = new NetbackHarness();
    publish(h, [{ gref: h.dataRefs[0], flags: NETTXF_more_data, size: 200 }]);
    expectFatal(h, /needs more than the 1 published/);
  });

  it('a first slot crossing its page', () => {
    const h = new NetbackHarness();
    publish(h, [{ gref: h.dataRefs[0], offset: 4000, size: 1000 }]);
    expectFatal(h, /offset 4000 \+ size 1000 crosses its page/);
  });

  it('a follow-on slot crossing its page', () => {
    const h = new NetbackHarness({ mtu: 9000 });
    publish(h, [
      { gref: h.dataRefs[0], flags: NETTXF_more_data, size: 2000 },
      { gref: h.dataRefs[1], offset: 3000, size: 1500 },
    ]);
    expectFatal(h, /offset 3000 \+ size 1500 crosses its page/);
  });

  it('an extra-info slot never negotiated', () => {
    const h = new NetbackHarness();
    publish(h, [{ gref: h.dataRefs[0], flags: NETTXF_extra_info, size: 200 }]);
    expectFatal(h, /extra-info/);
  });

  it('frames checked before the fatal one still go out, each answered once', () => {
    const h = new NetbackHarness();
    frameIn(h, 0, 500);
    publish(h, [
      { gref: h.dataRefs[0], size: 500, id: 1 },
      { gref: h.dataRefs[0], size: 500, id: 2 },
      { gref: h.dataRefs[0], offset: 4000, size: 1000, id: 3 },
    ]);
    h.vif.poll();
    expect(h.sink.frames).toHaveLength(2);
    expect(responses(h)).toEqual([
      { id: 1, status: 0 },
      { id: 2, status: 0 },
    ]);
    expect(h.vif.connected).toBe(false);
  });
});

describe('netback TX reads each request once (RING_COPY_REQUEST)', () => {
  it.each([
    ['size', TXREQ_SIZE, 4096],
    ['offset', TXREQ_OFFSET, 3600],
  ])('a guest rewriting a follow-on slot %s between check and copy changes nothing dom0 does', (_what, field, value) => {
    // XSA-155's class: netback validates slot 2 (500 bytes at 0), then, while it grant-copies
    // slot 1, the guest rewrites slot 2. Before copy-once, dom0 copied what the rewrite said.
    const h = new NetbackHarness({ mtu: 1500 });
    frameIn(h, 0, 4096);
    publish(h, [
      { gref: h.dataRefs[0], flags: NETTXF_more_data, size: 1000, id: 1 },
      { gref: h.dataRefs[0], size: 500, id: 2 },
    ]);
    const slot2 = h.tx.slotOffset(1);
    h.hvGnttab.race = () => h.tx.dv.setUint16(slot2 + field, value, true);
    // Paint every skb so a copy longer than the frame shows in a neighbour.
    h.paintDom0();
    const u8 = h.dom0Mem.u8;
    const start = h.skbs.base;
    const end = start + h.skbs.count * h.skbs.slotSize;
    u8.fill(0xee, start, end);
    const outside = h.outsideSkbs();
    h.vif.poll();
    let touched = 0;
    for (let i = start; i < end; i++) if (u8[i] !== 0xee) touched++;
    expect(touched, 'bytes of skb memory written for a 1000-byte frame').toBeLessThanOrEqual(1000);
    expect(h.firstChangeOutsideSkbs(outside), 'first byte of dom0 RAM changed outside the skbs').toBe(-1);
    expect(h.sink.frames.map((f) => f.length)).toEqual([1000]);
    expect(responses(h)).toEqual([
      { id: 1, status: 0 },
      { id: 2, status: 0 },
    ]);
  });
});

describe('netback TX under attack (property)', () => {
  const req = fc.record({
    gref: fc.oneof(fc.constantFrom(16, 17, 18, 19), fc.integer({ min: 0, max: 2000 })),
    offset: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })),
    flags: fc.oneof(fc.constant(0), fc.constant(NETTXF_more_data), fc.integer({ min: 0, max: 0xffff })),
    id: fc.integer({ min: 0, max: 0xffff }),
    size: fc.oneof(fc.integer({ min: 14, max: 1600 }), fc.integer({ min: 0, max: 0xffff })),
  });
  const step = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        t: fc.constant('reqs' as const),
        reqs: fc.array(req, { minLength: 1, maxLength: 24 }),
        bump: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -300, max: 300 }) }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant('race' as const),
        writes: fc.array(fc.tuple(fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 0, max: 255 })), { maxLength: 12 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        t: fc.constant('grant' as const),
        ref: fc.integer({ min: 8, max: 40 }),
        flags: fc.integer({ min: 0, max: 0xffff }),
        domid: fc.integer({ min: 0, max: 10 }),
        frame: fc.integer({ min: 0, max: 600 }),
      }),
    },
  );

  it('dom0 never throws, never writes outside its skbs, answers each request taken once, and counts every frame', () => {
    let cases = 0;
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 3 }), (steps, rounds) => {
        cases++;
        const h = new NetbackHarness({ mtu: 1500, skbs: 16 });
        h.paintDom0();
        for (let i = 0; i < 4; i++) frameIn(h, i, 2048);
        const outside = h.outsideSkbs();
        let raceWrites: [number, number][] = [];
        h.hvGnttab.race = () => {
          for (const [o, v] of raceWrites) h.tx.page[o] = v;
        };
        for (const s of steps) {
          if (s.t === 'reqs') publish(h, s.reqs, s.bump);
          else if (s.t === 'race') raceWrites = s.writes;
          else {
            // The guest scribbles over its own grant table.
            const dv = new DataView(h.guestGnttab.sab);
            dv.setUint16(s.ref * 8, s.flags, true);
            dv.setUint16(s.ref * 8 + 2, s.domid, true);
            dv.setUint32(s.ref * 8 + 4, s.frame, true);
          }
          for (let r = 0; r <= rounds && h.vif.connected; r++) h.vif.poll();
          expect(h.firstChangeOutsideSkbs(outside)).toBe(-1);
          if (h.vif.connected) {
            // Every request consumed is answered, and every answer is published.
            const ring = (h.vif.queue(0)!.tx as unknown as { ring: { reqCons: number; rspProdPvt: number } }).ring;
            expect(ring.rspProdPvt >>> 0).toBe(ring.reqCons >>> 0);
            expect(h.tx.rspProd >>> 0).toBe(ring.rspProdPvt >>> 0);
          }
        }
        // Accounting: every frame taken reached the bridge or is in exactly one drop counter.
        const c = h.vif.c;
        const errors = c.txErrRunt + c.txErrOversize + c.txErrSlotSize + c.txErrTooManySlots + c.txErrGrantCopy;
        const b = h.bridge.stats;
        expect(h.sink.frames.length + b.dropBadSource + b.dropNoPort + b.dropSamePort).toBe(c.txPackets);
        expect(c.txErrResponses).toBeGreaterThanOrEqual(errors);
        // Each skb went back to the pool.
        expect(h.skbs.available).toBe(16);
      }),
      { numRuns: 2000 },
    );
    expect(cases).toBeGreaterThanOrEqual(2000);
  });
});
