/**
 * Extra-info slots on a vif's TX ring and multicast control, in process
 * against a scripted guest, as Linux xen-netback takes them
 * (xenvif_get_extras, xenvif_set_skb_gso, the MCAST_ADD/DEL requests,
 * xenvif_start_xmit's multicast filter): each extra slot answered
 * NETIF_RSP_NULL after its request; one test per malformed slot.
 */
import { describe, expect, it } from 'vitest';
import {
  NETIF_RSP_ERROR,
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETTXF_extra_info,
  NETTXF_more_data,
  VIF_KEY,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_HASH,
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
  XEN_NETIF_EXTRA_TYPE_MCAST_DEL,
  XEN_NETIF_EXTRA_TYPE_XDP,
  XEN_NETIF_GSO_TYPE_TCPV4,
  XenbusState,
} from '@xsim/hypervisor';
import { NetbackHarness } from '../../../test/fixtures/netback-harness.ts';
import { deliverFrame, extraSlot, frameIn, postBuffers, publishRaw, rxResponses, txResponses } from './rig.ts';

const GSO = extraSlot({ type: XEN_NETIF_EXTRA_TYPE_GSO, gsoSize: 1448, gsoType: XEN_NETIF_GSO_TYPE_TCPV4 });
const GROUP = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]; // 224.0.0.251's MAC
const OTHER = [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03];
const mcast = (type: number, addr = GROUP) => extraSlot({ type, mcastAddr: addr });

function expectFatal(h: NetbackHarness, reason: RegExp): void {
  h.vif.poll();
  expect(h.vif.connected).toBe(false);
  expect(h.vif.state).toBe(XenbusState.Closing);
  expect(h.vif.fatalReason).toMatch(reason);
  expect(h.sink.frames).toHaveLength(0);
}

describe('extra-info slots a frame carries', () => {
  it('a GSO slot (TCPv4, MSS 1448): checked, answered NULL after the frame; a frame that is no TCP cannot be segmented (txErrGso)', () => {
    const h = new NetbackHarness();
    frameIn(h, 0, 1000);
    publishRaw(h, [{ gref: h.dataRefs[0], size: 1000, flags: NETTXF_extra_info, id: 7 }, GSO]);
    h.vif.poll();
    expect(txResponses(h)).toEqual([{ id: 7, status: NETIF_RSP_ERROR }, expect.objectContaining({ status: NETIF_RSP_NULL })]);
    expect(h.sink.frames).toHaveLength(0);
    expect(h.vif.c).toMatchObject({ txExtraGso: 1, txErrGso: 1 });
  });

  it('a chain of two (HASH, then XDP) before the data slots of a 3-slot frame: OK, NULL, NULL, OK, OK', () => {
    const h = new NetbackHarness({ mtu: 9000 });
    for (let i = 0; i < 3; i++) frameIn(h, i, 3000);
    publishRaw(h, [
      { gref: h.dataRefs[0], size: 9000, flags: NETTXF_extra_info | NETTXF_more_data, id: 1 },
      extraSlot({ type: XEN_NETIF_EXTRA_TYPE_HASH, flags: XEN_NETIF_EXTRA_FLAG_MORE, hashType: 1, hashAlgorithm: 1, hashValue: 0xdeadbeef }),
      extraSlot({ type: XEN_NETIF_EXTRA_TYPE_XDP }),
      { gref: h.dataRefs[1], size: 3000, flags: NETTXF_more_data, id: 2 },
      { gref: h.dataRefs[2], size: 3000, id: 3 },
    ]);
    h.vif.poll();
    expect(txResponses(h).map((r) => r.status)).toEqual([NETIF_RSP_OKAY, NETIF_RSP_NULL, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETIF_RSP_OKAY]);
    expect(h.sink.frames.map((f) => f.length)).toEqual([9000]);
    expect([h.vif.c.txExtraGso, h.vif.c.txExtraIgnored]).toEqual([0, 2]);
  });

  it.each([
    ['HASH', extraSlot({ type: XEN_NETIF_EXTRA_TYPE_HASH, hashType: 0, hashAlgorithm: 1, hashValue: 5 })],
    ['XDP', extraSlot({ type: XEN_NETIF_EXTRA_TYPE_XDP, xdpHeadroom: 256 })],
  ])('a %s slot: answered NULL, nothing done, the frame goes on', (_t, slot) => {
    const h = new NetbackHarness();
    frameIn(h, 0, 200);
    publishRaw(h, [{ gref: h.dataRefs[0], size: 200, flags: NETTXF_extra_info }, slot]);
    h.vif.poll();
    expect(txResponses(h).map((r) => r.status)).toEqual([NETIF_RSP_OKAY, NETIF_RSP_NULL]);
    expect(h.sink.frames).toHaveLength(1);
    expect(h.vif.c.txExtraIgnored).toBe(1);
  });

  it('a runt carrying an extra slot: ERROR for the frame, still NULL for the extra', () => {
    const h = new NetbackHarness();
    publishRaw(h, [{ gref: h.dataRefs[0], size: 10, flags: NETTXF_extra_info }, GSO]);
    h.vif.poll();
    expect(txResponses(h).map((r) => r.status)).toEqual([NETIF_RSP_ERROR, NETIF_RSP_NULL]);
    expect(h.vif.c.txErrRunt).toBe(1);
    expect(h.vif.connected).toBe(true);
  });
});

