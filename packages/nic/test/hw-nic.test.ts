/**
 * The NIC's datapath as its drivers see it: VI rings in SharedArrayBuffers,
 * driven through ViQueues, with the hardware programmed through MCDI. The
 * fabric worker only adds a loop around HwNic.poll(), so these run the
 * hardware in-process, one poll at a time, to check each verdict exactly.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WithShared } from '@xsim/hypervisor';
import {
  EV_FLAGS,
  EV_INDEX,
  EV_LEN,
  EV_RX,
  EV_RX_CONT,
  EV_TX,
  EV_TYPE,
  FAULT_BUFFER_OWNER,
  HwNic,
  VI_RING_PAGES,
  VI_STATE_FAULTED,
  VI_STATE_RUNNING,
  ViQueues,
  handleMcdi,
} from '../src/index.ts';

const PAGE = 4096;
const MAC_A = 0x00163e0a0101;
const MAC_B = 0x00163e0a0201;
const MAC_REMOTE = 0x00163e0b0101;
/** Pages 0-3 of a domain are TX buffers, 4-7 RX buffers, 8.. the VI's rings. */
const RING_PAGE = 8;
const RAM_PAGES = RING_PAGE + VI_RING_PAGES;

interface Guest {
  vi: number;
  domid: number;
  ram: Uint8Array;
  q: ViQueues;
  bufBase: number;
}

function macBytes(mac: number): number[] {
  return [5, 4, 3, 2, 1, 0].map((i) => Math.floor(mac / 2 ** (8 * i)) % 256);
}

/** Two NICs joined by a wire; on NIC 0, guests A (VI 1) and B (VI 2); VI 0 of each is dom0's. */
function rig() {
  const rams = new Map<number, Uint8Array>([0, 1, 2].map((d) => [d, new Uint8Array(new SharedArrayBuffer(RAM_PAGES * PAGE))]));
  const mkNic = (name: string) => new HwNic({ name, host: name, mac: 0x000f53000000, mtu: 1500, vendor: '1924', device: '0803', vis: 3 }, rams);
  const local = mkNic('nic-a');
  const remote = mkNic('nic-b');
  local.wire = remote.fromWire;
  remote.wire = local.fromWire;

  const attach = (nic: HwNic, vi: number, domid: number, macs: number[] | null): Guest => {
    const frames = Array.from({ length: RAM_PAGES }, (_, f) => f);
    const bufBase = handleMcdi(nic, 'buffer_table_alloc', { vi, domid, frames }) as number;
    const r = handleMcdi(nic, 'vi_init', { vi, domid, rings: bufBase + RING_PAGE, irq: false, macs }) as WithShared;
    const ram = rams.get(domid)!;
    const q = new ViQueues(r.shared[0], ram.buffer as SharedArrayBuffer, RING_PAGE * PAGE, () => {}); // the NIC here is driven by hand: no wake-ups needed
    for (let p = 4; p < 8; p++) q.postRx(bufBase + p, 0, PAGE);
    q.pushRx();
    return { vi, domid, ram, q, bufBase };
  };
  const dom0 = attach(remote, 0, 0, null);
  const a = attach(local, 1, 1, [MAC_A]);
  const b = attach(local, 2, 2, [MAC_B]);
  const run = () => {
    local.poll();
    remote.poll();
    local.flushAll();
    remote.flushAll();
  };
  return { nic: local, remoteNic: remote, a, b, dom0, run };
}

/** Write a frame dst <- src into TX page `page` of the guest and post it. */
function send(g: Guest, dst: number, src: number, len = 100, page = 0, fill = 0x5a): void {
  const at = page * PAGE;
  g.ram.fill(fill, at, at + len);
  g.ram.set(macBytes(dst), at);
  g.ram.set(macBytes(src), at + 6);
  g.q.postTx(g.bufBase + page, 0, len, 0);
  g.q.pushTx();
}

/** Drain a driver's event queue: RX frames as [ring index + 4, len], every RX piece, and the last TX completion index. */
function events(g: Guest): { rx: [number, number][]; pieces: [number, number, boolean][]; txDone: number } {
  const rx: [number, number][] = [];
  const pieces: [number, number, boolean][] = [];
  let txDone = -1;
  const dv = g.q.dv;
  for (let o = g.q.nextEvent(); o >= 0; o = g.q.nextEvent()) {
    const type = dv.getUint16(o + EV_TYPE, true);
    const index = dv.getUint32(o + EV_INDEX, true);
    if (type === EV_RX) {
      rx.push([index + 4, dv.getUint16(o + EV_LEN, true)]);
      pieces.push([index, dv.getUint16(o + EV_LEN, true), (dv.getUint16(o + EV_FLAGS, true) & EV_RX_CONT) !== 0]);
    }
    if (type === EV_TX) txDone = index;
    g.q.takeEvent();
  }
  g.q.publishEvCons();
  return { rx, pieces, txDone };
}

