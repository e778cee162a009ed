/**
 * The save/migration stream's reader (the format is in stream.ts): it takes
 * the stream in chunks as they arrive (a file read whole, or a TCP socket
 * during a migration between partitions) and checks every header field,
 * length, pfn and record before anything is built from it. A record is
 * refused as soon as its header says it is too long, so a hostile sender
 * cannot make the reader hold more than one record's worth (REC_LENGTH_MAX).
 *
 * Two orders are read:
 *  - a save file's: XSIM_DOMAIN, STATIC_DATA_END, PAGE_DATA..., XSIM_ACCEL_STATE..., END;
 *  - a live stream's (the caller knows the domain's size beforehand, from
 *    the migration's header, and says `memPages`): STATIC_DATA_END,
 *    PAGE_DATA... (a pfn may come again: the later copy wins), XSIM_DOMAIN
 *    (its memPages must be the size announced), XSIM_ACCEL_STATE..., END.
 */
import { unpack } from 'msgpackr';
import { GuestMemory, PAGE_SHIFT, PAGE_SIZE } from '../memory.ts';
import {
  DHDR_SIZE,
  DHDR_TYPE_X86_HVM,
  DHDR_TYPE_X86_PV,
  IHDR_ID,
  IHDR_MARKER,
  IHDR_OPT_BIG_ENDIAN,
  IHDR_SIZE,
  IHDR_VERSION,
  IHDR_VERSION_MIN,
  OLD_MAGIC,
  PAGE_DATA_HDR_SIZE,
  PAGE_DATA_PFN_MASK,
  PAGE_DATA_TYPE_MASK,
  PAGE_TYPE_NAMES,
  PRODUCER_MAX,
  REC_LENGTH_MAX,
  REC_TYPE_END,
  REC_TYPE_OPTIONAL,
  REC_TYPE_PAGE_DATA,
  REC_TYPE_STATIC_DATA_END,
  REC_TYPE_XSIM_ACCEL_STATE,
  REC_TYPE_XSIM_DOMAIN,
  REC_TYPE_XSIM_PRODUCER,
  RHDR_SIZE,
  XSIM_RECORD_MAX,
  hex8,
  pad8,
  recordTypeName,
  type SavedDomain,
} from './stream.ts';

export class SaveStreamError extends Error {}

export interface DecodedSaveStream {
  dom: SavedDomain;
  mem: GuestMemory;
  /** Pages written from PAGE_DATA records (a page sent in two rounds counts twice). */
  pages: number;
  /** The saving xsim, from XSIM_PRODUCER (null without one). */
  producer: string | null;
  /** The domain header's xen_major.xen_minor. */
  xen: { major: number; minor: number };
}

export interface SaveStreamReaderOptions {
  /** The largest domain (pages) the reader will build. */
  maxPages: number;
  /** A live stream: the domain's size, announced before the stream; its pages may come before XSIM_DOMAIN. */
  memPages?: number;
}

type Bad = (why: string) => never;

const bad: Bad = (why) => {
  throw new SaveStreamError(`not a usable xsim save image: ${why}`);
};

