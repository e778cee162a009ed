/**
 * TCPv4 segmentation offload, netfront's side (xennet_start_xmit with
 * skb_is_gso, xennet_fix_features' NETIF_F_TSO), against a scripted backend
 * in process: with a backend offering feature-gso-tcpv4 the stack may hand
 * down a TCP frame up to 64 KiB with its MSS, which goes over several slots
 * with a GSO extra-info slot after the first; without it (or with an
 * accelerator attached) tsoMax is 0 and such a frame is dropped, counted.
 */
import { describe, expect, it } from 'vitest';
import {
  FrameAllocator,
  GrantRefAllocator,
  GrantTable,
  GuestMemory,
  NETIF_TX_SLOT_SIZE,
  NETTXF_csum_blank,
  NETTXF_data_validated,
  NETTXF_extra_info,
  NETTXF_more_data,
  SharedRing,
  Store,
  TXREQ_FLAGS,
  TXREQ_SIZE,
  VIF_KEY,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_GSO_TYPE_TCPV4,
  XenbusState,
  newExtraInfo,
  readExtraInfo,
  vifBackendPath,
  vifFrontendPath,
} from '@xsim/hypervisor';
import { Netfront, type NetfrontParams } from '@xsim/netfront';
import { storeClient } from '../../../test/fixtures/netback-harness.ts';

function rig(o: { params?: NetfrontParams; backendGso?: boolean } = {}) {
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
  store.write(0, `${be}/${VIF_KEY.featureSg}`, '1');
  if (o.backendGso !== false) store.write(0, `${be}/${VIF_KEY.featureGsoTcpv4}`, '1');
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
    params: o.params,
  });
  const told: { txCsum: boolean; tsoMax: number }[] = [];
  nf.onOffloads = (x) => told.push(x);
  nf.start();
  store.write(0, `${be}/${VIF_KEY.state}`, String(XenbusState.Connected));
  const tx = new SharedRing(mem.page(gnttab.read(Number(store.read(0, `${fe}/${VIF_KEY.txRingRef}`))).frame), NETIF_TX_SLOT_SIZE);
  const key = (k: string) => store.read(0, `${fe}/${k}`);
  return { nf, mem, tx, told, key };
}

describe('netfront TX: TCPv4 GSO frames', () => {
  it('a backend offering feature-gso-tcpv4: tsoMax 65517 told; a 20000-octet frame goes over 5 slots with its GSO slot after the first', () => {
    const r = rig();
    expect(r.key(VIF_KEY.featureGsoTcpv4)).toBe('1');
    expect(r.told.at(-1)).toEqual({ txCsum: true, tsoMax: 65517 });
    const at = r.nf.txReserve(20000);
    expect(at).toBeGreaterThanOrEqual(0);
    r.mem.u8.fill(7, at, at + 20000);
    r.nf.txCommit(20000, true, 1448);
    r.nf.flush();
    const dv = r.tx.dv;
    const flags = (i: number) => dv.getUint16(r.tx.slotOffset(i) + TXREQ_FLAGS, true);
    expect(flags(0)).toBe(NETTXF_csum_blank | NETTXF_data_validated | NETTXF_extra_info | NETTXF_more_data);
    expect(dv.getUint16(r.tx.slotOffset(0) + TXREQ_SIZE, true)).toBe(20000);
    const e = readExtraInfo(dv, r.tx.slotOffset(1), newExtraInfo());
    expect(e).toMatchObject({ type: XEN_NETIF_EXTRA_TYPE_GSO, gsoSize: 1448, gsoType: XEN_NETIF_GSO_TYPE_TCPV4, flags: 0 });
    expect([2, 3, 4, 5].map(flags)).toEqual([NETTXF_more_data, NETTXF_more_data, NETTXF_more_data, 0]);
    expect(r.tx.reqProd).toBe(6);
    expect(r.nf.c).toMatchObject({ txGsoFrames: 1, txPackets: 1, txGsoRefused: 0 });
  });

  it('a backend without it: tsoMax 0, and a GSO frame handed down anyway is dropped, counted txGsoRefused', () => {
    const r = rig({ backendGso: false });
    expect(r.told.at(-1)).toEqual({ txCsum: true, tsoMax: 0 });
    expect(r.nf.txReserve(20000)).toBe(-1);
    const at = r.nf.txReserve(1000);
    r.nf.txCommit(1000, true, 500);
    expect(at).toBeGreaterThanOrEqual(0);
    expect(r.nf.c).toMatchObject({ txGsoRefused: 1, txPackets: 0 });
  });

  it('gso off (another frontend): feature-gso-tcpv4 0, tsoMax 0, no big buffers taken', () => {
    const r = rig({ params: { gso: false } });
    expect(r.key(VIF_KEY.featureGsoTcpv4)).toBe('0');
    expect(r.nf.tsoMax).toBe(0);
  });

  it('an accelerator attached: tsoMax 0 told (its hardware has no TSO); detached: 65517 again', () => {
    const r = rig();
    r.nf.accel = { startXmit: () => false, checkReady: () => true } as unknown as NonNullable<typeof r.nf.accel>;
    expect(r.told.at(-1)).toEqual({ txCsum: true, tsoMax: 0 });
    r.nf.accel = null;
    expect(r.told.at(-1)).toEqual({ txCsum: true, tsoMax: 65517 });
  });
});

describe('netfront: TCPv4 GSO switched off at run time (ethtool -K tso off)', () => {
  it('tsoMax 0 told at once, the device reconnects, and writes feature-gso-tcpv4 0 this time', () => {
    const r = rig();
    expect(r.nf.setOffloads({ gso: false })).toBe(true);
    expect(r.told.at(-1)).toEqual({ txCsum: true, tsoMax: 0 });
    expect(r.nf.state).toBe(XenbusState.Closing);
    expect(r.nf.gsoOffload).toBe(false);
    expect(r.nf.csumOffload).toBe(true);
    expect(r.nf.setOffloads({ gso: false })).toBe(false);
  });
});