describe('extra-info slots that disconnect the frontend (malice)', () => {
  it.each([
    ['type 0 (XEN_NETIF_EXTRA_TYPE_NONE)', extraSlot({ type: 0 }), /invalid extra type: 0/],
    ['type 6 (past XEN_NETIF_EXTRA_TYPE_MAX)', extraSlot({ type: 6 }), /invalid extra type: 6/],
    ['type 255', extraSlot({ type: 255 }), /invalid extra type: 255/],
    ['a GSO slot of size 0', extraSlot({ type: XEN_NETIF_EXTRA_TYPE_GSO, gsoSize: 0, gsoType: XEN_NETIF_GSO_TYPE_TCPV4 }), /GSO size must not be zero/],
    ['a GSO slot of type NONE', extraSlot({ type: XEN_NETIF_EXTRA_TYPE_GSO, gsoSize: 1448, gsoType: 0 }), /bad GSO type 0/],
    ['a GSO slot of type 3', extraSlot({ type: XEN_NETIF_EXTRA_TYPE_GSO, gsoSize: 1448, gsoType: 3 }), /bad GSO type 3/],
    ['a slot flagged MORE with none after it', extraSlot({ type: XEN_NETIF_EXTRA_TYPE_HASH, flags: XEN_NETIF_EXTRA_FLAG_MORE }), /missing extra info/],
  ])('%s', (_what, slot, reason) => {
    const h = new NetbackHarness();
    frameIn(h, 0, 200);
    publishRaw(h, [{ gref: h.dataRefs[0], size: 200, flags: NETTXF_extra_info }, slot]);
    expectFatal(h, reason);
  });

  it('flags other than MORE mean nothing (Linux reads only that bit)', () => {
    const h = new NetbackHarness();
    frameIn(h, 0, 200);
    publishRaw(h, [{ gref: h.dataRefs[0], size: 200, flags: NETTXF_extra_info }, extraSlot({ type: XEN_NETIF_EXTRA_TYPE_HASH, flags: 0xfe })]);
    h.vif.poll();
    expect(h.sink.frames).toHaveLength(1);
  });
});

