/**
 * Checksum offload through netback, in process (Linux xen-netback's
 * checksum_setup on TX, xenvif_rx_complete's flags on RX, the uplink's
 * skb_checksum_help): a guest frame flagged NETTXF_csum_blank crosses the
 * bridge partial, and one that no checksum can be completed over is answered
 * XEN_NETIF_RSP_ERROR and counted, one test per malformed input; a partial
 * frame reaches a guest flagged csum_blank | data_validated, or completed on
 * a copy for a guest that wrote feature-no-csum-offload; the uplink hands it
 * to a NIC that completes it, or completes a copy itself.
 */
import { describe, expect, it } from 'vitest';
import {
  NETIF_RSP_ERROR,
  NETIF_RSP_OKAY,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETTXF_csum_blank,
  NETTXF_data_validated,
  type Tap,
} from '@xsim/hypervisor';
import { ETH_HLEN, ETH_P_IP, computeL4Checksum, readU16, verifyL4Checksum, writeIpUdp, writePartialL4Checksum, writeU16 } from '@xsim/netstack';
import { CSUM_NONE, CSUM_PARTIAL, CSUM_UNNECESSARY, UplinkPort, type CsumState, type UplinkDriver } from '@xsim/netback';
import { NetbackHarness } from '../../../test/fixtures/netback-harness.ts';
import { postBuffers, publish, rxResponses, txResponses } from './rig.ts';

const VIF_MAC = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x07];
const PEER_MAC = [0x00, 0x16, 0x3e, 0x11, 0x22, 0x33];

/** An Ethernet + IPv4 + UDP frame of `payload` octets into `b` at `at`, its checksum partial; its length. */
function udpFrame(b: Uint8Array, at: number, payload: number, dst = PEER_MAC, src = VIF_MAC): number {
  b.set([...dst, ...src], at);
  writeU16(b, at + 12, ETH_P_IP);
  writeIpUdp(b, at + ETH_HLEN, 0x0a000007, 0x0a000008, 1, 5000, 6000, payload);
  for (let i = 0; i < payload; i++) b[at + 42 + i] = (i * 13) & 0xff;
  writePartialL4Checksum(b, at, 42 + payload);
  return 42 + payload;
}

/** A port that records what the bridge hands it, with the checksum state. */
function probe(h: NetbackHarness) {
  const seen: { bytes: Uint8Array; csum: CsumState }[] = [];
  h.bridge.addPort({ name: 'probe', deliver: (addr, len, _skb, csum) => seen.push({ bytes: h.dom0Mem.u8.slice(addr, addr + len), csum }) });
  return seen;
}

