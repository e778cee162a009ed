/**
 * What a traffic endpoint works with and keeps (endpoint.ts is the endpoint
 * itself): the transport frames go through, its options, its apps' jobs and
 * the plain-data form a saved or migrating domain carries them in.
 */
import { declareCounters, type Clock, type RpcReply } from '@xsim/hypervisor';
import type { PingClient, StreamReceiver, StreamSender } from './traffic/index.ts';
import type { StreamReceiverState, StreamSenderState } from './traffic/stream.ts';

/** Where frames go: a netfront vif or dom0's bridge port. */
export interface FrameTransport {
  readonly ram: Uint8Array;
  /** Byte offset in `ram` to build a frame of `len` bytes at, or -1 if no room now. */
  txReserve(len: number): number;
  /** Send the frame built at the reserved offset; `csumPartial`: its TCP checksum is for the driver to complete (NETTXF_csum_blank). */
  txCommit(len: number, csumPartial?: boolean, gsoSize?: number): void;
  /** Frames that could be queued right now (flow control). */
  txAvailable(): number;
  /** Publish what was committed (one notification per burst). */
  flush(): void;
}

export interface EndpointOptions {
  name: string;
  mac: string;
  ip: string;
  mtu: number;
  transport: FrameTransport;
  /** Every timer of the apps reads this (a virtual clock in a deterministic run). */
  clock?: Clock;
}

/**
 * An endpoint as plain data, for a guest being saved or migrated: the stack's
 * counters and neighbours, and every app with the id of the toolstack request
 * it will answer. Times are on the saving domain's clock at `now`.
 */
export interface EndpointState {
  now: number;
  counters: Record<string, number>;
  arp: [number, number, number][];
  nextPort: number;
  lateCredits: number;
  creditsDeferred: number;
  sends: { replyId: number; sender: StreamSenderState; dstIp: number; srcPort: number; dstPort: number; payloadLen: number; started: number }[];
  recvs: {
    replyId: number;
    port: number;
    count: number;
    idleMs: number;
    deadline: number;
    lastArrival: number;
    credit: RecvJob['credit'];
    receiver: StreamReceiverState;
  }[];
  arpWaits: { replyId: number; ip: number; deadline: number }[];
  lingering: { port: number; until: number }[];
}

export const ENDPOINT_COUNTERS = declareCounters('traffic endpoint', {
  lateCredits: { kind: 'event', help: 'stream credits that arrived after their stream ended' },
  creditsDeferred: { kind: 'event', help: "times a receiver's credit was refused by the transport and kept to send again (never dropped)" },
});

export interface SendJob {
  sender: StreamSender;
  dstIp: number;
  srcPort: number;
  dstPort: number;
  payloadLen: number;
  reply: RpcReply;
  started: number;
  creditPort: number;
  /** Writes the payload of the frame the sender is at (made once, when the job starts). */
  fill?: (buf: Uint8Array, off: number) => void;
}

export interface RecvJob {
  receiver: StreamReceiver;
  port: number;
  count: number;
  idleMs: number;
  deadline: number;
  reply: RpcReply;
  lastArrival: number;
  /**
   * A credit the transport refused (its queue was stopped, an ARP was out):
   * kept and sent again from poll(), the latest superseding older ones. A
   * credit dropped would stall the sender for its whole stall timeout.
   */
  credit: { to: number; toPort: number; value: number } | null;
}

export interface PingJob {
  client: PingClient;
  dstIp: number;
  count: number;
  size: number;
  sent: number;
  reply: RpcReply;
  deadline: number;
  srcPort: number;
}
