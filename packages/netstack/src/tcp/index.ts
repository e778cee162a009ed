/** TCP (RFC 9293) as a pure module: header, sequence arithmetic, RTO (RFC 6298), congestion control (RFC 5681, CUBIC per RFC 9438), and the TCB. */
export * from './seq.ts';
export * from './segment.ts';
export * from './states.ts';
export { RtoEstimator, RTO_INITIAL, RTO_MIN, RTO_MAX, RTO_AFTER_SYN_LOSS } from './rto.ts';
export { TCP_COUNTERS, type TcpCounters } from './counters.ts';
export { DEFAULT_PEER_MSS, HISTORY_MAX, type TcbOptions, type TcpEmit, type TcpDeliver } from './tcb-core.ts';
export { Tcb } from './tcb.ts';
export { DUPTHRESH } from './recovery.ts';
export { Scoreboard, SACK_MAX_RANGES } from './sack.ts';
export { Cubic, CUBIC_ALPHA, CUBIC_BETA, CUBIC_C } from './cubic.ts';
export * from './options.ts';
export { Negotiation, RCV_WND_MAX, RCV_WND_DEFAULT, PAWS_IDLE_MS } from './nego.ts';
export { DELACK_MS } from './delack.ts';
export { NewReno, SSTHRESH_INITIAL, initialWindow, type CcName, type CongestionControl } from './cc.ts';