describe('netback TX: checksum_setup', () => {
  it('csum_blank: the frame crosses the bridge partial, answered OKAY; data_validated alone: known good; none: nothing known', () => {
    const h = new NetbackHarness();
    const seen = probe(h);
    const flags = [NETTXF_csum_blank | NETTXF_data_validated, NETTXF_data_validated, 0];
    flags.forEach((f, i) => publish(h, [{ gref: h.dataRefs[i], flags: f, size: udpFrame(h.dataPage(i), 0, 100) }]));
    h.vif.poll();
    expect(txResponses(h).map((r) => r.status)).toEqual([NETIF_RSP_OKAY, NETIF_RSP_OKAY, NETIF_RSP_OKAY]);
    expect(seen.map((s) => s.csum)).toEqual([CSUM_PARTIAL, CSUM_UNNECESSARY, CSUM_NONE]);
    // Still partial: completing it gives the checksum from scratch.
    expect(readU16(seen[0].bytes, 40)).not.toBe(computeL4Checksum(seen[0].bytes, 0, seen[0].bytes.length));
    expect(h.vif.c).toMatchObject({ txCsumPartial: 1, txErrCsumSetup: 0, txPackets: 3 });
  });

  it.each([
    ['not TCP or UDP (ICMP)', (p: Uint8Array) => (p[ETH_HLEN + 9] = 1)],
    ['not IPv4 (an ARP ethertype)', (p: Uint8Array) => writeU16(p, 12, 0x0806)],
    ['a fragment', (p: Uint8Array) => writeU16(p, ETH_HLEN + 6, 0x2000)],
    ['a later fragment', (p: Uint8Array) => writeU16(p, ETH_HLEN + 6, 0x00b9)],
    ['an IHL under 5', (p: Uint8Array) => (p[ETH_HLEN] = 0x44)],
    ['IP options past the frame', (p: Uint8Array) => (p[ETH_HLEN] = 0x4f)],
    ['a total length past the frame', (p: Uint8Array) => writeU16(p, ETH_HLEN + 2, 1400)],
    ['a UDP header cut short', (p: Uint8Array) => writeU16(p, ETH_HLEN + 2, 20 + 6)],
  ])('csum_blank on a frame with %s: answered XEN_NETIF_RSP_ERROR, counted txErrCsumSetup, the vif stays', (_what, spoil) => {
    const h = new NetbackHarness();
    const seen = probe(h);
    const len = udpFrame(h.dataPage(0), 0, 20);
    spoil(h.dataPage(0));
    publish(h, [{ gref: h.dataRefs[0], flags: NETTXF_csum_blank | NETTXF_data_validated, size: len }]);
    publish(h, [{ gref: h.dataRefs[1], flags: NETTXF_csum_blank | NETTXF_data_validated, size: udpFrame(h.dataPage(1), 0, 30) }]);
    h.vif.poll();
    expect(txResponses(h).map((r) => r.status)).toEqual([NETIF_RSP_ERROR, NETIF_RSP_OKAY]);
    expect(h.vif.c).toMatchObject({ txErrCsumSetup: 1, txPackets: 1 });
    expect(seen).toHaveLength(1);
    expect(h.vif.connected).toBe(true);
  });

  it('IP options on a csum_blank frame are fine: forwarded partial', () => {
    const h = new NetbackHarness();
    const seen = probe(h);
    const p = h.dataPage(0);
    const len = udpFrame(p, 0, 40);
    p.copyWithin(ETH_HLEN + 28, ETH_HLEN + 20, len);
    p.fill(1, ETH_HLEN + 20, ETH_HLEN + 28);
    p[ETH_HLEN] = 0x47;
    writeU16(p, ETH_HLEN + 2, 28 + 48);
    writePartialL4Checksum(p, 0, len + 8);
    publish(h, [{ gref: h.dataRefs[0], flags: NETTXF_csum_blank, size: len + 8 }]);
    h.vif.poll();
    expect(seen.map((s) => s.csum)).toEqual([CSUM_PARTIAL]);
    expect(h.vif.c.txErrCsumSetup).toBe(0);
  });
});

/** A partial frame in a dom0 skb for the vif's guest, handed over as the bridge hands one. */
function toGuest(h: NetbackHarness, csum: CsumState): { addr: number; len: number; skb: number } {
  const skb = h.skbs.alloc();
  const addr = h.skbs.addr(skb);
  const len = udpFrame(h.dom0Mem.u8, addr, 300, VIF_MAC, PEER_MAC);
  h.vif.deliver(addr, len, skb, csum);
  return { addr, len, skb };
}

describe('netback RX: NETRXF_* flags', () => {
  it('partial: csum_blank | data_validated; known good: data_validated; nothing known: no flag', () => {
    const h = new NetbackHarness();
    postBuffers(h, 8);
    toGuest(h, CSUM_PARTIAL);
    toGuest(h, CSUM_UNNECESSARY);
    toGuest(h, CSUM_NONE);
    h.vif.poll();
    expect(rxResponses(h).map((r) => r.flags)).toEqual([NETRXF_csum_blank | NETRXF_data_validated, NETRXF_data_validated, 0]);
    expect(h.vif.c).toMatchObject({ rxCsumBlank: 1, rxCsumValidated: 1, rxCsumCompletedSw: 0, rxPackets: 3 });
  });

  it('a guest that wrote feature-no-csum-offload = 1 gets the partial frame completed on a copy, unflagged; the skb stays partial', () => {
    const h = new NetbackHarness({ frontend: { 'feature-no-csum-offload': '1' } });
    postBuffers(h, 8);
    const f = toGuest(h, CSUM_PARTIAL);
    const partial = h.dom0Mem.u8.slice(f.addr, f.addr + f.len);
    h.vif.poll();
    expect(rxResponses(h)).toEqual([{ status: f.len, flags: 0 }]);
    expect(h.vif.c).toMatchObject({ rxCsumCompletedSw: 1, rxCsumBlank: 0, rxPackets: 1 });
    // What the guest got is complete; dom0's skb, which other ports may hold, is untouched.
    expect(verifyL4Checksum(h.guestMem.page(400), 0, f.len)).toBe(true);
    expect(h.dom0Mem.u8.slice(f.addr, f.addr + f.len)).toEqual(partial);
  });

  it('for that guest, a partial frame that is no IPv4 TCP or UDP: dropped, counted rxDropCsum', () => {
    const h = new NetbackHarness({ frontend: { 'feature-no-csum-offload': '1' } });
    postBuffers(h, 8);
    const skb = h.skbs.alloc();
    const addr = h.skbs.addr(skb);
    const len = udpFrame(h.dom0Mem.u8, addr, 30, VIF_MAC, PEER_MAC);
    h.dom0Mem.u8[addr + ETH_HLEN + 9] = 1;
    h.vif.deliver(addr, len, skb, CSUM_PARTIAL);
    h.vif.poll();
    expect(h.vif.c).toMatchObject({ rxDropCsum: 1, rxPackets: 0 });
  });
});

