/**
 * What netfront's parts share: its counters with their meaning, the limits it
 * holds a backend to, the dependencies it is handed, and the one place it
 * gives up on a backend (Linux xen-netfront's `broken` flag).
 */
import {
  declareCounters,
  type Counters,
  type Tap,
  type EventChannels,
  type FrameAllocator,
  type GrantRefAllocator,
  type GrantTable,
  type GuestMemory,
} from '@xsim/hypervisor';
import type { XsLike } from '@xsim/hypervisor';
import type { NetfrontParams } from './features.ts';

/**
 * Guest pages one vif's netfront takes with up to `queues` queues: per queue
 * its share of the TX buffers (one chunk of whole pages per frame, as many
 * chunks as a ring has slots for), one RX page per ring slot, and the two
 * ring pages; with several queues, the control ring's page and the pages of
 * the hash key and mapping table it sends. What a domU's memory must hold
 * per vif.
 */
export function netfrontPages(mtu: number, queues = 1): number {
  const chunkPages = Math.ceil((mtu + 18) / 4096);
  return queues * (Math.floor(256 / chunkPages) * chunkPages + 256 + 2) + (queues > 1 ? 3 : 0);
}

/** A frame may arrive in at most this many RX slots (XEN_NETBK_LEGACY_SLOTS_MAX); a longer chain is dropped. */
export const MAX_FRAME_PIECES = 18;

export const NETFRONT_COUNTERS = declareCounters('netfront', {
  txPackets: { kind: 'event', help: 'frames queued on the TX ring (slow path)' },
  txBytes: { kind: 'event', help: 'bytes of those frames' },
  txBusy: { kind: 'event', help: 'times a frame could not be queued (ring, buffers or the fast path full); the sender retries' },
  txErrorResponses: { kind: 'event', help: 'TX responses with an error status (the backend dropped the frame and counted it)' },
  txLostAtTeardown: { kind: 'drop', help: 'frames queued on the TX ring that the backend never answered before the rings were torn down' },
  txAccel: { kind: 'event', help: 'frames the accelerator took on its fast path' },
  txAccelInPlace: {
    kind: 'event',
    help: "frames the accelerator took that the stack had built in the accelerator's own DMA buffer (its txBuffer): sent with no copy in the guest; part of txAccel",
  },
  txAccelTso: {
    kind: 'event',
    help: 'TCPv4 GSO frames (up to 64 KiB) the accelerator took for its hardware to segment (its tsoMax, plugin API 1.5): part of txAccel',
  },
  txAccelDeclinedCopies: {
    kind: 'event',
    help: "frames built in the accelerator's buffer that it then declined: copied once into netfront's own TX buffer for the slow path",
  },
  txCsumPartial: {
    kind: 'event',
    help: 'frames the stack handed down with a partial checksum (CHECKSUM_PARTIAL): sent with NETTXF_csum_blank | NETTXF_data_validated, or taken by an accelerator that completes them',
  },
  txCsumSoftware: {
    kind: 'event',
    help: "partial checksums completed here in software (skb_checksum_help): the vif's checksum offload is off, or the accelerator cannot take them",
  },
  txCsumBad: { kind: 'drop', help: 'frames the stack handed down as partial that are not IPv4 TCP or UDP (nothing could complete their checksum)' },
  txGsoFrames: {
    kind: 'event',
    help: 'TCPv4 GSO frames (up to 64 KiB) sent with a GSO extra-info slot: the backend segments them (feature-gso-tcpv4)',
  },
  txGsoRefused: {
    kind: 'drop',
    help: 'GSO frames the stack handed down that this connection cannot send (no GSO negotiated, or larger than the accelerator attached segments): dropped',
  },
  txGsoLostAtSuspend: { kind: 'drop', help: 'GSO frames the old backend never took at a suspend: not sent again (the record carries MTU-sized frames only)' },
  rxPackets: { kind: 'event', help: 'frames handed to the stack from the RX ring' },
  rxCsumBlank: { kind: 'event', help: 'frames received with NETRXF_csum_blank (a partial checksum, known good): the stack does not verify them' },
  rxCsumValidated: { kind: 'event', help: 'frames received with NETRXF_data_validated alone (checked by the NIC or a peer): the stack does not verify them' },
  rxCsumSetupErr: {
    kind: 'drop',
    help: 'frames flagged NETRXF_csum_blank whose headers are no IPv4 TCP or UDP a checksum could be completed over (checksum_setup fails: dropped, as handle_incoming)',
  },
  rxBytes: { kind: 'event', help: 'bytes of those frames' },
  rxFragmented: { kind: 'event', help: 'received frames that spanned several pages' },
  rxErrorStatus: { kind: 'event', help: 'frames the backend answered with an error status (it counted the drop)' },
  rxBadResponse: { kind: 'drop', help: 'frames dropped here: a response whose offset and size run past its page' },
  rxErrTooManySlots: { kind: 'drop', help: 'frames dropped here: a chain of more than MAX_FRAME_PIECES (18) data slots' },
  rxErrTooLong: {
    kind: 'drop',
    help: 'frames dropped here: longer than the largest frame gathered (65535 + 14 octets: a 64 KiB GSO frame and its Ethernet header)',
  },
  rxErrExtraType: { kind: 'drop', help: 'frames dropped here: an extra-info slot of no known type (0, or XEN_NETIF_EXTRA_TYPE_MAX and over)' },
  rxErrExtraMissing: { kind: 'drop', help: 'frames dropped here: an extra-info slot says another follows, and the backend published none' },
  rxErrGsoSize: { kind: 'drop', help: 'frames dropped here: a GSO extra-info slot with gso.size 0 (xennet_set_skb_gso: "GSO size must not be zero")' },
  rxErrGsoType: { kind: 'drop', help: 'frames dropped here: a GSO extra-info slot of a type other than TCPv4 (xsim has no IPv6)' },
  rxGso: {
    kind: 'event',
    help: 'TCPv4 GSO frames received whole (a GSO extra-info slot, data over several slots, up to 64 KiB) and handed to the stack as one frame',
  },
  rxAccel: { kind: 'event', help: 'frames received on the accelerator fast path' },
  rxExtraInfo: {
    kind: 'event',
    help: "extra-info slots in RX responses (xsim's netback sends GSO ones with GSO frames, HASH ones when the control ring configured a hash): each buffer goes back unused; one of no known type, a bad GSO one or one missing drops its frame (rxErrExtraType, rxErrGsoSize, rxErrGsoType, rxErrExtraMissing)",
  },
  rxHashExtras: {
    kind: 'event',
    help: 'HASH extra-info slots sent with frames for the guest: the Toeplitz hash its control ring configured (xenvif_rx_extra); each takes one RX request',
  },
  ctrlRequests: { kind: 'event', help: 'control-ring requests answered (SET_HASH_*, GET_HASH_*: process_ctrl_request)' },
  ctrlErrors: { kind: 'event', help: 'of them, answered with a status other than SUCCESS (NOT_SUPPORTED, INVALID_PARAMETER)' },
  notifiesSent: { kind: 'event', help: 'event-channel notifications sent to the backend' },
  brokenBackend: { kind: 'event', help: 'the backend broke the ring protocol: the device was disabled (Linux netfront "broken")' },
  txResent: { kind: 'event', help: 'frames a resumed kernel sent again because the old backend never took them (counted in txPackets twice)' },
  txLostAtResume: { kind: 'drop', help: 'frames the old backend never took that a resumed kernel found no room to send again' },
  txLostBroken: { kind: 'drop', help: 'frames outstanding on the TX ring when the device was disabled for a broken backend' },
});

