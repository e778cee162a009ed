/**
 * vnic's TX pages as one ring (tx-ring.ts) and the TX path over it (tx.ts),
 * without a NIC: frames of 1 to 17 pages taken at the head, contiguous,
 * given back in order; a frame that does not fit before the end starts at
 * page 0 and is charged the pages it skipped; a place fit gave stays good
 * while only completions happen. The TX path against a stand-in for the
 * VI's queues: in place or copied, its descriptors (TXD_TSO over 32 KiB
 * pieces), the pages back at EV_TX, an EV_TX index it never posted ignored.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TXD_CONT, TXD_CSUM, TXD_TSO, VI_RING_PAGES, type ViQueues } from '@xsim/nic';
import type { DmaArea } from '../src/dma-area.ts';
import { VNIC_FRONTEND_COUNTERS } from '../src/vnic/frontend.ts';
import { TxRing } from '../src/vnic/tx-ring.ts';
import { TSO_PAGES, VnicTx } from '../src/vnic/tx.ts';

const PAGE = 4096;

describe('TxRing', () => {
  it('frames at the head, back in order; one that does not fit before the end starts at 0 and is charged the pages it skipped', () => {
    const r = new TxRing(40);
    expect(r.fit(17)).toBe(0);
    expect(r.take(0, 17)).toBe(17);
    expect(r.fit(17)).toBe(17);
    expect(r.take(17, 17)).toBe(17);
    // 6 pages left at the end, 6 free in all: no room for 17 (nor at 0, where the first frame is).
    expect(r.fit(17)).toBe(-1);
    expect(r.fit(6)).toBe(34);
    r.give(17); // the first frame completed: pages 0..16 free
    expect(r.fit(17)).toBe(0);
    expect(r.take(0, 17)).toBe(6 + 17);
    expect(r.free).toBe(0);
    expect(r.fit(1)).toBe(-1);
  });

  it('take refuses a place that is not where a frame may start now, or more than the free pages', () => {
    const r = new TxRing(20);
    expect(r.take(5, 1)).toBe(-1);
    expect(r.take(0, 21)).toBe(-1);
    expect(r.take(0, 0)).toBe(-1);
    expect(r.take(0, 15)).toBe(15);
    expect(r.take(15, 6)).toBe(-1); // past the end
    expect(r.take(0, 2)).toBe(-1); // wrapping onto the frame in flight
    expect(r.free).toBe(5);
  });

  it('a place fit gave stays good for a shorter frame too while only completions happen (txBuffer lends, startXmit takes)', () => {
    const r = new TxRing(30);
    r.take(0, 20);
    const at = r.fit(17); // does not fit before the end: page 0, once the first frame is back
    expect(at).toBe(-1);
    r.give(20);
    const again = r.fit(17);
    expect(again).toBe(0);
    // Built shorter than lent: 2 pages, still at page 0 (charged the 10 skipped at the end).
    expect(r.take(again, 2)).toBe(12);
  });

  it('rewind starts over at page 0 only when nothing is in flight', () => {
    const r = new TxRing(30);
    r.take(0, 20);
    r.rewind();
    expect(r.fit(5)).toBe(20);
    r.give(20);
    expect(r.fit(17)).toBe(0); // would not fit at 20
    r.rewind();
    expect(r.take(0, 17)).toBe(17); // no pages skipped: the head went back to 0
  });

  it('property: frames in flight never overlap, each is contiguous inside the ring, the charges add up, and with nothing in flight a frame always fits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 17, max: 200 }), fc.array(fc.oneof(fc.integer({ min: 1, max: 17 }), fc.constant(0)), { maxLength: 300 }), (pages, ops) => {
        const r = new TxRing(pages);
        const inFlight: { at: number; n: number; charged: number }[] = [];
        // As the frontend asks (tx.ts): rewind first, so an empty ring starts over at page 0.
        const fit = (n: number) => {
          r.rewind();
          return r.fit(n);
        };
        for (const op of ops) {
          if (op === 0 || fit(op) < 0) {
            // A completion (in order), or no room: the oldest frame comes back.
            const f = inFlight.shift();
            if (f) r.give(f.charged);
            if (op === 0) continue;
            if (fit(op) < 0) {
              // Still none: only while frames are in flight. (Pages a wrapped frame skipped at the end stay
              // charged to it until it completes, so the ring may refuse a run a brute-force search of the
              // unused pages would find: room is reckoned from the head, never by searching.)
              expect(inFlight.length).toBeGreaterThan(0);
              continue;
            }
          }
          const at = fit(op);
          const charged = r.take(at, op);
          expect(charged).toBeGreaterThanOrEqual(op);
          expect(at + op).toBeLessThanOrEqual(pages);
          for (const g of inFlight) expect(at + op <= g.at || g.at + g.n <= at).toBe(true);
          inFlight.push({ at, n: op, charged });
          expect(r.free + inFlight.reduce((s, g) => s + g.charged, 0)).toBe(pages);
        }
      }),
      { numRuns: 200 },
    );
  });
});

/** A stand-in for the VI's queues: the descriptors posted, in order. */
function fakeQueues() {
  const descs: { buf: number; len: number; flags: number; mss: number }[] = [];
  const q = {
    txProdPvt: 0,
    published: 0,
    wakes: 0,
    postTx(buf: number, _off: number, len: number, flags: number, mss = 0): number {
      descs.push({ buf, len, flags, mss });
      return q.txProdPvt++;
    },
    publishTx() {
      q.published = q.txProdPvt;
    },
    wakeIfAsleep() {
      q.wakes++;
    },
  };
  return { q, descs };
}

