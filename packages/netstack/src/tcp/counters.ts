/**
 * What a TCB counts: every segment handed to it is either accepted
 * (tcpRxAccepted) or dropped for exactly one reason (a 'drop' counter), so
 * tcpRxSegments = tcpRxAccepted + the sum of the drops.
 */
import { declareCounters, type Counters } from '@xsim/hypervisor';

export const TCP_COUNTERS = declareCounters('tcp', {
  tcpRxSegments: { kind: 'event', help: 'TCP segments handed to a TCB' },
  tcpRxAccepted: { kind: 'event', help: 'TCP segments accepted (their ACK, data, SYN, FIN or RST processed)' },
  tcpRxShort: { kind: 'drop', help: 'TCP segments shorter than the 20-octet header' },
  tcpRxBadOffset: { kind: 'drop', help: 'TCP segments whose data offset is under 5 words or beyond the segment' },
  tcpRxBadOption: {
    kind: 'drop',
    help: 'TCP segments with a malformed option (length under 2 or past the header; MSS not 4, Window Scale not 3, SACK-Permitted not 2, Timestamps not 10 long, SACK not 2 + 8n with n 1..4)',
  },
  tcpRxPaws: { kind: 'drop', help: 'TCP segments older than TS.Recent by their timestamp: old duplicates (PAWS, RFC 7323 §5; answered ACK)' },
  tcpRxBadChecksum: { kind: 'drop', help: 'TCP segments with a wrong checksum (pseudo-header included)' },
  tcpRxNotOurs: { kind: 'drop', help: "TCP segments for another connection's ports or addresses" },
  tcpRxClosed: { kind: 'drop', help: 'TCP segments reaching a closed TCB (answered RST unless one)' },
  tcpRxListenDrop: { kind: 'drop', help: 'TCP segments a listener does not take: RST, an ACK (answered RST), neither SYN' },
  tcpRxBadAck: { kind: 'drop', help: 'TCP segments acknowledging what was never sent, or older than SND.UNA - MAX.SND.WND (answered RST or ACK)' },
  tcpRxNoSyn: { kind: 'drop', help: 'TCP segments in SYN-SENT with neither SYN nor RST' },
  tcpRxNoAck: { kind: 'drop', help: 'TCP segments without ACK in a synchronized state' },
  tcpRxOutOfWindow: { kind: 'drop', help: 'TCP segments outside the receive window (answered ACK unless RST)' },
  tcpRxChallenged: { kind: 'drop', help: 'in-window RST not at RCV.NXT, or SYN, in a synchronized state (answered challenge ACK, RFC 5961)' },
  tcpRxReasmFull: { kind: 'drop', help: 'TCP segments out of order not held: the reassembly queue had its 256 segments (answered ACK)' },
  tcpRstReceived: { kind: 'event', help: 'connections reset by an acceptable RST' },
  tcpRxOutOfOrder: { kind: 'event', help: 'TCP segments held in the reassembly queue until the hole before them fills' },
  tcpTxSegments: { kind: 'event', help: 'TCP segments sent' },
  tcpTxTsoSegments: { kind: 'event', help: 'TCP segments sent carrying more than one MSS for segmentation offload (emitted with gsoSize = MSS)' },
  tcpTxRetransmits: { kind: 'event', help: 'TCP segments sent again (after a retransmission timeout, by fast retransmit or SACK recovery)' },
  tcpTxFastRetransmits: {
    kind: 'event',
    help: 'TCP segments sent again by fast retransmit: the third duplicate ACK, then each partial ACK (RFC 5681, RFC 6582)',
  },
  tcpTxSackRetransmits: {
    kind: 'event',
    help: 'TCP segments sent again from the SACK scoreboard: holes below the highest SACKed octet in recovery (RFC 6675)',
  },
  tcpRxSackBlocks: { kind: 'event', help: 'SACK blocks received in acceptable ACKs with SACK permitted (RFC 2018)' },
  tcpFastRecoveries: { kind: 'event', help: 'fast recoveries entered (a loss found by duplicate ACKs, cwnd halved or cut to 0.7)' },
  tcpDelayedAcks: { kind: 'event', help: 'ACKs sent by the delayed-ACK timer (in-order data waited for more, or for data to ride on)' },
  tcpStretchAcks: {
    kind: 'event',
    help: "ACKs for more than one full segment sent at the end of a receive batch (stretch ACKs: one per batch of up to 64 KiB, as Linux's GRO gives)",
  },
  tcpTxRst: { kind: 'event', help: 'TCP RSTs sent' },
  tcpTimeouts: { kind: 'event', help: 'retransmission timer expiries' },
  tcpGiveUps: { kind: 'event', help: 'connections given up after too many retransmissions' },
});

export type TcpCounters = Counters<typeof TCP_COUNTERS.decls>;
