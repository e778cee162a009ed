/**
 * pcapng, the capture file format Wireshark and tshark read (the IETF draft
 * "PCAP Next Generation (pcapng) Capture File Format"): the blocks xsim
 * writes and a reader that checks them. Little-endian throughout; every block
 * and every option value is padded to 32 bits.
 *
 * Every block:
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +---------------------------------------------------------------+
 *  0|                          Block Type                           |
 *   +---------------------------------------------------------------+
 *  4|                      Block Total Length                       |
 *   +---------------------------------------------------------------+
 *  8/                          Block Body                           /
 *   +---------------------------------------------------------------+
 *   |                      Block Total Length                       |
 *   +---------------------------------------------------------------+
 *
 * Section Header (0x0A0D0D0A) body: byte-order magic 0x1A2B3C4D u32, major 1
 * u16, minor 0 u16, section length -1 i64, options.
 * Interface Description (1): link type u16 (1 = Ethernet), reserved u16,
 * snap length u32, options: if_name (2), if_tsresol (9; 9 = nanoseconds).
 * Enhanced Packet (6): interface id u32, timestamp high u32, low u32,
 * captured length u32, original length u32, packet data (padded), options:
 * opt_comment (1), epb_flags (2; bits 0-1: 1 inbound, 2 outbound).
 * Interface Statistics (5): interface id u32, timestamp high, low, options:
 * isb_starttime (2), isb_endtime (3), isb_ifrecv (4), isb_ifdrop (5).
 *
 * Options: code u16, length u16, value padded to 32 bits; opt_endofopt (0)
 * closes the list.
 */

export const BT_SHB = 0x0a0d0d0a;
export const BT_IDB = 1;
export const BT_ISB = 5;
export const BT_EPB = 6;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
export const LINKTYPE_ETHERNET = 1;

export const OPT_ENDOFOPT = 0;
export const OPT_COMMENT = 1;
export const SHB_USERAPPL = 4;
export const IF_NAME = 2;
export const IF_TSRESOL = 9;
export const EPB_FLAGS = 2;
export const ISB_STARTTIME = 2;
export const ISB_ENDTIME = 3;
export const ISB_IFRECV = 4;
export const ISB_IFDROP = 5;

/** epb_flags bits 0-1: the direction of a frame at its tap point. */
export const DIR_INBOUND = 1;
export const DIR_OUTBOUND = 2;

const pad4 = (n: number): number => (n + 3) & ~3;
const utf8 = new TextEncoder();

type Opt = [code: number, value: Uint8Array];

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

/** A timestamp as pcapng stores it: high then low 32 bits of the count of units. */
function tsPair(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, Number(v >> 32n), true);
  dv.setUint32(4, Number(v & 0xffffffffn), true);
  return b;
}

function optsLength(opts: Opt[]): number {
  return opts.length === 0 ? 0 : opts.reduce((n, [, v]) => n + 4 + pad4(v.length), 4);
}

function writeOpts(dv: DataView, at: number, opts: Opt[]): number {
  if (opts.length === 0) return at;
  const u8 = new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
  for (const [code, v] of opts) {
    dv.setUint16(at, code, true);
    dv.setUint16(at + 2, v.length, true);
    u8.set(v, at + 4);
    at += 4 + pad4(v.length);
  }
  dv.setUint32(at, 0, true); // opt_endofopt, length 0
  return at + 4;
}

/** A whole block: type, length, `fixed` body octets written by `body`, then the options and the trailing length. */
function block(type: number, fixed: number, opts: Opt[], body: (dv: DataView, u8: Uint8Array) => void): Uint8Array {
  const len = 12 + pad4(fixed) + optsLength(opts);
  const u8 = new Uint8Array(len);
  const dv = new DataView(u8.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, len, true);
  body(new DataView(u8.buffer, 8, fixed), u8.subarray(8, 8 + fixed));
  writeOpts(dv, 8 + pad4(fixed), opts);
  dv.setUint32(len - 4, len, true);
  return u8;
}

export function sectionHeader(application: string): Uint8Array {
  return block(BT_SHB, 16, [[SHB_USERAPPL, utf8.encode(application)]], (dv) => {
    dv.setUint32(0, BYTE_ORDER_MAGIC, true);
    dv.setUint16(4, 1, true);
    dv.setUint16(6, 0, true);
    dv.setBigInt64(8, -1n, true);
  });
}

export function interfaceDescription(name: string, snaplen: number): Uint8Array {
  return block(
    BT_IDB,
    8,
    [
      [IF_NAME, utf8.encode(name)],
      [IF_TSRESOL, Uint8Array.of(9)],
    ],
    (dv) => {
      dv.setUint16(0, LINKTYPE_ETHERNET, true);
      dv.setUint16(2, 0, true);
      dv.setUint32(4, snaplen, true);
    },
  );
}

