/**
 * A guest's TCPv4 GSO frame through netback (Linux's skb_segment for
 * xen-netback's TX): a frame of up to 64 KiB over several slots with a GSO
 * extra-info slot is cut into gso_size segments as it is copied; each
 * segment's headers are the frame's adjusted (lengths, id, sequence number,
 * flags), its checksum partial and completing to a correct one, and the
 * payloads put together are the frame's. A frame that cannot be segmented
 * is answered XEN_NETIF_RSP_ERROR and counted, one test per reason; a
 * property over sizes and MSS values checks the reassembly.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, PAGE_SIZE } from '@xsim/hypervisor';
import { ETH_HLEN, completeL4Checksum, readU16, readU32, verifyL4Checksum } from '@xsim/netstack';
import { CSUM_PARTIAL, type CsumState } from '@xsim/netback';
import { NetbackHarness } from '../../../test/fixtures/netback-harness.ts';
import { TCP_ACK, TCP_CWR, TCP_FIN, TCP_PSH, sendGso, tcpFrame } from './gso-rig.ts';
import { txResponses } from './rig.ts';

/** What the bridge hands on, with the checksum state. */
function probe(h: NetbackHarness) {
  const seen: { bytes: Uint8Array; csum: CsumState }[] = [];
  h.bridge.addPort({ name: 'probe', deliver: (addr, len, _skb, csum) => seen.push({ bytes: h.dom0Mem.u8.slice(addr, addr + len), csum }) });
  return seen;
}

describe('netback TX: TCPv4 GSO frames segmented in software', () => {
  it('a 20000-octet frame over 5 slots at MSS 1448: 14 segments, headers adjusted, checksums partial and right, payloads the frame’s', () => {
    const h = new NetbackHarness();
    const seen = probe(h);
    const frame = tcpFrame(20000 - 54);
    sendGso(h, frame, 1448);
    h.vif.poll();
    const statuses = txResponses(h).map((r) => r.status);
    expect(statuses).toEqual([NETIF_RSP_OKAY, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETIF_RSP_OKAY, NETIF_RSP_OKAY, NETIF_RSP_OKAY]);
    expect(seen).toHaveLength(14);
    expect(h.vif.c).toMatchObject({ txGsoFrames: 1, txGsoSegments: 14, txPackets: 1, txErrGso: 0 });
    const payload: number[] = [];
    seen.forEach((s, k) => {
      const b = s.bytes;
      expect(s.csum).toBe(CSUM_PARTIAL);
      expect(b.length).toBe(54 + Math.min(1448, 20000 - 54 - k * 1448));
      expect(readU16(b, ETH_HLEN + 2)).toBe(b.length - ETH_HLEN);
      expect(readU16(b, ETH_HLEN + 4)).toBe(0x1234 + k);
      expect(readU32(b, 38)).toBe((0xfffff000 + k * 1448) >>> 0);
      const last = k === seen.length - 1;
      expect(b[47] & (TCP_FIN | TCP_PSH)).toBe(last ? TCP_FIN | TCP_PSH : 0);
      expect(b[47] & TCP_CWR).toBe(k === 0 ? TCP_CWR : 0);
      expect(b[47] & TCP_ACK).toBe(TCP_ACK);
      const c = b.slice();
      expect(completeL4Checksum(c, 0, c.length)).toBe(true);
      expect(verifyL4Checksum(c, 0, c.length)).toBe(true);
      payload.push(...b.subarray(54));
    });
    expect(Uint8Array.from(payload)).toEqual(frame.subarray(54));
  });

  it.each([
    ['not TCP (UDP)', () => tcpFrame(5000, { proto: 17 }), 1448, PAGE_SIZE],
    ['headers not in the first slot (its 40 octets)', () => tcpFrame(5000), 1448, 40],
    ['a gso_size making segments over the MTU', () => tcpFrame(12000), 4000, PAGE_SIZE],
  ])('%s: XEN_NETIF_RSP_ERROR, counted txErrGso, the vif stays', (_what, make, mss, first) => {
    const h = new NetbackHarness();
    const seen = probe(h);
    sendGso(h, make(), mss, first);
    h.vif.poll();
    expect(txResponses(h)[0].status).toBe(NETIF_RSP_ERROR);
    expect(h.vif.c).toMatchObject({ txErrGso: 1, txGsoFrames: 0 });
    expect(seen).toHaveLength(0);
    expect(h.vif.connected).toBe(true);
  });

  it('property: any TCP payload and MSS cut into segments that put together are the frame, each seq where its payload starts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40000 }), fc.integer({ min: 1, max: 1446 }), (len, mss) => {
        const h = new NetbackHarness();
        const seen = probe(h);
        const frame = tcpFrame(len, { flags: TCP_ACK, seq: 5 });
        sendGso(h, frame, mss);
        h.vif.poll();
        const segs = Math.max(1, Math.ceil(len / mss));
        if (segs > 60) return; // more than the harness's 64 skbs hold: dropped, counted (txErrGsoNoSkb)
        expect(seen).toHaveLength(segs);
        const out: number[] = [];
        for (const s of seen) {
          expect(readU32(s.bytes, 38)).toBe(5 + out.length);
          out.push(...s.bytes.subarray(54));
        }
        expect(Uint8Array.from(out)).toEqual(frame.subarray(54));
      }),
      { numRuns: 60 },
    );
  });

  it('too few free skbs for the segments: XEN_NETIF_RSP_ERROR, counted txErrGsoNoSkb, every skb given back', () => {
    const h = new NetbackHarness();
    const free = h.skbs.available;
    sendGso(h, tcpFrame(40000), 100);
    h.vif.poll();
    expect(txResponses(h)[0].status).toBe(NETIF_RSP_ERROR);
    expect(h.vif.c.txErrGsoNoSkb).toBe(1);
    expect(h.skbs.available).toBe(free);
  });
});
