/**
 * The virtio NIC (nic:1af4-1041) as its drivers see it: split virtqueues in
 * SharedArrayBuffers driven through Virtqueue, the device programmed through
 * its admin commands (abi/vdpa.ts). The device runs in process, one poll at a
 * time, so each verdict is checked exactly; one test per malformed input a
 * driver can hand the device.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WithShared, type DeviceIrq } from '@xsim/hypervisor';
import {
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_STATUS_DRIVER_OK,
  VIRTIO_STATUS_NEEDS_RESET,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VQA_IDX,
  VQD_FLAGS,
  VQD_NEXT,
  VQ_FAULT_CHAIN,
  VQ_FAULT_DIRECTION,
  VQ_FAULT_INDEX,
  VQ_FAULT_IOMMU,
  VQ_PAIR_PAGES,
  VQ_SIZE,
  Virtqueue,
  VqNic,
  VqNotify,
  handleVdpa,
} from '../src/index.ts';

const PAGE = 4096;
const MAC_A = 0x00163e0a0101;
const MAC_B = 0x00163e0a0201;
const MAC_REMOTE = 0x00163e0b0101;
/** Pages 0-3 of a domain are TX buffers, 4-7 RX buffers, 8..13 the queues. */
const Q_PAGE = 8;
const RAM_PAGES = Q_PAGE + VQ_PAIR_PAGES + 2;

interface Fn {
  fn: number;
  domid: number;
  ram: Uint8Array;
  rx: Virtqueue;
  tx: Virtqueue;
  notify: VqNotify;
  kicks: number;
  received: Uint8Array[];
}

const macBytes = (mac: number): number[] => [5, 4, 3, 2, 1, 0].map((i) => Math.floor(mac / 2 ** (8 * i)) % 256);
const area = (p: number) => ({ desc: p * PAGE, avail: (p + 1) * PAGE, used: (p + 2) * PAGE });
/** The device sees the domain's pages at IOVA = RAM offset + this (not identity: the translation is really used). */
const IOVA_BASE = 0x100000;

function rig(o: { macsOf?: (domid: number) => number[] | null } = {}) {
  const rams = new Map<number, Uint8Array>([0, 1, 2].map((d) => [d, new Uint8Array(new SharedArrayBuffer(RAM_PAGES * PAGE))]));
  const mk = (name: string) => new VqNic({ name, host: name, mac: 0x000f53000000, mtu: 1500, vendor: '1af4', device: '1041', vis: 3 }, rams);
  const nic = mk('nic-a');
  const remote = mk('nic-b');
  nic.wire = remote.fromWire;
  remote.wire = nic.fromWire;
  const start = (dev: VqNic, fn: number, domid: number, macs: number[] | null): Fn => {
    const ram = rams.get(domid)!;
    const sab = ram.buffer as SharedArrayBuffer;
    const frames = Array.from({ length: RAM_PAGES }, (_, f) => f);
    expect(handleVdpa(dev, 'iotlb_map', { fn, domid, iova: IOVA_BASE, frames })).toBe(RAM_PAGES);
    const rxA = area(Q_PAGE);
    const txA = area(Q_PAGE + 3);
    Virtqueue.clear(ram, rxA);
    Virtqueue.clear(ram, txA);
    const io = (a: { desc: number; avail: number; used: number }) => ({
      size: VQ_SIZE,
      desc: a.desc + IOVA_BASE,
      avail: a.avail + IOVA_BASE,
      used: a.used + IOVA_BASE,
    });
    const r = handleVdpa(dev, 'fn_start', { fn, domid, rx: io(rxA), tx: io(txA), irq: false, macs }) as WithShared;
    const g: Fn = { fn, domid, ram, rx: null!, tx: null!, notify: new VqNotify(r.shared[0]), kicks: 0, received: [] };
    g.rx = new Virtqueue(sab, rxA, VQ_SIZE, () => g.kicks++);
    g.tx = new Virtqueue(sab, txA, VQ_SIZE, () => g.kicks++);
    for (let p = 4; p < 8; p++) g.rx.add([p * PAGE + IOVA_BASE], [PAGE], true);
    g.rx.publish();
    return g;
  };
  const dom0 = start(remote, 0, 0, null);
  const a = start(nic, 1, 1, o.macsOf ? o.macsOf(1) : [MAC_A]);
  const b = start(nic, 2, 2, o.macsOf ? o.macsOf(2) : [MAC_B]);
  const run = () => {
    nic.poll();
    remote.poll();
    nic.flushAll();
    remote.flushAll();
  };
  return { nic, remote, a, b, dom0, run };
}