export type NetfrontCounters = Counters<typeof NETFRONT_COUNTERS.decls>;

/** The counters an RX frame is dropped under, one per reason (rxErrorStatus: the backend's own drop, counted there). */
export type RxDropReason =
  'rxErrorStatus' | 'rxBadResponse' | 'rxErrTooManySlots' | 'rxErrTooLong' | 'rxErrExtraType' | 'rxErrExtraMissing' | 'rxErrGsoSize' | 'rxErrGsoType';

/** Add every counter of `from` into `into` (a queue's into its device's). */
export function addCounters(into: NetfrontCounters, from: Readonly<NetfrontCounters>): NetfrontCounters {
  for (const k of Object.keys(from) as (keyof NetfrontCounters)[]) into[k] += from[k];
  return into;
}

export interface NetfrontDeps {
  domid: number;
  handle: number;
  mem: GuestMemory;
  frames: FrameAllocator;
  gnttab: GrantTable;
  grefs: GrantRefAllocator;
  evtchn: Pick<EventChannels, 'allocUnbound' | 'bindHandler' | 'send' | 'close'>;
  xs: XsLike;
  /** Largest L2 payload; TX buffers are sized for mtu + 18 (Ethernet header and a VLAN tag). */
  mtu: number;
  /** What this frontend offers (absent: all a Linux netfront offers that xsim does). */
  params?: NetfrontParams;
  log?: (msg: string) => void;
  /** Capture point of this vif's frontend side: what the guest sends (outbound) and receives (inbound), on either path. */
  tap?: Tap;
}

/** A frame delivered to the guest, with its NETRXF_* checksum flags (csum_blank, data_validated); the view is valid only during the call. */
export type RxHandler = (ram: Uint8Array, off: number, len: number, flags: number) => void;

/** What the TX and RX halves need of their queue. */
export interface RingOwner {
  /** The queue's own counters. */
  readonly c: NetfrontCounters;
  /** The queue's index (0 with one queue). */
  readonly queue: number;
  readonly backendDomid: number;
  /** Linux netfront's `broken`: log once, count, stop using the rings. */
  broken(reason: string): void;
  /** Requests pushed on the TX ring / buffers posted on the RX ring: tell the backend on that ring's queue's port. */
  notifyTx(): void;
  notifyRx(): void;
}
