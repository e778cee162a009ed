/**
 * netfront's checksum offload on TX, after xennet_start_xmit: a frame the
 * stack hands down with a partial checksum (CHECKSUM_PARTIAL) goes to the
 * backend flagged NETTXF_csum_blank | NETTXF_data_validated when the vif's
 * offload is on; otherwise (switched off, or bound for an accelerator whose
 * hardware cannot complete it) it is completed here in software first, as
 * Linux's core does (skb_checksum_help) for a device without the feature.
 */
import { NETTXF_csum_blank, NETTXF_data_validated } from '@xsim/hypervisor';
import { completeL4Checksum } from '@xsim/netstack';
import type { NetfrontCounters } from './common.ts';

/** What a partial frame goes with on the TX ring. */
export const TX_CSUM_FLAGS = NETTXF_csum_blank | NETTXF_data_validated;

/**
 * The checksum of a frame about to go: its NETTXF_* flags (0 for a frame
 * that is, or now is, complete), or -1 when it cannot be completed (no IPv4
 * TCP or UDP frame: counted txCsumBad, to be dropped by the caller).
 */
export function txCsum(c: NetfrontCounters, ram: Uint8Array, at: number, len: number, partial: boolean, offload: boolean): number {
  if (!partial) return 0;
  c.txCsumPartial++;
  if (offload) return TX_CSUM_FLAGS;
  if (!completeL4Checksum(ram, at, len)) {
    c.txCsumBad++;
    return -1;
  }
  c.txCsumSoftware++;
  return 0;
}
