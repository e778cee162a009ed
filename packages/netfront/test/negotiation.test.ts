/**
 * netfront's side of the feature negotiation, in process against a scripted
 * backend (Linux xen-netfront's xennet_connect, talk_to_netback,
 * setup_netfront_split/single, xennet_fix_features, netback_changed): what it
 * writes, what it reads of the backend and acts on, and what it refuses.
 */
import { describe, expect, it } from 'vitest';
import { FrameAllocator, GrantRefAllocator, GrantTable, GuestMemory, Store, VIF_KEY, XenbusState, vifBackendPath, vifFrontendPath } from '@xsim/hypervisor';
import { Netfront, type NetfrontParams } from '@xsim/netfront';
import { storeClient } from '../../../test/fixtures/netback-harness.ts';

const DOMID = 4;
const fe = vifFrontendPath(DOMID, 0);
const be = vifBackendPath(0, DOMID, 0);

/** What Linux's netback writes at probe. */
const LINUX_BACKEND: Record<string, string> = {
  'feature-sg': '1',
  'feature-rx-copy': '1',
  'feature-rx-flip': '0',
  'feature-split-event-channels': '1',
};

interface RigOptions {
  backend?: Record<string, string | null>;
  mtu?: number;
  params?: NetfrontParams;
  /** allocUnbound fails from this call on (0-based). */
  portsFailFrom?: number;
}

function rig(o: RigOptions = {}) {
  const store = new Store();
  const mem = GuestMemory.allocate(4096);
  const frames = new FrameAllocator(mem);
  const gnttab = GrantTable.create(2048);
  const grefs = new GrantRefAllocator(gnttab);
  const log: string[] = [];
  store.write(0, `${fe}/${VIF_KEY.backend}`, be);
  store.write(0, `${fe}/${VIF_KEY.backendId}`, '0');
  store.write(0, `${fe}/${VIF_KEY.mac}`, '00:16:3e:00:00:04');
  store.write(0, `${fe}/${VIF_KEY.state}`, '1');
  for (const [k, v] of Object.entries({ ...LINUX_BACKEND, ...o.backend })) if (v !== null) store.write(0, `${be}/${k}`, v);
  const ports = { allocated: [] as number[], sent: [] as number[], closed: [] as number[] };
  const evtchn = {
    allocUnbound: () => {
      if (o.portsFailFrom !== undefined && ports.allocated.length >= o.portsFailFrom) throw new Error('ENOSPC');
      const p = 9 + ports.allocated.length;
      ports.allocated.push(p);
      return p;
    },
    bindHandler: () => {},
    send: (p: number) => (ports.sent.push(p), true),
    close: (p: number) => void ports.closed.push(p),
  };
  const mtu = o.mtu ?? 1500;
  const nf = new Netfront({
    domid: DOMID,
    handle: 0,
    mem,
    frames,
    gnttab,
    grefs,
    evtchn,
    xs: storeClient(store, 0),
    mtu,
    params: o.params,
    log: (m) => log.push(m),
  });
  const mtus: number[] = [];
  const carrier: boolean[] = [];
  nf.onMtu = (m) => mtus.push(m);
  nf.onCarrier = (up) => carrier.push(up);
  nf.start();
  const backendState = (s: XenbusState) => store.write(0, `${be}/${VIF_KEY.state}`, String(s));
  backendState(XenbusState.InitWait);
  const keys = () => Object.fromEntries((store.directory(0, fe) ?? []).map((k) => [k, store.read(0, `${fe}/${k}`)]));
  return { nf, store, log, ports, mtus, carrier, backendState, keys };
}

describe('netfront writes only what it does (talk_to_netback)', () => {
  it('request-rx-copy, rx-notify, sg and TCPv4 GSO on, IPv4 checksum offload on (no-csum-offload left out, as Linux), TCPv6 GSO and IPv6 checksums off, no multi-queue, in one go with the rings', () => {
    const r = rig();
    const k = r.keys();
    expect(r.nf.state).toBe(XenbusState.Connected);
    expect(k).toMatchObject({
      'request-rx-copy': '1',
      'feature-rx-notify': '1',
      'feature-sg': '1',
      'feature-gso-tcpv4': '1',
      'feature-gso-tcpv6': '0',
      'feature-ipv6-csum-offload': '0',
    });
    expect(Object.keys(k)).not.toContain('feature-no-csum-offload');
    expect(Object.keys(k)).not.toContain('multi-queue-num-queues');
    expect(Object.keys(k)).not.toContain('ctrl-ring-ref');
  });

  it("checksum offload off (the vif's offloads.csum false): feature-no-csum-offload = 1", () => {
    const r = rig({ params: { csum: false } });
    expect(r.keys()['feature-no-csum-offload']).toBe('1');
  });

  it('sg off (another frontend): feature-sg left out', () => {
    const r = rig({ params: { sg: false } });
    expect(r.keys()['feature-sg']).toBeUndefined();
  });
});

