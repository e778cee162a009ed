/**
 * dom0's primary driver for the virtio NIC (VqNetDriver) against the device
 * itself (VqNic), in process: two hosts' NICs joined by a wire, function 0 of
 * each driven by its dom0's VqNetDriver, the admin commands answered by the
 * device's own handler (handleVdpa) as the fabric answers them over CH.mcdi.
 * The devices are polled by hand, so each step's outcome is checked exactly.
 */
import { describe, expect, it } from 'vitest';
import { FrameAllocator, GuestMemory, WithShared, type EventChannels, type RpcEndpoint, type RpcValue, type VdpaOp, type VdpaOps } from '@xsim/hypervisor';
import { ETH_HLEN, ETH_P_IP, verifyL4Checksum, writeIpUdp, writePartialL4Checksum, writeU16 } from '@xsim/netstack';
import {
  Driverlink,
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_HDR_SIZE,
  VQU_IDX,
  VQU_RING,
  VQ_SIZE,
  VqNetDriver,
  VqNic,
  handleVdpa,
  vqNetDriverPages,
  vqNetDriverRxBuf,
  type SecondaryDriver,
} from '../src/index.ts';

const PAGE = 4096;
const MTU = 1500;
const RAM_PAGES = vqNetDriverPages(MTU) + 64;
const MAC_A = 0x00163e0a0001;
const MAC_B = 0x00163e0b0001;

const macBytes = (mac: number): number[] => [5, 4, 3, 2, 1, 0].map((i) => Math.floor(mac / 2 ** (8 * i)) % 256);

/** The device's admin handler as dom0's channel to it: every call recorded. */
function adminOf(nic: VqNic, calls: { op: VdpaOp; args: Record<string, unknown> }[]): RpcEndpoint<VdpaOps> {
  const call = (op: VdpaOp, args: RpcValue, shared: readonly SharedArrayBuffer[] = []) => {
    calls.push({ op, args: args as Record<string, unknown> });
    const r = handleVdpa(nic, op, args, shared);
    return r instanceof WithShared ? { value: r.value, shared: r.shared } : { value: r, shared: [] };
  };
  return {
    requestSync: (op: VdpaOp, args: RpcValue) => call(op, args).value,
    requestSyncShared: (op: VdpaOp, args: RpcValue, _t: number, shared?: SharedArrayBuffer[]) => call(op, args, shared),
  } as unknown as RpcEndpoint<VdpaOps>;
}

interface Host {
  nic: VqNic;
  mem: GuestMemory;
  frames: FrameAllocator;
  driver: VqNetDriver;
  calls: { op: VdpaOp; args: Record<string, unknown> }[];
  /** The interrupt binding's word the device sets (read and cleared by irqRaised). */
  irq: Int32Array;
  closed: number[];
  wakes: Int32Array;
}

function host(name: string, o: { pages?: number; driverlink?: Driverlink } = {}): Host {
  const mem = GuestMemory.allocate(o.pages ?? RAM_PAGES);
  const frames = new FrameAllocator(mem);
  const nic = new VqNic({ name, host: name, mac: 0x000f53000000, mtu: MTU, vendor: '1af4', device: '1041', vis: 2 }, new Map([[0, mem.u8]]));
  const binding = new SharedArrayBuffer(8);
  const closed: number[] = [];
  const evtchn = {
    domid: 0,
    allocPirq: () => 7,
    bindHandler: () => {},
    deviceIrq: () => ({ binding, doorbell: new SharedArrayBuffer(8) }),
    close: (p: number) => void closed.push(p),
  } as unknown as EventChannels;
  const calls: Host['calls'] = [];
  const wake = new SharedArrayBuffer(16);
  const driver = VqNetDriver.probe({
    vdpa: adminOf(nic, calls),
    nicWake: { sab: wake, offset: 8 },
    mem,
    frames,
    evtchn,
    mac: 0x000f53000000,
    mtu: MTU,
    driverlink: o.driverlink,
  });
  return { nic, mem, frames, driver, calls, irq: new Int32Array(binding, 0, 2), closed, wakes: new Int32Array(wake, 8, 1) };
}

/** Two hosts whose NICs are joined by a wire. */
function pair(o: { driverlink?: Driverlink } = {}) {
  const a = host('nic-a', o);
  const b = host('nic-b');
  a.nic.wire = b.nic.fromWire;
  b.nic.wire = a.nic.fromWire;
  // The device sends at most a budget of frames a poll: poll until both have sent everything.
  const run = () => {
    while (a.nic.poll() + b.nic.poll() > 0);
    a.nic.flushAll();
    b.nic.flushAll();
  };
  return { a, b, run };
}

