/**
 * netback's control ring (Linux xen-netback's connect_ctrl_ring,
 * xenvif_ctrl_action, process_ctrl_request and hash.c), against a scripted
 * frontend: the SET_HASH_* / GET_HASH_* requests with Linux's status codes
 * and limits, one test per malformed request, the control ring's own
 * refusals, and RX steering by the configured Toeplitz hash with its HASH
 * extra-info slot.
 */
import { describe, expect, it } from 'vitest';
import {
  NETRXF_extra_info,
  VIF_KEY,
  XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP,
  XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER as INVALID,
  XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED as NOT_SUPPORTED,
  XEN_NETIF_CTRL_STATUS_SUCCESS as OK,
  XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE,
  XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS as GET_FLAGS,
  XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE as GET_MAP_SIZE,
  XEN_NETIF_CTRL_TYPE_INVALID,
  XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM as SET_ALG,
  XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS as SET_FLAGS,
  XEN_NETIF_CTRL_TYPE_SET_HASH_KEY as SET_KEY,
  XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING as SET_MAP,
  XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE as SET_MAP_SIZE,
  XEN_NETIF_EXTRA_TYPE_HASH,
  _XEN_NETIF_CTRL_HASH_TYPE_IPV4,
  SRING_REQ_PROD,
  XenbusState,
  readExtraInfo,
  xenNetifToeplitzHash,
} from '@xsim/hypervisor';
import { HASH_TYPES_ALL } from '@xsim/netback';
import { CTRL_REF, KEY_REF, MAP_REF, MqHarness, deliverUdp } from './mq-rig.ts';

