/**
 * TCP (RFC 9293) as a pure module: header and options, sequence arithmetic,
 * RTO (RFC 6298), congestion control (RFC 5681 NewReno, RFC 9438 CUBIC),
 * loss recovery (RFC 6582, SACK per RFC 2018/6675), delayed ACKs, window
 * scaling and timestamps (RFC 7323), TSO, and the TCB that drives them on
 * the caller's clock.
 */
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
