/**
 * netback's side of the feature negotiation, in process against a scripted
 * frontend (Linux xen-netback's netback_probe, read_xenbus_vif_flags,
 * connect_data_rings, frontend_changed): what it advertises, what it reads
 * of the frontend and acts on, and what it refuses. One test per malformed
 * or missing key.
 */
import { describe, expect, it } from 'vitest';
import { VIF_KEY, XenbusState } from '@xsim/hypervisor';
import { NO_SG_MAX_FRAME } from '@xsim/netback';
import { NetbackHarness } from '../../../test/fixtures/netback-harness.ts';
import { deliverFrame, frameIn, postBuffers, publish, rxResponses } from './rig.ts';

const SPLIT = { [VIF_KEY.eventChannel]: null, [VIF_KEY.eventChannelTx]: '5', [VIF_KEY.eventChannelRx]: '6' };

function expectRefused(h: NetbackHarness, reason: RegExp): void {
  expect(h.vif.connected).toBe(false);
  expect(h.vif.state).toBe(XenbusState.Closing);
  expect(h.store.read(0, `${h.be}/${VIF_KEY.state}`)).toBe(String(XenbusState.Closing));
  expect(h.vif.fatalReason).toMatch(reason);
  expect(h.log.filter((l) => l.includes('misbehaving'))).toHaveLength(1);
}

describe('netback advertises only what it does (netback_probe)', () => {
  it('writes feature-sg, rx-copy, split event channels, multicast control, the control ring and TCPv4 GSO on, IPv6 GSO and checksum offload off, and max_queues', () => {
    const h = new NetbackHarness();
    const keys = h.store.directory(0, h.be) ?? [];
    const feature = (k: string) => h.store.read(0, `${h.be}/${k}`);
    expect(Object.fromEntries(keys.filter((k) => k.startsWith('feature-')).map((k) => [k, feature(k)]))).toEqual({
      'feature-sg': '1',
      'feature-gso-tcpv4': '1',
      'feature-gso-tcpv6': '0',
      'feature-ipv6-csum-offload': '0',
      'feature-rx-copy': '1',
      'feature-rx-flip': '0',
      'feature-split-event-channels': '1',
      'feature-multicast-control': '1',
      'feature-dynamic-multicast-control': '1',
      'feature-ctrl-ring': '1',
    });
    expect(h.store.read(0, `${h.be}/multi-queue-max-queues`)).toBe('4');
    expect(new NetbackHarness({ params: { maxQueues: 8 } }).store.read(0, `${h.be}/multi-queue-max-queues`)).toBe('8');
  });

  it('separate_tx_rx_irq off: feature-split-event-channels 0; sg off: feature-sg 0', () => {
    const h = new NetbackHarness({ params: { separateTxRxIrq: false, sg: false } });
    expect(h.store.read(0, `${h.be}/feature-split-event-channels`)).toBe('0');
    expect(h.store.read(0, `${h.be}/feature-sg`)).toBe('0');
  });
});

describe('netback reads what the frontend advertised (read_xenbus_vif_flags)', () => {
  it("a Linux frontend's keys: rx-notify and sg on, no GSO, IPv4 checksum offload assumed on", () => {
    const h = new NetbackHarness();
    expect(h.vif.flags).toEqual({ rxNotify: true, canSg: true, gsoTcpv4: false, gsoTcpv6: false, ipCsum: true, ipv6Csum: false });
  });

  it('values as xenbus_scanf("%u") reads them: "1x" is 1, "0" and a word are 0, feature-no-csum-offload 1 turns IPv4 checksums off', () => {
    const h = new NetbackHarness({ frontend: { 'feature-sg': '1x', 'feature-rx-notify': 'yes', 'feature-gso-tcpv4': '0', 'feature-no-csum-offload': '1' } });
    expect(h.vif.flags).toMatchObject({ canSg: true, rxNotify: false, gsoTcpv4: false, ipCsum: false });
  });

  it.each([
    ['absent', null, /request-rx-copy.*EOPNOTSUPP/],
    ['0', '0', /request-rx-copy.*EOPNOTSUPP/],
    ['not a number', 'yes', /reading .*request-rx-copy: "yes" is not a number/],
  ])('request-rx-copy %s: the frontend is refused (it wants page flipping), nothing is mapped', (_what, value, reason) => {
    const h = new NetbackHarness({ refused: true, frontend: { [VIF_KEY.requestRxCopy]: value } });
    expectRefused(h, reason);
    expect(h.bound).toEqual([]);
  });

  it('without feature-sg the frontend gets no frame over ETH_DATA_LEN + header + VLAN tag: counted, not sent', () => {
    const h = new NetbackHarness({ mtu: 9000, frontend: { 'feature-sg': null } });
    expect(h.vif.canSg).toBe(false);
    postBuffers(h, 8);
    deliverFrame(h, NO_SG_MAX_FRAME);
    deliverFrame(h, NO_SG_MAX_FRAME + 1);
    deliverFrame(h, 9018);
    h.vif.poll();
    expect(rxResponses(h).map((r) => r.status)).toEqual([NO_SG_MAX_FRAME]);
    expect(h.vif.c.rxDropNoSg).toBe(2);
    expect(h.vif.c.rxPackets).toBe(1);
  });

  it('with feature-sg a jumbo frame goes over several RX slots', () => {
    const h = new NetbackHarness({ mtu: 9000 });
    postBuffers(h, 8);
    deliverFrame(h, 9018);
    h.vif.poll();
    expect(rxResponses(h).map((r) => r.status)).toEqual([4096, 4096, 826]);
    expect(h.vif.c.rxDropNoSg).toBe(0);
  });
});

