/**
 * Checksum offload, netfront's side (xennet_start_xmit's flags,
 * handle_incoming and checksum_setup), against a scripted backend in
 * process: a partial frame goes with NETTXF_csum_blank | NETTXF_data_validated
 * while the offload is on and is completed in software when it is off; a
 * partial frame that is no IPv4 TCP or UDP is dropped and counted; the
 * response's NETRXF_* flags reach the stack, and a csum_blank frame whose
 * headers no checksum can be completed over is dropped and counted, one
 * test per malformed input.
 */
import { describe, expect, it } from 'vitest';
import {
  FrameAllocator,
  GrantRefAllocator,
  GrantTable,
  GuestMemory,
  NETIF_RX_SLOT_SIZE,
  NETIF_TX_SLOT_SIZE,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETTXF_csum_blank,
  NETTXF_data_validated,
  RXREQ_GREF,
  RXRSP_FLAGS,
  RXRSP_ID,
  RXRSP_OFFSET,
  RXRSP_STATUS,
  SRING_RSP_PROD,
  SharedRing,
  Store,
  TXREQ_FLAGS,
  VIF_KEY,
  XenbusState,
  vifBackendPath,
  vifFrontendPath,
} from '@xsim/hypervisor';
import { ETH_HLEN, ETH_P_IP, verifyL4Checksum, writeIpUdp, writePartialL4Checksum, writeU16 } from '@xsim/netstack';
import { Netfront, type NetfrontParams } from '@xsim/netfront';
import { storeClient } from '../../../test/fixtures/netback-harness.ts';

function rig(params: NetfrontParams = {}) {
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
  const nf = new Netfront({
    domid: 4,
    handle: 0,
    mem,
    frames: new FrameAllocator(mem),
    gnttab,
    grefs: new GrantRefAllocator(gnttab),
    evtchn,
    xs: storeClient(store, 0),
    mtu: 1500,
    params,
  });
  const received: { len: number; flags: number }[] = [];
  nf.onReceive = (_ram, _off, len, flags) => received.push({ len, flags });
  const offloads: boolean[] = [];
  nf.onOffloads = (o) => offloads.push(o.txCsum);
  nf.start();
  store.write(0, `${be}/${VIF_KEY.state}`, String(XenbusState.Connected));
  const ring = (key: string, size: number) => new SharedRing(mem.page(gnttab.read(Number(store.read(0, `${fe}/${key}`))).frame), size);
  const keys = () => Object.fromEntries((store.directory(0, fe) ?? []).map((k) => [k, store.read(0, `${fe}/${k}`)]));
  const backendState = (st: XenbusState) => store.write(0, `${be}/${VIF_KEY.state}`, String(st));
  return {
    nf,
    mem,
    gnttab,
    rx: ring(VIF_KEY.rxRingRef, NETIF_RX_SLOT_SIZE),
    tx: ring(VIF_KEY.txRingRef, NETIF_TX_SLOT_SIZE),
    received,
    offloads,
    keys,
    backendState,
  };
}

/** An Ethernet + IPv4 + UDP frame of `payload` octets at `at`, its checksum partial. */
function udpFrame(b: Uint8Array, at: number, payload: number): number {
  b.fill(0x02, at, at + 12);
  writeU16(b, at + 12, ETH_P_IP);
  writeIpUdp(b, at + ETH_HLEN, 0x0a000001, 0x0a000002, 1, 5000, 6000, payload);
  for (let i = 0; i < payload; i++) b[at + 42 + i] = i * 7;
  const len = 42 + payload;
  writePartialL4Checksum(b, at, len);
  return len;
}

describe('netfront TX: partial checksums', () => {
  it('offload on (the default): no feature-no-csum-offload, the stack told txCsum, a partial frame goes flagged csum_blank | data_validated', () => {
    const r = rig();
    expect(r.keys()['feature-no-csum-offload']).toBeUndefined();
    expect(r.offloads).toEqual([true]);
    const at = r.nf.txReserve(200);
    const len = udpFrame(r.mem.u8, at, 100);
    r.nf.txCommit(len, true);
    const at2 = r.nf.txReserve(200);
    r.nf.txCommit(udpFrame(r.mem.u8, at2, 50), false);
    r.nf.flush();
    expect(r.tx.dv.getUint16(r.tx.slotOffset(0) + TXREQ_FLAGS, true)).toBe(NETTXF_csum_blank | NETTXF_data_validated);
    expect(r.tx.dv.getUint16(r.tx.slotOffset(1) + TXREQ_FLAGS, true)).toBe(0);
    expect(r.nf.c).toMatchObject({ txCsumPartial: 1, txCsumSoftware: 0, txPackets: 2 });
  });

  it('offload off: feature-no-csum-offload = 1, the stack told, a partial frame still handed down is completed here and goes unflagged', () => {
    const r = rig({ csum: false });
    expect(r.keys()['feature-no-csum-offload']).toBe('1');
    expect(r.offloads).toEqual([false]);
    const at = r.nf.txReserve(200);
    const len = udpFrame(r.mem.u8, at, 101);
    r.nf.txCommit(len, true);
    r.nf.flush();
    expect(r.tx.dv.getUint16(r.tx.slotOffset(0) + TXREQ_FLAGS, true)).toBe(0);
    expect(verifyL4Checksum(r.mem.u8, at, len)).toBe(true);
    expect(r.nf.c).toMatchObject({ txCsumPartial: 1, txCsumSoftware: 1, txPackets: 1 });
  });

  it('offload off: a partial frame that is no IPv4 TCP or UDP is dropped, counted txCsumBad, and its buffer reused', () => {
    const r = rig({ csum: false });
    const free = r.nf.txAvailable();
    const at = r.nf.txReserve(100);
    const len = udpFrame(r.mem.u8, at, 20);
    r.mem.u8[at + ETH_HLEN + 9] = 1; // ICMP
    r.nf.txCommit(len, true);
    expect(r.nf.c).toMatchObject({ txCsumBad: 1, txPackets: 0 });
    expect(r.nf.txAvailable()).toBe(free);
  });

  it('switched off at run time: the stack told at once, the device closes to connect again with feature-no-csum-offload = 1', () => {
    const r = rig();
    expect(r.nf.setOffloads({ csum: false })).toBe(true);
    expect(r.offloads).toEqual([true, false]);
    expect(r.nf.state).toBe(XenbusState.Closing);
    expect(r.nf.setOffloads({ csum: false })).toBe(false);
  });

  it('switched back on: the device goes Closed, Initialising, Connected again, and feature-no-csum-offload is gone', () => {
    const r = rig({ csum: false });
    expect(r.keys()['feature-no-csum-offload']).toBe('1');
    r.nf.setOffloads({ csum: true });
    r.backendState(XenbusState.Closing);
    r.backendState(XenbusState.Closed);
    expect(r.nf.state).toBe(XenbusState.Initialising);
    r.backendState(XenbusState.InitWait);
    expect(r.nf.state).toBe(XenbusState.Connected);
    expect(r.keys()['feature-no-csum-offload']).toBeUndefined();
    expect(r.offloads).toEqual([false, true, true]);
  });
});

