/**
 * The save/migration stream, after Xen's migration v2 format (libxc
 * xc_sr_stream_format.h): an image header, then records, each a type and a
 * length and a body padded to 8 bytes, ending with END. `xsim domain save`
 * writes it to a file; `restore` reads it back, checking every field before
 * anything is built from it.
 *
 *  image header (16 octets)
 *  +-------------------------------+---------------+---------------+
 *  | magic "XSIMSAV1" (8)          | version u32   | reserved u32  |
 *  +-------------------------------+---------------+---------------+
 *  record
 *  +---------------+---------------+-------------------------------+
 *  | type u32      | length u32    | body (length octets, padded   |
 *  |               |               | with zeros to a multiple of 8)|
 *  +---------------+---------------+-------------------------------+
 *  DOMAIN    (1) body: msgpack of SavedDomain (what the toolstack and the
 *                kernel need beyond RAM: config, where the kernel left its
 *                state, the plugins' saved device state)
 *  PAGE_DATA (2) body: count u32, pad u32, count × pfn u32, count × 4096
 *                octets of page contents
 *  END       (0) body empty
 *
 * All integers little-endian. Pages that are all zeros are not written (a
 * restored domain's RAM starts zeroed), as Xen skips unpopulated frames.
 */
import { pack, unpack } from 'msgpackr';
import { GuestMemory, PAGE_SIZE } from '../memory.ts';

export const SAVE_MAGIC = 'XSIMSAV1';
export const SAVE_VERSION = 1;
export const REC = { end: 0, domain: 1, pageData: 2 } as const;
const HEADER_LEN = 16;
/** Pages per PAGE_DATA record (xc_sr batches 1024 as well). */
export const PAGES_PER_RECORD = 1024;
/** A DOMAIN record larger than this is not one we wrote. */
const DOMAIN_MAX = 16 << 20;

/** A vif as the saved domain had it. */
export interface SavedVif {
  handle: number;
  mac: string;
  ip: string;
  mtu: number;
}

/** Everything of a saved domain that is not its RAM. */
export interface SavedDomain {
  name: string;
  memPages: number;
  /** Where the source had it (for the log and the report only). */
  from: { host: string; domid: number };
  vifs: SavedVif[];
  /** Where the suspended kernel wrote its state in its RAM. */
  kernel: { frame: number; len: number };
  /** Plugins' saved per-vif device state (VFIO STOP_COPY data), by vif handle. */
  accel: { handle: number; plugin: string; state: unknown }[];
  /** Epoch ms of the suspend (cross-thread clock). */
  suspendedAt: number;
}

const pad8 = (n: number): number => (n + 7) & ~7;

function record(type: number, body: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + pad8(body.length));
  out.writeUInt32LE(type, 0);
  out.writeUInt32LE(body.length, 4);
  out.set(body, 8);
  return out;
}

function isZero(page: Uint8Array): boolean {
  const w = new BigUint64Array(page.buffer, page.byteOffset, PAGE_SIZE / 8);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0n) return false;
  return true;
}

/** Encode a domain and the pages of `mem` that are not all zeros. */
export function encodeSaveStream(dom: SavedDomain, mem: GuestMemory): { bytes: Buffer; pages: number } {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(HEADER_LEN);
  head.write(SAVE_MAGIC, 0, 'latin1');
  head.writeUInt32LE(SAVE_VERSION, 8);
  parts.push(head, record(REC.domain, pack(dom)));
  const pfns: number[] = [];
  for (let p = 0; p < mem.pages; p++) if (!isZero(mem.page(p))) pfns.push(p);
  for (let i = 0; i < pfns.length; i += PAGES_PER_RECORD) {
    const batch = pfns.slice(i, i + PAGES_PER_RECORD);
    const body = Buffer.alloc(8 + batch.length * 4 + batch.length * PAGE_SIZE);
    body.writeUInt32LE(batch.length, 0);
    batch.forEach((pfn, k) => body.writeUInt32LE(pfn, 8 + k * 4));
    const data = 8 + batch.length * 4;
    batch.forEach((pfn, k) => body.set(mem.page(pfn), data + k * PAGE_SIZE));
    parts.push(record(REC.pageData, body));
  }
  parts.push(record(REC.end, new Uint8Array(0)));
  return { bytes: Buffer.concat(parts), pages: pfns.length };
}

export class SaveStreamError extends Error {}

