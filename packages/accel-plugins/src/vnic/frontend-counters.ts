/** vnic's frontend counters, declared with their meaning (drop, event, gauge): shared by the frontend and its TX path (tx.ts). */
import { declareCounters, type Counters } from '@xsim/hypervisor';

export const VNIC_FRONTEND_COUNTERS = declareCounters('vnic frontend', {
  taken: { kind: 'event', help: 'frames sent on the fast path' },
  takenLocal: { kind: 'event', help: "frames sent on the fast path to a guest of this host (the NIC's internal switch delivers them): part of taken" },
  localDestinations: { kind: 'gauge', help: "MACs of this host's guests vnic's frontend sends to on the fast path now (dom0's localmac)" },
  declinedMulticast: { kind: 'event', help: 'broadcast/multicast frames left to the slow path' },
  declinedArp: { kind: 'event', help: 'ARP frames left to the slow path' },
  declinedUnknown: { kind: 'event', help: 'frames for a destination not behind the NIC, left to the slow path' },
  declinedBusy: { kind: 'event', help: 'frames left to the slow path: no room in the TX pages, or longer than the VI takes (over the MTU without TSO)' },
  declinedNotReady: { kind: 'event', help: 'frames left to the slow path: the VI is not up (attaching, draining or faulted)' },
  txCopied: {
    kind: 'event',
    help: 'frames taken that had to be copied into the TX pages (the stack had not built them where txBuffer lent): part of taken; the rest went out of the pages they were built in',
  },
  txCsumOffloaded: { kind: 'event', help: "frames taken with a partial checksum: posted with TXD_CSUM, the NIC completes it (the VI's checksum offload)" },
  txTso: {
    kind: 'event',
    help: 'TCP frames of up to 64 KiB taken for the NIC to cut into segments (posted with TXD_TSO from the TX pages): part of taken',
  },
  rxFrames: { kind: 'event', help: 'frames received on the VI' },
  rxGathered: { kind: 'event', help: 'received frames that spanned several RX buffers' },
  rxTooLong: { kind: 'drop', help: 'received frames longer than our gather buffer: dropped' },
  txLostOnFault: { kind: 'drop', help: 'frames posted on the VI that never completed: it faulted or was reset under us' },
  releaseLeaks: { kind: 'event', help: 'DMA grants dom0 still mapped at release: their pages stay allocated' },
  dmaAreaWaits: {
    kind: 'event',
    help: 'offers answered late: the DMA area did not fit until frames came back (a resumed kernel still held the TX frames it sends again)',
  },
});

export type VnicFrontendCounters = Counters<typeof VNIC_FRONTEND_COUNTERS.decls>;