/** Reads one stream, chunk by chunk: push() until it returns true (END read), then result(). */
export class SaveStreamReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Octets of the stream consumed before the first buffered one. */
  private consumed = 0;
  private version = 0;
  private xen: { major: number; minor: number } | null = null;
  private dom: SavedDomain | undefined;
  private mem: GuestMemory | undefined;
  private staticEnd = false;
  private pages = 0;
  private producer: string | null = null;
  private ended = false;
  /** The record whose header was read and whose body is awaited. */
  private pending: { type: number; len: number; at: number } | null = null;

  constructor(private readonly o: SaveStreamReaderOptions) {
    if (o.memPages !== undefined) {
      if (!Number.isInteger(o.memPages) || o.memPages < 1 || o.memPages > o.maxPages) bad(`announced memPages ${o.memPages} outside 1..${o.maxPages}`);
      this.mem = GuestMemory.allocate(o.memPages);
    }
  }

  /** True once END was read (octets after it are not read). */
  get done(): boolean {
    return this.ended;
  }

  /** What came after END (the next message of whoever sent the stream), taken out of the reader. */
  trailing(): Buffer {
    const out = Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    return out;
  }

  /** Octets read so far. */
  get octets(): number {
    return this.consumed + this.buffered;
  }

  /** Take the next chunk; true once END was read. Throws SaveStreamError at the first fault. */
  push(chunk: Uint8Array): boolean {
    if (this.ended) return true;
    if (chunk.length > 0) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.buffered += chunk.length;
    }
    for (;;) {
      if (this.xen === null) {
        if (this.buffered < IHDR_SIZE + DHDR_SIZE) return false;
        const h = this.take(IHDR_SIZE + DHDR_SIZE);
        this.xen = checkHeaders(h);
        this.version = h.readUInt32BE(12);
        continue;
      }
      if (this.pending === null) {
        if (this.buffered < RHDR_SIZE) return false;
        const at = this.consumed;
        const h = this.take(RHDR_SIZE);
        const type = h.readUInt32LE(0);
        const len = h.readUInt32LE(4);
        if (len > REC_LENGTH_MAX) bad(`${recordTypeName(type)} record at octet ${at}: length ${len} exceeds REC_LENGTH_MAX (${REC_LENGTH_MAX})`);
        this.pending = { type, len, at };
      }
      const p = this.pending;
      if (this.buffered < pad8(p.len)) return false;
      const body = this.take(pad8(p.len)).subarray(0, p.len);
      this.pending = null;
      this.record(p.type, body, `${recordTypeName(p.type)} record at octet ${p.at}`);
      if (this.ended) return true;
    }
  }

  /** The decoded domain; throws naming what is missing if the stream ended early or without its records. */
  result(): DecodedSaveStream {
    if (this.xen === null) {
      checkHeaders(this.take(this.buffered));
      bad('no image header'); // not reached: checkHeaders refuses a short header
    }
    if (!this.ended) {
      const p = this.pending;
      if (p)
        bad(
          `${recordTypeName(p.type)} record at octet ${p.at} runs past the end: ${p.len} octets of body (${pad8(p.len)} with padding), ${this.buffered} left`,
        );
      bad(`truncated at octet ${this.consumed}: ${this.buffered} octets left where a record header needs ${RHDR_SIZE} (no END record)`);
    }
    if (!this.dom || !this.mem) bad('no XSIM_DOMAIN record');
    if (this.version >= 3 && !this.staticEnd) bad('no STATIC_DATA_END record');
    return { dom: this.dom!, mem: this.mem!, pages: this.pages, producer: this.producer, xen: this.xen! };
  }

  /** `n` buffered octets as one Buffer (n <= buffered). */
  private take(n: number): Buffer {
    let out: Buffer;
    if (this.chunks[0] && this.chunks[0].length >= n) {
      out = this.chunks[0].subarray(0, n);
    } else {
      const all = Buffer.concat(this.chunks);
      this.chunks = [all];
      out = all.subarray(0, n);
    }
    const rest = this.chunks[0].subarray(n);
    if (rest.length > 0) this.chunks[0] = rest;
    else this.chunks.shift();
    this.buffered -= n;
    this.consumed += n;
    return out;
  }

  private record(type: number, content: Buffer, where: string): void {
    const len = content.length;
    const live = this.o.memPages !== undefined;
    switch (type) {
      case REC_TYPE_END:
        if (len !== 0) bad(`${where} has a body of ${len} octets (END has none)`);
        this.ended = true;
        return;
      case REC_TYPE_XSIM_DOMAIN: {
        if (this.dom) bad(`${where}: a second XSIM_DOMAIN`);
        if (this.staticEnd && !live) bad(`${where} after STATIC_DATA_END (it is static data: the domain's size comes before its pages)`);
        if (len > XSIM_RECORD_MAX) bad(`${where}: ${len} octets, more than ${XSIM_RECORD_MAX}`);
        const dom = checkDomain(unpackSafe(content, where), this.o.maxPages);
        if (live && dom.memPages !== this.o.memPages) bad(`${where}: memPages ${dom.memPages}, but the migration announced ${this.o.memPages}`);
        this.dom = dom;
        this.mem ??= GuestMemory.allocate(dom.memPages);
        return;
      }
      case REC_TYPE_XSIM_PRODUCER:
        this.producer = content.toString('utf8', 0, Math.min(len, PRODUCER_MAX));
        return;
      case REC_TYPE_STATIC_DATA_END:
        if (this.staticEnd) bad(`${where}: a second STATIC_DATA_END`);
        if (!this.dom && !live) bad(`${where} before XSIM_DOMAIN`);
        this.staticEnd = true;
        return;
      case REC_TYPE_PAGE_DATA:
        if (!this.mem) bad(`${where} before XSIM_DOMAIN`);
        // Version 2 has no STATIC_DATA_END: libxc infers it at the first PAGE_DATA.
        if (this.version < 3) this.staticEnd = true;
        if (!this.staticEnd) bad(`${where} before STATIC_DATA_END`);
        if (live && this.dom) bad(`${where} after XSIM_DOMAIN (a live stream sends the domain's state after its last pages)`);
        this.pages += pageData(this.mem!, content, where);
        return;
      case REC_TYPE_XSIM_ACCEL_STATE:
        if (!this.dom) bad(`${where} before XSIM_DOMAIN`);
        this.dom!.accel.push(checkAccel(unpackSafe(content, where), this.dom!, where));
        return;
      default:
        // As libxc: an optional record no one here knows is skipped; a mandatory one ends the restore.
        if ((type & REC_TYPE_OPTIONAL) === 0) bad(`${where}: a mandatory record xsim does not handle`);
    }
  }
}

