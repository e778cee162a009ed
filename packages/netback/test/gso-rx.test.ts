/**
 * TCPv4 GSO frames toward guests (Linux xen-netback's rx.c for a vif whose
 * frontend wrote feature-gso-tcpv4, and the bridge segmenting in software
 * only for a port that cannot take a GSO frame whole): a guest's TSO frame
 * goes whole to a port that takes it, segmented to one that does not, and
 * a vif with the feature writes it into the guest's buffers as its first
 * response (extra_info, more_data, csum_blank|data_validated), a GSO
 * extra-info slot (gso.size = MSS, TCPV4), then the rest of its data.
 */
import { describe, expect, it } from 'vitest';
import {
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_extra_info,
  NETRXF_more_data,
  PAGE_SIZE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_GSO_TYPE_TCPV4,
  newExtraInfo,
  readExtraInfo,
} from '@xsim/hypervisor';
import { CSUM_PARTIAL, type BridgePort, type GsoFrame } from '@xsim/netback';
import { NetbackHarness } from '../../../test/fixtures/netback-harness.ts';
import { PEER_MAC, sendGso, tcpFrame } from './gso-rig.ts';
import { postBuffers, rxResponses } from './rig.ts';

const GSO_FRONTEND = { 'feature-gso-tcpv4': '1' };

/** `frame` in a chain of the harness's skbs, as TX leaves a GSO frame copied whole. */
function chain(h: NetbackHarness, frame: Uint8Array, mss: number): GsoFrame {
  const skbs: number[] = [];
  for (let at = 0; at < frame.length; at += h.skbs.slotSize) {
    const skb = h.skbs.alloc();
    const n = Math.min(h.skbs.slotSize, frame.length - at);
    h.dom0Mem.u8.set(frame.subarray(at, at + n), h.skbs.addr(skb));
    h.skbs.len[skb] = n;
    skbs.push(skb);
  }
  return { skbs, len: frame.length, mss, csum: CSUM_PARTIAL };
}

/** A port at PEER_MAC that takes GSO frames while `takes()` says so; what reaches it, whole or not. */
function gsoProbe(h: NetbackHarness, takes: () => boolean) {
  const whole: { bytes: Uint8Array; mss: number }[] = [];
  const frames: number[] = [];
  const port: BridgePort = {
    name: 'probe',
    deliver: (_addr, len) => frames.push(len),
    takesGso: takes,
    deliverGso: (f) => {
      const bytes = new Uint8Array(f.len);
      f.skbs.forEach((x, k) => bytes.set(h.dom0Mem.u8.subarray(h.skbs.addr(x), h.skbs.addr(x) + h.skbs.len[x]), k * h.skbs.slotSize));
      whole.push({ bytes, mss: f.mss });
    },
  };
  const id = h.bridge.addPort(port);
  h.bridge.addStatic(
    PEER_MAC.reduce((a, b) => a * 256 + b, 0),
    id,
  );
  return { whole, frames };
}

describe('netback: GSO frames from a guest go whole where they can', () => {
  it('to a port that takes GSO frames: one frame, whole, its MSS; nothing segmented, every skb back', () => {
    const h = new NetbackHarness();
    const free = h.skbs.available;
    const p = gsoProbe(h, () => true);
    const frame = tcpFrame(20000 - 54);
    sendGso(h, frame, 1448);
    h.vif.poll();
    expect(p.whole).toHaveLength(1);
    expect(p.whole[0].bytes).toEqual(frame);
    expect(p.whole[0].mss).toBe(1448);
    expect(p.frames).toEqual([]);
    expect(h.vif.c).toMatchObject({ txGsoFrames: 1, txGsoWhole: 1, txGsoSegments: 0, txPackets: 1 });
    expect(h.skbs.available).toBe(free);
  });

  it('to a port that does not: segmented in software as before (14 segments at MSS 1448)', () => {
    const h = new NetbackHarness();
    const p = gsoProbe(h, () => false);
    sendGso(h, tcpFrame(20000 - 54), 1448);
    h.vif.poll();
    expect(p.whole).toHaveLength(0);
    expect(p.frames).toHaveLength(14);
    expect(h.vif.c).toMatchObject({ txGsoFrames: 1, txGsoWhole: 0, txGsoSegments: 14 });
  });

  it('to a port that took GSO at the copy and no longer does at the forward: segmented from the chain, every skb back', () => {
    const h = new NetbackHarness();
    const free = h.skbs.available;
    let asked = 0;
    const p = gsoProbe(h, () => asked++ === 0);
    sendGso(h, tcpFrame(20000 - 54), 1448);
    h.vif.poll();
    expect(p.whole).toHaveLength(0);
    expect(p.frames).toHaveLength(14);
    expect(h.vif.c).toMatchObject({ txGsoFrames: 1, txGsoWhole: 0, txGsoSegments: 14, txDropGsoLate: 0 });
    expect(h.skbs.available).toBe(free);
  });
});