describe('multicast control (MCAST_ADD, MCAST_DEL, request-multicast-control)', () => {
  const listen = (h: NetbackHarness, type: number, addr = GROUP) => {
    publishRaw(h, [{ gref: 0, size: 0, flags: NETTXF_extra_info }, mcast(type, addr)]);
    h.vif.poll();
  };
  const delivered = (h: NetbackHarness) => rxResponses(h).length;

  it('MCAST_ADD without request-multicast-control: the address is listed (answered OKAY, no frame), nothing is filtered yet', () => {
    const h = new NetbackHarness();
    listen(h, XEN_NETIF_EXTRA_TYPE_MCAST_ADD);
    expect(txResponses(h).map((r) => r.status)).toEqual([NETIF_RSP_OKAY, NETIF_RSP_NULL]);
    expect(h.sink.frames).toHaveLength(0);
    expect(h.vif.mcast.size).toBe(1);
    postBuffers(h, 4);
    deliverFrame(h, 100, OTHER);
    h.vif.poll();
    expect(delivered(h)).toBe(1);
    expect(h.vif.c.rxDropMcast).toBe(0);
  });

  it('request-multicast-control 1 (watched): only listed groups and broadcast pass; MCAST_DEL and 0 undo it', () => {
    const h = new NetbackHarness();
    listen(h, XEN_NETIF_EXTRA_TYPE_MCAST_ADD);
    h.store.write(0, `${h.fe}/${VIF_KEY.requestMulticastControl}`, '1');
    expect(h.vif.multicastControl).toBe(true);
    postBuffers(h, 16);
    deliverFrame(h, 100, GROUP);
    deliverFrame(h, 100, OTHER);
    deliverFrame(h, 100, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    deliverFrame(h, 100);
    h.vif.poll();
    expect(delivered(h)).toBe(3);
    expect(h.vif.c.rxDropMcast).toBe(1);
    listen(h, XEN_NETIF_EXTRA_TYPE_MCAST_DEL);
    deliverFrame(h, 100, GROUP);
    h.vif.poll();
    expect(h.vif.c.rxDropMcast).toBe(2);
    h.store.write(0, `${h.fe}/${VIF_KEY.requestMulticastControl}`, '0');
    deliverFrame(h, 100, OTHER);
    h.vif.poll();
    expect(delivered(h)).toBe(4);
  });

  it('a 65th address is refused with XEN_NETIF_RSP_ERROR (XEN_NETBK_MCAST_MAX 64); the vif stays up', () => {
    const h = new NetbackHarness();
    for (let i = 0; i < 65; i++) listen(h, XEN_NETIF_EXTRA_TYPE_MCAST_ADD, [0x01, 0x00, 0x5e, 0, 0, i]);
    const statuses = txResponses(h)
      .filter((_, i) => i % 2 === 0)
      .map((r) => r.status);
    expect(statuses.slice(0, 64).every((s) => s === NETIF_RSP_OKAY)).toBe(true);
    expect(statuses[64]).toBe(NETIF_RSP_ERROR);
    expect([h.vif.mcast.size, h.vif.c.txMcastFull, h.vif.connected]).toEqual([64, 1, true]);
  });

  it('the list goes with the connection: a frontend that reconnects starts with none', () => {
    const h = new NetbackHarness();
    listen(h, XEN_NETIF_EXTRA_TYPE_MCAST_ADD);
    h.store.write(0, `${h.fe}/${VIF_KEY.requestMulticastControl}`, '1');
    h.store.write(0, `${h.fe}/${VIF_KEY.state}`, String(XenbusState.Closing));
    expect([h.vif.mcast.size, h.vif.multicastControl]).toEqual([0, false]);
  });

  it('a multicast request flagged more_data has no data slots: the next slot is the next request, as in Linux', () => {
    const h = new NetbackHarness();
    frameIn(h, 0, 300);
    publishRaw(h, [
      { gref: 0, size: 0, flags: NETTXF_extra_info | NETTXF_more_data },
      mcast(XEN_NETIF_EXTRA_TYPE_MCAST_ADD),
      { gref: h.dataRefs[0], size: 300 },
    ]);
    h.vif.poll();
    expect(txResponses(h).map((r) => r.status)).toEqual([NETIF_RSP_OKAY, NETIF_RSP_NULL, NETIF_RSP_OKAY]);
    expect(h.sink.frames.map((f) => f.length)).toEqual([300]);
  });
});
