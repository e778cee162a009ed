export { SeqTracker, SEQ_WINDOW, type SeqStats } from './seqtrack.ts';
export { StreamSender, StreamReceiver, parsePattern, type Goodput } from './stream.ts';
export { PingClient, PingServer, LatencyStats, type LatencySummary } from './pingpong.ts';