/**
 * An Enhanced Packet Block's length: 28 octets of header, the captured octets
 * padded, epb_flags when `dir` is set, the comment when there is one, the
 * end of options and the trailing length.
 *
 *    0 type (6)   4 total length   8 interface id   12 timestamp high   16 timestamp low
 *   20 captured length   24 original length   28 packet data (padded) ... options ... total length
 */
export const EPB_FIXED = 28;
export const EPB_IFID = 8;
export const EPB_TS_HIGH = 12;
export const EPB_TS_LOW = 16;

export function enhancedPacketLength(cap: number, dir: number, comment: Uint8Array | null): number {
  const opts = (dir !== 0 ? 8 : 0) + (comment ? 4 + pad4(comment.length) : 0);
  return EPB_FIXED + pad4(cap) + (opts > 0 ? opts + 4 : 0) + 4;
}

/**
 * Write an Enhanced Packet Block at `at` of `u8` (as long as enhancedPacketLength
 * says): `cap` octets of `src` from `off`, of a frame of `origLen`. What the
 * capture sinks use to write each record once, in place, with no allocation.
 */
export function writeEnhancedPacket(
  dv: DataView,
  u8: Uint8Array,
  at: number,
  ifId: number,
  tsHigh: number,
  tsLow: number,
  src: Uint8Array,
  off: number,
  cap: number,
  origLen: number,
  dir: number,
  comment: Uint8Array | null,
): number {
  const len = enhancedPacketLength(cap, dir, comment);
  dv.setUint32(at, BT_EPB, true);
  dv.setUint32(at + 4, len, true);
  dv.setUint32(at + EPB_IFID, ifId, true);
  dv.setUint32(at + EPB_TS_HIGH, tsHigh, true);
  dv.setUint32(at + EPB_TS_LOW, tsLow, true);
  dv.setUint32(at + 20, cap, true);
  dv.setUint32(at + 24, origLen, true);
  u8.set(src.subarray(off, off + cap), at + EPB_FIXED);
  let o = at + EPB_FIXED + cap;
  while (o & 3) u8[o++] = 0;
  if (dir !== 0 || comment) {
    if (dir !== 0) {
      dv.setUint32(o, EPB_FLAGS | (4 << 16), true);
      dv.setUint32(o + 4, dir, true);
      o += 8;
    }
    if (comment) {
      dv.setUint32(o, OPT_COMMENT | (comment.length << 16), true);
      u8.set(comment, o + 4);
      o += 4 + comment.length;
      while (o & 3) u8[o++] = 0;
    }
    dv.setUint32(o, OPT_ENDOFOPT, true);
    o += 4;
  }
  dv.setUint32(o, len, true);
  return len;
}

/** An Enhanced Packet Block: `data` is what was captured (at most the snap length) of `origLen` octets. */
export function enhancedPacket(ifId: number, tsNs: bigint, data: Uint8Array, origLen: number, dir: number, comment?: string): Uint8Array {
  const c = comment ? utf8.encode(comment) : null;
  const u8 = new Uint8Array(enhancedPacketLength(data.length, dir, c));
  writeEnhancedPacket(new DataView(u8.buffer), u8, 0, ifId, Number(tsNs >> 32n), Number(tsNs & 0xffffffffn), data, 0, data.length, origLen, dir, c);
  return u8;
}

export function interfaceStatistics(ifId: number, tsNs: bigint, s: { start: bigint; end: bigint; recv: number; drop: number }): Uint8Array {
  const opts: Opt[] = [
    [ISB_STARTTIME, tsPair(s.start)],
    [ISB_ENDTIME, tsPair(s.end)],
    [ISB_IFRECV, u64(BigInt(s.recv))],
    [ISB_IFDROP, u64(BigInt(s.drop))],
  ];
  return block(BT_ISB, 12, opts, (dv, u8) => {
    dv.setUint32(0, ifId, true);
    u8.set(tsPair(tsNs), 4);
  });
}

// ---------------------------------------------------------------------------
// Reading (what the tests and `xsim capture` check a file with)

export class PcapngError extends Error {}

export interface PcapngPacket {
  ifId: number;
  tsNs: bigint;
  data: Uint8Array;
  origLen: number;
  dir: number;
  comment?: string;
}

export interface PcapngFile {
  interfaces: { name: string; snaplen: number; tsresol: number }[];
  packets: PcapngPacket[];
  stats: { ifId: number; recv: bigint; drop: bigint }[];
}

