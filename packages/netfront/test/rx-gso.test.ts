/**
 * TCPv4 GSO frames on netfront's RX (Linux xen-netfront's
 * xennet_get_responses, xennet_set_skb_gso, xennet_fill_frags), against a
 * scripted backend in process: a frame of up to 64 KiB comes as its first
 * response, a GSO extra-info slot and the rest of its data over following
 * slots, and is handed to the stack as one frame with its checksum flags.
 * Each malformed sequence drops its frame, counted by its reason, never the
 * device; a property drives arbitrary response sequences.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_extra_info,
  NETRXF_more_data,
  PAGE_SIZE,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_MAX,
  XEN_NETIF_GSO_TYPE_TCPV4,
} from '@xsim/hypervisor';
import { ETH_HLEN, ETH_P_IP, writeIpHeader, writePartialL4Checksum, writeU16, writeU32 } from '@xsim/netstack';
import { respond, rig, type Slot } from './rx-rig.ts';

const GSO = { type: XEN_NETIF_EXTRA_TYPE_GSO, gsoSize: 1448, gsoType: XEN_NETIF_GSO_TYPE_TCPV4 };
const CSUM = NETRXF_csum_blank | NETRXF_data_validated;

/** A TCPv4 frame of `len` octets to the rig's guest, its checksum partial. */
function tcpFrame(len: number): Uint8Array {
  const b = new Uint8Array(len);
  b.set([0x00, 0x16, 0x3e, 0x00, 0x00, 0x04, 0x00, 0x16, 0x3e, 0x00, 0x00, 0x05], 0);
  writeU16(b, 12, ETH_P_IP);
  writeIpHeader(b, ETH_HLEN, 0x0a000005, 0x0a000004, 7, 6, len - 34);
  writeU32(b, 38, 1000);
  b[46] = 5 << 4;
  b[47] = 0x10;
  for (let i = 54; i < len; i++) b[i] = (i * 7 + (i >> 9)) & 0xff;
  writePartialL4Checksum(b, 0, len);
  return b;
}

type Rig = ReturnType<typeof rig>;

/**
 * The responses a backend writes for `frame` from ring slot `start` on: its
 * data a page a slot, copied into the buffers posted there, a GSO slot
 * (`gso`, if given) after the first.
 */
function gsoSlots(r: Rig, frame: Uint8Array, start: number, gso: Slot | null = GSO, flags = CSUM): Slot[] {
  const out: Slot[] = [];
  let at = 0;
  let slot = start;
  while (at < frame.length) {
    const n = Math.min(PAGE_SIZE, frame.length - at);
    const b = r.posted(slot++);
    b.page.set(frame.subarray(at, at + n));
    at += n;
    const first = out.length === 0;
    out.push({ id: b.id, status: n, flags: (first ? flags | (gso ? NETRXF_extra_info : 0) : 0) | (at < frame.length ? NETRXF_more_data : 0) });
    if (first && gso) out.push({ ...gso, id: r.posted(slot++).id } as Slot);
  }
  return out;
}

/** A one-slot frame after a dropped one: the device is still up and takes it. */
function nextArrives(r: Rig, slot: number): void {
  const before = r.received.length;
  respond(r.rx, [{ id: r.posted(slot).id, flags: 0, status: 200 }]);
  r.nf.poll();
  expect(r.received.slice(before)).toEqual([200]);
  expect(r.nf.brokenReason).toBe('');
}

