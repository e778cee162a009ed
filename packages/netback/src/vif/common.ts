/**
 * What every part of a vif backend shares: the tunables (one place, named as
 * Linux names them), the counters with their meaning, the private copy of a
 * ring request, and the narrow interfaces netback needs of xenstore, event
 * channels and grant operations.
 */
import type { Clock, XsLike } from '@xsim/hypervisor';
import {
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTST_okay,
  PAGE_SIZE,
  declareCounters,
  type Counters,
  type GrantOps,
  type Tap,
} from '@xsim/hypervisor';
import type { Bridge } from '../bridge.ts';
import type { SkbPool } from '../skb.ts';
import type { NetbackParams } from './features.ts';

export const ETH_HLEN = 14;
/** ETH_DATA_LEN: the MTU a vif is held to when its frontend cannot take a frame over several RX slots (no feature-sg). */
export const ETH_DATA_LEN = 1500;
/** The largest frame such a vif is given: MTU + Ethernet header + VLAN tag, as the bridge's is_skb_forwardable allows. */
export const NO_SG_MAX_FRAME = ETH_DATA_LEN + ETH_HLEN + 4;

/** netback's tunables. Thresholds follow Linux xen-netback (netback.c, rx.c). */
export const VIF_TUNABLES = {
  /**
   * XEN_NETBK_LEGACY_SLOTS_MAX: a frame may span this many TX slots. One of
   * legacySlotsMax + 1 .. fatalSkbSlots slots is dropped with
   * XEN_NETIF_RSP_ERROR (xenvif_count_requests: "Too many slots").
   */
  legacySlotsMax: 18,
  /**
   * fatal_skb_slots (module parameter, default 20): a frame over this many
   * slots is malice, not a bug: the vif is disconnected (xenvif_fatal_tx_err).
   */
  fatalSkbSlots: 20,
  /** Frames taken from the TX ring per poll (NAPI budget). */
  txBudget: 64,
  /** Frames whose grant copies are batched before their responses go out (gnttab_batch_copy). */
  txBatch: 32,
  /** Frames queued for a guest that has not posted RX buffers yet. */
  rxQueueMax: 256,
  /**
   * And their octets at most (XENVIF_RX_QUEUE_BYTES: half the RX ring's pages,
   * 512 KiB): what bounds a queue of GSO frames of up to 64 KiB, each held in
   * a chain of skbs.
   */
  rxQueueBytes: 128 * PAGE_SIZE,
  /** Frames copied into the guest per poll (RX_BATCH_SIZE). */
  rxBatch: 64,
} as const;

