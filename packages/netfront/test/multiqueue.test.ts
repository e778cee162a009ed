/**
 * netfront's multi-queue side, in process against a scripted backend (Linux
 * xen-netfront's talk_to_netback, xennet_create_queues,
 * write_queue_xenstore_keys, xennet_select_queue; the control ring is
 * xsim's own, after io/netif.h): how many queues it asks for, the keys it
 * writes for them, TX queue selection by flow hash, RX on every queue, and
 * the Toeplitz configuration it sends over the control ring.
 */
import { describe, expect, it } from 'vitest';
import {
  GTF_readonly,
  FrameAllocator,
  GrantRefAllocator,
  GrantTable,
  GuestMemory,
  NETIF_CTRL_SLOT_SIZE,
  NETIF_RX_SLOT_SIZE,
  NETRXF_extra_info,
  RXREQ_ID,
  RXRSP_FLAGS,
  RXRSP_ID,
  RXRSP_OFFSET,
  RXRSP_STATUS,
  SRING_RSP_PROD,
  SharedRing,
  Store,
  VIF_KEY,
  XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
  XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
  XEN_NETIF_CTRL_STATUS_SUCCESS,
  XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS,
  XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE,
  XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM,
  XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS,
  XEN_NETIF_CTRL_TYPE_SET_HASH_KEY,
  XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING,
  XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE,
  XEN_NETIF_EXTRA_TYPE_HASH,
  XenbusState,
  flowHash,
  newExtraInfo,
  newFlowKeys,
  readCtrlRequest,
  vifBackendPath,
  vifFrontendPath,
  writeCtrlResponse,
  writeExtraInfo,
} from '@xsim/hypervisor';
import { Netfront, netfrontPages, type NetfrontParams } from '@xsim/netfront';
import { storeClient } from '../../../test/fixtures/netback-harness.ts';

const DOMID = 4;
const fe = vifFrontendPath(DOMID, 0);
const be = vifBackendPath(0, DOMID, 0);

/** What xsim's (and Linux's) netback writes at probe, with max_queues 4. */
const BACKEND: Record<string, string> = {
  'feature-sg': '1',
  'feature-rx-copy': '1',
  'feature-split-event-channels': '1',
  'multi-queue-max-queues': '4',
  'feature-ctrl-ring': '1',
};

function rig(o: { backend?: Record<string, string | null>; params?: NetfrontParams } = {}) {
  const store = new Store();
  const mem = GuestMemory.allocate(netfrontPages(1500, o.params?.maxQueues ?? 1) + 16);
  const frames = new FrameAllocator(mem);
  const gnttab = GrantTable.create(4096);
  const grefs = new GrantRefAllocator(gnttab);
  const log: string[] = [];
  store.write(0, `${fe}/${VIF_KEY.backend}`, be);
  store.write(0, `${fe}/${VIF_KEY.backendId}`, '0');
  store.write(0, `${fe}/${VIF_KEY.mac}`, '00:16:3e:00:00:04');
  store.write(0, `${fe}/${VIF_KEY.state}`, '1');
  for (const [k, v] of Object.entries({ ...BACKEND, ...o.backend })) if (v !== null) store.write(0, `${be}/${k}`, v);
  let next = 9;
  const evtchn = { allocUnbound: () => next++, bindHandler: () => {}, send: () => true, close: () => {} };
  const nf = new Netfront({
    domid: DOMID,
    handle: 0,
    mem,
    frames,
    gnttab,
    grefs,
    evtchn,
    xs: storeClient(store, 0),
    mtu: 1500,
    params: o.params,
    log: (m) => log.push(m),
  });
  const received: number[] = [];
  nf.onReceive = (_ram, _off, len) => received.push(len);
  nf.start();
  const backendState = (s: XenbusState) => store.write(0, `${be}/${VIF_KEY.state}`, String(s));
  backendState(XenbusState.InitWait);
  backendState(XenbusState.Connected);
  const read = (k: string) => store.read(0, `${fe}/${k}`);
  const page = (ref: number) => mem.page(gnttab.read(ref).frame);
  return { nf, store, mem, gnttab, log, read, page, received, backendState };
}

