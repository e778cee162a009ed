/**
 * The IP stack every kernel uses, guests over netfront and dom0 over its
 * bridge port: Ethernet, ARP, IPv4 and its checks, UDP, one address parser for
 * the whole project, and the traffic generators (sequenced stream, ping-pong)
 * driven by the toolstack through a NetEndpoint.
 */
export * from './net/index.ts';
export * from './traffic/index.ts';
export type { StreamReceiverState, StreamSenderState } from './traffic/stream.ts';
export { NetEndpoint, ENDPOINT_COUNTERS, type FrameTransport, type EndpointOptions, type EndpointState } from './endpoint.ts';
export * as tcp from './tcp/index.ts';
