/**
 * Xen's xenstore wire protocol (xen/include/public/io/xs_wire.h), as
 * xenstored speaks it on its Unix socket: every message is a 16-byte header
 * and a payload of nul-separated strings.
 *
 *    0        4        8        12       16
 *    +--------+--------+--------+--------+------------------------------+
 *    |  type  | req_id | tx_id  |  len   | payload: len bytes (<= 4096) |
 *    +--------+--------+--------+--------+------------------------------+
 *    u32 each, in the host's byte order (little-endian on x86 and arm64).
 *
 * req_id is echoed in the answer; tx_id names the transaction (0: none);
 * an error answer is XS_ERROR with the errno's name ("ENOENT\0"); a watch
 * firing is XS_WATCH_EVENT with "path\0token\0" and req_id 0.
 */

/** enum xsd_sockmsg_type, in order (XS_DEBUG is XS_CONTROL's old name; type 20, XS_RESTRICT, was removed from Xen). */
export const XsType = {
  CONTROL: 0,
  DEBUG: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
} as const;
export type XsTypeName = keyof typeof XsType;

export const XS_HEADER_BYTES = 16;
/** XENSTORE_PAYLOAD_MAX: a longer message is a protocol error. */
export const XENSTORE_PAYLOAD_MAX = 4096;
/** The errno names xsd_errors lists: the only error strings on the wire. */
export const XSD_ERRORS = [
  'EINVAL',
  'EACCES',
  'EEXIST',
  'EISDIR',
  'ENOENT',
  'ENOMEM',
  'ENOSPC',
  'EIO',
  'ENOTEMPTY',
  'ENOSYS',
  'EROFS',
  'EBUSY',
  'EAGAIN',
  'EISCONN',
  'E2BIG',
  'EPERM',
] as const;
export type XsdError = (typeof XSD_ERRORS)[number];

const H_TYPE = 0;
const H_REQ_ID = 4;
const H_TX_ID = 8;
const H_LEN = 12;

export interface XsWireMessage {
  type: number;
  reqId: number;
  txId: number;
  payload: Buffer;
}

export function typeName(type: number): string {
  return (Object.keys(XsType) as XsTypeName[]).find((k) => XsType[k] === type) ?? `type ${type}`;
}

export function encodeXsWire(m: { type: number; reqId: number; txId: number; payload: Buffer | string }): Buffer {
  const body = typeof m.payload === 'string' ? Buffer.from(m.payload, 'utf8') : m.payload;
  const out = Buffer.alloc(XS_HEADER_BYTES + body.length);
  out.writeUInt32LE(m.type >>> 0, H_TYPE);
  out.writeUInt32LE(m.reqId >>> 0, H_REQ_ID);
  out.writeUInt32LE(m.txId >>> 0, H_TX_ID);
  out.writeUInt32LE(body.length, H_LEN);
  body.copy(out, XS_HEADER_BYTES);
  return out;
}

/** The nul-separated strings of a payload; a trailing nul ends the last one (it does not start another). */
export function payloadStrings(p: Buffer): string[] {
  const s = p.toString('utf8');
  const parts = s.split('\0');
  if (s.endsWith('\0')) parts.pop();
  return parts;
}

/** Strings as a payload, each nul-terminated (directory lists, permissions, watch events). */
export function nulTerminated(strings: readonly string[]): string {
  return strings.map((x) => `${x}\0`).join('');
}

/**
 * Reassembles messages from a byte stream. The header is copied out once
 * and its length checked before any payload is taken: a peer announcing more
 * than XENSTORE_PAYLOAD_MAX gets `error` set and nothing more is decoded.
 */
export class XsWireDecoder {
  private buf: Buffer = Buffer.alloc(0);
  error = '';

  push(chunk: Buffer): XsWireMessage[] {
    if (this.error) return [];
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: XsWireMessage[] = [];
    while (this.buf.length >= XS_HEADER_BYTES) {
      const len = this.buf.readUInt32LE(H_LEN);
      if (len > XENSTORE_PAYLOAD_MAX) {
        this.error = `message of ${len} bytes (at most ${XENSTORE_PAYLOAD_MAX})`;
        return out;
      }
      if (this.buf.length < XS_HEADER_BYTES + len) break;
      out.push({
        type: this.buf.readUInt32LE(H_TYPE),
        reqId: this.buf.readUInt32LE(H_REQ_ID),
        txId: this.buf.readUInt32LE(H_TX_ID),
        payload: Buffer.from(this.buf.subarray(XS_HEADER_BYTES, XS_HEADER_BYTES + len)),
      });
      this.buf = this.buf.subarray(XS_HEADER_BYTES + len);
    }
    return out;
  }
}