/** Decode a stream into a fresh RAM; every length, pfn and field is checked first. */
export function decodeSaveStream(bytes: Uint8Array, maxPages: number): { dom: SavedDomain; mem: GuestMemory; pages: number } {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string): never => {
    throw new SaveStreamError(`not a usable xsim save image: ${why}`);
  };
  if (b.length < HEADER_LEN || b.toString('latin1', 0, 8) !== SAVE_MAGIC) bad(`no "${SAVE_MAGIC}" header`);
  const version = b.readUInt32LE(8);
  if (version !== SAVE_VERSION) bad(`version ${version}, this xsim reads version ${SAVE_VERSION}`);
  let at = HEADER_LEN;
  let dom: SavedDomain | undefined;
  let mem: GuestMemory | undefined;
  let pages = 0;
  for (;;) {
    if (at + 8 > b.length) bad(`truncated at octet ${at}: no END record`);
    const type = b.readUInt32LE(at);
    const len = b.readUInt32LE(at + 4);
    const body = at + 8;
    if (body + pad8(len) > b.length) bad(`record of type ${type} at octet ${at} runs past the end (${len} octets)`);
    if (type === REC.end) break;
    if (type === REC.domain) {
      if (dom) bad('two DOMAIN records');
      if (len > DOMAIN_MAX) bad(`DOMAIN record of ${len} octets`);
      dom = checkDomain(unpackSafe(b.subarray(body, body + len), bad), maxPages, bad);
      mem = GuestMemory.allocate(dom.memPages);
    } else if (type === REC.pageData) {
      if (!dom || !mem) bad('PAGE_DATA before DOMAIN');
      const m = mem!;
      if (len < 8) bad('PAGE_DATA record too short');
      const count = b.readUInt32LE(body);
      if (count === 0 || count > PAGES_PER_RECORD || len !== 8 + count * 4 + count * PAGE_SIZE)
        bad(`PAGE_DATA record of ${len} octets cannot hold ${count} pages`);
      const data = body + 8 + count * 4;
      for (let k = 0; k < count; k++) {
        const pfn = b.readUInt32LE(body + 8 + k * 4);
        if (!m.validFrame(pfn)) bad(`page frame ${pfn} outside the domain's ${m.pages} pages`);
        m.page(pfn).set(b.subarray(data + k * PAGE_SIZE, data + (k + 1) * PAGE_SIZE));
      }
      pages += count;
    } else bad(`unknown record type ${type} at octet ${at}`);
    at = body + pad8(len);
  }
  if (!dom || !mem) bad('no DOMAIN record');
  return { dom: dom!, mem: mem!, pages };
}

function unpackSafe(body: Uint8Array, bad: (why: string) => never): unknown {
  try {
    return unpack(body);
  } catch (e) {
    return bad(`DOMAIN record does not decode: ${(e as Error).message}`);
  }
}

function checkDomain(v: unknown, maxPages: number, bad: (why: string) => never): SavedDomain {
  const o = v as Partial<SavedDomain> | null;
  const int = (x: unknown, lo: number, hi: number): boolean => Number.isInteger(x) && (x as number) >= lo && (x as number) <= hi;
  if (!o || typeof o !== 'object') return bad('DOMAIN record is not an object');
  if (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 64) bad('DOMAIN name missing or longer than 64');
  if (!int(o.memPages, 1, maxPages)) bad(`memPages ${String(o.memPages)} outside 1..${maxPages}`);
  if (!o.kernel || !int(o.kernel.frame, 0, (o.memPages as number) - 1) || !int(o.kernel.len, 1, (o.memPages as number) * PAGE_SIZE))
    bad("kernel state location outside the domain's RAM");
  if (!Array.isArray(o.vifs) || o.vifs.length === 0 || o.vifs.length > 64) bad('a saved domain has 1 to 64 vifs');
  for (const x of o.vifs!) {
    if (!x || !int(x.handle, 0, 1 << 16) || typeof x.mac !== 'string' || typeof x.ip !== 'string' || !int(x.mtu, 68, 65535))
      bad(`bad vif ${JSON.stringify(x)}`);
  }
  if (!Array.isArray(o.accel)) bad('accel state missing');
  if (!o.from || typeof o.from.host !== 'string' || !int(o.from.domid, 1, 65535)) bad('source domain missing');
  if (typeof o.suspendedAt !== 'number') bad('suspend time missing');
  return o as SavedDomain;
}
