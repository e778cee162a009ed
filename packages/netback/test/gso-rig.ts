/**
 * A guest's TCPv4 GSO frames for the netback tests: the frame's bytes, and
 * its publication on the TX ring over several slots with a GSO extra-info
 * slot, as netfront's xennet_start_xmit lays it out.
 */
import {
  NETTXF_csum_blank,
  NETTXF_data_validated,
  NETTXF_extra_info,
  NETTXF_more_data,
  PAGE_SIZE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_GSO_TYPE_TCPV4,
} from '@xsim/hypervisor';
import { ETH_HLEN, ETH_P_IP, writeIpHeader, writePartialL4Checksum, writeU16, writeU32 } from '@xsim/netstack';
import type { NetbackHarness } from '../../../test/fixtures/netback-harness.ts';
import { extraSlot, publishRaw, type Req } from './rig.ts';

export const VIF_MAC = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x07];
export const PEER_MAC = [0x00, 0x16, 0x3e, 0x11, 0x22, 0x33];
export const TCP_FIN = 0x01;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_CWR = 0x80;

/** A TCPv4 frame of `payload` octets (headers 54), its checksum partial: the bytes. */
export function tcpFrame(payload: number, o: { flags?: number; seq?: number; proto?: number } = {}): Uint8Array {
  const b = new Uint8Array(54 + payload);
  b.set([...PEER_MAC, ...VIF_MAC], 0);
  writeU16(b, 12, ETH_P_IP);
  writeIpHeader(b, ETH_HLEN, 0x0a000007, 0x0a000008, 0x1234, o.proto ?? 6, 20 + payload);
  writeU16(b, 34, 40000);
  writeU16(b, 36, 5001);
  writeU32(b, 38, o.seq ?? 0xfffff000);
  writeU32(b, 42, 77);
  b[46] = 5 << 4;
  b[47] = o.flags ?? TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR;
  writeU16(b, 48, 65535);
  for (let i = 0; i < payload; i++) b[54 + i] = (i * 131 + (i >> 8)) & 0xff;
  writePartialL4Checksum(b, 0, b.length);
  return b;
}

/** Put `frame` in the guest's data pages and publish it as a GSO frame of `mss` (its first slot `first` octets, the rest a page each). */
export function sendGso(h: NetbackHarness, frame: Uint8Array, mss: number, first = PAGE_SIZE): void {
  const reqs: (Req | Uint8Array)[] = [];
  let at = 0;
  let i = 0;
  while (at < frame.length) {
    const n = Math.min(i === 0 ? first : PAGE_SIZE, frame.length - at);
    h.dataPage(i).set(frame.subarray(at, at + n));
    at += n;
    const more = at < frame.length ? NETTXF_more_data : 0;
    if (i === 0) {
      reqs.push({ gref: h.dataRefs[0], size: frame.length, flags: NETTXF_csum_blank | NETTXF_data_validated | NETTXF_extra_info | more });
      reqs.push(extraSlot({ type: XEN_NETIF_EXTRA_TYPE_GSO, gsoSize: mss, gsoType: XEN_NETIF_GSO_TYPE_TCPV4 }));
    } else reqs.push({ gref: h.dataRefs[i], size: n, flags: more });
    i++;
  }
  publishRaw(h, reqs);
}