describe('netfront RX: TCPv4 GSO frames', () => {
  it('a 20000-octet frame over 5 data slots and a GSO slot: one frame to the stack, its bytes, csum_blank|data_validated; every buffer reposted', () => {
    const r = rig();
    const grants = r.grefs.available;
    const frame = tcpFrame(20000);
    const slots = gsoSlots(r, frame, 0);
    expect(slots).toHaveLength(6);
    respond(r.rx, slots);
    r.nf.poll();
    expect(r.received).toEqual([20000]);
    expect(r.frames[0].bytes).toEqual(frame);
    expect(r.frames[0].flags).toBe(CSUM);
    expect(r.nf.c).toMatchObject({ rxGso: 1, rxFragmented: 1, rxExtraInfo: 1, rxPackets: 1, rxBytes: 20000, rxCsumBlank: 1 });
    expect(r.grefs.available).toBe(grants);
  });

  it('the largest frame, 65535 + 14 octets over 17 slots, is taken whole', () => {
    const r = rig();
    const frame = tcpFrame(65535 + ETH_HLEN);
    respond(r.rx, gsoSlots(r, frame, 0));
    r.nf.poll();
    expect(r.received).toEqual([frame.length]);
    expect(r.frames[0].bytes).toEqual(frame);
  });

  it.each([
    ['gso.size 0', { ...GSO, gsoSize: 0 }, 'rxErrGsoSize'],
    ['a GSO type other than TCPv4 (TCPv6)', { ...GSO, gsoType: 2 }, 'rxErrGsoType'],
    ['an extra of unknown type', { type: XEN_NETIF_EXTRA_TYPE_MAX }, 'rxErrExtraType'],
  ] as const)('a 20000-octet frame whose extra slot is %s: dropped, counted, the next frame arrives', (_what, extra, counter) => {
    const r = rig();
    const slots = gsoSlots(r, tcpFrame(20000), 0, extra as Slot);
    respond(r.rx, slots);
    r.nf.poll();
    expect(r.received).toEqual([]);
    expect(r.nf.c[counter]).toBe(1);
    expect(r.nf.c.rxGso).toBe(0);
    nextArrives(r, slots.length);
  });

  it('a frame longer than 65535 + 14 octets (18 full pages): dropped as too long, counted once', () => {
    const r = rig();
    const slots = gsoSlots(r, new Uint8Array(18 * PAGE_SIZE).fill(1), 0);
    respond(r.rx, slots);
    r.nf.poll();
    expect(r.received).toEqual([]);
    expect(r.nf.c).toMatchObject({ rxErrTooLong: 1, rxGso: 0, rxPackets: 0 });
    nextArrives(r, slots.length);
  });

  it('more data slots than allowed (19 of 100 octets): dropped, counted once', () => {
    const r = rig();
    const slots: Slot[] = Array.from({ length: 19 }, (_v, i) => ({ id: r.posted(i).id, status: 100, flags: i < 18 ? NETRXF_more_data : 0 }));
    respond(r.rx, slots);
    r.nf.poll();
    expect(r.received).toEqual([]);
    expect(r.nf.c.rxErrTooManySlots).toBe(1);
    nextArrives(r, 19);
  });

  it('a slot whose offset and size run past its page: the whole GSO frame dropped (rxBadResponse)', () => {
    const r = rig();
    const slots = gsoSlots(r, tcpFrame(9000), 0);
    (slots[2] as { offset: number }).offset = 100;
    respond(r.rx, slots);
    r.nf.poll();
    expect(r.received).toEqual([]);
    expect(r.nf.c.rxBadResponse).toBe(1);
    nextArrives(r, slots.length);
  });
});

/** One frame of the property: its data slots (status, offset) and extras as a backend might write them. */
interface GenFrame {
  data: { status: number; offset: number }[];
  extras: { type: number; gsoSize: number; gsoType: number }[];
  flags: number;
}

const genFrame: fc.Arbitrary<GenFrame> = fc.record({
  data: fc.array(
    fc.record({
      status: fc.oneof(fc.integer({ min: 1, max: PAGE_SIZE }), fc.constantFrom(PAGE_SIZE, -1, 0, PAGE_SIZE + 1)),
      offset: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 200 })),
    }),
    { minLength: 1, maxLength: 20 },
  ),
  extras: fc.array(
    fc.record({
      type: fc.oneof(fc.constant(XEN_NETIF_EXTRA_TYPE_GSO), fc.integer({ min: 0, max: 7 })),
      gsoSize: fc.oneof(fc.constant(1448), fc.integer({ min: 0, max: 3 })),
      gsoType: fc.oneof(fc.constant(XEN_NETIF_GSO_TYPE_TCPV4), fc.integer({ min: 0, max: 4 })),
    }),
    { maxLength: 2 },
  ),
  flags: fc.constantFrom(0, NETRXF_data_validated),
});

