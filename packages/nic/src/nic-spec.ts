/**
 * What a NIC is, apart from how it works: its spec (from the topology), its
 * own counters, and the far end of its wire. The engine is hw-nic.ts.
 */
import { declareCounters, type Counters } from '@xsim/hypervisor';

export interface NicSpec {
  name: string;
  host: string;
  mac: number;
  mtu: number;
  vendor: string;
  device: string;
  vis: number;
  /** Entries of the RX filter table (default DEFAULT_FILTER_TABLE_SIZE): a full table refuses inserts. */
  filters?: number;
}

export const NIC_COUNTERS = declareCounters('nic', {
  wireTx: { kind: 'event', help: 'frames sent on the wire' },
  wireRx: { kind: 'event', help: 'frames received from the wire' },
  txNoLink: { kind: 'drop', help: 'sent while no wire is attached' },
  linkDownDrops: { kind: 'drop', help: 'sent or received while the link is down' },
  rxOversize: { kind: 'drop', help: 'received longer than our MTU allows' },
  rxViDown: { kind: 'drop', help: 'received for a VI that is not running (reset or faulted)' },
  rxDefault: { kind: 'event', help: 'received with no filter match: went to VI 0' },
  lineWaits: {
    kind: 'event',
    help: "times the NIC stopped taking frames from its TX queues because its port's FIFO was full (a wire with a line rate): they waited, none dropped",
  },
});

export type NicCounters = Counters<typeof NIC_COUNTERS.decls>;

/** The far end of a wire: a frame handed to it is that port's to deliver (or count) from then on. */
export type WireEnd = (ram: Uint8Array, off: number, len: number) => void;
