/**
 * Xenstore wire messages between a domain and xenstored (the main thread),
 * msgpackr-encoded. Operation names follow xs_wire.h (XS_READ, XS_WRITE, …).
 */
import { Packr } from 'msgpackr';
import type { PermEntry, XsErrno } from './store.ts';

export type XsOp = 'read' | 'write' | 'mkdir' | 'rm' | 'directory' | 'get_perms' | 'set_perms' | 'transaction_start' | 'transaction_end' | 'watch' | 'unwatch';

export interface XsRequest {
  kind: 'req';
  id: number;
  op: XsOp;
  tx?: number;
  path?: string;
  value?: string;
  perms?: PermEntry[];
  token?: string;
  commit?: boolean;
}

export type XsResponse =
  | { kind: 'rsp'; id: number; ok: true; value?: string | string[] | number | boolean | PermEntry[] }
  | { kind: 'rsp'; id: number; ok: false; errno: XsErrno; message: string };

export interface XsWatchEvent {
  kind: 'watch';
  path: string;
  token: string;
}

export type XsMessage = XsRequest | XsResponse | XsWatchEvent;

const packr = new Packr({ useRecords: false });

export function encodeXs(m: XsMessage): Uint8Array {
  return packr.pack(m);
}

export function decodeXs(data: unknown): XsMessage {
  if (!(data instanceof Uint8Array)) throw new Error('xenstore: message is not a msgpack buffer');
  const m = packr.unpack(data) as XsMessage;
  if (m === null || typeof m !== 'object') throw new Error('xenstore: message is not an object');
  return m;
}
