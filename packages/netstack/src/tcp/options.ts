/**
 * TCP options (RFC 9293 §3.2): read from a segment and written into one.
 *
 *   kind 0 end, 1 no-op; kind/length/value:
 *   2  MSS, length 4 (SYN only)                          RFC 9293 §3.7.1
 *   3  Window Scale, length 3, shift (SYN only; > 14 read as 14)  RFC 7323 §2
 *   4  SACK-Permitted, length 2 (SYN only)               RFC 2018 §2
 *   5  SACK, length 2 + 8n, n = 1..4 blocks (left, right edges)  RFC 2018 §3
 *   8  Timestamps, length 10, TSval and TSecr            RFC 7323 §3
 *
 * Any other kind is skipped by its length. One of these with another length,
 * a length under 2 or one running past the header is malformed (the segment
 * is dropped, counted tcpRxBadOption). Written as Linux lays them out: MSS;
 * SACK-Permitted and Timestamps together (12 octets), or either after two
 * no-ops; a no-op and Window Scale; two no-ops and SACK blocks. Timestamps
 * alone take 12 octets (TCPOLEN_TSTAMP_ALIGNED), so with them at most 3 SACK
 * blocks fit in the 40 octets of options, 4 without.
 */
import { readU16, readU32, writeU32 } from '../net/wire.ts';

export const OPT_END = 0;
export const OPT_NOP = 1;
export const OPT_MSS = 2;
export const OPT_WS = 3;
export const OPT_SACK_OK = 4;
export const OPT_SACK = 5;
export const OPT_TS = 8;
/** The aligned Timestamps option: two no-ops and the 10 octets (what an MSS computation takes off). */
export const TS_ALIGNED_LEN = 12;
/** The largest window shift (RFC 7323 §2.3). */
export const WS_MAX = 14;
/** SACK blocks one option holds at most. */
export const SACK_MAX_BLOCKS = 4;

/** What a segment's options said. */
export interface TcpOptionsIn {
  /** The MSS option's value, or 0 when the segment carries none. */
  mss: number;
  /** The Window Scale shift (at most 14), or -1 when absent. */
  wscale: number;
  sackOk: boolean;
  hasTs: boolean;
  tsVal: number;
  tsEcr: number;
  /** SACK blocks: [left0, right0, left1, right1, ...], `sackCount` of them. */
  sack: number[];
  sackCount: number;
}

/** The options a sender puts in (all but mss optional: absent means none). */
export interface TcpOptionsOut {
  /** An MSS option of this value (SYNs only), or 0 for none. */
  mss: number;
  /** A Window Scale option with this shift, or undefined/-1 for none. */
  wscale?: number;
  sackOk?: boolean;
  /** A Timestamps option with tsVal and tsEcr. */
  ts?: boolean;
  tsVal?: number;
  tsEcr?: number;
  /** SACK blocks (pairs of edges), `sackCount` of them (1..4, 3 with timestamps), or 0. */
  sack?: ArrayLike<number>;
  sackCount?: number;
}

export function clearOptionsIn(o: TcpOptionsIn): void {
  o.mss = 0;
  o.wscale = -1;
  o.sackOk = false;
  o.hasTs = false;
  o.tsVal = o.tsEcr = 0;
  o.sackCount = 0;
}

/** Is `len` right for an option of `kind` (the ones read here)? */
function lengthOk(kind: number, len: number): boolean {
  switch (kind) {
    case OPT_MSS:
      return len === 4;
    case OPT_WS:
      return len === 3;
    case OPT_SACK_OK:
      return len === 2;
    case OPT_TS:
      return len === 10;
    case OPT_SACK:
      return len >= 10 && len <= 2 + 8 * SACK_MAX_BLOCKS && (len - 2) % 8 === 0;
    default:
      return true;
  }
}

/** Read the options between `o` and `end` into `out` (cleared first). False if one is malformed. */
export function parseOptions(b: Uint8Array, o: number, end: number, out: TcpOptionsIn): boolean {
  clearOptionsIn(out);
  // Each pass consumes at least one octet; the header is at most 40 octets of options.
  while (o < end) {
    const kind = b[o];
    if (kind === OPT_END) return true;
    if (kind === OPT_NOP) {
      o++;
      continue;
    }
    if (o + 1 >= end) return false;
    const len = b[o + 1];
    if (len < 2 || o + len > end || !lengthOk(kind, len)) return false;
    if (kind === OPT_MSS) out.mss = readU16(b, o + 2);
    else if (kind === OPT_WS) out.wscale = Math.min(b[o + 2], WS_MAX);
    else if (kind === OPT_SACK_OK) out.sackOk = true;
    else if (kind === OPT_TS) {
      out.hasTs = true;
      out.tsVal = readU32(b, o + 2);
      out.tsEcr = readU32(b, o + 6);
    } else if (kind === OPT_SACK) {
      out.sackCount = (len - 2) / 8;
      for (let i = 0; i < 2 * out.sackCount; i++) out.sack[i] = readU32(b, o + 2 + 4 * i);
    }
    o += len;
  }
  return true;
}

/** The octets of options writeOptions puts in for `h` (a multiple of 4). */
export function optionsLen(h: TcpOptionsOut): number {
  let n = h.mss ? 4 : 0;
  if (h.ts) n += TS_ALIGNED_LEN;
  else if (h.sackOk) n += 4;
  if (h.wscale !== undefined && h.wscale >= 0) n += 4;
  if (h.sackCount) n += 4 + 8 * h.sackCount;
  return n;
}

/** Write the options of `h` at `o` (optionsLen(h) octets). */
export function writeOptions(b: Uint8Array, o: number, h: TcpOptionsOut): void {
  if (h.mss) {
    put4(b, o, OPT_MSS, 4, h.mss >>> 8, h.mss & 0xff);
    o += 4;
  }
  if (h.ts) {
    if (h.sackOk) put4(b, o, OPT_SACK_OK, 2, OPT_TS, 10);
    else put4(b, o, OPT_NOP, OPT_NOP, OPT_TS, 10);
    writeU32(b, o + 4, (h.tsVal ?? 0) >>> 0);
    writeU32(b, o + 8, (h.tsEcr ?? 0) >>> 0);
    o += TS_ALIGNED_LEN;
  } else if (h.sackOk) {
    put4(b, o, OPT_NOP, OPT_NOP, OPT_SACK_OK, 2);
    o += 4;
  }
  if (h.wscale !== undefined && h.wscale >= 0) {
    put4(b, o, OPT_NOP, OPT_WS, 3, h.wscale);
    o += 4;
  }
  const n = h.sackCount ?? 0;
  if (n > 0 && h.sack) {
    put4(b, o, OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * n);
    for (let i = 0; i < 2 * n; i++) writeU32(b, o + 4 + 4 * i, h.sack[i] >>> 0);
  }
}

/** Four octets at `o` (no array made per segment). */
function put4(b: Uint8Array, o: number, a: number, c: number, d: number, e: number): void {
  b[o] = a;
  b[o + 1] = c;
  b[o + 2] = d;
  b[o + 3] = e;
}