describe('netback RX: a GSO frame into a guest with feature-gso-tcpv4', () => {
  it('the vif takes GSO only with the feature, feature-sg and checksum offload', () => {
    expect(new NetbackHarness({ frontend: GSO_FRONTEND }).vif.takesGso()).toBe(true);
    expect(new NetbackHarness().vif.takesGso()).toBe(false);
    expect(new NetbackHarness({ frontend: { ...GSO_FRONTEND, 'feature-no-csum-offload': '1' } }).vif.takesGso()).toBe(false);
    expect(new NetbackHarness({ frontend: { ...GSO_FRONTEND, 'feature-sg': '0' } }).vif.takesGso()).toBe(false);
  });

  it('a 20000-octet frame queued, then copied: first response, GSO slot, 4 more data slots; the guest’s pages hold the frame', () => {
    const h = new NetbackHarness({ frontend: GSO_FRONTEND });
    const free = h.skbs.available;
    const frame = tcpFrame(20000 - 54);
    const f = chain(h, frame, 1448);
    h.vif.deliverGso(f);
    // Queued (no buffers posted yet): it holds a reference on each skb of the chain.
    f.skbs.forEach((x) => h.skbs.put(x));
    expect(h.vif.rxQueueLength()).toBe(1);
    postBuffers(h, 8);
    h.vif.poll();
    const rsp = rxResponses(h);
    expect(rsp).toHaveLength(6);
    expect(rsp[0]).toEqual({ status: PAGE_SIZE, flags: NETRXF_csum_blank | NETRXF_data_validated | NETRXF_extra_info | NETRXF_more_data });
    const e = readExtraInfo(h.rx.dv, h.rx.slotOffset(1), newExtraInfo());
    expect({ type: e.type, flags: e.flags, size: e.gsoSize, gsoType: e.gsoType }).toEqual({
      type: XEN_NETIF_EXTRA_TYPE_GSO,
      flags: 0,
      size: 1448,
      gsoType: XEN_NETIF_GSO_TYPE_TCPV4,
    });
    expect(rsp.slice(2)).toEqual([
      { status: PAGE_SIZE, flags: NETRXF_more_data },
      { status: PAGE_SIZE, flags: NETRXF_more_data },
      { status: PAGE_SIZE, flags: NETRXF_more_data },
      { status: 20000 - 4 * PAGE_SIZE, flags: 0 },
    ]);
    // postBuffers grants guest frame 400 + i at request i; request 1's buffer went back unused (the extra slot).
    const got = new Uint8Array(20000);
    [0, 2, 3, 4, 5].forEach((slot, k) => {
      const n = Math.min(PAGE_SIZE, 20000 - k * PAGE_SIZE);
      got.set(h.guestMem.page(400 + slot).subarray(0, n), k * PAGE_SIZE);
    });
    expect(got).toEqual(frame);
    expect(h.vif.c).toMatchObject({ rxGsoFrames: 1, rxPackets: 1, rxBytes: 20000, rxCsumBlank: 1 });
    expect(h.skbs.available).toBe(free);
  });

  it('a frame that would not fit the buffers posted waits for more (it takes one more slot than its pages)', () => {
    const h = new NetbackHarness({ frontend: GSO_FRONTEND });
    const f = chain(h, tcpFrame(8192 - 54), 1448);
    postBuffers(h, 2);
    h.vif.deliverGso(f);
    f.skbs.forEach((x) => h.skbs.put(x));
    h.vif.poll();
    expect(rxResponses(h)).toHaveLength(0);
    postBuffers(h, 1);
    h.vif.poll();
    expect(rxResponses(h).map((r) => r.status)).toEqual([PAGE_SIZE, expect.any(Number), PAGE_SIZE]);
    expect(h.vif.c.rxGsoFrames).toBe(1);
  });

  it('queued GSO frames are bounded by octets (512 KiB, XENVIF_RX_QUEUE_BYTES), not only by frames: the 9th of 60000 octets is dropped, counted', () => {
    const h = new NetbackHarness({ frontend: GSO_FRONTEND, skbs: 512 });
    const frame = tcpFrame(60000 - 54);
    for (let i = 0; i < 9; i++) {
      const f = chain(h, frame, 1448);
      h.vif.deliverGso(f);
      f.skbs.forEach((x) => h.skbs.put(x));
    }
    expect(h.vif.rxQueueLength()).toBe(8);
    expect(h.vif.c.rxDropQueueFull).toBe(1);
    // Buffers for all of them, a few at a time: each is copied whole once there are 16 for it, the queue drains.
    for (let i = 0; i < 8; i++) {
      postBuffers(h, 16);
      h.vif.poll();
    }
    expect(h.vif.c.rxGsoFrames).toBe(8);
    expect(h.vif.rxQueueLength()).toBe(0);
    expect(h.skbs.available).toBe(512);
  });

  it('a vif going away drops what is queued, counted, and gives every skb of the chain back', () => {
    const h = new NetbackHarness({ frontend: GSO_FRONTEND });
    const free = h.skbs.available;
    const f = chain(h, tcpFrame(30000), 1448);
    h.vif.deliverGso(f);
    f.skbs.forEach((x) => h.skbs.put(x));
    h.vif.close();
    expect(h.vif.c.rxDropNotConnected).toBe(1);
    expect(h.skbs.available).toBe(free);
  });
});
