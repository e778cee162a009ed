/**
 * The hashes a multi-queue vif steers by (abi/netif-hash.ts).
 *
 * Toeplitz against the RSS verification suite: Microsoft's "Verifying the
 * RSS Hash Calculation" (MicrosoftDocs/windows-driver-docs,
 * windows-driver-docs-pr/network/verifying-the-rss-hash-calculation.md: the
 * secret key and the IPv4 table, "IPv4 only" and "IPv4 with TCP" columns),
 * the same five rows as DPDK's app/test/test_thash.c (v4_tbl, "From 82599
 * Datasheet 7.1.2.8.3 RSS Verification Suite", key default_rss_key). The
 * input is what netif.h's hash types hash: source address, destination
 * address, then source port and destination port.
 *
 * Then against netif.h itself: a C program compiled with
 * XEN_NETIF_DEFINE_TOEPLITZ hashes random keys and buffers (short keys too,
 * whose missing octets count as zero) and must agree with xsim's on each.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  XEN_NETIF_CTRL_HASH_TYPE_IPV4,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP,
  _XEN_NETIF_CTRL_HASH_TYPE_IPV4,
  _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP,
  flowHash,
  hashInput,
  newFlowKeys,
  reciprocalScale,
  xenNetifToeplitzHash,
} from '@xsim/hypervisor';
import { needs } from '../../../test/tools.ts';

/** The verification suite's key (default_rss_key in test_thash.c). */
export const RSS_KEY = Uint8Array.from([
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb,
  0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
]);

/** Destination, source, destination port, source port, IPv4 only, IPv4 with TCP (test_thash.c's v4_tbl order). */
const V4: [string, string, number, number, number, number][] = [
  ['161.142.100.80', '66.9.149.187', 1766, 2794, 0x323e8fc2, 0x51ccc178],
  ['65.69.140.83', '199.92.111.2', 4739, 14230, 0xd718262a, 0xc626b0ea],
  ['12.22.207.184', '24.19.198.95', 38024, 12898, 0xd2d0a5de, 0x5c2b394a],
  ['209.142.163.6', '38.27.205.30', 2217, 48228, 0x82989176, 0xafc7327f],
  ['202.188.127.2', '153.39.163.191', 1303, 44251, 0x5d1809c5, 0x10e828a2],
];

const quad = (ip: string) => ip.split('.').map(Number);

/** An Ethernet + IPv4 + TCP (proto 6) or UDP (17) header, enough for the hash. */
export function ipFrame(src: string, dst: string, sport: number, dport: number, proto = 6): Uint8Array {
  const f = new Uint8Array(64);
  f.set([0x08, 0x00], 12);
  f.set([0x45, 0, 0, 50, 0, 0, 0, 0, 64, proto], 14);
  f.set(quad(src), 26);
  f.set(quad(dst), 30);
  f.set([sport >> 8, sport & 255, dport >> 8, dport & 255], 34);
  return f;
}

