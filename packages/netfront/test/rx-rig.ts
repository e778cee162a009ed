/**
 * netfront against a scripted backend, in process: the RX ring's responses
 * are written by the test (as a backend would), netfront polls them. Shared
 * by the RX extra-info and GSO tests.
 */
import {
  FrameAllocator,
  GrantRefAllocator,
  GrantTable,
  GuestMemory,
  RXREQ_GREF,
  RXREQ_ID,
  RXRSP_FLAGS,
  RXRSP_ID,
  RXRSP_OFFSET,
  RXRSP_STATUS,
  SRING_RSP_PROD,
  SharedRing,
  NETIF_RX_SLOT_SIZE,
  Store,
  VIF_KEY,
  XenbusState,
  newExtraInfo,
  vifBackendPath,
  vifFrontendPath,
  writeExtraInfo,
  type NetifExtraInfo,
} from '@xsim/hypervisor';
import { Netfront } from '@xsim/netfront';
import { storeClient } from '../../../test/fixtures/netback-harness.ts';

/** A connected netfront (domain 4, MTU 1500) whose RX ring the test answers; every frame it hands up is kept (bytes and flags). */
export function rig() {
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
  const frames: { bytes: Uint8Array; flags: number }[] = [];
  nf.onReceive = (ram, off, len, flags) => {
    received.push(len);
    frames.push({ bytes: ram.slice(off, off + len), flags });
  };
  nf.start();
  store.write(0, `${be}/${VIF_KEY.state}`, String(XenbusState.Connected));
  const rx = new SharedRing(mem.page(gnttab.read(Number(store.read(0, `${fe}/${VIF_KEY.rxRingRef}`))).frame), NETIF_RX_SLOT_SIZE);
  /** The buffer posted at ring slot `i`: its id and its page (what the backend copies into). */
  const posted = (i: number) => {
    const o = rx.slotOffset(i);
    return { id: rx.dv.getUint16(o + RXREQ_ID, true), page: mem.page(gnttab.read(rx.dv.getUint32(o + RXREQ_GREF, true)).frame) };
  };
  return { nf, rx, received, frames, grefs, posted, log };
}

/** A data response (id, flags, status; offset 0 unless given) or an extra-info slot. */
export type Slot = { id: number; flags: number; status: number; offset?: number } | Partial<NetifExtraInfo>;

/** Write `slots` as the next responses and publish them (rsp_prod). */
export function respond(rx: SharedRing, slots: Slot[]): void {
  const base = rx.rspProd;
  slots.forEach((s, i) => {
    const o = rx.slotOffset(base + i);
    if ('status' in s) {
      rx.dv.setUint16(o + RXRSP_ID, s.id, true);
      rx.dv.setUint16(o + RXRSP_OFFSET, s.offset ?? 0, true);
      rx.dv.setUint16(o + RXRSP_FLAGS, s.flags, true);
      rx.dv.setInt16(o + RXRSP_STATUS, s.status, true);
    } else writeExtraInfo(rx.dv, o, { ...newExtraInfo(), ...s });
  });
  Atomics.store(rx.idx, SRING_RSP_PROD >> 2, base + slots.length);
}