/** A frame dst <- src of `len` bytes in a fresh page of the host's RAM; its RAM offset. */
function frame(h: Host, dst: number, src: number, len: number, fill: number): number {
  const at = h.frames.allocRange(Math.ceil(len / PAGE)) * PAGE;
  h.mem.u8.set(macBytes(dst), at);
  h.mem.u8.set(macBytes(src), at + 6);
  h.mem.u8[at + 12] = 0x88;
  h.mem.u8[at + 13] = 0xb5;
  h.mem.u8.fill(fill, at + 14, at + len);
  return at;
}

/** Poll a driver until it has nothing more: the frames it received (copied) and the TX cookies it completed. */
function drain(h: Host, budget = 64): { rx: Uint8Array[]; done: number[] } {
  const rx: Uint8Array[] = [];
  const done: number[] = [];
  while (
    h.driver.poll(
      budget,
      (ram, off, len) => rx.push(ram.slice(off, off + len)),
      (c) => done.push(c),
    ) > 0
  );
  return { rx, done };
}

function irqRaised(h: Host): boolean {
  return Atomics.exchange(h.irq, 0, 0) === 1;
}

describe('VqNetDriver', () => {
  it('maps all of dom0 RAM at IOVA = its address and starts function 0 with its queues in dom0 RAM', () => {
    const { a } = pair();
    const maps = a.calls.filter((c) => c.op === 'iotlb_map');
    expect(maps).toHaveLength(1);
    expect(maps[0].args.iova).toBe(0);
    expect((maps[0].args.frames as number[]).length).toBe(RAM_PAGES);
    expect(a.nic.iommu.mapped(0)).toBe(RAM_PAGES);
    expect(a.nic.fn(0).running).toBe(true);
    const start = a.calls.find((c) => c.op === 'fn_start')!;
    expect(start.args).toMatchObject({ fn: 0, domid: 0, irq: true, macs: null });
    expect(a.driver.stats()).toMatchObject({ fnStatus: 'running', fault: 'none', linkUp: true, mtu: MTU });
    // A full RX queue, published and kicked: the NIC's wake line was rung.
    expect(Atomics.load(a.wakes, 0)).toBeGreaterThan(0);
  });

  it('splits the identity map into iotlb_map calls of at most 65536 pages', () => {
    const pages = 65536 + 200;
    const h = host('big', { pages });
    const maps = h.calls.filter((c) => c.op === 'iotlb_map').map((c) => [c.args.iova, (c.args.frames as number[]).length, (c.args.frames as number[])[0]]);
    expect(maps).toEqual([
      [0, 65536, 0],
      [65536 * PAGE, 200, 65536],
    ]);
    expect(h.nic.iommu.mapped(0)).toBe(pages);
  });

  it('sends a frame zero-copy with a zeroed virtio_net_hdr; the far driver receives it whole and the cookie comes back', () => {
    const { a, b, run } = pair();
    const at = frame(a, MAC_B, MAC_A, 300, 0x42);
    expect(a.driver.transmit(at, 300, 1234)).toBe(true);
    // Written after the post and before the device read it: the device sends what is in RAM then (no copy was taken).
    a.mem.u8[at + 299] = 0x99;
    run();
    const got = drain(b);
    expect(got.rx).toHaveLength(1);
    expect(got.rx[0].length).toBe(300);
    expect([...got.rx[0].subarray(0, 6)]).toEqual(macBytes(MAC_B));
    expect(got.rx[0][298]).toBe(0x42);
    expect(got.rx[0][299]).toBe(0x99);
    expect(drain(a).done).toEqual([1234]);
    expect(a.driver.stats()).toMatchObject({ txPosted: 1, txCompleted: 1, txRingFull: 0 });
    expect(b.driver.stats()).toMatchObject({ rxFrames: 1, rxBadLenDrops: 0, rxScatterDrops: 0 });
  });

  it('carries frames both ways, up to MTU + 14 bytes, each cookie completed once and in order', () => {
    const { a, b, run } = pair();
    expect(a.driver.maxMtu).toBeGreaterThanOrEqual(MTU);
    expect(a.driver.maxMtu).toBe(vqNetDriverRxBuf(MTU) - VIRTIO_NET_HDR_SIZE - 18);
    const sizes = [60, 1514, 700];
    sizes.forEach((len, i) => expect(a.driver.transmit(frame(a, MAC_B, MAC_A, len, i + 1), len, 10 + i)).toBe(true));
    expect(b.driver.transmit(frame(b, MAC_A, MAC_B, 1514, 0x77), 1514, 99)).toBe(true);
    run();
    const atB = drain(b);
    const atA = drain(a);
    expect(atB.rx.map((f) => [f.length, f[f.length - 1]])).toEqual(sizes.map((len, i) => [len, i + 1]));
    expect(atA.done).toEqual([10, 11, 12]);
    expect(atA.rx.map((f) => [f.length, f[1513]])).toEqual([[1514, 0x77]]);
    expect(atB.done).toEqual([99]);
  });

  it('keeps its RX queue full: more frames than the queue holds arrive over several rounds with nothing dropped', () => {
    const { a, b, run } = pair();
    const at = frame(a, MAC_B, MAC_A, 100, 5);
    let received = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 100; i++) expect(a.driver.transmit(at, 100, i)).toBe(true);
      run();
      received += drain(b).rx.length;
      expect(drain(a).done).toHaveLength(100);
    }
    expect(received).toBe(300);
    expect(b.nic.fn(0).c.rxNoDesc).toBe(0);
  });

  it('refuses a frame when its TX queue is full (the caller keeps it), and takes frames again once completions are polled', () => {
    const { a, run } = pair();
    const at = frame(a, MAC_B, MAC_A, 64, 1);
    expect(a.driver.txFree()).toBe(VQ_SIZE / 2);
    for (let i = 0; i < VQ_SIZE / 2; i++) expect(a.driver.transmit(at, 64, i)).toBe(true);
    expect(a.driver.txFree()).toBe(0);
    expect(a.driver.transmit(at, 64, 999)).toBe(false);
    expect(a.driver.stats().txRingFull).toBe(1);
    run();
    // The device is done with them, but the slots are ours again only once their completions are taken.
    expect(a.driver.txFree()).toBe(0);
    const done = drain(a).done;
    expect(done).toHaveLength(VQ_SIZE / 2);
    expect(done).not.toContain(999);
    expect(a.driver.txFree()).toBe(VQ_SIZE / 2);
    expect(a.driver.transmit(at, 64, 1000)).toBe(true);
  });

  it('ignores used entries naming chains it never posted, and keeps working', () => {
    const { a, b, run } = pair();
    // TX: the device completes our one chain, then its entry is rewritten to name a head we never posted.
    const at = frame(a, MAC_B, MAC_A, 80, 3);
    a.driver.transmit(at, 80, 7);
    run();
    const txUsed = usedRing(a, 1);
    txUsed.setUint32(VQU_RING, VQ_SIZE - 1, true);
    expect(drain(a).done).toEqual([]);
    expect(a.driver.stats().vqUsedUnposted).toBe(1);
    // RX: an entry naming a head past the queue.
    drain(b);
    const rxUsed = usedRing(b, 0);
    const slot = (rxUsed.getUint16(VQU_IDX, true) & (VQ_SIZE - 1)) * 8;
    a.driver.transmit(at, 80, 8);
    run();
    rxUsed.setUint32(VQU_RING + slot, 40000, true);
    expect(drain(b).rx).toEqual([]);
    expect(b.driver.stats()).toMatchObject({ vqUsedUnposted: 1, rxFrames: 1 });
    // Both go on: the next frame is sent, received and completed.
    a.driver.transmit(at, 80, 9);
    run();
    expect(drain(b).rx.map((f) => f.length)).toEqual([80]);
    expect(drain(a).done).toEqual([8, 9]);
  });

  it('drops, counts and reposts an RX buffer whose used length is no frame or more than the buffer, or whose header says more than one buffer', () => {
    const { a, b, run } = pair();
    const at = frame(a, MAC_B, MAC_A, 90, 4);
    const rxUsed = usedRing(b, 0);
    const tamper = (edit: (slotOff: number, head: number) => void) => {
      const slot = (rxUsed.getUint16(VQU_IDX, true) & (VQ_SIZE - 1)) * 8;
      a.driver.transmit(at, 90, 0);
      run();
      edit(VQU_RING + slot, rxUsed.getUint32(VQU_RING + slot, true));
      return drain(b).rx.length;
    };
    expect(tamper((o) => rxUsed.setUint32(o + 4, vqNetDriverRxBuf(MTU) + 1, true))).toBe(0);
    expect(tamper((o) => rxUsed.setUint32(o + 4, VIRTIO_NET_HDR_SIZE, true))).toBe(0);
    expect(b.driver.stats()).toMatchObject({ rxBadLenDrops: 2, rxScatterDrops: 0, rxFrames: 0 });
    // num_buffers (le16 at 10 of the header the device wrote) rewritten to 2.
    expect(tamper((_o, head) => (b.mem.u8[rxBufAddr(b, head) + 10] = 2))).toBe(0);
    expect(b.driver.stats()).toMatchObject({ rxBadLenDrops: 2, rxScatterDrops: 1, rxFrames: 0 });
    // Every buffer went back on the queue: a whole queue's worth of frames lands before b polls again.
    expect(drain(a).done).toEqual([0, 0, 0]);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < VQ_SIZE / 2; i++) expect(a.driver.transmit(at, 90, i)).toBe(true);
      run();
      drain(a);
    }
    expect(b.nic.fn(0).c.rxNoDesc).toBe(0);
    expect(drain(b, 1000).rx).toHaveLength(VQ_SIZE);
  });

  it('asks for an interrupt (used_event) only once it has run dry', () => {
    const { a, b, run } = pair();
    const at = frame(a, MAC_B, MAC_A, 70, 6);
    irqRaised(b);
    a.driver.transmit(at, 70, 1);
    run();
    expect(irqRaised(b)).toBe(true); // used_event 0 from the cleared ring: the first entry interrupts
    expect(
      b.driver.poll(
        64,
        () => {},
        () => {},
      ),
    ).toBe(1);
    // Still busy (it found work): used_event stays behind, so the next frame raises nothing.
    a.driver.transmit(at, 70, 2);
    run();
    expect(irqRaised(b)).toBe(false);
    expect(
      b.driver.poll(
        64,
        () => {},
        () => {},
      ),
    ).toBe(1);
    expect(
      b.driver.poll(
        64,
        () => {},
        () => {},
      ),
    ).toBe(0); // dry: used_event moves to what it has taken
    a.driver.transmit(at, 70, 3);
    run();
    expect(irqRaised(b)).toBe(true);
  });

  it('tells the device how far it has read the receiveq (RX_SEEN), so a stop counts only the frames nobody read', () => {
    const { a, b, run } = pair();
    const at = frame(a, MAC_B, MAC_A, 70, 6);
    for (let i = 0; i < 3; i++) a.driver.transmit(at, 70, i);
    run();
    expect(
      b.driver.poll(
        2,
        () => {},
        () => {},
      ),
    ).toBe(2);
    b.driver.remove();
    expect(b.nic.fn(0).c.rxUnreadAtFini).toBe(1);
  });

  it('refuses to send once the device has faulted function 0, and says why in its stats', () => {
    const { a, run } = pair();
    const at = frame(a, MAC_B, MAC_A, 64, 1);
    a.driver.transmit(at, 64, 1);
    // The descriptor table is dom0's memory: a corrupted one (the frame's descriptor made device-writable) faults the function.
    const desc = a.calls.find((c) => c.op === 'fn_start')!.args.tx as { desc: number };
    const dv = new DataView(a.mem.sab);
    for (let d = 0; d < 2; d++) dv.setUint16(desc.desc + d * 16 + 12, dv.getUint16(desc.desc + d * 16 + 12, true) | 2, true);
    run();
    expect(a.driver.stats()).toMatchObject({ fnStatus: 'needs reset', fault: 'direction' });
    expect(a.driver.transmit(at, 64, 2)).toBe(false);
    expect(a.driver.stats().txRingFull).toBe(1);
  });

  it('lets driverlink veto frames: a vetoed TX completes at the next poll without reaching the NIC, a vetoed RX is not delivered', () => {
    const dl = new Driverlink(() => ({ alias: 'nic:1af4-1041', mac: 0, mtu: MTU, vis: 2, linkUp: true }));
    const veto: SecondaryDriver = {
      name: 'veto',
      probe: () => {},
      remove: () => {},
      txIntercept: (ram, off) => ram[off + 14] === 0xee,
      rxIntercept: (ram, off) => ram[off + 14] === 0xdd,
    };
    dl.register(veto);
    const { a, b, run } = pair({ driverlink: dl });
    expect(a.driver.transmit(frame(a, MAC_B, MAC_A, 64, 0xee), 64, 5)).toBe(true);
    expect(a.driver.stats()).toMatchObject({ txPosted: 0, vetoedTx: 1 });
    expect(drain(a).done).toEqual([5]);
    b.driver.transmit(frame(b, MAC_A, MAC_B, 64, 0xdd), 64, 6);
    b.driver.transmit(frame(b, MAC_A, MAC_B, 64, 0x11), 64, 7);
    run();
    expect(drain(a).rx.map((f) => f[14])).toEqual([0x11]);
    expect(a.driver.stats()).toMatchObject({ vetoedRx: 1, rxFrames: 1 });
    expect(b.nic.c.wireTx).toBe(2);
    expect(a.nic.c.wireTx).toBe(0);
  });

  it('remove stops function 0 (its IOMMU pages go) and closes its interrupt port', () => {
    const { a } = pair();
    a.driver.remove();
    expect(a.calls.at(-1)).toMatchObject({ op: 'fn_stop', args: { fn: 0 } });
    expect(a.nic.fn(0).running).toBe(false);
    expect(a.nic.iommu.mapped(0)).toBe(0);
    expect(a.closed).toEqual([7]);
  });
});