/** A frame dst <- src (after a zeroed virtio_net_hdr) in TX page `page`, posted as one descriptor. */
function send(g: Fn, dst: number, src: number, len = 100, page = 0, fill = 0x5a): void {
  const at = page * PAGE;
  g.ram.fill(0, at, at + VIRTIO_NET_HDR_SIZE);
  const f = at + VIRTIO_NET_HDR_SIZE;
  g.ram.set(macBytes(dst), f);
  g.ram.set(macBytes(src), f + 6);
  g.ram[f + 12] = 0x88;
  g.ram[f + 13] = 0xb5;
  g.ram.fill(fill, f + 14, f + len);
  g.tx.add([at + IOVA_BASE], [VIRTIO_NET_HDR_SIZE + len], false);
  g.tx.publish();
}

/** Frames the device returned on the receiveq (header stripped), its buffers reposted. */
function receive(g: Fn): Uint8Array[] {
  const got: Uint8Array[] = [];
  for (let u = g.rx.takeUsed(); u; u = g.rx.takeUsed()) {
    const at = 4 * PAGE + (u.head % 4) * PAGE; // heads 0..3 hold pages 4..7 (one descriptor each, posted in order)
    got.push(g.ram.slice(at + VIRTIO_NET_HDR_SIZE, at + u.len));
    g.rx.add([at + IOVA_BASE], [PAGE], true);
  }
  g.rx.publish();
  g.notify.rxSeen(g.rx.lastUsed);
  return got;
}

describe('virtio NIC datapath', () => {
  it('switches a frame between two functions of one NIC by a steering rule, with the header stripped and num_buffers 1', () => {
    const { nic, a, b, run } = rig();
    handleVdpa(nic, 'steer_add', { fn: 2, match: { kind: 'mac', mac: MAC_B } });
    send(a, MAC_B, MAC_A, 200);
    run();
    expect(a.tx.takeUsed()).toEqual({ head: 0, len: 0 });
    const got = receive(b);
    expect(got).toHaveLength(1);
    expect(got[0].length).toBe(200);
    expect([...got[0].subarray(0, 6)]).toEqual(macBytes(MAC_B));
    expect(nic.fns[1].c.txSwitchedLocal).toBe(1);
    expect(nic.c.wireTx).toBe(0);
    // num_buffers (le16 at 10) of the header the device wrote.
    expect(b.ram[4 * PAGE + 10]).toBe(1);
  });

  it('sends an unsteered frame on the wire; the far NIC delivers it to function 0', () => {
    const { nic, remote, a, dom0, run } = rig();
    send(a, MAC_REMOTE, MAC_A, 60);
    run();
    expect(nic.c.wireTx).toBe(1);
    expect(remote.c.rxDefault).toBe(1);
    expect(receive(dom0).map((f) => f.length)).toEqual([60]);
  });

  it('gathers a frame from a chain of descriptors spanning non-contiguous pages', () => {
    const { nic, a, b, run } = rig();
    handleVdpa(nic, 'steer_add', { fn: 2, match: { kind: 'mac', mac: MAC_B } });
    // Header + first 20 bytes in page 0, the rest in page 2.
    send(a, MAC_B, MAC_A, 100); // builds the frame in page 0; consumed below
    run();
    a.tx.takeUsed();
    receive(b);
    a.ram.copyWithin(2 * PAGE, VIRTIO_NET_HDR_SIZE + 20, VIRTIO_NET_HDR_SIZE + 100);
    a.tx.add([IOVA_BASE, 2 * PAGE + IOVA_BASE], [VIRTIO_NET_HDR_SIZE + 20, 80], false);
    a.tx.publish();
    run();
    const got = receive(b);
    expect(got.map((f) => f.length)).toEqual([100]);
    expect(got[0][99]).toBe(0x5a);
  });

  it('drops a frame sent from a MAC the function does not own (anti-spoofing), counted', () => {
    const { nic, a, b, run } = rig();
    handleVdpa(nic, 'steer_add', { fn: 2, match: { kind: 'mac', mac: MAC_B } });
    send(a, MAC_B, MAC_REMOTE);
    run();
    expect(nic.fns[1].c.txSpoofDrops).toBe(1);
    expect(receive(b)).toHaveLength(0);
    expect(a.tx.takeUsed()).not.toBeNull(); // the chain is returned all the same
  });

  it('counts a frame for a function with no RX chain posted (rxNoDesc)', () => {
    const { nic, a, b, run } = rig();
    handleVdpa(nic, 'steer_add', { fn: 2, match: { kind: 'mac', mac: MAC_B } });
    for (let i = 0; i < 5; i++) send(a, MAC_B, MAC_A, 64, i % 4);
    run();
    expect(nic.fns[2].c.rxFrames).toBe(4);
    expect(nic.fns[2].c.rxNoDesc).toBe(1);
    expect(receive(b)).toHaveLength(4);
  });

  it('interrupts only when used_event asks, and the driver kicks only when avail_event asks', () => {
    const { nic, a, b, run } = rig();
    let irqs = 0;
    // The rig binds no interrupt: stand a counting one in for b's.
    nic.fns[2].a!.irq = { raise: () => irqs++ } as unknown as DeviceIrq;
    handleVdpa(nic, 'steer_add', { fn: 2, match: { kind: 'mac', mac: MAC_B } });
    const kicksBefore = a.kicks;
    send(a, MAC_B, MAC_A);
    expect(a.kicks).toBe(kicksBefore + 1); // avail_event 0 at start: the first entry kicks
    send(a, MAC_B, MAC_A, 64, 1);
    expect(a.kicks).toBe(kicksBefore + 1); // the device polls (avail_event left behind): no kick
    run();
    // used_event 0: the first used entry interrupts, the second (same round) needs none more.
    expect(irqs).toBe(1);
    send(a, MAC_B, MAC_A, 64, 2);
    run();
    expect(irqs).toBe(1); // b has not asked again (used_event still 0)
    receive(b);
    expect(b.rx.enableInterrupt()).toBe(false); // used_event := 3, nothing new
    nic.markAsleep(true); // the device asks for a kick at the next entry
    send(a, MAC_B, MAC_A, 64, 3);
    expect(a.kicks).toBe(kicksBefore + 2);
    run();
    expect(irqs).toBe(2);
  });
});

