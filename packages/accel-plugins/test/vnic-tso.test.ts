/**
 * vnic's TCP segmentation offload (plugin API 1.5), in process on the VI
 * NIC: the frontend says tsoMax, takes a TCP frame over the MTU with its MSS
 * (startXmit's gsoSize), posts it with TXD_TSO from its TX pages (built
 * there when txBuffer lent the room, else copied), and the NIC cuts it: the
 * other guest gets every segment, in order, checksums good. What it cannot
 * send whole it declines, taking no room.
 */
import { describe, expect, it } from 'vitest';
import { onesSum } from '@xsim/hypervisor';
import { sameHostRig, type Guest } from './same-host-rig.ts';

const MSS = 1448;
const macBytes = (mac: number): number[] => [5, 4, 3, 2, 1, 0].map((i) => Math.floor(mac / 2 ** (8 * i)) % 256);

/** An IPv4 TCP frame dst <- src with `payload` octets (the byte pattern of their offset), its checksum partial. */
function tcpFrame(dst: number, src: number, payload: number): Uint8Array {
  const b = new Uint8Array(14 + 20 + 20 + payload);
  b.set([...macBytes(dst), ...macBytes(src), 0x08, 0x00], 0);
  const ipLen = 40 + payload;
  b.set([0x45, 0, ipLen >> 8, ipLen & 0xff, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 9, 1, 10, 0, 9, 2], 14);
  b.set([0x9c, 0x40, 0x14, 0x51, 0, 0, 0x10, 0, 0, 0, 0, 1, 5 << 4, 0x18, 0xff, 0xff], 34);
  for (let i = 0; i < payload; i++) b[54 + i] = (i * 13) & 0xff;
  return b;
}

/** Two guests of one host on vnic (its tso argument on, the default). */
function up() {
  const r = sameHostRig('vnic');
  const [g1, g2] = r.guests;
  r.attach(g1, g2);
  return { r, g1, g2 };
}

/** The payloads g got, in order, each segment's checksums checked. */
function payloads(g: Guest): number[] {
  return g.delivered.flatMap((f) => {
    expect(onesSum(f, 14, 20)).toBe(0xffff);
    const tcpLen = f.length - 34;
    expect(onesSum(f, 34, tcpLen, onesSum(f, 26, 8, 6 + tcpLen))).toBe(0xffff);
    return [...f.subarray(54)];
  });
}

describe('vnic: TSO through the VI NIC (plugin API 1.5)', () => {
  it('on by default; with its tso argument false, tsoMax is 0, so the stack hands it MTU-sized frames only, and one over the MTU is declined', () => {
    expect(up().g1.stats()).toMatchObject({ tso: true });
    const r = sameHostRig('vnic', { args: { tso: false } });
    const [g1, g2] = r.guests;
    r.attach(g1, g2);
    expect(g1.fe.tsoMax!()).toBe(0);
    expect(g1.stats()).toMatchObject({ tso: false, freeTsoSlots: 0 });
    expect(g1.fe.txBuffer!(10_054)).toBe(-1);
    const f = tcpFrame(g2.vif.mac, g1.vif.mac, 10_000);
    expect(g1.fe.startXmit(f, 0, f.length, true, MSS)).toBe(false);
    expect(g1.stats()).toMatchObject({ txTso: 0, declinedBusy: 1 });
  });

  it('a TCP frame of 30 kB to a guest of this host: copied into the TX pages, cut by the NIC, every segment delivered in order', () => {
    const { r, g1, g2 } = up();
    expect(g1.fe.tsoMax!()).toBe(65535);
    const f = tcpFrame(g2.vif.mac, g1.vif.mac, 30_000);
    expect(g1.fe.startXmit(f, 0, f.length, true, MSS)).toBe(true);
    g1.fe.flush?.();
    r.pump();
    expect(g2.delivered).toHaveLength(Math.ceil(30_000 / MSS));
    expect(payloads(g2)).toEqual([...f.subarray(54)]);
    expect(g1.stats()).toMatchObject({ txTso: 1, txCopied: 1, taken: 1 });
    expect(r.fnStats(g1)).toMatchObject({ txTsoFrames: 1, txTsoSegments: 21, txTsoBad: 0 });
  });

  it('built where txBuffer lent: posted from there, no copy; seven 64 KiB frames in flight, then netfront waits until the NIC is done', () => {
    const { r, g1, g2 } = up();
    const f = tcpFrame(g2.vif.mac, g1.vif.mac, 10_000);
    const at = g1.fe.txBuffer!(f.length);
    expect(at).toBeGreaterThanOrEqual(0);
    g1.ram.set(f, at);
    expect(g1.fe.startXmit(g1.ram, at, f.length, true, MSS)).toBe(true);
    g1.fe.flush?.();
    r.pump();
    expect(g1.stats()).toMatchObject({ txTso: 1, txCopied: 0 });
    expect(payloads(g2)).toEqual([...f.subarray(54)]);
    // All pages back: seven frames of 64 KiB (17 pages each of the 128) are taken, each built in place...
    const big = tcpFrame(g2.vif.mac, g1.vif.mac, 65535 - 40);
    expect(g1.stats()).toMatchObject({ freeTsoSlots: 7 });
    const lent = new Set<number>();
    for (let i = 0; i < 7; i++) {
      expect(g1.fe.checkReady()).toBe(true);
      const a = g1.fe.txBuffer!(big.length);
      expect(a).toBeGreaterThanOrEqual(0);
      lent.add(a);
      g1.ram.set(big, a);
      expect(g1.fe.startXmit(g1.ram, a, big.length, true, MSS)).toBe(true);
    }
    expect(lent.size).toBe(7);
    expect(g1.stats()).toMatchObject({ txTso: 8, txCopied: 0, freeTsoSlots: 0 });
    // ...and then no room for an eighth: netfront holds its queue (a declined frame would overtake them).
    expect(g1.fe.txBuffer!(big.length)).toBe(-1);
    expect(g1.fe.checkReady()).toBe(false);
    g1.fe.flush?.();
    r.pump();
    expect(g1.fe.checkReady()).toBe(true);
    expect(g2.delivered).toHaveLength(Math.ceil(10_000 / MSS) + 7 * Math.ceil((65535 - 40) / MSS));
  });

  it('a frame to a destination not on the fast path is declined, taking none of the room lent for it', () => {
    const { g1 } = up();
    const f = tcpFrame(0x00163e00aa01, g1.vif.mac, 10_000);
    const at = g1.fe.txBuffer!(f.length);
    g1.ram.set(f, at);
    expect(g1.fe.startXmit(g1.ram, at, f.length, true, MSS)).toBe(false);
    expect(g1.stats()).toMatchObject({ txTso: 0, declinedUnknown: 1 });
    expect(g1.fe.txBuffer!(f.length)).toBe(at);
  });
});
