/**
 * vnic's DMA area (issue 20, item 8): a guest kernel resumed after a save or
 * a migration sets its buffers up again, and vnic's contiguous area must fit
 * after them every time, not every other time; and when the resumed kernel
 * still holds the TX frames it sends again, the offer waits for them instead
 * of failing the frontend.
 */
import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { FrameAllocator, GuestMemory } from '@xsim/hypervisor';
import type { AccelFrontendContext } from '@xsim/netfront';
import { VNIC_FRONTEND_COUNTERS, createFrontend } from '../src/vnic/frontend.ts';
import { KERNEL_STATE_VERSION, bufferFrames, readKernelState, stateFrames, writeKernelState } from '../../netfront/src/suspend.ts';

const PAGES = 1024;

/** What a guest kernel allocates at boot or resume before any plugin: netfront's TX and RX buffers and its two ring pages. */
function bootNetfront(frames: FrameAllocator): void {
  frames.allocRange(256);
  frames.allocRange(256);
  frames.alloc();
  frames.alloc();
}

describe('FrameAllocator', () => {
  it('after every suspend and resume the 398-frame DMA area lands where it did at boot', () => {
    const mem = GuestMemory.allocate(PAGES);
    let frames = new FrameAllocator(mem);
    bootNetfront(frames);
    const area = frames.allocRange(398);
    for (let move = 0; move < 6; move++) {
      // Suspend: the plugin gives its area back, then the kernel writes its record.
      for (let p = 0; p < 398; p++) frames.release(area + p);
      const record = frames.allocRange(1);
      // Resume in a fresh kernel: the record's frame is held until read, then the kernel boots its devices.
      frames = new FrameAllocator(mem);
      frames.take([record]);
      frames.release(record);
      bootNetfront(frames);
      expect(frames.allocRange(398), `move ${move}`).toBe(area);
    }
  });

  it('hands out the lowest free frames whatever order they came back in', () => {
    const frames = new FrameAllocator(GuestMemory.allocate(16));
    const got = Array.from({ length: 8 }, () => frames.alloc());
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const f of [6, 2, 4]) frames.release(f);
    expect([frames.alloc(), frames.alloc(), frames.alloc()]).toEqual([2, 4, 6]);
    expect(frames.allocRange(3)).toBe(8);
    expect(frames.allocRangeHigh(2)).toBe(14);
    expect(frames.available).toBe(16 - 8 - 3 - 2);
  });

  it('refuses a frame given back twice or taken while in use, naming it', () => {
    const frames = new FrameAllocator(GuestMemory.allocate(8));
    const f = frames.alloc();
    frames.release(f);
    expect(() => frames.release(f)).toThrow(`frame ${f} released twice`);
    expect(() => frames.release(8)).toThrow('frame 8 outside RAM of 8 pages');
    frames.take([3]);
    expect(() => frames.take([3, 4])).toThrow('frames 3 are not free');
    expect(() => frames.allocRange(8)).toThrow('out of guest memory: no 8 contiguous free frames');
  });
});

describe('suspend record', () => {
  it('goes to the top of RAM with copies of the TX frames to send again, out of the way of the buffers the resumed kernel sets up', () => {
    const mem = GuestMemory.allocate(PAGES);
    const frames = new FrameAllocator(mem);
    bootNetfront(frames);
    // Two untaken TX frames in netfront's TX buffers (the bottom of RAM).
    mem.u8.fill(0xab, 5 * 4096, 5 * 4096 + 1000);
    mem.u8.fill(0xcd, 9 * 4096, 9 * 4096 + 1500);
    const device = {
      handle: 0,
      mac: '00:16:3e:00:00:01',
      ip: '10.0.1.5',
      mtu: 1500,
      counters: {},
      endpoint: {} as never,
      unanswered: [
        { addr: 5 * 4096, len: 1000 },
        { addr: 9 * 4096, len: 1500 },
      ],
      lastRxAt: null,
    };
    const at = writeKernelState(mem, frames, { v: KERNEL_STATE_VERSION, devices: [device] });
    const st = readKernelState(mem, at);
    const held = [...stateFrames(at), ...st.devices[0].unanswered.flatMap(bufferFrames)];
    // All held frames sit above what netfront and vnic take at the bottom (514 + 398).
    expect(Math.min(...held)).toBeGreaterThanOrEqual(514 + 398);
    expect(st.devices[0].unanswered.map((b) => b.len)).toEqual([1000, 1500]);
    const [a, b] = st.devices[0].unanswered;
    expect(a.addr % 4096).toBe(0);
    expect(mem.u8.subarray(a.addr, a.addr + 1000).every((x) => x === 0xab)).toBe(true);
    expect(mem.u8.subarray(b.addr, b.addr + 1500).every((x) => x === 0xcd)).toBe(true);
  });

  it('naming one frame twice is refused (the resumed kernel would give it back twice)', () => {
    const mem = GuestMemory.allocate(64);
    const unanswered = [
      { addr: 3 * 4096, len: 100 },
      { addr: 3 * 4096 + 200, len: 100 },
    ];
    // A record as an edited save image could carry it: two TX frames in one page.
    const bytes = pack({
      v: KERNEL_STATE_VERSION,
      devices: [{ handle: 0, mac: '00:16:3e:00:00:01', ip: '10.0.1.5', mtu: 1500, counters: {}, endpoint: {}, unanswered, lastRxAt: null }],
    });
    mem.u8.set(bytes, 40 * 4096);
    expect(() => readKernelState(mem, { frame: 40, len: bytes.length })).toThrow(
      'suspend record: a TX frame of vif0 shares frame 3 with the record or another TX frame',
    );
  });
});