describe('a backend without feature-rx-copy (xennet_connect)', () => {
  it.each([
    ['absent', null],
    ['0', '0'],
    ['not a number', 'yes'],
  ])('feature-rx-copy %s: netfront stays Initialising, sets nothing up, says why once', (_what, v) => {
    const r = rig({ backend: { 'feature-rx-copy': v } });
    expect(r.nf.state).toBe(XenbusState.Initialising);
    expect(r.ports.allocated).toEqual([]);
    expect(r.keys()[VIF_KEY.txRingRef]).toBeUndefined();
    r.backendState(XenbusState.Initialising);
    r.backendState(XenbusState.InitWait);
    expect(r.log.filter((l) => l.includes('backend does not support copying receive path'))).toHaveLength(1);
    expect(r.nf.txReserve(100)).toBe(-1);
  });
});

describe('split event channels (setup_netfront)', () => {
  it('offered: a TX and an RX port, written as event-channel-tx/-rx; TX requests notified on one, RX buffers on the other', () => {
    const r = rig();
    expect(r.keys()).toMatchObject({ 'event-channel-tx': '9', 'event-channel-rx': '10' });
    expect(r.keys()['event-channel']).toBeUndefined();
    expect(r.ports.sent).toEqual([10]); // the RX buffers posted at connect
    r.backendState(XenbusState.Connected);
    expect(r.nf.txReserve(100)).toBeGreaterThanOrEqual(0);
    r.nf.txCommit(100);
    r.nf.flush();
    expect(r.ports.sent).toEqual([10, 9]);
    expect(r.nf.stats().splitEventChannels).toBe(true);
    r.backendState(XenbusState.Closing);
    expect(r.ports.closed.sort()).toEqual([10, 9].sort());
  });

  it.each([
    ['not offered', { backend: { 'feature-split-event-channels': null } }],
    ['offered as 0', { backend: { 'feature-split-event-channels': '0' } }],
    ['offered, but this frontend predates them', { params: { splitEventChannels: false } }],
    ['offered, but the second port cannot be had', { portsFailFrom: 1 }],
  ])('%s: one event-channel for both directions', (_what, o: RigOptions) => {
    const r = rig(o);
    expect(r.keys()['event-channel']).toBe('9');
    expect(r.keys()['event-channel-tx']).toBeUndefined();
    r.backendState(XenbusState.Connected);
    r.nf.txReserve(100);
    r.nf.txCommit(100);
    r.nf.flush();
    expect(r.ports.sent).toEqual([9, 9]);
  });
});

describe('scatter-gather and the MTU (xennet_fix_features, xennet_set_features)', () => {
  it('a backend without feature-sg: an MTU of 9000 is cut to 1500, said, and the stack told', () => {
    const r = rig({ mtu: 9000, backend: { 'feature-sg': null } });
    expect(r.nf.mtu).toBe(1500);
    expect(r.mtus).toEqual([1500]);
    expect(r.log).toContainEqual(expect.stringMatching(/Reducing MTU because no SG offload \(9000 -> 1500\)/));
    expect(r.nf.stats().mtu).toBe(1500);
  });

  it('a backend with feature-sg: the MTU stays 9000', () => {
    const r = rig({ mtu: 9000 });
    expect(r.nf.mtu).toBe(9000);
    expect(r.mtus).toEqual([]);
  });

  it('this frontend without scatter-gather: cut to 1500 whatever the backend offers', () => {
    const r = rig({ mtu: 9000, params: { sg: false } });
    expect(r.mtus).toEqual([1500]);
  });

  it('an MTU of 1500 or less needs no cut', () => {
    const r = rig({ mtu: 1400, backend: { 'feature-sg': '0' } });
    expect(r.nf.mtu).toBe(1400);
    expect(r.mtus).toEqual([]);
  });
});

describe('backend states netfront ignores (netback_changed)', () => {
  it.each([XenbusState.Initialising, XenbusState.Initialised, XenbusState.Reconfiguring, XenbusState.Reconfigured])(
    'backend in state %i after Connected: the carrier stays up, frames still go',
    (s) => {
      const r = rig();
      r.backendState(XenbusState.Connected);
      expect(r.carrier).toEqual([true]);
      r.backendState(s);
      expect(r.nf.state).toBe(XenbusState.Connected);
      expect(r.nf.connected).toBe(true);
      expect(r.nf.txReserve(100)).toBeGreaterThanOrEqual(0);
      expect(r.carrier).toEqual([true]);
      r.backendState(XenbusState.Connected);
      expect(r.carrier).toEqual([true, true]);
      r.backendState(XenbusState.Closing);
      expect(r.carrier).toEqual([true, true, false]);
      expect(r.nf.state).toBe(XenbusState.Closed);
    },
  );
});