const DST = 0x00163e000002;
const BUF_BASE = 1000;

/** A TX path over `pages` TX pages of a 1 MB RAM whose DMA area starts at page 16, attached, TSO on. */
function txRig(pages = 2 * TSO_PAGES + 4) {
  const ram = new Uint8Array(1 << 20);
  const dma = { ram: (o: number) => 16 * PAGE + o } as unknown as DmaArea;
  const s = VNIC_FRONTEND_COUNTERS.zero();
  const tx = new VnicTx({ ram, dma, s, fast: new Set([DST]), local: new Set(), up: () => true }, 1, pages);
  const { q, descs } = fakeQueues();
  tx.attach(q as unknown as ViQueues, BUF_BASE, true, true);
  return { ram, s, tx, q, descs };
}

/** A frame of `len` octets to DST (the rest of it is whatever the test wrote). */
function frameAt(ram: Uint8Array, at: number, len: number): void {
  ram.fill(0, at, at + 14);
  for (let i = 0; i < 6; i++) ram[at + i] = Math.floor(DST / 2 ** (8 * (5 - i))) % 256;
  for (let i = 14; i < len; i++) ram[at + i] = i & 0xff;
}

describe('VnicTx over the ring', () => {
  it('a 64 KiB TSO frame built where txBuffer lent: posted from there in 32 KiB pieces, TXD_TSO and the MSS on the first; no copy', () => {
    const { ram, s, tx, descs } = txRig();
    const len = 65535 + 14;
    const at = tx.txBuffer(len);
    expect(at).toBe(16 * PAGE + VI_RING_PAGES * PAGE);
    frameAt(ram, at, len);
    expect(tx.startXmit(ram, at, len, true, 1448)).toBe(true);
    expect(descs).toEqual([
      { buf: BUF_BASE + VI_RING_PAGES, len: 32768, flags: TXD_TSO | TXD_CSUM | TXD_CONT, mss: 1448 },
      { buf: BUF_BASE + VI_RING_PAGES + 8, len: 32768, flags: TXD_CONT, mss: 0 },
      { buf: BUF_BASE + VI_RING_PAGES + 16, len: len - 65536, flags: 0, mss: 0 },
    ]);
    expect(s).toMatchObject({ taken: 1, txTso: 1, txCopied: 0 });
    expect(tx.ring.free).toBe(tx.pages - TSO_PAGES);
  });

  it('an MTU frame and a TSO frame not built in place are copied to the head; completions give their pages back', () => {
    const { ram, s, tx, q } = txRig();
    const src = new Uint8Array(20_000);
    frameAt(src, 0, 20_000);
    const small = new Uint8Array(1514);
    frameAt(small, 0, 1514);
    expect(tx.startXmit(small, 0, 1514, false, 0)).toBe(true);
    expect(tx.startXmit(src, 0, 20_000, true, 1448)).toBe(true);
    expect(s).toMatchObject({ taken: 2, txTso: 1, txCopied: 2 });
    expect([...ram.subarray(tx.pageAddr(1), tx.pageAddr(1) + 20_000)]).toEqual([...src]);
    expect(tx.ring.free).toBe(tx.pages - 1 - 5);
    tx.completed(1); // the MTU frame
    expect(tx.ring.free).toBe(tx.pages - 5);
    tx.completed(q.txProdPvt);
    expect(tx.ring.free).toBe(tx.pages);
    expect(tx.inFlight).toBe(0);
  });

  it('an EV_TX index past what was posted (or behind what completed) frees nothing', () => {
    const { tx, q } = txRig();
    const f = new Uint8Array(1514);
    frameAt(f, 0, 1514);
    tx.startXmit(f, 0, 1514, false, 0);
    tx.completed(q.txProdPvt + 5);
    expect(tx.ring.free).toBe(tx.pages - 1);
    tx.completed(q.txProdPvt);
    tx.completed((q.txProdPvt - 3) >>> 0);
    expect(tx.ring.free).toBe(tx.pages);
    expect(tx.inFlight).toBe(0);
  });

  it('room for a 64 KiB frame or netfront waits (checkReady); a lend that does not fit before the end goes to page 0 and is still good at startXmit', () => {
    const { ram, tx, q } = txRig(2 * TSO_PAGES + 4);
    const len = 60_000;
    for (let i = 0; i < 2; i++) {
      const at = tx.txBuffer(len);
      frameAt(ram, at, len);
      expect(tx.startXmit(ram, at, len, true, 1448)).toBe(true);
    }
    expect(tx.hasRoom).toBe(false);
    expect(tx.txBuffer(len)).toBe(-1);
    tx.completed(2); // the first frame (two descriptors): pages 0..14 free, and the 8 at the end
    // A 64 KiB frame would need the 8 skipped and 17 more: netfront still waits; a 60000-octet one fits at page 0.
    expect(tx.hasRoom).toBe(false);
    const at = tx.txBuffer(len);
    expect(at).toBe(tx.pageAddr(0));
    frameAt(ram, at, 3000);
    // Built shorter than lent (one page): still taken in place at page 0, charged the 8 pages skipped at the end.
    expect(tx.startXmit(ram, at, 3000, false, 0)).toBe(true);
    expect(tx.ring.free).toBe(tx.pages - 15 - (8 + 1));
    tx.completed(q.txProdPvt);
    expect(tx.ring.free).toBe(tx.pages);
  });

  it('declined frames take nothing: a TSO frame while the VI does no TSO, an MTU frame over the slot, a partial checksum without offload', () => {
    const { s, tx, q } = txRig();
    tx.attach(q as unknown as ViQueues, BUF_BASE, false, false);
    const big = new Uint8Array(9000);
    frameAt(big, 0, 9000);
    expect(tx.txBuffer(9000)).toBe(-1);
    expect(tx.startXmit(big, 0, 9000, true, 1448)).toBe(false);
    expect(tx.startXmit(big, 0, 9000, false, 0)).toBe(false);
    expect(tx.startXmit(big, 0, 1000, true, 0)).toBe(false);
    expect(s).toMatchObject({ taken: 0, declinedBusy: 2, declinedNotReady: 1 });
    expect(tx.ring.free).toBe(tx.pages);
  });
});