describe('vnic frontend', () => {
  function frontend(frames: FrameAllocator, mem: GuestMemory) {
    const sent: { op: string; args: Record<string, unknown> }[] = [];
    const logs: string[] = [];
    let now = 0;
    let gref = 1;
    const ctx = {
      domid: 1,
      backendDomid: 0,
      mac: 0x00163e000001,
      mem,
      frames,
      gnttab: { grantAccess: () => {}, endAccess: () => true },
      grefs: { alloc: () => gref++, release: () => {} },
      evtchn: { allocPirq: () => 7, bindHandler: () => {}, close: () => {} },
      mtu: 1500,
      clock: { now: () => now },
      send: (op: string, args: Record<string, unknown>) => sent.push({ op, args }),
      kickNic: () => {},
      deliver: () => {},
      log: (m: string) => logs.push(m),
    } as unknown as AccelFrontendContext;
    return { fe: createFrontend(ctx), sent, logs, advance: (ms: number) => (now += ms) };
  }

  it('an offer made while the resumed kernel still holds its TX frames waits for them, then is accepted', () => {
    const mem = GuestMemory.allocate(PAGES);
    const frames = new FrameAllocator(mem);
    bootNetfront(frames);
    // The TX frames to send again lie in the middle of the free RAM: 510 frames free, no 398 of them contiguous.
    frames.take([700, 701]);
    const { fe, sent, logs, advance } = frontend(frames, mem);
    fe.newDevice({}, []);
    expect(sent).toEqual([]);
    expect(logs.filter((l) => /DMA area are not free yet/.test(l))).toHaveLength(1);
    advance(10);
    expect(fe.poll(64)).toBe(0);
    expect(sent).toEqual([]);
    // Sent again: the kernel gives them back, and the next poll answers the offer.
    frames.release(700);
    frames.release(701);
    fe.poll(64);
    expect(sent.map((m) => m.op)).toEqual(['accept']);
    expect((sent[0].args.grefs as number[]).length).toBe(398);
    expect(frames.available).toBe(PAGES - 514 - 398);
    const s = fe.getStats();
    expect(s.dmaAreaWaits).toBe(1);
    expect(VNIC_FRONTEND_COUNTERS.names()).toContain('dmaAreaWaits');
    // Detached: the area goes back whole.
    fe.release!();
    expect(frames.available).toBe(PAGES - 514);
  });

  it('a wait that never ends fails the frontend after its bound; a guest short of RAM fails at once', () => {
    const mem = GuestMemory.allocate(PAGES);
    const frames = new FrameAllocator(mem);
    bootNetfront(frames);
    frames.take([700]);
    const w = frontend(frames, mem);
    w.fe.newDevice({}, []);
    w.advance(1001);
    expect(() => w.fe.poll(64)).toThrow('out of guest memory: no 398 contiguous free frames');
    expect(w.sent).toEqual([]);

    // Frames coming back one by one, each within the bound, keep the offer waiting past it (a loaded
    // machine's resumed kernel sends its frames again slowly); it is answered once the area fits.
    const slow = frontend(frames, mem);
    frames.take([650, 750]);
    slow.fe.newDevice({}, []);
    for (const f of [650, 750]) {
      slow.advance(900);
      frames.release(f);
      expect(slow.fe.poll(64)).toBe(0);
      expect(slow.sent).toEqual([]);
    }
    slow.advance(900);
    frames.release(700);
    slow.fe.poll(64);
    expect(slow.sent.map((m) => m.op)).toEqual(['accept']);

    const small = GuestMemory.allocate(800);
    const tight = new FrameAllocator(small);
    bootNetfront(tight);
    const t = frontend(tight, small);
    expect(() => t.fe.newDevice({}, [])).toThrow('out of guest memory: no 398 contiguous free frames');
  });
});