/** Decode a whole stream into a fresh RAM; every header field, length, pfn and record is checked first. */
export function decodeSaveStream(bytes: Uint8Array, maxPages: number): DecodedSaveStream {
  const r = new SaveStreamReader({ maxPages });
  r.push(bytes);
  return r.result();
}

/** The image header, then the domain header: each field checked in the order libxc reads them. */
function checkHeaders(b: Buffer): { major: number; minor: number } {
  if (b.length >= OLD_MAGIC.length && b.toString('latin1', 0, OLD_MAGIC.length) === OLD_MAGIC)
    bad(`an image in xsim's earlier "${OLD_MAGIC}" format, which this xsim does not read (it reads Xen's migration v2 stream)`);
  if (b.length >= 8) {
    const marker = b.readBigUInt64BE(0);
    if (marker !== IHDR_MARKER)
      bad(`image header marker 0x${marker.toString(16).padStart(16, '0')}, expected 0xffffffffffffffff (not a Xen migration v2 stream)`);
  }
  if (b.length < IHDR_SIZE + DHDR_SIZE) bad(`${b.length} octets: shorter than the image and domain headers (${IHDR_SIZE + DHDR_SIZE})`);
  const id = b.readUInt32BE(8);
  if (id !== IHDR_ID) bad(`image header id ${hex8(id)}, expected ${hex8(IHDR_ID)} ("XENF")`);
  const version = b.readUInt32BE(12);
  if (version < IHDR_VERSION_MIN || version > IHDR_VERSION)
    bad(`image header version ${version}, this xsim reads versions ${IHDR_VERSION_MIN} to ${IHDR_VERSION}`);
  // Bits 1-15 of options are reserved: ignored on restore, as the spec says.
  const options = b.readUInt16BE(16);
  if (options & IHDR_OPT_BIG_ENDIAN)
    bad(`image header options 0x${options.toString(16).padStart(4, '0')}: a big-endian stream, and xsim (as libxc) reads little-endian ones only`);
  const d = IHDR_SIZE;
  const type = b.readUInt32LE(d);
  if (type !== DHDR_TYPE_X86_HVM)
    bad(`domain header type ${type}${type === DHDR_TYPE_X86_PV ? ' (x86 PV)' : ''}, xsim reads x86 HVM images (type ${DHDR_TYPE_X86_HVM}) only`);
  const shift = b.readUInt16LE(d + 4);
  if (shift !== PAGE_SHIFT) bad(`domain header page_shift ${shift}, xsim's pages are ${PAGE_SIZE} octets (page_shift ${PAGE_SHIFT})`);
  return { major: b.readUInt32LE(d + 8), minor: b.readUInt32LE(d + 12) };
}