/** A primary driver that records what it was handed, with or without TX checksum offload. */
function fakeDriver(csumOffload: boolean, ram: Uint8Array) {
  const sent: { bytes: Uint8Array; csum: boolean }[] = [];
  const driver: UplinkDriver = {
    csumOffload,
    transmit: (addr, len, _cookie, csum) => (sent.push({ bytes: ram.slice(addr, addr + len), csum: csum === true }), true),
    poll: () => 0,
  };
  return { driver, sent };
}

const offTap = { on: false } as Tap;

describe('the uplink: nothing leaves partial', () => {
  it('a NIC with TX checksum offload gets the partial frame flagged, as it is (txCsumOffloaded)', () => {
    const h = new NetbackHarness();
    const { driver, sent } = fakeDriver(true, h.dom0Mem.u8);
    const up = new UplinkPort(driver, h.skbs, h.bridge, offTap);
    const skb = h.skbs.alloc();
    const addr = h.skbs.addr(skb);
    const len = udpFrame(h.dom0Mem.u8, addr, 200);
    up.deliver(addr, len, skb, CSUM_PARTIAL);
    expect(sent).toHaveLength(1);
    expect(sent[0].csum).toBe(true);
    expect(up.stats).toMatchObject({ txCsumOffloaded: 1, csumCompletedSw: 0 });
  });

  it('without it, a copy is completed in software (csumCompletedSw) and sent unflagged; the skb is untouched', () => {
    const h = new NetbackHarness();
    const { driver, sent } = fakeDriver(false, h.dom0Mem.u8);
    const up = new UplinkPort(driver, h.skbs, h.bridge, offTap);
    const skb = h.skbs.alloc();
    const addr = h.skbs.addr(skb);
    const len = udpFrame(h.dom0Mem.u8, addr, 201);
    const before = h.dom0Mem.u8.slice(addr, addr + len);
    up.deliver(addr, len, skb, CSUM_PARTIAL);
    expect(sent).toHaveLength(1);
    expect(sent[0].csum).toBe(false);
    expect(verifyL4Checksum(sent[0].bytes, 0, len)).toBe(true);
    expect(h.dom0Mem.u8.slice(addr, addr + len)).toEqual(before);
    expect(up.stats).toMatchObject({ csumCompletedSw: 1, txCsumOffloaded: 0, txPackets: 1 });
  });

  it('without it, a partial frame that is no IPv4 TCP or UDP is dropped, counted txDropCsum', () => {
    const h = new NetbackHarness();
    const { driver, sent } = fakeDriver(false, h.dom0Mem.u8);
    const up = new UplinkPort(driver, h.skbs, h.bridge, offTap);
    const skb = h.skbs.alloc();
    const addr = h.skbs.addr(skb);
    const len = udpFrame(h.dom0Mem.u8, addr, 20);
    writeU16(h.dom0Mem.u8, addr + ETH_HLEN + 6, 0x2000);
    up.deliver(addr, len, skb, CSUM_PARTIAL);
    expect(sent).toHaveLength(0);
    expect(up.stats).toMatchObject({ txDropCsum: 1, txPackets: 0 });
  });
});