describe('HwNic datapath', () => {
  it('internal switch: a frame to a MAC filtered to another VI of the same NIC is delivered locally, not on the wire', () => {
    const { nic, remoteNic, a, b, run } = rig();
    handleMcdi(nic, 'filter_insert', { vi: 2, match: { kind: 'mac', mac: MAC_B } });
    send(a, MAC_B, MAC_A, 300, 0, 0x77);
    run();
    expect(events(a).txDone).toBe(1);
    const got = events(b).rx;
    expect(got).toEqual([[4, 300]]); // B's first RX descriptor: its page 4
    expect([...b.ram.subarray(4 * PAGE, 4 * PAGE + 6)]).toEqual(macBytes(MAC_B));
    expect(b.ram[4 * PAGE + 299]).toBe(0x77);
    expect(nic.vi(1).c.txSwitchedLocal).toBe(1);
    expect(nic.c.wireTx).toBe(0);
    expect(remoteNic.c.wireRx).toBe(0);
  });

  it("a frame to a MAC no VI of this NIC owns leaves by the wire and lands on the peer's VI 0", () => {
    const { nic, remoteNic, a, dom0, run } = rig();
    handleMcdi(nic, 'filter_insert', { vi: 2, match: { kind: 'mac', mac: MAC_B } });
    send(a, MAC_REMOTE, MAC_A, 200);
    run();
    expect(nic.c.wireTx).toBe(1);
    expect(nic.vi(1).c.txSwitchedLocal).toBe(0);
    expect(remoteNic.c.rxDefault).toBe(1);
    expect(events(dom0).rx).toEqual([[4, 200]]);
  });

  it('anti-spoofing: a frame with a source MAC the VI does not own is dropped and counted', () => {
    const { nic, a, b, run } = rig();
    handleMcdi(nic, 'filter_insert', { vi: 2, match: { kind: 'mac', mac: MAC_B } });
    send(a, MAC_B, MAC_REMOTE, 100);
    run();
    expect(nic.vi(1).c.txSpoofDrops).toBe(1);
    expect(nic.vi(1).c.txFrames).toBe(0);
    expect(events(a).txDone).toBe(1); // the descriptor completes: the driver gets its buffer back
    expect(events(b).rx).toEqual([]);
    expect(nic.c.wireTx).toBe(0);
  });

  it("a descriptor outside the VI's buffers faults that VI alone; the other keeps sending", () => {
    const { nic, a, b, run } = rig();
    handleMcdi(nic, 'filter_insert', { vi: 1, match: { kind: 'mac', mac: MAC_A } });
    // B's buffer ids belong to VI 2, so naming one from VI 1 is a fault even though it exists.
    a.q.postTx(b.bufBase, 0, 100, 0);
    a.q.pushTx();
    run();
    expect(a.q.state).toBe(VI_STATE_FAULTED);
    expect(a.q.fault).toBe(FAULT_BUFFER_OWNER);
    expect(nic.vi(1).c.faults).toBe(1);
    expect(b.q.state).toBe(VI_STATE_RUNNING);
    // B still sends; a frame switched to the faulted VI is counted, not delivered.
    send(b, MAC_A, MAC_B, 120);
    run();
    expect(nic.vi(2).c.txFrames).toBe(1);
    expect(nic.c.rxViDown).toBe(1);
    expect(events(a).rx).toEqual([]);
  });
});