/** A DataView on the used ring of queue `q` (0 RX, 1 TX) of a host's function 0, where fn_start put it. */
function usedRing(h: Host, q: 0 | 1): DataView {
  const start = h.calls.find((c) => c.op === 'fn_start')!.args;
  const used = (q === 0 ? start.rx : start.tx) as { used: number };
  return new DataView(h.mem.sab, used.used, PAGE);
}

/** The RX buffer the driver posted under `head` (one descriptor each: the descriptor's address). */
function rxBufAddr(h: Host, head: number): number {
  const desc = (h.calls.find((c) => c.op === 'fn_start')!.args.rx as { desc: number }).desc;
  return Number(new DataView(h.mem.sab).getBigUint64(desc + head * 16, true));
}

describe('VqNetDriver and the virtio NIC: checksum offload (VIRTIO_NET_F_CSUM, GUEST_CSUM)', () => {
  /** A UDP frame a -> b in a's RAM, its checksum partial (the folded pseudo-header sum in the field); its offset and length. */
  function partialUdp(h: Host, payload: number): { at: number; len: number } {
    const len = 42 + payload;
    const at = h.frames.allocRange(1) * PAGE;
    const b = h.mem.u8;
    b.set([...macBytes(MAC_B), ...macBytes(MAC_A)], at);
    writeU16(b, at + 12, ETH_P_IP);
    writeIpUdp(b, at + ETH_HLEN, 0x0a000001, 0x0a000002, 9, 1111, 2222, payload);
    for (let i = 0; i < payload; i++) b[at + 42 + i] = (i * 7 + 3) & 0xff;
    writePartialL4Checksum(b, at, len);
    return { at, len };
  }

  it('negotiates both at fn_start; a partial frame goes with NEEDS_CSUM, leaves complete, and arrives flagged DATA_VALID', () => {
    const { a, b, run } = pair();
    expect(a.calls.find((c) => c.op === 'fn_start')!.args.features).toBe(VIRTIO_NET_F_CSUM | VIRTIO_NET_F_GUEST_CSUM);
    expect(a.driver.csumOffload).toBe(true);
    const f = partialUdp(a, 301);
    expect(a.driver.transmit(f.at, f.len, 1, true)).toBe(true);
    run();
    const got: { bytes: Uint8Array; valid: boolean }[] = [];
    while (
      b.driver.poll(
        64,
        (ram, off, len, valid) => got.push({ bytes: ram.slice(off, off + len), valid: valid === true }),
        () => {},
      ) > 0
    );
    expect(got).toHaveLength(1);
    expect(got[0].valid).toBe(true);
    expect(verifyL4Checksum(got[0].bytes, 0, f.len)).toBe(true);
    expect(a.nic.fn(0).c.txCsumOffloaded).toBe(1);
    expect(b.nic.fn(0).c.rxCsumGood).toBe(1);
  });

  it('a partial frame that is no IPv4 TCP or UDP is not sent (txCsumBad), its cookie completed', () => {
    const { a, b, run } = pair();
    const f = partialUdp(a, 40);
    a.mem.u8[f.at + ETH_HLEN + 9] = 1;
    expect(a.driver.transmit(f.at, f.len, 7, true)).toBe(true);
    run();
    expect(drain(a).done).toEqual([7]);
    expect(a.driver.stats().txCsumBad).toBe(1);
    expect(drain(b).rx).toHaveLength(0);
  });
});