/** One PAGE_DATA record into `mem`, checked as libxc's handle_page_data checks it; the pages it wrote. */
function pageData(mem: GuestMemory, c: Buffer, where: string): number {
  if (c.length < PAGE_DATA_HDR_SIZE) bad(`${where}: ${c.length} octets, shorter than its ${PAGE_DATA_HDR_SIZE}-octet header`);
  const count = c.readUInt32LE(0);
  if (count < 1) bad(`${where}: count 0 (a PAGE_DATA record describes at least one page)`);
  if (c.length < PAGE_DATA_HDR_SIZE + count * 8) bad(`${where}: ${c.length} octets cannot hold ${count} pfns`);
  const pfns: number[] = [];
  const types: number[] = [];
  let withData = 0;
  for (let k = 0; k < count; k++) {
    const e = c.readBigUInt64LE(PAGE_DATA_HDR_SIZE + k * 8);
    // Bits 52-59 are reserved: ignored on restore, as libxc does.
    const pfn = Number(e & PAGE_DATA_PFN_MASK);
    const type = Number((e & PAGE_DATA_TYPE_MASK) >> 60n);
    if (!mem.validFrame(pfn)) bad(`${where}: pfn ${pfn} (index ${k}) outside the domain's ${mem.pages} pages`);
    const tname = PAGE_TYPE_NAMES[type];
    if (tname === undefined) bad(`${where}: pfn ${pfn} (index ${k}) has unknown page type 0x${type.toString(16)}`);
    if (type >= 0x1 && type <= 0xc) bad(`${where}: pfn ${pfn} (index ${k}) has page type ${tname}, a page table, and xsim's (HVM) guests have none to restore`);
    if (type === 0x0) withData++;
    pfns.push(pfn);
    types.push(type);
  }
  const expected = PAGE_DATA_HDR_SIZE + count * 8 + withData * PAGE_SIZE;
  if (c.length !== expected)
    bad(
      `${where}: length ${c.length}, but count ${count} with ${withData} pages of data makes ${PAGE_DATA_HDR_SIZE} + 8×${count} + ${PAGE_SIZE}×${withData} = ${expected}`,
    );
  let data = PAGE_DATA_HDR_SIZE + count * 8;
  for (let k = 0; k < count; k++) {
    if (types[k] === 0x0) {
      mem.page(pfns[k]).set(c.subarray(data, data + PAGE_SIZE));
      data += PAGE_SIZE;
    } else {
      // XTAB, XALLOC, BROKEN: no data in the stream; the frame holds nothing.
      mem.page(pfns[k]).fill(0);
    }
  }
  return withData;
}

function unpackSafe(body: Uint8Array, where: string): unknown {
  try {
    return unpack(body);
  } catch (e) {
    return bad(`${where} does not decode: ${(e as Error).message}`);
  }
}

function checkDomain(v: unknown, maxPages: number): SavedDomain {
  const o = v as Partial<SavedDomain> | null;
  const int = (x: unknown, lo: number, hi: number): boolean => Number.isInteger(x) && (x as number) >= lo && (x as number) <= hi;
  if (!o || typeof o !== 'object') return bad('XSIM_DOMAIN record is not an object');
  if (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 64) bad('XSIM_DOMAIN name missing or longer than 64');
  if (!int(o.memPages, 1, maxPages)) bad(`memPages ${String(o.memPages)} outside 1..${maxPages}`);
  if (!o.kernel || !int(o.kernel.frame, 0, (o.memPages as number) - 1) || !int(o.kernel.len, 1, (o.memPages as number) * PAGE_SIZE))
    bad("kernel state location outside the domain's RAM");
  if (!Array.isArray(o.vifs) || o.vifs.length === 0 || o.vifs.length > 64) bad('a saved domain has 1 to 64 vifs');
  for (const x of o.vifs!) {
    if (!x || !int(x.handle, 0, 1 << 16) || typeof x.mac !== 'string' || typeof x.ip !== 'string' || !int(x.mtu, 68, 65535))
      bad(`bad vif ${JSON.stringify(x)}`);
  }
  if (!o.from || typeof o.from.host !== 'string' || !int(o.from.domid, 1, 65535)) bad('source domain missing');
  if (typeof o.suspendedAt !== 'number') bad('suspend time missing');
  // Plugins' states come in XSIM_ACCEL_STATE records, never in this one.
  return { ...(o as SavedDomain), accel: [] };
}

function checkAccel(v: unknown, dom: SavedDomain, where: string): SavedDomain['accel'][number] {
  const o = v as { handle?: unknown; plugin?: unknown; state?: unknown } | null;
  if (!o || typeof o !== 'object') return bad(`${where} is not an object`);
  if (!dom.vifs.some((x) => x.handle === o.handle)) bad(`${where}: handle ${String(o.handle)} is none of the domain's vifs`);
  if (dom.accel.some((x) => x.handle === o.handle)) bad(`${where}: a second state for vif ${String(o.handle)}`);
  if (typeof o.plugin !== 'string' || o.plugin.length === 0 || o.plugin.length > 64) bad(`${where}: plugin name missing or longer than 64`);
  return { handle: o.handle as number, plugin: o.plugin as string, state: o.state };
}
