/** The TX decisions vnic and vdpa share (src/tx-path.ts): which frames stay on the slow path, and the slot lent to build one in. */
import { describe, expect, it } from 'vitest';
import { LentSlot, txDecline } from '../src/tx-path.ts';

const frame = (dst: number, ethertype = 0x0800) => {
  const f = new Uint8Array(64);
  for (let i = 0; i < 6; i++) f[i] = (dst / 2 ** (8 * (5 - i))) & 0xff;
  f[12] = ethertype >> 8;
  f[13] = ethertype & 0xff;
  return f;
};
const FAST = 0x00163e0b0101;
const LOCAL = 0x00163e0a0201;

describe('txDecline', () => {
  const fast = new Set([FAST]);
  const local = new Set([LOCAL]);
  it('takes unicast frames to a destination behind the uplink or of this host, when up', () => {
    expect(txDecline(true, fast, local, frame(FAST), 0)).toBeNull();
    expect(txDecline(true, fast, local, frame(LOCAL), 0)).toBeNull();
  });
  it('names why it declines: not up, multicast, ARP, unknown destination', () => {
    expect(txDecline(false, fast, local, frame(FAST), 0)).toBe('notReady');
    expect(txDecline(true, fast, local, frame(0xffffffffffff), 0)).toBe('multicast');
    expect(txDecline(true, fast, local, frame(FAST, 0x0806), 0)).toBe('arp');
    expect(txDecline(true, fast, local, frame(0x00163e0c0101), 0)).toBe('unknown');
  });
  it('reads the frame at its offset', () => {
    const buf = new Uint8Array(128);
    buf.set(frame(FAST), 40);
    expect(txDecline(true, fast, local, buf, 40)).toBeNull();
  });
});

describe('LentSlot', () => {
  it('lends one slot at a time: a second lend gives the first back; take hands it over once', () => {
    const free = [0, 1, 2];
    const l = new LentSlot();
    expect(l.lend(free)).toBe(2);
    expect(l.lend(free)).toBe(2); // the unused one went back and came out again
    expect(free).toEqual([0, 1]);
    expect(l.take()).toBe(2);
    expect(l.take()).toBe(-1);
    expect(free).toEqual([0, 1]);
  });
  it('answers -1 when no slot is free, and giveBack returns an unused lend', () => {
    const free: number[] = [];
    const l = new LentSlot();
    expect(l.lend(free)).toBe(-1);
    free.push(7);
    expect(l.lend(free)).toBe(7);
    l.giveBack(free);
    expect(free).toEqual([7]);
    expect(l.take()).toBe(-1);
  });
});
