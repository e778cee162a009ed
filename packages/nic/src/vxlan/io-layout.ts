/**
 * What the fabric thread and the VXLAN I/O thread share: the I/O thread's
 * configuration (its workerData) and the words each side reads of the other
 * (Int32, written with Atomics by one side only).
 */
import type { UdpAddr } from './codec.ts';

/** One UDP socket: bound to `local`, its datagrams queued to the fabric on `rx`. */
export interface IoSocketConfig {
  local: UdpAddr;
  rx: SharedArrayBuffer;
  /** SOCKET_WORDS, written by the I/O thread. */
  words: SharedArrayBuffer;
  /** The topology path that names it, for errors. */
  what: string;
}

/** One tunnel's sending side: frames (VXLAN header included) from the fabric on `tx`, sent to `remote` from `local`'s address. */
export interface IoTunnelConfig {
  socket: number;
  remote: UdpAddr;
  tx: SharedArrayBuffer;
  /** TUNNEL_WORDS, written by the I/O thread. */
  words: SharedArrayBuffer;
  /** The topology path that names it, for errors. */
  what: string;
}

export interface IoConfig {
  sockets: IoSocketConfig[];
  tunnels: IoTunnelConfig[];
  /** The fabric thread's doorbell (a wake.ts word: counter, asleep flag): rung when datagrams arrive. */
  fabricWake: SharedArrayBuffer;
  /** The I/O thread's own wake word (counter, asleep flag): the fabric rings it after queuing frames. */
  ioWake: SharedArrayBuffer;
  /** Sends handed to a socket and not yet completed, per tunnel, before the I/O thread stops taking frames off its ring. */
  maxInFlight: number;
}

/** A socket's words: bound (1 while its socket is bound), datagrams received, refused for a full ring, socket errors. */
export const SOCKET_WORDS = { bound: 0, rxDatagrams: 1, rxRingFull: 2, errors: 3 } as const;
/** A tunnel's words: ready (its sending socket connected), datagrams sent, sends that failed, sends in flight. */
export const TUNNEL_WORDS = { ready: 0, sent: 1, sendErrors: 2, inFlight: 3 } as const;
export const WORDS_BYTES = 16;

/** Messages the I/O thread posts once, at start: every socket bound and every tunnel connected, or why not. */
export type IoStartMessage = { ready: true } | { ready: false; error: string };