describe('HwNic reads what a driver wrote once', () => {
  it("a guest flipping its frame's source MAC after the NIC checked it cannot forge it: the frame is checked and sent from the NIC's copy", () => {
    const { nic, a, b, run } = rig();
    handleMcdi(nic, 'filter_insert', { vi: 2, match: { kind: 'mac', mac: MAC_B } });
    send(a, MAC_B, MAC_A, 100);
    // The hostile guest on another core rewrites the source MAC while the NIC resolves B's RX
    // buffer (after the spoof check, before the DMA into B): a double fetch delivers the forgery.
    const resolve = nic.buffers.resolve.bind(nic.buffers);
    nic.buffers.resolve = (vi, buf, off, len) => {
      if (vi === 2) a.ram.set(macBytes(0x00163edead01), 6);
      return resolve(vi, buf, off, len);
    };
    run();
    const got = events(b).rx;
    expect(got).toEqual([[4, 100]]);
    expect([...b.ram.subarray(4 * PAGE + 6, 4 * PAGE + 12)]).toEqual(macBytes(MAC_A));
    expect(nic.vi(1).c.txFrames).toBe(1);
  });

  it('under arbitrary descriptors, frames and mid-DMA rewrites, the NIC never throws, never sends a MAC the VI does not own, and accounts for every frame (property)', () => {
    const desc = fc.record({
      page: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: -2, max: 12 }) }),
      off: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
      len: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 14, max: 1600 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
      cont: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    });
    const step = fc.record({
      descs: fc.array(desc, { minLength: 1, maxLength: 6 }),
      srcIsOurs: fc.boolean(),
      flip: fc.boolean(),
      rxLens: fc.array(fc.oneof({ weight: 4, arbitrary: fc.constant(PAGE) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }), { maxLength: 4 }),
      prodBump: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -5, max: 600 }) }),
    });
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 8 }), (steps) => {
        const { nic, a, b, run } = rig();
        handleMcdi(nic, 'filter_insert', { vi: 2, match: { kind: 'mac', mac: MAC_B } });
        // B's RX descriptors: ring index i is B's page 4 + (i % 4) (the rig posted 4 already).
        let posted = 4;
        let firstPiece = true;
        for (const s of steps) {
          for (let p = 0; p < 4; p++) {
            a.ram.set(macBytes(MAC_B), p * PAGE);
            a.ram.set(macBytes(s.srcIsOurs ? MAC_A : MAC_REMOTE), p * PAGE + 6);
          }
          for (const d of s.descs) a.q.postTx(a.bufBase + d.page, d.off, d.len, d.cont ? 1 : 0);
          for (const l of s.rxLens) b.q.postRx(b.bufBase + 4 + (posted++ % 4), 0, l);
          b.q.pushRx();
          a.q.txProdPvt = (a.q.txProdPvt + s.prodBump) >>> 0;
          a.q.pushTx();
          const resolve = nic.buffers.resolve.bind(nic.buffers);
          nic.buffers.resolve = (vi, buf, off, len) => {
            // Rewrite A's frames between the NIC's check and its DMA into another VI.
            if (s.flip && vi !== 1) for (let p = 0; p < 4; p++) a.ram.set(macBytes(0x00163edead01), p * PAGE + 6);
            return resolve(vi, buf, off, len);
          };
          run();
          nic.buffers.resolve = resolve;
          const pieces = events(b).pieces;
          // B's buffers reuse its 4 pages: a page can be written again by a later piece of the same
          // step before we look, so only the last piece written into a page still shows its bytes.
          const lastInPage = new Map<number, number>();
          pieces.forEach(([index], k) => lastInPage.set(4 + (index % 4), k));
          pieces.forEach(([index, len, more], k) => {
            // The first piece of every frame B received carries a source MAC A owns.
            const page = 4 + (index % 4);
            if (firstPiece && len >= 12 && lastInPage.get(page) === k) {
              expect([...b.ram.subarray(page * PAGE + 6, page * PAGE + 12)]).toEqual(macBytes(MAC_A));
            }
            firstPiece = !more;
          });
          events(a);
        }
        const va = nic.vi(1).c;
        const vb = nic.vi(2).c;
        // Every frame A sent reached B (switched locally), the wire, or a counter.
        expect(va.txFrames).toBe(va.txSwitchedLocal + nic.c.wireTx + nic.c.txNoLink + nic.c.linkDownDrops);
        expect(va.txSwitchedLocal).toBe(vb.rxFrames + vb.rxNoDesc + nic.c.rxViDown);
      }),
      {
        numRuns: 1000,
        // Seed 2129877652 found the test's own mistake: frame 2 landed in page 5, then frame 5's
        // second piece overwrote page 5 in the same step, and the old check read frame 5's bytes.
        examples: [
          [
            [
              { descs: [{ page: 0, off: 0, len: 14, cont: true }], srcIsOurs: false, flip: false, rxLens: [1], prodBump: 0 },
              { descs: Array.from({ length: 5 }, () => ({ page: 0, off: 0, len: 14, cont: false })), srcIsOurs: true, flip: false, rxLens: [13], prodBump: 0 },
              { descs: [{ page: 0, off: 0, len: 14, cont: false }], srcIsOurs: false, flip: false, rxLens: [], prodBump: 0 },
            ],
          ],
        ],
      },
    );
  });
});