/** A UDP frame from 10.0.10.1:sport to 10.0.11.1:5001 built where netfront reserved room. */
function sendUdp(r: ReturnType<typeof rig>, sport: number, len = 200): number {
  const at = r.nf.txReserve(len);
  expect(at).toBeGreaterThanOrEqual(0);
  const u8 = r.mem.u8;
  u8.fill(0, at, at + len);
  u8.set([0x00, 0x16, 0x3e, 0x11, 0x22, 0x33, 0x00, 0x16, 0x3e, 0x00, 0x00, 0x04, 0x08, 0x00], at);
  u8.set([0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 10, 1, 10, 0, 11, 1, sport >> 8, sport & 255, 0x13, 0x89], at + 14);
  const hash = flowHash(u8, at, len, newFlowKeys());
  r.nf.txCommit(len);
  return hash;
}

describe('how many queues (talk_to_netback: min(multi-queue-max-queues, max_queues))', () => {
  it.each([
    ['backend 4, own 4', '4', 4, 4],
    ['backend 4, own 2', '4', 2, 2],
    ['backend 2, own 4', '2', 4, 2],
    ['backend without multi-queue-max-queues, own 4', null, 4, 1],
    ['backend 4, own 1 (the default: one vCPU)', '4', undefined, 1],
  ])('%s: %i queues', (_what, max, own, n) => {
    const r = rig({ backend: { 'multi-queue-max-queues': max }, params: own === undefined ? undefined : { maxQueues: own } });
    expect(r.nf.state).toBe(XenbusState.Connected);
    expect(r.nf.numQueues).toBe(n);
  });

  it('several queues: multi-queue-num-queues and queue-N/ keys, each its rings and split channels; no flat ring keys; the control ring', () => {
    const r = rig({ params: { maxQueues: 4 } });
    expect(r.read(VIF_KEY.multiQueueNumQueues)).toBe('4');
    const dirs = r.store.directory(0, fe).filter((k) => k.startsWith('queue-'));
    expect(dirs.sort()).toEqual(['queue-0', 'queue-1', 'queue-2', 'queue-3']);
    for (const q of dirs) expect(r.store.directory(0, `${fe}/${q}`).sort()).toEqual(['event-channel-rx', 'event-channel-tx', 'rx-ring-ref', 'tx-ring-ref']);
    const ports = dirs.flatMap((q) => [r.read(`${q}/event-channel-tx`), r.read(`${q}/event-channel-rx`)]);
    expect(new Set(ports).size).toBe(8);
    expect(r.store.directory(0, fe)).not.toContain(VIF_KEY.txRingRef);
    expect(r.store.directory(0, fe)).not.toContain(VIF_KEY.eventChannel);
    expect(r.read(VIF_KEY.ctrlRingRef)).toMatch(/^\d+$/);
    expect(r.read(VIF_KEY.eventChannelCtrl)).toMatch(/^\d+$/);
  });

  it('one queue: the flat keys as before, no multi-queue-num-queues, no queue-N/, no control ring', () => {
    const r = rig({ backend: { 'multi-queue-max-queues': '1' }, params: { maxQueues: 4 } });
    const keys = r.store.directory(0, fe);
    expect(keys).toEqual(expect.arrayContaining([VIF_KEY.txRingRef, VIF_KEY.rxRingRef, VIF_KEY.eventChannelTx]));
    expect(keys.filter((k) => k.startsWith('queue-') || k === VIF_KEY.multiQueueNumQueues || k === VIF_KEY.ctrlRingRef)).toEqual([]);
  });

  it('a backend without feature-ctrl-ring, or ctrlRing off: several queues and no control ring', () => {
    for (const r of [rig({ backend: { 'feature-ctrl-ring': null }, params: { maxQueues: 2 } }), rig({ params: { maxQueues: 2, ctrlRing: false } })]) {
      expect(r.nf.numQueues).toBe(2);
      expect(r.store.directory(0, fe)).not.toContain(VIF_KEY.ctrlRingRef);
    }
  });

  it('reconnecting with fewer queues: the queue-N/ directories and multi-queue-num-queues of the last connection go', () => {
    const r = rig({ params: { maxQueues: 4 } });
    r.backendState(XenbusState.Closing);
    r.store.write(0, `${be}/multi-queue-max-queues`, '1');
    r.store.write(0, `${fe}/${VIF_KEY.state}`, String(XenbusState.Initialising));
    r.nf.state = XenbusState.Initialising;
    r.backendState(XenbusState.InitWait);
    expect(r.nf.numQueues).toBe(1);
    const keys = r.store.directory(0, fe);
    expect(keys.filter((k) => k.startsWith('queue-') || k === VIF_KEY.multiQueueNumQueues || k === VIF_KEY.ctrlRingRef)).toEqual([]);
    expect(keys).toContain(VIF_KEY.txRingRef);
  });
});

