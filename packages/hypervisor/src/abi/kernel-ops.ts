/**
 * What every kernel answers on its control channel (dom0, a guest, the NIC
 * fabric): its counters, an orderly stop, and the capture taps.
 *
 *   op              args                                     reply
 *   stats           {}                                       the kernel's counter tree
 *   shutdown        {}                                       its final counter tree; the kernel stops
 *   capture_taps    {}                                       {taps: string[]}
 *   capture_start   {specs: string[]       tap patterns      {taps: string[]} the taps now capturing
 *                    snaplen?: number      octets kept of each frame (default 262144)
 *                    limit?: number        octets buffered before the oldest are dropped
 *                    prefix?: string       what to put before each tap's name
 *                    offsetNs?: string}    ns from the epoch, decimal (a double cannot hold it)
 *   capture_drain   {}                                       CaptureBatch (its blocks since the last drain)
 *   capture_stop    {}                                       CaptureBatch (the rest); the taps stop
 */
import { Type } from '@sinclair/typebox';
import { NO_ARGS, op, replyOf } from './ops.ts';

/** What a capture drain hands the toolstack: a kernel's pcapng blocks since the last drain, and its per-tap tallies. */
export interface CaptureBatch {
  /** Every tap point of the sink, by index (blocks name them by index until the toolstack renumbers them). */
  taps: string[];
  /** Enhanced Packet Blocks, back to back, in time order (when the sink has no shared buffers). */
  data?: Uint8Array;
  /** Else: which of the two shared buffers holds them, and how many octets. */
  buffer?: number;
  used?: number;
  /** Per tap index, since the capture started: frames seen, and those not kept because the buffer was full. */
  seen: number[];
  lost: number[];
  /** Per tap index, in this batch: blocks, and of them frames dropped at the point. */
  kept: number[];
  drops: number[];
}

export type KernelStats = Record<string, unknown>;

export const KERNEL_OPS = {
  stats: op(NO_ARGS, replyOf<KernelStats>()),
  shutdown: op(NO_ARGS, replyOf<KernelStats>()),
} as const;

export const CAPTURE_OPS_TABLE = {
  capture_taps: op(NO_ARGS, replyOf<{ taps: string[] }>()),
  capture_start: op(
    Type.Object({
      specs: Type.Array(Type.String()),
      snaplen: Type.Optional(Type.Number()),
      limit: Type.Optional(Type.Number()),
      prefix: Type.Optional(Type.String()),
      offsetNs: Type.Optional(Type.String({ pattern: '^-?\\d+$' })),
    }),
    replyOf<{ taps: string[] }>(),
  ),
  capture_drain: op(NO_ARGS, replyOf<CaptureBatch>()),
  capture_stop: op(NO_ARGS, replyOf<CaptureBatch>()),
} as const;
export type CaptureOps = typeof CAPTURE_OPS_TABLE;