export const VIF_COUNTERS = declareCounters('netback vif', {
  txPackets: { kind: 'event', help: 'frames taken from the guest TX ring and forwarded' },
  txBytes: { kind: 'event', help: 'bytes of those frames' },
  txErrRunt: { kind: 'drop', help: 'guest frame whose first slot is shorter than an Ethernet header: answered XEN_NETIF_RSP_ERROR' },
  txErrOversize: { kind: 'drop', help: 'guest frame longer than the MTU allows: answered XEN_NETIF_RSP_ERROR' },
  txErrSlotSize: { kind: 'drop', help: 'guest frame with a slot larger than the size left: answered XEN_NETIF_RSP_ERROR' },
  txErrTooManySlots: { kind: 'drop', help: 'guest frame over XEN_NETBK_LEGACY_SLOTS_MAX slots (up to fatal_skb_slots): answered XEN_NETIF_RSP_ERROR' },
  txErrGrantCopy: { kind: 'drop', help: 'guest frame whose grant copy failed (a grant it does not own): answered XEN_NETIF_RSP_ERROR' },
  txErrCsumSetup: {
    kind: 'drop',
    help: 'guest frame flagged NETTXF_csum_blank that is no IPv4 TCP or UDP frame a checksum could be completed over (not IPv4, not TCP/UDP, a fragment, headers cut short; checksum_setup fails): answered XEN_NETIF_RSP_ERROR',
  },
  txErrGso: {
    kind: 'drop',
    help: 'guest GSO frame that cannot be segmented (not IPv4 TCP, headers not in its first slot, a fragment, a gso_size making segments over the MTU): answered XEN_NETIF_RSP_ERROR',
  },
  txErrGsoNoSkb: { kind: 'drop', help: 'guest GSO frame dropped: dom0 had too few free skbs for its segments (answered XEN_NETIF_RSP_ERROR)' },
  txGsoFrames: {
    kind: 'event',
    help: 'guest GSO frames (a GSO extra-info slot) taken: forwarded whole to a vif that takes them (txGsoWhole) or segmented in software (skb_segment) for anything else',
  },
  txGsoSegments: { kind: 'event', help: 'segments GSO frames were cut into in software, each forwarded as a frame with a partial checksum' },
  txGsoWhole: {
    kind: 'event',
    help: "guest GSO frames the bridge handed whole to another vif whose frontend takes them (feature-gso-tcpv4): that vif's rxGsoFrames",
  },
  txDropGsoLate: {
    kind: 'drop',
    help: 'guest GSO frame copied whole for a vif that took GSO, which no longer did at the forward, and too few skbs were free to segment it then',
  },
  txCsumPartial: {
    kind: 'event',
    help: 'guest frames taken with a partial checksum (NETTXF_csum_blank): completed further on by whatever cannot take them partial',
  },
  txErrResponses: { kind: 'event', help: 'XEN_NETIF_RSP_ERROR responses written (one per slot of a dropped frame)' },
  txDropSpoof: {
    kind: 'drop',
    help: "guest frame whose source MAC is not the vif's configured MAC: answered, then dropped before the bridge (anti-spoofing, as Xen's vif scripts do with ebtables)",
  },
  txDropDisconnected: { kind: 'drop', help: 'guest frame copied and answered, then dropped: the vif was disconnected before it was forwarded' },
  txStallNoSkb: { kind: 'event', help: 'times TX stopped because dom0 had no free skb (frames wait in the ring)' },
  txCreditStalls: {
    kind: 'event',
    help: "times TX stopped because the vif's rate limit (the backend's rate key) left too little credit for the next frame: it waits in the ring for the credit timer (tx_credit_exceeded)",
  },
  txMcastAdd: { kind: 'event', help: 'MCAST_ADD extra-info requests taken (a multicast address the frontend listens to)' },
  txMcastFull: { kind: 'event', help: 'of them, answered XEN_NETIF_RSP_ERROR: the vif already lists XEN_NETBK_MCAST_MAX (64) addresses' },
  txMcastDel: { kind: 'event', help: 'MCAST_DEL extra-info requests taken' },
  txExtraGso: {
    kind: 'event',
    help: 'frames with a GSO extra-info slot (checked as xenvif_set_skb_gso checks it), whatever became of them (txGsoFrames: taken; txErrGso: refused)',
  },
  mcastAddrs: { kind: 'gauge', help: 'multicast addresses the frontend lists now (MCAST_ADD less MCAST_DEL, at most 64)' },
  txExtraIgnored: { kind: 'event', help: 'HASH and XDP extra-info slots: answered NETIF_RSP_NULL, nothing done (xsim keeps no packet hash)' },
  rxPackets: { kind: 'event', help: 'frames copied into the guest' },
  rxBytes: { kind: 'event', help: 'bytes of those frames' },
  rxDropQueueFull: { kind: 'drop', help: 'frame for the guest dropped: its RX queue was full (rxQueueMax frames or rxQueueBytes octets)' },
  rxDropNotConnected: { kind: 'drop', help: 'frame for the guest dropped: the vif was not connected' },
  rxDropNoSkb: { kind: 'drop', help: 'frame for the guest dropped: no skb was free to queue it' },
  rxDropMcast: {
    kind: 'drop',
    help: 'multicast frame for a guest that asked netback to filter them (request-multicast-control) and never added its address (MCAST_ADD): dropped, as xenvif_start_xmit drops it',
  },
  rxDropNoSg: {
    kind: 'drop',
    help: 'frame for the guest over ETH_DATA_LEN (1500) + an Ethernet header and VLAN tag, to a frontend without feature-sg: Linux netback lowers such a vif to MTU 1500 (xenvif_carrier_on) and the bridge drops what does not fit (is_skb_forwardable)',
  },
  rxDropFatal: { kind: 'drop', help: 'frame in hand, or copied but not yet published, when the guest was disconnected for a broken RX ring' },
  rxCsumBlank: { kind: 'event', help: 'frames sent to the guest with a partial checksum, flagged NETRXF_csum_blank | NETRXF_data_validated' },
  rxCsumValidated: { kind: 'event', help: 'frames sent to the guest flagged NETRXF_data_validated alone (the NIC or the sender vouched for the checksum)' },
  rxCsumCompletedSw: {
    kind: 'event',
    help: 'partial checksums completed in software (on a copy) for a guest that cannot take them (feature-no-csum-offload = 1)',
  },
  rxDropCsum: { kind: 'drop', help: 'frame for the guest with a partial checksum that could not be completed (no IPv4 TCP or UDP frame)' },
  rxErrGrantCopy: { kind: 'drop', help: 'frame for the guest whose copy into its buffer failed: the response carries the GNTST_* status' },
  rxHashExtras: {
    kind: 'event',
    help: 'HASH extra-info slots sent with frames for the guest: the Toeplitz hash its control ring configured (xenvif_rx_extra); each takes one RX request',
  },
  rxGsoFrames: {
    kind: 'event',
    help: 'TCPv4 GSO frames copied whole into the guest (feature-gso-tcpv4): NETRXF_extra_info on the first response, then a GSO extra-info slot (gso.size = MSS), the data over several slots',
  },
  ctrlRequests: { kind: 'event', help: 'control-ring requests answered (SET_HASH_*, GET_HASH_*: process_ctrl_request)' },
  ctrlErrors: { kind: 'event', help: 'of them, answered with a status other than SUCCESS (NOT_SUPPORTED, INVALID_PARAMETER)' },
  notifiesSent: { kind: 'event', help: 'event-channel notifications sent to the frontend' },
  disconnects: { kind: 'event', help: 'times the frontend was disconnected for malice or a broken ring' },
});