describe('TX queue selection (xennet_select_queue: skb_get_hash % queues)', () => {
  it("each frame goes to its flow's hash % 4: flows spread over the queues, a flow's frames stay on one, in order", () => {
    const r = rig({ params: { maxQueues: 4 } });
    const want = [0, 0, 0, 0];
    for (let f = 0; f < 32; f++) {
      const h = sendUdp(r, 40000 + f);
      expect(sendUdp(r, 40000 + f)).toBe(h);
      want[h % 4] += 2;
    }
    r.nf.flush();
    const got = [0, 1, 2, 3].map((q) => r.nf.queue(q)!.rings!.tx.sring.reqProd);
    expect(got).toEqual(want);
    expect(want.filter((n) => n > 0)).toHaveLength(4);
    expect(r.nf.stats().queues.map((q) => q.txPackets)).toEqual(want);
    expect(r.nf.c.txPackets).toBe(64);
  });

  it('the same flows over again give the same queues (deterministic: no per-boot secret)', () => {
    const a = rig({ params: { maxQueues: 4 } });
    const b = rig({ params: { maxQueues: 4 } });
    for (let f = 0; f < 8; f++) expect(sendUdp(a, 50000 + f) % 4).toBe(sendUdp(b, 50000 + f) % 4);
  });

  it('a frame is built before its queue is known: none is reserved while any queue lacks room for it', () => {
    const r = rig({ params: { maxQueues: 2 } });
    let sent = 0;
    while (r.nf.txReserve(200) >= 0) {
      r.nf.txCommit(200);
      sent++;
    }
    // Every frame here is one flow (zeros): queue 0 or 1 fills, and the device stops at 256.
    expect(sent).toBe(256);
    expect(r.nf.c.txBusy).toBe(1);
  });
});

describe('RX on every queue', () => {
  it('frames answered on queue 2 reach the stack; a HASH extra-info slot is counted, its buffer taken back', () => {
    const r = rig({ params: { maxQueues: 4 } });
    const rx = new SharedRing(r.page(Number(r.read('queue-2/rx-ring-ref'))), NETIF_RX_SLOT_SIZE);
    const id = (i: number) => rx.dv.getUint16(rx.slotOffset(i) + RXREQ_ID, true);
    const rsp = (i: number, flags: number, status: number) => {
      const o = rx.slotOffset(i);
      const reqId = id(i);
      rx.dv.setUint16(o + RXRSP_ID, reqId, true);
      rx.dv.setUint16(o + RXRSP_OFFSET, 0, true);
      rx.dv.setUint16(o + RXRSP_FLAGS, flags, true);
      rx.dv.setInt16(o + RXRSP_STATUS, status, true);
    };
    rsp(0, 0, 300);
    rsp(1, NETRXF_extra_info, 400);
    writeExtraInfo(rx.dv, rx.slotOffset(2), { ...newExtraInfo(), type: XEN_NETIF_EXTRA_TYPE_HASH, hashType: 0, hashAlgorithm: 1, hashValue: 0x1234 });
    Atomics.store(rx.idx, SRING_RSP_PROD >> 2, 3);
    r.nf.poll();
    expect(r.received).toEqual([300, 400]);
    expect(r.nf.stats().queues.map((q) => q.rxPackets)).toEqual([0, 0, 2, 0]);
    expect(r.nf.c.rxHashExtras).toBe(1);
    expect(r.nf.brokenReason).toBe('');
  });
});

