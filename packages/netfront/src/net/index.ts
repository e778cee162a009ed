export * from './addr.ts';
export * from './wire.ts';
export { ArpCache, type ArpEntry } from './arp.ts';
export { GuestStack, type StackTransport, type UdpHandler, type PayloadFill, type StackCounters } from './stack.ts';