const TOEPLITZ = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
const RSS_KEY = [
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb,
  0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

const statuses = (r: { status: number }[]) => r.map((x) => x.status);

/** A 4-queue vif whose frontend configured Toeplitz over IPv4 (+TCP), the RSS key and a 128-entry table [i % 4]. */
function configured(m = new MqHarness(4, { ctrl: true })) {
  m.keyPage.set(RSS_KEY);
  m.writeMapping(Array.from({ length: 128 }, (_v, i) => i % 4));
  const r = m.ctrlCall(
    { type: SET_ALG, data: [TOEPLITZ] },
    { type: SET_FLAGS, data: [XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP] },
    { type: SET_KEY, data: [KEY_REF, 40] },
    { type: SET_MAP_SIZE, data: [128] },
    { type: SET_MAP, data: [MAP_REF, 128, 0] },
  );
  expect(statuses(r)).toEqual([OK, OK, OK, OK, OK]);
  return m;
}

describe('the control ring: what netback serves (process_ctrl_request)', () => {
  it('the whole configuration, answered in order with each request id; the vif shows it', () => {
    const m = configured();
    expect(m.h.vif.stats().hash).toMatchObject({ algorithm: 'toeplitz', flags: 3, mappingSize: 128 });
    expect(m.h.vif.stats().hash.mapping.slice(0, 6)).toEqual([0, 1, 2, 3, 0, 1]);
    expect([...m.h.vif.hash.key]).toEqual(RSS_KEY);
    expect(m.h.vif.c.ctrlRequests).toBe(5);
    expect(m.h.vif.c.ctrlErrors).toBe(0);
  });

  it('GET_HASH_FLAGS after an algorithm: every type Linux computes; GET_HASH_MAPPING_SIZE: 128 (XEN_NETBK_MAX_HASH_MAPPING_SIZE)', () => {
    const m = new MqHarness(2, { ctrl: true });
    const r = m.ctrlCall({ type: SET_ALG, data: [TOEPLITZ] }, { type: GET_FLAGS }, { type: GET_MAP_SIZE });
    expect(r).toEqual([
      { id: 0, status: OK, data: 0 },
      { id: 1, status: OK, data: HASH_TYPES_ALL },
      { id: 2, status: OK, data: 128 },
    ]);
  });

  it('a key shorter than 40 octets: the rest is zero (any earlier key octets cleared)', () => {
    const m = configured();
    m.keyPage.set([1, 2, 3]);
    expect(statuses(m.ctrlCall({ type: SET_KEY, data: [KEY_REF, 3] }))).toEqual([OK]);
    expect([...m.h.vif.hash.key]).toEqual([1, 2, 3, ...Array(37).fill(0)]);
  });

  it('SET_HASH_MAPPING_SIZE zeroes the table; SET_HASH_MAPPING of a sub-table at an offset leaves the rest', () => {
    const m = configured();
    m.writeMapping([3, 3]);
    expect(statuses(m.ctrlCall({ type: SET_MAP_SIZE, data: [8] }, { type: SET_MAP, data: [MAP_REF, 2, 5] }))).toEqual([OK, OK]);
    expect(m.h.vif.stats().hash.mapping).toEqual([0, 0, 0, 0, 0, 3, 3, 0]);
  });

  it('SET_HASH_ALGORITHM NONE turns steering back to the flow hash', () => {
    const m = configured();
    expect(statuses(m.ctrlCall({ type: SET_ALG, data: [0] }))).toEqual([OK]);
    expect(m.h.vif.stats().hash.algorithm).toBe('none');
  });
});

describe('malformed control requests: each answered with the status Linux gives, the configuration unchanged', () => {
  it.each([
    ['SET_HASH_ALGORITHM of an unknown algorithm (2)', [{ type: SET_ALG, data: [2] }], INVALID],
    ['GET_HASH_FLAGS before an algorithm', [{ type: GET_FLAGS }], NOT_SUPPORTED],
    ['SET_HASH_FLAGS before an algorithm', [{ type: SET_FLAGS, data: [1] }], INVALID],
    [
      'SET_HASH_FLAGS with an unknown type bit (1 << 4)',
      [
        { type: SET_ALG, data: [TOEPLITZ] },
        { type: SET_FLAGS, data: [1 << 4] },
      ],
      INVALID,
    ],
    ['SET_HASH_KEY over 40 octets', [{ type: SET_KEY, data: [KEY_REF, 41] }], INVALID],
    ['SET_HASH_KEY from a grant the guest does not own (ref 999)', [{ type: SET_KEY, data: [999, 40] }], INVALID],
    ['SET_HASH_MAPPING_SIZE over 128', [{ type: SET_MAP_SIZE, data: [129] }], INVALID],
    [
      'SET_HASH_MAPPING past the table (8 entries at 4 of 8)',
      [
        { type: SET_MAP_SIZE, data: [8] },
        { type: SET_MAP, data: [MAP_REF, 8, 4] },
      ],
      INVALID,
    ],
    [
      'SET_HASH_MAPPING whose offset + length wraps 2^32',
      [
        { type: SET_MAP_SIZE, data: [8] },
        { type: SET_MAP, data: [MAP_REF, 2, 0xffffffff] },
      ],
      INVALID,
    ],
    [
      'SET_HASH_MAPPING naming queue 4 of 4',
      [
        { type: SET_MAP_SIZE, data: [8] },
        { type: SET_MAP, data: [MAP_REF, 1, 0], map: [4] },
      ],
      INVALID,
    ],
    [
      'SET_HASH_MAPPING from a grant the guest does not own',
      [
        { type: SET_MAP_SIZE, data: [8] },
        { type: SET_MAP, data: [999, 2, 0] },
      ],
      INVALID,
    ],
    ['a request of type INVALID (0)', [{ type: XEN_NETIF_CTRL_TYPE_INVALID }], NOT_SUPPORTED],
    ['GET_GREF_MAPPING_SIZE (static grants: Linux serves none)', [{ type: XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE }], NOT_SUPPORTED],
    ['a type past the last (99)', [{ type: 99 }], NOT_SUPPORTED],
  ])('%s', (_what, reqs: { type: number; data?: number[]; map?: number[] }[], status) => {
    const m = new MqHarness(4, { ctrl: true });
    for (const r of reqs) if (r.map) m.writeMapping(r.map);
    const r = m.ctrlCall(...reqs);
    expect(r.at(-1)!.status).toBe(status);
    expect(m.h.vif.c.ctrlErrors).toBe(1);
    expect(m.h.vif.connected).toBe(true);
  });

  it('a mapping naming a queue past the last leaves the table in use as it was (the shadow copy is dropped)', () => {
    const m = configured();
    m.writeMapping([1, 2, 4]);
    expect(statuses(m.ctrlCall({ type: SET_MAP, data: [MAP_REF, 3, 0] }))).toEqual([INVALID]);
    expect(m.h.vif.stats().hash.mapping.slice(0, 4)).toEqual([0, 1, 2, 3]);
  });
});

describe("the control ring's own refusals (connect_ctrl_ring, xenvif_connect_ctrl)", () => {
  it('no ctrl-ring-ref: no control ring, the vif connects', () => {
    const m = new MqHarness(2);
    expect(m.h.vif.connected).toBe(true);
    expect(m.h.vif.stats().ctrlRing).toBe(false);
  });

  it('ctrl-ring-ref without event-channel-ctrl: refused ("reading .../event-channel-ctrl"), nothing left mapped', () => {
    const m = new MqHarness(2, { ctrl: true, refused: true, frontend: { [VIF_KEY.eventChannelCtrl]: null } });
    expect(m.h.vif.state).toBe(XenbusState.Closing);
    expect(m.h.vif.fatalReason).toMatch(/reading .*\/event-channel-ctrl/);
    expect(m.h.ops.activeMappings).toBe(0);
  });

  it('a ctrl-ring-ref the guest never granted: refused ("mapping shared-frame")', () => {
    const m = new MqHarness(2, { ctrl: true, refused: true, frontend: { [VIF_KEY.ctrlRingRef]: '999' } });
    expect(m.h.vif.fatalReason).toMatch(/mapping shared-frame 999 port 40/);
    expect(m.h.ops.activeMappings).toBe(0);
  });

  it('a control port that cannot be bound: refused, the page unmapped', () => {
    const m = new MqHarness(2, { ctrl: true, refused: true, frontend: { [VIF_KEY.eventChannelCtrl]: '666' } });
    expect(m.h.vif.fatalReason).toMatch(new RegExp(`mapping shared-frame ${CTRL_REF} port 666`));
    expect(m.h.ops.activeMappings).toBe(0);
  });

  it('an impossible req_prod once connected: the frontend is disconnected, every queue and the control ring given back', () => {
    const m = new MqHarness(2, { ctrl: true });
    Atomics.store(m.ctrl!.idx, SRING_REQ_PROD >> 2, 1000);
    m.h.vif.poll();
    expect(m.h.vif.fatalReason).toMatch(/impossible number of control requests/);
    expect(m.h.ops.activeMappings).toBe(0);
  });
});

describe('RX steering by the configured hash (xenvif_select_queue, xenvif_set_skb_hash)', () => {
  it('a UDP frame: Toeplitz over its addresses (no UDP type), mapping[hash % 128]; it carries the hash in a HASH extra-info slot after its first response', () => {
    const m = configured();
    for (let q = 0; q < 4; q++) m.post(q, 8);
    const addrs = Uint8Array.from([10, 0, 10, 1, 10, 0, 11, 1]);
    const h = xenNetifToeplitzHash(Uint8Array.from(RSS_KEY), 40, addrs, 0, 8);
    const q = (h % 128) % 4;
    deliverUdp(m.h, 40000);
    deliverUdp(m.h, 40001);
    m.h.vif.poll();
    // Both flows share their addresses: one queue for both.
    expect(m.h.vif.stats().queues.map((x) => x.rxPackets)).toEqual([0, 1, 2, 3].map((i) => (i === q ? 2 : 0)));
    const rsp = m.rxResponses(q);
    expect(rsp).toHaveLength(4);
    expect(rsp[0].flags & NETRXF_extra_info).toBe(NETRXF_extra_info);
    const e = readExtraInfo(rsp[1].raw, rsp[1].o);
    expect([e.type, e.hashType, e.hashAlgorithm, e.hashValue]).toEqual([XEN_NETIF_EXTRA_TYPE_HASH, _XEN_NETIF_CTRL_HASH_TYPE_IPV4, TOEPLITZ, h]);
    expect(m.h.vif.c.rxHashExtras).toBe(2);
  });

  it('a TCP segment under IPV4_TCP: Toeplitz over the 4-tuple, so two connections between the same hosts may part', () => {
    const m = configured();
    for (let q = 0; q < 4; q++) m.post(q, 40);
    const want = [0, 0, 0, 0];
    for (let p = 0; p < 16; p++) {
      deliverUdp(m.h, 40000 + p, 200, 6);
      const t = Uint8Array.from([10, 0, 10, 1, 10, 0, 11, 1, (40000 + p) >> 8, (40000 + p) & 255, 0x13, 0x89]);
      want[(xenNetifToeplitzHash(Uint8Array.from(RSS_KEY), 40, t, 0, 12) % 128) % 4]++;
    }
    m.h.vif.poll();
    expect(m.h.vif.stats().queues.map((x) => x.rxPackets)).toEqual(want);
    expect(want.filter((n) => n > 0).length).toBeGreaterThan(1);
  });

  it('no mapping table (size 0): hash % queues; a frame no configured type covers (flags 0): hash 0, queue 0, no HASH slot', () => {
    const m = new MqHarness(4, { ctrl: true });
    m.keyPage.set(RSS_KEY);
    m.ctrlCall({ type: SET_ALG, data: [TOEPLITZ] }, { type: SET_KEY, data: [KEY_REF, 40] });
    for (let q = 0; q < 4; q++) m.post(q, 8);
    deliverUdp(m.h, 40000);
    m.h.vif.poll();
    expect(m.h.vif.stats().queues.map((x) => x.rxPackets)).toEqual([1, 0, 0, 0]);
    expect(m.h.vif.c.rxHashExtras).toBe(0);
    m.ctrlCall({ type: SET_FLAGS, data: [XEN_NETIF_CTRL_HASH_TYPE_IPV4] });
    const h = xenNetifToeplitzHash(Uint8Array.from(RSS_KEY), 40, Uint8Array.from([10, 0, 10, 1, 10, 0, 11, 1]), 0, 8);
    deliverUdp(m.h, 40000);
    m.h.vif.poll();
    expect(m.h.vif.stats().queues[h % 4].rxPackets).toBe(h % 4 === 0 ? 2 : 1);
  });

  it('the hash goes with the connection: a vif that connects again steers by the flow hash until told otherwise', () => {
    const m = configured();
    m.h.store.write(0, `${m.h.fe}/${VIF_KEY.state}`, String(XenbusState.Closing));
    expect(m.h.vif.connected).toBe(false);
    expect(m.h.vif.stats().hash).toMatchObject({ algorithm: 'none', mappingSize: 0 });
  });
});
