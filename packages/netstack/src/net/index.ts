export * from './addr.ts';
export * from './wire.ts';
export * from './icmp.ts';
export * from './csum.ts';
export { ArpCache, type ArpEntry } from './arp.ts';
export {
  GuestStack,
  StackError,
  STACK_COUNTERS,
  type StackTransport,
  type StackOffloads,
  type UdpHandler,
  type EchoHandler,
  type PayloadFill,
  type StackCounters,
} from './stack.ts';