export type VifCounters = Counters<typeof VIF_COUNTERS.decls>;

/** Add every counter of `from` into `into` (a queue's counters into its vif's totals). */
export function addCounters(into: VifCounters, from: Readonly<VifCounters>): VifCounters {
  for (const k of Object.keys(from) as (keyof VifCounters)[]) into[k] += from[k];
  return into;
}

/** A ring request copied once out of shared memory (RING_COPY_REQUEST): checks and use read only this. */
export interface TxReq {
  gref: number;
  offset: number;
  flags: number;
  id: number;
  size: number;
}

export function txReq(): TxReq {
  return { gref: 0, offset: 0, flags: 0, id: 0, size: 0 };
}

/** The event-channel calls a backend makes. */
export interface EvtchnLike {
  bindInterdomain(remoteDomid: number, remotePort: number): number;
  bindHandler(port: number, handler: (port: number) => void): void;
  send(port: number): boolean;
  close(port: number): void;
}

export type { XsLike };

export interface VifDeps {
  ops: GrantOps;
  evtchn: EvtchnLike;
  xs: XsLike;
  skbs: SkbPool;
  bridge: Bridge;
  /** Largest frame accepted from the guest (MTU + Ethernet header + VLAN tag). */
  maxFrame: number;
  /** dom0's clock (virtual in a deterministic run): what a vif's rate limit is measured on. */
  clock: Clock;
  /** netback's parameters (Linux's module parameters): what it offers frontends. */
  params?: NetbackParams;
  log: (msg: string) => void;
  /** The vif reached Connected / left it (accelerators attach and detach). */
  onConnected?: (vif: VifPort) => void;
  onDisconnected?: (vif: VifPort) => void;
  /** A frame was delivered into the guest on the slow path (accelerators learn flows here). */
  onRxDelivered?: (vif: VifPort, ram: Uint8Array, addr: number, len: number) => void;
  /** The capture point named `name` (its host's prefix added); none: never captured. */
  tapPoint?: (name: string) => Tap;
}

/** What the accelerator hooks learn of a vif. */
export interface VifPort {
  readonly key: string;
  readonly frontendDomid: number;
  readonly handle: number;
  readonly mac: number;
  readonly ip: number;
}

/** GNTTABOP_copy guest (gref, off) → dom0 RAM at `dst`, split at dom0 page boundaries. */
export function copyFromGuest(ops: GrantOps, domid: number, gref: number, off: number, dst: number, len: number): number {
  while (len > 0) {
    const dOff = dst & (PAGE_SIZE - 1);
    const n = Math.min(len, PAGE_SIZE - dOff);
    const st = ops.copy(GNTCOPY_source_gref, domid, gref, off, DOMID_SELF, dst >>> 12, dOff, n);
    if (st !== GNTST_okay) return st;
    off += n;
    dst += n;
    len -= n;
  }
  return GNTST_okay;
}

/** GNTTABOP_copy dom0 RAM at `src` → guest (gref, dstOff), split at dom0 page boundaries. */
export function copyToGuest(ops: GrantOps, domid: number, src: number, gref: number, dstOff: number, len: number): number {
  while (len > 0) {
    const sOff = src & (PAGE_SIZE - 1);
    const n = Math.min(len, PAGE_SIZE - sOff);
    const st = ops.copy(GNTCOPY_dest_gref, DOMID_SELF, src >>> 12, sOff, domid, gref, dstOff, n);
    if (st !== GNTST_okay) return st;
    src += n;
    dstOff += n;
    len -= n;
  }
  return GNTST_okay;
}
