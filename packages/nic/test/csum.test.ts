/**
 * The VI NIC's checksum offload, driven through ViQueues and MCDI in
 * process: a frame whose first TX descriptor says TXD_CSUM leaves (by the
 * wire or the internal switch) with its TCP or UDP checksum completed, on a
 * VI whose driver enabled checksum offload at vi_init; on one that did not,
 * or for a frame no checksum can be completed over, it is dropped and
 * counted, never sent partial. Received frames with a good checksum are
 * reported EV_RX_CSUM_OK to drivers that enabled it; a bad one is not.
 */
import { describe, expect, it } from 'vitest';
import { WithShared } from '@xsim/hypervisor';
import { ETH_HLEN, ETH_P_IP, verifyL4Checksum, writeIpUdp, writePartialL4Checksum, writeU16 } from '@xsim/netstack';
import { EV_FLAGS, EV_RX, EV_RX_CSUM_OK, EV_TYPE, HwNic, TXD_CSUM, VI_RING_PAGES, ViQueues, handleMcdi } from '../src/index.ts';

const PAGE = 4096;
const MAC_A = 0x00163e0a0101;
const MAC_B = 0x00163e0a0201;
const MAC_REMOTE = 0x00163e0b0101;
const RING_PAGE = 8;
const RAM_PAGES = RING_PAGE + VI_RING_PAGES;

interface Guest {
  ram: Uint8Array;
  q: ViQueues;
  bufBase: number;
}

const macBytes = (mac: number): number[] => [5, 4, 3, 2, 1, 0].map((i) => Math.floor(mac / 2 ** (8 * i)) % 256);

/** Two NICs on a wire; on the first, A (VI 1, checksum offload on) and B (VI 2, `bCsum`); dom0's VI 0 of the second (on). */
function rig(bCsum: boolean) {
  const rams = new Map<number, Uint8Array>([0, 1, 2].map((d) => [d, new Uint8Array(new SharedArrayBuffer(RAM_PAGES * PAGE))]));
  const mk = (name: string) => new HwNic({ name, host: name, mac: 0x000f53000000, mtu: 1500, vendor: '1924', device: '0803', vis: 3 }, rams);
  const nic = mk('nic-a');
  const remote = mk('nic-b');
  nic.wire = remote.fromWire;
  remote.wire = nic.fromWire;
  const attach = (n: HwNic, vi: number, domid: number, macs: number[] | null, csum: boolean): Guest => {
    const bufBase = handleMcdi(n, 'buffer_table_alloc', { vi, domid, frames: Array.from({ length: RAM_PAGES }, (_, f) => f) }) as number;
    const r = handleMcdi(n, 'vi_init', { vi, domid, rings: bufBase + RING_PAGE, irq: false, macs, csum }) as WithShared;
    const ram = rams.get(domid)!;
    const q = new ViQueues(r.shared[0], ram.buffer as SharedArrayBuffer, RING_PAGE * PAGE, () => {});
    for (let p = 4; p < 8; p++) q.postRx(bufBase + p, 0, PAGE);
    q.pushRx();
    return { ram, q, bufBase };
  };
  const dom0 = attach(remote, 0, 0, null, true);
  const a = attach(nic, 1, 1, [MAC_A], true);
  const b = attach(nic, 2, 2, [MAC_B], bCsum);
  handleMcdi(nic, 'filter_insert', { vi: 2, match: { kind: 'mac', mac: MAC_B } });
  const run = () => {
    nic.poll();
    remote.poll();
    nic.flushAll();
    remote.flushAll();
  };
  return { nic, remote, a, b, dom0, run };
}

/** A UDP frame dst <- src in TX page 0 of `g`, its checksum partial (or complete: `partial` false), posted with `flags`. */
function send(g: Guest, dst: number, src: number, o: { partial?: boolean; flags?: number; spoil?: (b: Uint8Array) => void } = {}): number {
  const b = g.ram;
  const payload = 333;
  b.set([...macBytes(dst), ...macBytes(src)], 0);
  writeU16(b, 12, ETH_P_IP);
  writeIpUdp(b, ETH_HLEN, 0x0a000001, 0x0a000002, 7, 1000, 2000, payload);
  for (let i = 0; i < payload; i++) b[42 + i] = (i * 31) & 0xff;
  const len = 42 + payload;
  writePartialL4Checksum(b, 0, len);
  if (o.partial === false) {
    b[40] = b[41] = 0;
    const c = new Uint8Array(b.subarray(0, len));
    writePartialL4Checksum(c, 0, len);
    // Complete a copy the slow way (not the engine under test): verifyL4Checksum finds the value that passes.
    for (let v = 0; v < 0x10000; v++) {
      c[40] = v >> 8;
      c[41] = v & 0xff;
      if (verifyL4Checksum(c, 0, len)) break;
    }
    b[40] = c[40];
    b[41] = c[41];
  }
  o.spoil?.(b);
  g.q.postTx(g.bufBase, 0, len, o.flags ?? TXD_CSUM);
  g.q.pushTx();
  return len;
}