describe('virtio NIC: one test per malformed driver input', () => {
  const faulted = (nic: VqNic, fn: number, reason: number, g: Fn) => {
    expect(nic.fns[fn].running).toBe(false);
    expect(nic.fns[fn].faultReason).toBe(reason);
    expect(nic.fns[fn].c.faults).toBe(1);
    expect(g.notify.status & VIRTIO_STATUS_NEEDS_RESET).toBe(VIRTIO_STATUS_NEEDS_RESET);
    expect(g.notify.fault).toBe(reason);
  };

  it('a running function says DRIVER_OK', () => {
    const { a } = rig();
    expect(a.notify.status).toBe(VIRTIO_STATUS_DRIVER_OK);
  });

  it('a TX descriptor pointing at an unmapped IOVA faults the function (IOMMU), nothing read', () => {
    const { nic, a, b, run } = rig();
    a.tx.add([RAM_PAGES * PAGE + IOVA_BASE], [100], false);
    a.tx.publish();
    run();
    faulted(nic, 1, VQ_FAULT_IOMMU, a);
    expect(nic.fns[2].running).toBe(true); // the other function of the NIC is untouched
    expect(b.notify.status).toBe(VIRTIO_STATUS_DRIVER_OK);
  });

  it('a TX descriptor crossing out of the mapped pages faults (IOMMU)', () => {
    const { nic, a, run } = rig();
    a.tx.add([(RAM_PAGES - 1) * PAGE + 100 + IOVA_BASE], [PAGE], false);
    a.tx.publish();
    run();
    faulted(nic, 1, VQ_FAULT_IOMMU, a);
  });

  it('a writable descriptor on the transmitq faults (direction)', () => {
    const { nic, a, run } = rig();
    a.tx.add([IOVA_BASE], [100], true);
    a.tx.publish();
    run();
    faulted(nic, 1, VQ_FAULT_DIRECTION, a);
  });

  it('a read-only chain on the receiveq faults at the first frame for it (direction)', () => {
    const { nic, a, b, run } = rig();
    handleVdpa(nic, 'steer_add', { fn: 2, match: { kind: 'mac', mac: MAC_B } });
    // Make the next posted RX descriptor read-only behind the driver library's back.
    const dv = new DataView(b.ram.buffer);
    dv.setUint16(b.rx.area.desc + 0 * 16 + VQD_FLAGS, 0, true);
    send(a, MAC_B, MAC_A);
    run();
    faulted(nic, 2, VQ_FAULT_DIRECTION, b);
  });

  it('a descriptor index past the table faults (chain)', () => {
    const { nic, a, run } = rig();
    const h = a.tx.add([IOVA_BASE, IOVA_BASE], [50, 50], false);
    new DataView(a.ram.buffer).setUint16(a.tx.area.desc + h * 16 + VQD_NEXT, VQ_SIZE + 3, true);
    a.tx.publish();
    run();
    faulted(nic, 1, VQ_FAULT_CHAIN, a);
  });

  it('a chain that loops faults (chain), the device does not spin', () => {
    const { nic, a, run } = rig();
    const h = a.tx.add([IOVA_BASE, IOVA_BASE], [20, 20], false);
    const dv = new DataView(a.ram.buffer);
    const second = dv.getUint16(a.tx.area.desc + h * 16 + VQD_NEXT, true);
    dv.setUint16(a.tx.area.desc + second * 16 + VQD_FLAGS, VIRTQ_DESC_F_NEXT, true);
    dv.setUint16(a.tx.area.desc + second * 16 + VQD_NEXT, h, true);
    a.tx.publish();
    run();
    faulted(nic, 1, VQ_FAULT_CHAIN, a);
  });

  it('an indirect descriptor (not offered) faults (chain)', () => {
    const { nic, a, run } = rig();
    const h = a.tx.add([IOVA_BASE], [16], false);
    new DataView(a.ram.buffer).setUint16(a.tx.area.desc + h * 16 + VQD_FLAGS, VIRTQ_DESC_F_INDIRECT, true);
    a.tx.publish();
    run();
    faulted(nic, 1, VQ_FAULT_CHAIN, a);
  });

  it('an available index moved further than the queue holds faults (index)', () => {
    const { nic, a, run } = rig();
    new DataView(a.ram.buffer).setUint16(a.tx.area.avail + VQA_IDX, VQ_SIZE + 1, true);
    run();
    faulted(nic, 1, VQ_FAULT_INDEX, a);
  });

  it('a chain shorter than the virtio_net_hdr is a counted drop, not a fault', () => {
    const { nic, a, run } = rig();
    a.tx.add([IOVA_BASE], [8], false);
    a.tx.publish();
    run();
    expect(nic.fns[1].c.txOversize).toBe(1);
    expect(nic.fns[1].running).toBe(true);
  });

  it('a receive chain too small for the frame leaves it posted and counts the frame', () => {
    const { nic, a, b, run } = rig();
    handleVdpa(nic, 'steer_add', { fn: 2, match: { kind: 'mac', mac: MAC_B } });
    new DataView(b.ram.buffer).setUint32(b.rx.area.desc + 0 * 16 + 8, 40, true); // first RX chain: 40 bytes
    send(a, MAC_B, MAC_A, 100);
    run();
    expect(nic.fns[2].c.rxNoDesc).toBe(1);
    expect(nic.fns[2].running).toBe(true);
  });

  it('refuses fn_start on queue areas that are not mapped pages of the function', () => {
    const { nic } = rig();
    handleVdpa(nic, 'fn_stop', { fn: 1 });
    expect(() =>
      handleVdpa(nic, 'fn_start', {
        fn: 1,
        domid: 1,
        rx: { size: 256, desc: 0, avail: PAGE, used: 2 * PAGE },
        tx: { size: 256, desc: 0, avail: PAGE, used: 2 * PAGE },
        macs: null,
      }),
    ).toThrow(/no pages of domain 1 mapped/);
    handleVdpa(nic, 'iotlb_map', { fn: 1, domid: 1, iova: 0, frames: [8, 9] });
    expect(() =>
      handleVdpa(nic, 'fn_start', {
        fn: 1,
        domid: 1,
        rx: { size: 256, desc: 0, avail: PAGE, used: 2 * PAGE },
        tx: { size: 256, desc: 0, avail: PAGE, used: 2 * PAGE },
        macs: null,
      }),
    ).toThrow(/rx used at iova 8192 is not a page mapped for function 1/);
  });

  it('refuses to map another domain into a function that has pages of one', () => {
    const { nic } = rig();
    expect(() => handleVdpa(nic, 'iotlb_map', { fn: 1, domid: 2, iova: 0, frames: [0] })).toThrow(/runs for domain 1, not 2/);
    handleVdpa(nic, 'fn_stop', { fn: 1, count: false });
    handleVdpa(nic, 'iotlb_map', { fn: 1, domid: 1, iova: 0, frames: [0] });
    expect(() => handleVdpa(nic, 'iotlb_map', { fn: 1, domid: 2, iova: PAGE, frames: [0] })).toThrow(/IOMMU domain is domain 1's/);
  });

  it('refuses frames that are not pages of the domain, an unaligned IOVA, a page mapped twice', () => {
    const { nic } = rig();
    handleVdpa(nic, 'fn_stop', { fn: 1, count: false });
    expect(() => handleVdpa(nic, 'iotlb_map', { fn: 1, domid: 1, iova: 0, frames: [RAM_PAGES] })).toThrow(/not a page of domain 1's RAM/);
    expect(() => handleVdpa(nic, 'iotlb_map', { fn: 1, domid: 1, iova: 100, frames: [0] })).toThrow(/multipleOf|iova/);
    handleVdpa(nic, 'iotlb_map', { fn: 1, domid: 1, iova: 0, frames: [0] });
    expect(() => handleVdpa(nic, 'iotlb_map', { fn: 1, domid: 1, iova: 0, frames: [1] })).toThrow(/already mapped/);
  });

  it('refuses a steering rule to a function not running, and a link_set that does not say up or down', () => {
    const { nic } = rig();
    handleVdpa(nic, 'fn_stop', { fn: 1 });
    expect(() => handleVdpa(nic, 'steer_add', { fn: 1, match: { kind: 'mac', mac: MAC_A } })).toThrow(
      'function 1 is not running (fn_start it first; a faulted or stopped function takes no rule)',
    );
    expect(() => handleVdpa(nic, 'link_set', {})).toThrow(/link_set refused: argument \/up/);
    expect(nic.linkUp).toBe(true);
  });

  it('refuses to unmap a page holding a queue of a running function', () => {
    const { nic } = rig();
    expect(() => handleVdpa(nic, 'iotlb_unmap', { fn: 1, iova: Q_PAGE * PAGE + IOVA_BASE, count: 1 })).toThrow(/holds a queue of function 1/);
    expect(handleVdpa(nic, 'iotlb_unmap', { fn: 1, iova: IOVA_BASE, count: 2 })).toBe(2);
  });

  it('counts at fn_stop the chains never sent and the frames delivered but never taken', () => {
    const { nic, a, b, run } = rig();
    handleVdpa(nic, 'steer_add', { fn: 2, match: { kind: 'mac', mac: MAC_B } });
    send(a, MAC_B, MAC_A, 64, 0);
    send(a, MAC_B, MAC_A, 64, 1);
    run(); // two delivered to b, unread
    send(a, MAC_B, MAC_A, 64, 2); // posted, never sent
    const r = handleVdpa(nic, 'fn_stop', { fn: 1 }) as { rules: number; pages: number };
    expect(r.pages).toBe(RAM_PAGES);
    expect(nic.fns[1].c.txDiscardedAtFini).toBe(1);
    handleVdpa(nic, 'fn_stop', { fn: 2 });
    expect(nic.fns[2].c.rxUnreadAtFini).toBe(2);
    expect(b.notify.status).toBe(0);
  });

  it('a reset stops every guest function and drops their rules; function 0 keeps running', () => {
    const { nic, remote } = rig();
    handleVdpa(nic, 'steer_add', { fn: 2, match: { kind: 'mac', mac: MAC_B } });
    expect(handleVdpa(nic, 'dev_reset', {})).toEqual({ vis: 2, filters: 1 });
    expect(nic.fns[1].running).toBe(false);
    expect(handleVdpa(remote, 'dev_reset', {})).toEqual({ vis: 0, filters: 0 });
    expect(remote.fns[0].running).toBe(true);
  });

  it('property: any bytes in a TX descriptor table never crash the device; it sends, drops or faults', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.integer({ min: 1, max: 8 }), (bytes, n) => {
        const { nic, a, run } = rig();
        a.ram.set(bytes, a.tx.area.desc);
        const dv = new DataView(a.ram.buffer);
        for (let i = 0; i < n; i++) dv.setUint16(a.tx.area.avail + 4 + 2 * i, bytes[i] % 8, true);
        dv.setUint16(a.tx.area.avail + VQA_IDX, n, true);
        run();
        const f = nic.fns[1];
        expect(f.c.txFrames + f.c.txOversize + f.c.txSpoofDrops + f.c.faults).toBeGreaterThan(0);
      }),
      { numRuns: 200 },
    );
  });
});