/** What netfront must make of a frame: the octets it delivers, or null (dropped). */
function expected(f: GenFrame, pages: Uint8Array[]): Uint8Array | null {
  const extraBad = f.extras.some(
    (e) =>
      e.type === 0 ||
      e.type >= XEN_NETIF_EXTRA_TYPE_MAX ||
      (e.type === XEN_NETIF_EXTRA_TYPE_GSO && (e.gsoSize === 0 || e.gsoType !== XEN_NETIF_GSO_TYPE_TCPV4)),
  );
  if (extraBad || f.data.length > 18 || f.data.some((d) => d.status < 0 || d.offset + d.status > PAGE_SIZE)) return null;
  const len = f.data.reduce((a, d) => a + d.status, 0);
  if (len > 65535 + ETH_HLEN) return null;
  const out = new Uint8Array(len);
  let at = 0;
  f.data.forEach((d, i) => {
    out.set(pages[i].subarray(d.offset, d.offset + d.status), at);
    at += d.status;
  });
  return out;
}

describe('netfront RX: arbitrary response sequences (property)', () => {
  it('never throws, never delivers a malformed frame, delivers each good one exactly, every slot accounted for', () => {
    fc.assert(
      fc.property(fc.array(genFrame, { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 255 }), (frames, seed) => {
        const r = rig();
        const grants = r.grefs.available;
        const want: (Uint8Array | null)[] = [];
        let slot = 0;
        for (const f of frames) {
          // A frame at a time: the ring holds 256 buffers, one frame takes at most 22.
          const slots: Slot[] = [];
          const pages: Uint8Array[] = [];
          const base = r.rx.rspProd;
          f.data.forEach((d, i) => {
            const b = r.posted(base + slots.length);
            b.page.fill((seed + slot + i) & 0xff);
            b.page[d.offset] = i;
            pages.push(b.page.slice());
            slots.push({
              id: b.id,
              offset: d.offset,
              status: d.status,
              flags: (i === 0 ? f.flags | (f.extras.length ? NETRXF_extra_info : 0) : 0) | (i < f.data.length - 1 ? NETRXF_more_data : 0),
            });
            if (i === 0)
              f.extras.forEach((e, k) =>
                slots.push({ ...e, id: r.posted(base + slots.length).id, flags: k < f.extras.length - 1 ? XEN_NETIF_EXTRA_FLAG_MORE : 0 } as Slot),
              );
          });
          slot += slots.length;
          want.push(expected(f, pages));
          respond(r.rx, slots);
          for (let i = 0; i < 4 && r.nf.poll() > 0; i++);
        }
        const good = want.filter((w): w is Uint8Array => w !== null);
        expect(r.frames.map((x) => x.bytes)).toEqual(good);
        const c = r.nf.c;
        const dropped =
          c.rxErrorStatus + c.rxBadResponse + c.rxErrTooManySlots + c.rxErrTooLong + c.rxErrExtraType + c.rxErrExtraMissing + c.rxErrGsoSize + c.rxErrGsoType;
        expect(dropped).toBe(want.length - good.length);
        expect(c.rxPackets).toBe(good.length);
        expect(c.rxExtraInfo).toBe(frames.reduce((a, f) => a + f.extras.length, 0));
        expect(r.nf.brokenReason).toBe('');
        // Every slot answered gave its buffer back, and netfront posted it again.
        expect(r.grefs.available).toBe(grants);
      }),
      { numRuns: 150 },
    );
  });
});
