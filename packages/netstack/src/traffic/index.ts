export { SeqTracker, SEQ_WINDOW, type SeqStats } from './seqtrack.ts';
export { StreamSender, StreamReceiver, STREAM_FIRST_FRAME_MS, STREAM_GIVE_UP_MS, parsePattern, type Goodput } from './stream.ts';
export { PingClient, PingServer, LatencyStats, type LatencySummary } from './pingpong.ts';