describe('Toeplitz (xen_netif_toeplitz_hash) against the RSS verification suite', () => {
  it.each(V4)('dst %s src %s dport %d sport %d: IPv4 %d, IPv4+TCP %d', (dst, src, dport, sport, l3, l4) => {
    const buf = Uint8Array.from([...quad(src), ...quad(dst), sport >> 8, sport & 255, dport >> 8, dport & 255]);
    expect(xenNetifToeplitzHash(RSS_KEY, 40, buf, 0, 8).toString(16)).toBe(l3.toString(16));
    expect(xenNetifToeplitzHash(RSS_KEY, 40, buf, 0, 12).toString(16)).toBe(l4.toString(16));
  });

  it('hashInput picks what netif.h hashes from a frame: the 4-tuple of a TCP segment under IPV4_TCP, the addresses under IPV4 alone or for UDP', () => {
    const [dst, src, dport, sport, l3, l4] = V4[0];
    const into = new Uint8Array(40);
    const keys = newFlowKeys();
    const both = XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
    const tcp = ipFrame(src, dst, sport, dport, 6);
    const r = hashInput(tcp, 0, tcp.length, both, keys, into)!;
    expect(r).toEqual({ len: 12, type: _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP });
    expect(xenNetifToeplitzHash(RSS_KEY, 40, into, 0, r.len)).toBe(l4);
    // UDP has no hash type of its own: its addresses only (xenvif_set_skb_hash's has_tcp_hdr).
    const udp = ipFrame(src, dst, sport, dport, 17);
    expect(hashInput(udp, 0, udp.length, both, keys, into)).toEqual({ len: 8, type: _XEN_NETIF_CTRL_HASH_TYPE_IPV4 });
    expect(xenNetifToeplitzHash(RSS_KEY, 40, into, 0, 8)).toBe(l3);
    // TCP with only the IPv4 type: addresses; with only IPV4_TCP, UDP gets no hash; ARP none.
    expect(hashInput(tcp, 0, tcp.length, XEN_NETIF_CTRL_HASH_TYPE_IPV4, keys, into)?.len).toBe(8);
    expect(hashInput(udp, 0, udp.length, XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP, keys, into)).toBeNull();
    const arp = new Uint8Array(60);
    arp.set([0x08, 0x06], 12);
    expect(hashInput(arp, 0, 60, both, keys, into)).toBeNull();
  });
});

describe('flowHash (skb_get_hash) and reciprocal_scale', () => {
  it('the same flow hashes alike both ways, another port differently; never 0', () => {
    const keys = newFlowKeys();
    const a = ipFrame('10.0.10.1', '10.0.11.1', 40000, 5001, 17);
    const back = ipFrame('10.0.11.1', '10.0.10.1', 5001, 40000, 17);
    const other = ipFrame('10.0.10.1', '10.0.11.1', 40001, 5001, 17);
    const h = flowHash(a, 0, 64, keys);
    expect(flowHash(back, 0, 64, keys)).toBe(h);
    expect(flowHash(other, 0, 64, keys)).not.toBe(h);
    expect(h).not.toBe(0);
  });

  it('reciprocal_scale takes the top bits: 0 -> 0, 2^32-1 -> n-1, 2^31 -> n/2', () => {
    expect(reciprocalScale(0, 4)).toBe(0);
    expect(reciprocalScale(0xffffffff, 4)).toBe(3);
    expect(reciprocalScale(0x80000000, 4)).toBe(2);
  });
});

describe("Toeplitz against io/netif.h's own xen_netif_toeplitz_hash", needs('gcc', 'libc-headers', 'xen-headers'), () => {
  it('random keys (1..40 octets) and buffers (0..36 octets): every hash agrees', () => {
    let seed = 12345;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const cases = Array.from({ length: 200 }, () => {
      const key = Array.from({ length: 40 }, () => rnd(256));
      return { key, keyLen: 1 + rnd(40), buf: Array.from({ length: rnd(37) }, () => rnd(256)) };
    });
    const arr = (xs: number[]) => `{${xs.join(',') || '0'}}`;
    const c = [
      '#include <stdio.h>',
      '#include <stdint.h>',
      '#define XEN_NETIF_DEFINE_TOEPLITZ',
      '#include <xen/io/netif.h>',
      'int main(void) {',
      ...cases.map(
        (t, i) =>
          `  { static const uint8_t k[] = ${arr(t.key)}, b[] = ${arr(t.buf)}; printf("%u\\n", xen_netif_toeplitz_hash(k, ${t.keyLen}, b, ${t.buf.length})); (void)${i}; }`,
      ),
      '  return 0;',
      '}',
    ].join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'xsim-toeplitz-'));
    try {
      writeFileSync(join(dir, 't.c'), c);
      execFileSync('gcc', ['-std=gnu99', '-w', '-o', join(dir, 't'), join(dir, 't.c')]);
      const want = execFileSync(join(dir, 't'), { encoding: 'utf8' }).trim().split('\n').map(Number);
      const got = cases.map((t) => xenNetifToeplitzHash(Uint8Array.from(t.key), t.keyLen, Uint8Array.from(t.buf), 0, t.buf.length));
      expect(got).toEqual(want);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