/** Answer RX buffer `id` (posted at slot id) with `len` octets of `frame`, flagged `flags`. */
function respond(r: ReturnType<typeof rig>, id: number, frame: Uint8Array, flags: number): void {
  const gref = r.rx.dv.getUint32(r.rx.slotOffset(id) + RXREQ_GREF, true);
  r.mem.page(r.gnttab.read(gref).frame).set(frame);
  const base = r.rx.rspProd;
  const o = r.rx.slotOffset(base);
  r.rx.dv.setUint16(o + RXRSP_ID, id, true);
  r.rx.dv.setUint16(o + RXRSP_OFFSET, 0, true);
  r.rx.dv.setUint16(o + RXRSP_FLAGS, flags, true);
  r.rx.dv.setInt16(o + RXRSP_STATUS, frame.length, true);
  Atomics.store(r.rx.idx, SRING_RSP_PROD >> 2, base + 1);
}

function frameOf(payload: number, spoil?: (b: Uint8Array) => void): Uint8Array {
  const b = new Uint8Array(42 + payload);
  udpFrame(b, 0, payload);
  spoil?.(b);
  return b;
}

describe('netfront RX: NETRXF_* checksum flags', () => {
  it('csum_blank | data_validated, data_validated, none: each reaches the stack with its flags, counted', () => {
    const r = rig();
    respond(r, 0, frameOf(64), NETRXF_csum_blank | NETRXF_data_validated);
    respond(r, 1, frameOf(64), NETRXF_data_validated);
    respond(r, 2, frameOf(64), 0);
    r.nf.poll();
    expect(r.received.map((x) => x.flags)).toEqual([NETRXF_csum_blank | NETRXF_data_validated, NETRXF_data_validated, 0]);
    expect(r.nf.c).toMatchObject({ rxCsumBlank: 1, rxCsumValidated: 1, rxCsumSetupErr: 0, rxPackets: 3 });
  });

  it.each([
    ['not TCP or UDP (ICMP)', (b: Uint8Array) => (b[ETH_HLEN + 9] = 1)],
    ['not IPv4 (IPv6 ethertype)', (b: Uint8Array) => writeU16(b, 12, 0x86dd)],
    ['a fragment (more fragments)', (b: Uint8Array) => writeU16(b, ETH_HLEN + 6, 0x2000)],
    ['a fragment (offset)', (b: Uint8Array) => writeU16(b, ETH_HLEN + 6, 0x0001)],
    ['an IHL under 5', (b: Uint8Array) => (b[ETH_HLEN] = 0x43)],
    ['a total length past the frame (truncated)', (b: Uint8Array) => writeU16(b, ETH_HLEN + 2, 2000)],
    ['a UDP header cut short', (b: Uint8Array) => writeU16(b, ETH_HLEN + 2, 20 + 7)],
  ])('csum_blank on a frame with %s: dropped, counted rxCsumSetupErr; the next frame arrives', (_what, spoil) => {
    const r = rig();
    respond(r, 0, frameOf(64, spoil), NETRXF_csum_blank | NETRXF_data_validated);
    respond(r, 1, frameOf(64, spoil), 0);
    r.nf.poll();
    expect(r.nf.c).toMatchObject({ rxCsumSetupErr: 1, rxPackets: 1 });
    expect(r.received).toEqual([{ len: 106, flags: 0 }]);
  });

  it('IP options on a csum_blank frame are fine (checksum_setup reads the IHL)', () => {
    const r = rig();
    const b = new Uint8Array(42 + 8 + 40);
    b.fill(0x02, 0, 12);
    writeU16(b, 12, ETH_P_IP);
    writeIpUdp(b, ETH_HLEN, 1, 2, 1, 1, 2, 40);
    // Move the UDP header and data 8 octets on, making room for two NOP-option words.
    b.copyWithin(ETH_HLEN + 28, ETH_HLEN + 20, ETH_HLEN + 68);
    b.fill(1, ETH_HLEN + 20, ETH_HLEN + 28);
    b[ETH_HLEN] = 0x47;
    writeU16(b, ETH_HLEN + 2, 28 + 48);
    respond(r, 0, b, NETRXF_csum_blank | NETRXF_data_validated);
    r.nf.poll();
    expect(r.nf.c).toMatchObject({ rxCsumSetupErr: 0, rxCsumBlank: 1, rxPackets: 1 });
  });
});