/** The received frames of `g`: where each is and its EV_RX flags. */
function received(g: Guest): { at: number; flags: number }[] {
  const out: { at: number; flags: number }[] = [];
  const dv = g.q.dv;
  let k = 0;
  for (let o = g.q.nextEvent(); o >= 0; o = g.q.nextEvent()) {
    if (dv.getUint16(o + EV_TYPE, true) === EV_RX) out.push({ at: (4 + k++) * PAGE, flags: dv.getUint16(o + EV_FLAGS, true) });
    g.q.takeEvent();
  }
  g.q.publishEvCons();
  return out;
}

describe('VI NIC checksum offload', () => {
  it('TXD_CSUM on a VI with offload: completed before the wire; the far VI 0 is told EV_RX_CSUM_OK', () => {
    const { nic, remote, a, dom0, run } = rig(true);
    const len = send(a, MAC_REMOTE, MAC_A);
    run();
    expect(nic.c.wireTx).toBe(1);
    expect(nic.vi(1).c.txCsumOffloaded).toBe(1);
    const got = received(dom0);
    expect(got).toHaveLength(1);
    expect(got[0].flags & EV_RX_CSUM_OK).toBe(EV_RX_CSUM_OK);
    expect(verifyL4Checksum(dom0.ram, got[0].at, len)).toBe(true);
    expect(remote.vi(0).c.rxCsumGood).toBe(1);
  });

  it('through the internal switch too: completed, and B (offload on) told EV_RX_CSUM_OK', () => {
    const { nic, a, b, run } = rig(true);
    const len = send(a, MAC_B, MAC_A);
    run();
    const got = received(b);
    expect(got).toHaveLength(1);
    expect(got[0].flags & EV_RX_CSUM_OK).toBe(EV_RX_CSUM_OK);
    expect(verifyL4Checksum(b.ram, got[0].at, len)).toBe(true);
    expect(nic.c.wireTx).toBe(0);
  });

  it('a driver without offload is told nothing: the frame arrives complete, unflagged', () => {
    const { a, b, run } = rig(false);
    const len = send(a, MAC_B, MAC_A);
    run();
    const got = received(b);
    expect(got[0].flags & EV_RX_CSUM_OK).toBe(0);
    expect(verifyL4Checksum(b.ram, got[0].at, len)).toBe(true);
  });

  it('a complete frame with a bad checksum is delivered unflagged (the stack checks it and counts it)', () => {
    const { remote, a, dom0, run } = rig(true);
    send(a, MAC_REMOTE, MAC_A, { partial: false, flags: 0, spoil: (f) => (f[100] ^= 0xff) });
    run();
    const got = received(dom0);
    expect(got).toHaveLength(1);
    expect(got[0].flags & EV_RX_CSUM_OK).toBe(0);
    expect(remote.vi(0).c.rxCsumGood).toBe(0);
  });

  it('TXD_CSUM on a VI whose driver did not enable offload: dropped, counted txCsumBad, nothing on the wire', () => {
    const { nic, b, run } = rig(false);
    send(b, MAC_REMOTE, MAC_B);
    run();
    expect(nic.vi(2).c.txCsumBad).toBe(1);
    expect(nic.c.wireTx).toBe(0);
  });

  it.each([
    ['not TCP or UDP', (f: Uint8Array) => (f[ETH_HLEN + 9] = 1)],
    ['a fragment', (f: Uint8Array) => writeU16(f, ETH_HLEN + 6, 0x2000)],
    ['an IHL under 5', (f: Uint8Array) => (f[ETH_HLEN] = 0x44)],
    ['not IPv4', (f: Uint8Array) => writeU16(f, 12, 0x86dd)],
  ])('TXD_CSUM on a frame %s: dropped, counted txCsumBad, never sent partial', (_what, spoil) => {
    const { nic, a, run } = rig(true);
    send(a, MAC_REMOTE, MAC_A, { spoil });
    run();
    expect(nic.vi(1).c.txCsumBad).toBe(1);
    expect(nic.c.wireTx).toBe(0);
  });
});