function readOpts(u8: Uint8Array, dv: DataView, at: number, end: number, where: string): Map<number, Uint8Array[]> {
  const out = new Map<number, Uint8Array[]>();
  while (at < end) {
    if (at + 4 > end) throw new PcapngError(`${where}: option header runs past the block`);
    const code = dv.getUint16(at, true);
    const len = dv.getUint16(at + 2, true);
    if (code === OPT_ENDOFOPT) return out;
    if (at + 4 + pad4(len) > end) throw new PcapngError(`${where}: option ${code} of ${len} octets runs past the block`);
    const list = out.get(code) ?? [];
    list.push(u8.subarray(at + 4, at + 4 + len));
    out.set(code, list);
    at += 4 + pad4(len);
  }
  return out;
}

const utf8d = new TextDecoder('utf-8', { fatal: true });

/** Parse a little-endian pcapng file of one section; every length is checked against the bytes there are. */
export function readPcapng(bytes: Uint8Array): PcapngFile {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const f: PcapngFile = { interfaces: [], packets: [], stats: [] };
  let at = 0;
  let n = 0;
  while (at < bytes.length) {
    if (at + 12 > bytes.length) throw new PcapngError(`block ${n} at ${at}: ${bytes.length - at} octets left, a block takes at least 12`);
    const type = dv.getUint32(at, true);
    const len = dv.getUint32(at + 4, true);
    const where = `block ${n} (type ${type}) at ${at}`;
    if (len < 12 || len % 4 !== 0 || at + len > bytes.length) throw new PcapngError(`${where}: bad total length ${len}`);
    if (dv.getUint32(at + len - 4, true) !== len) throw new PcapngError(`${where}: trailing length differs from ${len}`);
    if (n === 0 && type !== BT_SHB) throw new PcapngError('not a pcapng file: no Section Header Block first');
    const body = at + 8;
    const end = at + len - 4;
    if (type === BT_SHB) {
      if (n !== 0) throw new PcapngError(`${where}: a second section (not supported)`);
      if (len < 28 || dv.getUint32(body, true) !== BYTE_ORDER_MAGIC) throw new PcapngError(`${where}: not a little-endian section header`);
    } else if (type === BT_IDB) {
      if (len < 20) throw new PcapngError(`${where}: interface description too short`);
      const o = readOpts(bytes, dv, body + 8, end, where);
      const name = o.get(IF_NAME)?.[0];
      f.interfaces.push({ name: name ? utf8d.decode(name) : '', snaplen: dv.getUint32(body + 4, true), tsresol: o.get(IF_TSRESOL)?.[0]?.[0] ?? 6 });
    } else if (type === BT_EPB) {
      if (len < 32) throw new PcapngError(`${where}: enhanced packet too short`);
      const ifId = dv.getUint32(body, true);
      if (ifId >= f.interfaces.length) throw new PcapngError(`${where}: interface ${ifId} was never described`);
      const cap = dv.getUint32(body + 12, true);
      const orig = dv.getUint32(body + 16, true);
      if (body + 20 + pad4(cap) > end) throw new PcapngError(`${where}: captured length ${cap} runs past the block`);
      if (cap > orig) throw new PcapngError(`${where}: captured length ${cap} over the original ${orig}`);
      const o = readOpts(bytes, dv, body + 20 + pad4(cap), end, where);
      const flags = o.get(EPB_FLAGS)?.[0];
      const comment = o.get(OPT_COMMENT)?.[0];
      f.packets.push({
        ifId,
        tsNs: (BigInt(dv.getUint32(body + 4, true)) << 32n) | BigInt(dv.getUint32(body + 8, true)),
        data: bytes.subarray(body + 20, body + 20 + cap),
        origLen: orig,
        dir: flags && flags.length === 4 ? new DataView(flags.buffer, flags.byteOffset, 4).getUint32(0, true) & 3 : 0,
        ...(comment ? { comment: utf8d.decode(comment) } : {}),
      });
    } else if (type === BT_ISB) {
      const ifId = dv.getUint32(body, true);
      const o = readOpts(bytes, dv, body + 12, end, where);
      const v = (c: number): bigint => {
        const x = o.get(c)?.[0];
        return x && x.length === 8 ? new DataView(x.buffer, x.byteOffset, 8).getBigUint64(0, true) : 0n;
      };
      f.stats.push({ ifId, recv: v(ISB_IFRECV), drop: v(ISB_IFDROP) });
    }
    at += len;
    n++;
  }
  if (n === 0) throw new PcapngError('empty file');
  return f;
}
