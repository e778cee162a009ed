/**
 * The checks netback's TX makes of a frame it copied from a guest, before
 * the frame reaches the bridge: checksum_setup (what its NETTXF_* checksum
 * flags make of it) and anti-spoofing (its source MAC).
 */
import { DIR_INBOUND, NETTXF_csum_blank, NETTXF_data_validated, logWarn, readMac, type Tap } from '@xsim/hypervisor';
import { formatMac, l4Frame } from '@xsim/netstack';
import { CSUM_NONE, CSUM_PARTIAL, CSUM_UNNECESSARY, type CsumState } from '../skb.ts';
import type { VifCounters, VifDeps } from './common.ts';

/** What the checks need of the vif (its TxOwner). */
interface Vif {
  readonly c: VifCounters;
  readonly name: string;
  readonly mac: number;
  readonly tap: Tap;
}

/**
 * checksum_setup on a copied frame of `len` octets at `at` whose first slot
 * said `flags`: NETTXF_csum_blank makes its checksum partial, and its headers
 * must be ones a checksum can be completed over (skb_checksum_setup: IPv4
 * TCP or UDP, no fragment, every header in the frame); NETTXF_data_validated
 * alone makes it known good. -1: a csum_blank frame that is not such a
 * frame, counted (the caller answers XEN_NETIF_RSP_ERROR).
 */
export function checksumSetup(d: Pick<VifDeps, 'skbs' | 'log'>, v: Pick<Vif, 'c' | 'name'>, flags: number, at: number, len: number): CsumState | -1 {
  if (flags & NETTXF_csum_blank) {
    const why = l4Frame(d.skbs.mem.u8, at, len);
    if (typeof why === 'string') {
      if (v.c.txErrCsumSetup++ === 0) d.log(logWarn(`${v.name}: NETTXF_csum_blank on a frame a checksum cannot be completed over (${why}): dropped`));
      return -1;
    }
    v.c.txCsumPartial++;
    return CSUM_PARTIAL;
  }
  return flags & NETTXF_data_validated ? CSUM_UNNECESSARY : CSUM_NONE;
}

/**
 * Anti-spoofing, on dom0's own copy: a source MAC other than the one the
 * toolstack gave this vif never reaches the bridge (so it is never learnt
 * on this port). True: dropped, counted.
 */
export function spoofed(d: Pick<VifDeps, 'skbs' | 'log'>, v: Vif, at: number, len: number): boolean {
  const ram = d.skbs.mem.u8;
  if (v.mac === 0 || readMac(ram, at + 6) === v.mac) return false;
  if (v.c.txDropSpoof++ === 0)
    d.log(logWarn(`${v.name}: frame with source MAC ${formatMac(readMac(ram, at + 6))}, not the vif's ${formatMac(v.mac)}: dropped (counted in txDropSpoof)`));
  if (v.tap.on) v.tap.drop(ram, at, len, DIR_INBOUND, `vifs.${v.name}.txDropSpoof`);
  return true;
}