describe('split event channels (connect_data_rings)', () => {
  it('event-channel-tx and -rx: two ports bound, TX completions on one, RX on the other', () => {
    const h = new NetbackHarness({ frontend: SPLIT });
    expect(h.bound).toEqual([
      { remote: 5, local: 3 },
      { remote: 6, local: 4 },
    ]);
    frameIn(h, 0, 200);
    publish(h, [{ gref: h.dataRefs[0], size: 200 }]);
    h.vif.poll();
    expect(h.notifies.ports).toEqual([3]);
    postBuffers(h, 2);
    deliverFrame(h, 300);
    h.vif.poll();
    expect(h.notifies.ports).toEqual([3, 4]);
    expect(h.vif.stats().splitEventChannels).toBe(true);
    h.vif.remove();
    expect(h.closed.sort()).toEqual([3, 4]);
  });

  it('a legacy frontend (event-channel only): one port for both directions', () => {
    const h = new NetbackHarness();
    expect(h.bound).toEqual([{ remote: 5, local: 3 }]);
    frameIn(h, 0, 200);
    publish(h, [{ gref: h.dataRefs[0], size: 200 }]);
    postBuffers(h, 2);
    deliverFrame(h, 300);
    h.vif.poll();
    expect(h.notifies.ports).toEqual([3, 3]);
    expect(h.vif.stats().splitEventChannels).toBe(false);
  });

  it('a bad event-channel-tx with no event-channel to fall back on: refused, naming the keys', () => {
    const h = new NetbackHarness({ refused: true, frontend: { ...SPLIT, [VIF_KEY.eventChannelTx]: 'tx' } });
    expectRefused(h, /event-channel\(-tx\/rx\): event-channel-tx "tx", event-channel-rx "6", event-channel null/);
    expect(h.bound).toEqual([]);
  });

  it('event-channel-rx missing, event-channel there: the single channel, as Linux falls back', () => {
    const h = new NetbackHarness({ frontend: { [VIF_KEY.eventChannelTx]: '7' } });
    expect(h.vif.connected).toBe(true);
    expect(h.bound).toEqual([{ remote: 5, local: 3 }]);
  });

  it('an RX port that cannot be bound: refused, and the TX port bound before it is closed again', () => {
    const h = new NetbackHarness({ refused: true, frontend: { ...SPLIT, [VIF_KEY.eventChannelRx]: '666' } });
    expectRefused(h, /cannot bind event-channel-rx port 666/);
    expect(h.closed).toEqual([3]);
  });

  it.each([
    ['tx-ring-ref', { [VIF_KEY.txRingRef]: 'ring' }],
    ['rx-ring-ref', { [VIF_KEY.rxRingRef]: null }],
  ])('a bad %s: refused', (_k, frontend) => {
    const h = new NetbackHarness({ refused: true, frontend });
    expectRefused(h, /reading .*ring-ref/);
  });
});

describe('frontend states (frontend_changed)', () => {
  it('Reconfiguring (Linux 5.9+, a frontend changing its XDP headroom): answered Reconfigured in the node alone; the vif stays connected, and the node stays so when the frontend is Connected again', () => {
    const h = new NetbackHarness();
    h.store.write(0, `${h.fe}/xdp-headroom`, '256');
    h.store.write(0, `${h.fe}/${VIF_KEY.state}`, String(XenbusState.Reconfiguring));
    expect(h.store.read(0, `${h.be}/${VIF_KEY.state}`)).toBe(String(XenbusState.Reconfigured));
    expect([h.vif.state, h.vif.connected, h.vif.fatalReason]).toEqual([XenbusState.Connected, true, '']);
    h.store.write(0, `${h.fe}/${VIF_KEY.state}`, String(XenbusState.Connected));
    expect(h.store.read(0, `${h.be}/${VIF_KEY.state}`)).toBe(String(XenbusState.Reconfigured));
    frameIn(h, 0, 200);
    publish(h, [{ gref: h.dataRefs[0], size: 200 }]);
    h.vif.poll();
    expect(h.sink.frames).toHaveLength(1);
  });

  it.each([
    [XenbusState.InitWait, 'InitWait'],
    [XenbusState.Reconfigured, 'Reconfigured'],
  ])('frontend in state %i (%s): xenbus_dev_fatal, the backend goes to Closing', (state, name) => {
    const h = new NetbackHarness();
    h.store.write(0, `${h.fe}/${VIF_KEY.state}`, String(state));
    expectRefused(h, new RegExp(`saw state ${state} \\(${name}\\) at frontend`));
  });

  it('frontend Unknown (its state node gone): the backend closes, nothing fatal', () => {
    const h = new NetbackHarness();
    h.store.rm(0, `${h.fe}/${VIF_KEY.state}`);
    expect(h.vif.state).toBe(XenbusState.Closed);
    expect(h.vif.fatalReason).toBe('');
  });
});