describe('the control ring (xsim netfront: a Toeplitz hash, as io/netif.h describes it)', () => {
  /** Plays netback: answers every request published so far with `status(type)` and data. */
  function backend(r: ReturnType<typeof rig>) {
    const ring = new SharedRing(r.page(Number(r.read(VIF_KEY.ctrlRingRef))), NETIF_CTRL_SLOT_SIZE);
    const seen: { type: number; data: number[] }[] = [];
    let cons = 0;
    const answer = (status: (type: number) => number = () => XEN_NETIF_CTRL_STATUS_SUCCESS) => {
      while (cons !== ring.reqProd) {
        const q = readCtrlRequest(ring.dv, ring.slotOffset(cons));
        seen.push({ type: q.type, data: [...q.data] });
        const data = q.type === XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS ? 0xf : q.type === XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE ? 128 : 0;
        writeCtrlResponse(ring.dv, ring.slotOffset(cons), { id: q.id, type: q.type, status: status(q.type), data });
        cons++;
      }
      Atomics.store(ring.idx, SRING_RSP_PROD >> 2, cons);
      r.nf.poll();
    };
    return { ring, seen, answer };
  }

  it('round 1 (algorithm, the types, the table size), then round 2 (flags, key, table size, table): the RSS key and entry i -> queue i % 4 in granted pages', () => {
    const r = rig({ params: { maxQueues: 4 } });
    const b = backend(r);
    b.answer();
    b.answer();
    expect(b.seen.map((s) => s.type)).toEqual([
      XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM,
      XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS,
      XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE,
      XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS,
      XEN_NETIF_CTRL_TYPE_SET_HASH_KEY,
      XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE,
      XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING,
    ]);
    expect(b.seen[0].data[0]).toBe(XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ);
    expect(b.seen[3].data[0]).toBe(0xf);
    const [keyRef, keyLen] = b.seen[4].data;
    expect([...r.page(keyRef).subarray(0, keyLen)].slice(0, 4)).toEqual([0x6d, 0x5a, 0x56, 0xda]);
    expect(keyLen).toBe(40);
    expect(b.seen[5].data[0]).toBe(128);
    const [mapRef, n, off] = b.seen[6].data;
    const table = new DataView(r.page(mapRef).buffer, r.page(mapRef).byteOffset, 512);
    expect([n, off]).toEqual([128, 0]);
    expect(Array.from({ length: 8 }, (_v, i) => table.getUint32(i * 4, true))).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    expect(r.nf.stats().ctrlRing).toBe('configured');
    expect(r.nf.c.ctrlRequests).toBe(7);
    expect(r.nf.c.ctrlErrors).toBe(0);
    // The key and the table are granted read-only (GTF_readonly).
    for (const ref of [keyRef, mapRef]) expect(r.gnttab.read(ref).flags & GTF_readonly).toBe(GTF_readonly);
  });

  it('a status other than SUCCESS stops the configuration, counted', () => {
    const r = rig({ params: { maxQueues: 4 } });
    const b = backend(r);
    b.answer((t) => (t === XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM ? XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER : XEN_NETIF_CTRL_STATUS_SUCCESS));
    b.answer();
    expect(b.seen).toHaveLength(3);
    expect(r.nf.stats().ctrlRing).toMatch(/^stopped: request type 7 answered status 2/);
    expect(r.nf.c.ctrlErrors).toBe(1);
  });

  it('a response to no request sent, or an impossible producer: the backend broke the ring, the device is broken', () => {
    const r = rig({ params: { maxQueues: 2 } });
    const b = backend(r);
    writeCtrlResponse(b.ring.dv, b.ring.slotOffset(0), { id: 77, type: 1, status: 0, data: 0 });
    Atomics.store(b.ring.idx, SRING_RSP_PROD >> 2, 1);
    r.nf.poll();
    expect(r.nf.brokenReason).toMatch(/control response for a request not sent \(id 77/);
    const s = rig({ params: { maxQueues: 2 } });
    const c = backend(s);
    Atomics.store(c.ring.idx, SRING_RSP_PROD >> 2, 1000);
    s.nf.poll();
    expect(s.nf.brokenReason).toMatch(/Illegal number of control responses/);
  });
});
