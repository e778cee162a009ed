/**
 * Extra-info slots in RX responses, netfront's side (Linux xen-netfront's
 * xennet_get_extras, xennet_set_skb_gso), against a scripted backend in
 * process. xsim's netback sends none; another backend may: each extra slot
 * sits in the slot of a buffer posted there, which goes back unused, and a
 * malformed one drops its frame, never the device. One test per malformed
 * slot.
 */
import { describe, expect, it } from 'vitest';
import {
  FrameAllocator,
  GrantRefAllocator,
  GrantTable,
  GuestMemory,
  NETRXF_extra_info,
  RXRSP_FLAGS,
  RXRSP_ID,
  RXRSP_OFFSET,
  RXRSP_STATUS,
  SRING_RSP_PROD,
  SharedRing,
  NETIF_RX_SLOT_SIZE,
  Store,
  VIF_KEY,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_XDP,
  XEN_NETIF_GSO_TYPE_TCPV4,
  XenbusState,
  newExtraInfo,
  vifBackendPath,
  vifFrontendPath,
  writeExtraInfo,
  type NetifExtraInfo,
} from '@xsim/hypervisor';
import { Netfront } from '@xsim/netfront';
import { storeClient } from '../../../test/fixtures/netback-harness.ts';

function rig() {
  const store = new Store();
  const mem = GuestMemory.allocate(1024);
  const gnttab = GrantTable.create(2048);
  const fe = vifFrontendPath(4, 0);
  const be = vifBackendPath(0, 4, 0);
  for (const [k, v] of [
    [VIF_KEY.backend, be],
    [VIF_KEY.backendId, '0'],
    [VIF_KEY.mac, '00:16:3e:00:00:04'],
    [VIF_KEY.state, '1'],
  ])
    store.write(0, `${fe}/${k}`, v);
  store.write(0, `${be}/${VIF_KEY.featureRxCopy}`, '1');
  store.write(0, `${be}/${VIF_KEY.state}`, String(XenbusState.InitWait));
  const evtchn = { allocUnbound: () => 9, bindHandler: () => {}, send: () => true, close: () => {} };
  const log: string[] = [];
  const grefs = new GrantRefAllocator(gnttab);
  const nf = new Netfront({
    domid: 4,
    handle: 0,
    mem,
    frames: new FrameAllocator(mem),
    gnttab,
    grefs,
    evtchn,
    xs: storeClient(store, 0),
    mtu: 1500,
    log: (m) => log.push(m),
  });
  const received: number[] = [];
  nf.onReceive = (_ram, _off, len) => received.push(len);
  nf.start();
  store.write(0, `${be}/${VIF_KEY.state}`, String(XenbusState.Connected));
  const rx = new SharedRing(mem.page(gnttab.read(Number(store.read(0, `${fe}/${VIF_KEY.rxRingRef}`))).frame), NETIF_RX_SLOT_SIZE);
  return { nf, rx, received, grefs };
}

/** The buffer posted at slot i has id i (netfront posts ids 0, 1, ... in order). */
type Slot = { id: number; flags: number; status: number } | Partial<NetifExtraInfo>;

function respond(rx: SharedRing, slots: Slot[]): void {
  const base = rx.rspProd;
  slots.forEach((s, i) => {
    const o = rx.slotOffset(base + i);
    if ('status' in s) {
      rx.dv.setUint16(o + RXRSP_ID, s.id, true);
      rx.dv.setUint16(o + RXRSP_OFFSET, 0, true);
      rx.dv.setUint16(o + RXRSP_FLAGS, s.flags, true);
      rx.dv.setInt16(o + RXRSP_STATUS, s.status, true);
    } else writeExtraInfo(rx.dv, o, { ...newExtraInfo(), ...s });
  });
  Atomics.store(rx.idx, SRING_RSP_PROD >> 2, base + slots.length);
}

const GSO = { type: XEN_NETIF_EXTRA_TYPE_GSO, gsoSize: 1448, gsoType: XEN_NETIF_GSO_TYPE_TCPV4 };

describe('extra-info slots in RX responses', () => {
  it('a frame with a GSO slot after its first response: delivered, the extra slot’s buffer back unused and reposted', () => {
    const r = rig();
    const grantsBefore = r.grefs.available;
    respond(r.rx, [{ id: 0, flags: NETRXF_extra_info, status: 600 }, GSO, { id: 2, flags: 0, status: 300 }]);
    r.nf.poll();
    expect(r.received).toEqual([600, 300]);
    expect(r.nf.c.rxExtraInfo).toBe(1);
    expect(r.nf.brokenReason).toBe('');
    expect(r.grefs.available).toBe(grantsBefore); // all three buffers reposted
  });

  it('two chained (XDP, then GSO): both taken, the frame delivered', () => {
    const r = rig();
    respond(r.rx, [{ id: 0, flags: NETRXF_extra_info, status: 600 }, { type: XEN_NETIF_EXTRA_TYPE_XDP, flags: XEN_NETIF_EXTRA_FLAG_MORE }, GSO]);
    r.nf.poll();
    expect(r.received).toEqual([600]);
    expect(r.nf.c.rxExtraInfo).toBe(2);
  });

  it.each([
    ['of type 0', [{ type: 0 }]],
    ['of type 6 (past XEN_NETIF_EXTRA_TYPE_MAX)', [{ type: 6 }]],
    ['GSO of size 0', [{ ...GSO, gsoSize: 0 }]],
    ['GSO of type 3', [{ ...GSO, gsoType: 3 }]],
    ['missing: flagged MORE, none after', [{ ...GSO, flags: XEN_NETIF_EXTRA_FLAG_MORE }]],
  ])('an extra slot %s: that frame dropped and counted, the device stays, the next frame arrives', (_what, extras) => {
    const r = rig();
    respond(r.rx, [{ id: 0, flags: NETRXF_extra_info, status: 600 }, ...(extras as Slot[])]);
    r.nf.poll();
    respond(r.rx, [{ id: 1 + extras.length, flags: 0, status: 200 }]);
    r.nf.poll();
    expect(r.nf.c.rxBadResponse).toBe(1);
    expect(r.received).toEqual([200]);
    expect(r.nf.brokenReason).toBe('');
  });
});
