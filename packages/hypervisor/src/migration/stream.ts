/**
 * The save/migration stream: Xen's migration v2 format (libxc's, as
 * tools/libs/guest/xg_sr_stream_format.h and
 * docs/specs/libxc-migration-stream.pandoc define it), version 3, for an x86
 * HVM domain. `xsim domain save` writes it to a file; `restore` reads it
 * back, checking every field before anything is built from it.
 *
 *  image header, struct xc_sr_ihdr (24 octets, BIG-endian whatever the
 *  records' order)
 *   0  marker   u64  0xFFFFFFFFFFFFFFFF
 *   8  id       u32  0x58454E46 ("XENF")
 *  12  version  u32  3
 *  16  options  u16  bit 0 endianness: 0 = little-endian records (always 0 here)
 *  18  _res1    u16  0
 *  20  _res2    u32  0
 *
 *  domain header, struct xc_sr_dhdr (16 octets, little-endian from here on)
 *  24  type       u32  2 (DHDR_TYPE_X86_HVM)
 *  28  page_shift u16  12
 *  30  _res1      u16  0
 *  32  xen_major  u32  4   } the Xen release whose public interfaces
 *  36  xen_minor  u32  17  } xsim's hypervisor follows
 *
 *  then records from octet 40, struct xc_sr_rhdr + body:
 *  +0  type u32 | +4 length u32 | +8 body (length octets, then zeros to a
 *  multiple of REC_ALIGN = 8); a body is at most REC_LENGTH_MAX (128 MiB)
 *
 * What xsim writes, in order:
 *
 *  XSIM_PRODUCER     0xD8530002  optional: the saving xsim's version, UTF-8
 *  XSIM_DOMAIN       0x58530001  mandatory: msgpack of SavedDomain without
 *                                `accel` (config, vifs, where the suspended
 *                                kernel left its record in its RAM)
 *  STATIC_DATA_END   0x00000010  empty (version 3 requires it before PAGE_DATA)
 *  PAGE_DATA         0x00000001  count u32, _res1 u32, count × pfn u64, then
 *                                4096 octets per page that has data; each pfn
 *                                entry is the frame number in bits 0-51 and
 *                                the page type (XEN_DOMCTL_PFINFO_* >> 28) in
 *                                bits 60-63: NOTAB (0) for every page xsim
 *                                writes, at most 1024 entries a record
 *  XSIM_ACCEL_STATE  0xD8530003  optional, one per accelerated vif: msgpack
 *                                {handle, plugin, state} (the plugin's VFIO
 *                                STOP_COPY data)
 *  END               0x00000000  empty
 *
 * Why x86 HVM: xsim's guests are auto-translated. Their grant entries and
 * this stream's pfns are guest frame numbers; no guest keeps a P2M and no
 * page is a page table. That is how libxc sees HVM and PVH guests (it writes
 * PVH as DHDR_TYPE_X86_HVM too); an x86 PV image would need X86_PV_INFO and
 * X86_PV_P2M_FRAMES before PAGE_DATA and typed page-table pages, none of
 * which xsim has. Their devices are paravirtual (netfront), as PVH's are.
 *
 * xsim's own records: Xen hands out record numbers upwards from 0 (0x12 is
 * its highest today) and splits the space on bit 31: 0x00000000-0x7FFFFFFF
 * mandatory ("restoring an image that has unrecognised or unsupported
 * mandatory record must fail"), 0x80000000-0xFFFFFFFF optional ("may be
 * ignored during a restore"). It keeps no range for anyone else, so xsim
 * takes the block 0x5853xxxx ("XS") far above Xen's numbers, and sets bit 31
 * (0xD853xxxx) on the records a reader may skip. XSIM_DOMAIN is mandatory: a
 * libxc restore stops at it ("Mandatory record 0x58530001 not handled")
 * before touching the domain, rather than build a guest that cannot run.
 * XSIM_PRODUCER and XSIM_ACCEL_STATE are optional: without a plugin's state
 * the vif restarts its fast path from nothing, as between NIC models. This
 * reader skips optional records it does not know and refuses mandatory ones
 * (Xen's own included: an image of a real Xen guest is refused at its first
 * HVM or PV record).
 *
 * Pages that are all zeros are not written (a restored domain's RAM starts
 * zeroed), as libxc leaves out frames that are not populated. The stream is
 * written whole, once, at save; live migration copies pages between the two
 * RAMs directly (precopy.ts) and hands over SavedDomain itself.
 *
 * Images in xsim's earlier "XSIMSAV1" format are recognised and refused with
 * that said: they are not read.
 */
import { pack, unpack } from 'msgpackr';
import { GuestMemory, PAGE_SHIFT, PAGE_SIZE } from '../memory.ts';

// ---------------------------------------------------------------------------
// Xen's definitions (xg_sr_stream_format.h, xen/include/public/domctl.h).

/** struct xc_sr_ihdr: marker, id, version, options, _res1, _res2 (big-endian). */
export const IHDR_SIZE = 24;
export const IHDR_MARKER = 0xffffffffffffffffn;
/** "XENF" in ASCII. */
export const IHDR_ID = 0x58454e46;
/** The version xsim writes (Xen 4.14 and later write 3); it reads 2 and 3, as libxc does. */
export const IHDR_VERSION = 3;
export const IHDR_VERSION_MIN = 2;
export const _IHDR_OPT_ENDIAN = 0;
export const IHDR_OPT_LITTLE_ENDIAN = 0 << _IHDR_OPT_ENDIAN;
export const IHDR_OPT_BIG_ENDIAN = 1 << _IHDR_OPT_ENDIAN;

/** struct xc_sr_dhdr: type, page_shift, _res1, xen_major, xen_minor. */
export const DHDR_SIZE = 16;
export const DHDR_TYPE_X86_PV = 0x00000001;
export const DHDR_TYPE_X86_HVM = 0x00000002;
/** The Xen release whose public headers xsim's hypervisor follows, written as xen_major.xen_minor. */
export const XEN_MAJOR = 4;
export const XEN_MINOR = 17;

/** struct xc_sr_rhdr: type, length. */
export const RHDR_SIZE = 8;
export const REC_ALIGN = 8;
export const REC_LENGTH_MAX = 128 << 20;

export const REC_TYPE_END = 0x00000000;
export const REC_TYPE_PAGE_DATA = 0x00000001;
export const REC_TYPE_X86_PV_INFO = 0x00000002;
export const REC_TYPE_X86_PV_P2M_FRAMES = 0x00000003;
export const REC_TYPE_X86_PV_VCPU_BASIC = 0x00000004;
export const REC_TYPE_X86_PV_VCPU_EXTENDED = 0x00000005;
export const REC_TYPE_X86_PV_VCPU_XSAVE = 0x00000006;
export const REC_TYPE_SHARED_INFO = 0x00000007;
export const REC_TYPE_X86_TSC_INFO = 0x00000008;
export const REC_TYPE_HVM_CONTEXT = 0x00000009;
export const REC_TYPE_HVM_PARAMS = 0x0000000a;
export const REC_TYPE_TOOLSTACK = 0x0000000b;
export const REC_TYPE_X86_PV_VCPU_MSRS = 0x0000000c;
export const REC_TYPE_VERIFY = 0x0000000d;
export const REC_TYPE_CHECKPOINT = 0x0000000e;
export const REC_TYPE_CHECKPOINT_DIRTY_PFN_LIST = 0x0000000f;
export const REC_TYPE_STATIC_DATA_END = 0x00000010;
export const REC_TYPE_X86_CPUID_POLICY = 0x00000011;
export const REC_TYPE_X86_MSR_POLICY = 0x00000012;
/** Bit 31 of a record type: a reader that does not know the record may skip it. */
export const REC_TYPE_OPTIONAL = 0x80000000;

/** struct xc_sr_rec_page_data_header: count u32, _res1 u32, then pfn u64[count]. */
export const PAGE_DATA_HDR_SIZE = 8;
export const PAGE_DATA_PFN_MASK = 0x000fffffffffffffn;
export const PAGE_DATA_TYPE_MASK = 0xf000000000000000n;

/** XEN_DOMCTL_PFINFO_* (public/domctl.h): a page's type, in bits 28-31; PAGE_DATA carries it 32 bits higher. */
export const XEN_DOMCTL_PFINFO_LTAB_SHIFT = 28;
export const XEN_DOMCTL_PFINFO_NOTAB = 0x0 << 28;
export const XEN_DOMCTL_PFINFO_L1TAB = 0x1 << 28;
export const XEN_DOMCTL_PFINFO_L2TAB = 0x2 << 28;
export const XEN_DOMCTL_PFINFO_L3TAB = 0x3 << 28;
export const XEN_DOMCTL_PFINFO_L4TAB = 0x4 << 28;
export const XEN_DOMCTL_PFINFO_LTABTYPE_MASK = 0x7 << 28;
export const XEN_DOMCTL_PFINFO_LPINTAB = 0x80000000;
export const XEN_DOMCTL_PFINFO_XTAB = 0xf0000000;
export const XEN_DOMCTL_PFINFO_XALLOC = 0xe0000000;
export const XEN_DOMCTL_PFINFO_BROKEN = 0xd0000000;
export const XEN_DOMCTL_PFINFO_LTAB_MASK = 0xf0000000;

/** A PAGE_DATA pfn entry: `pfn` with the XEN_DOMCTL_PFINFO_* `type` in its top bits. */
export function pageDataEntry(pfn: number, type = XEN_DOMCTL_PFINFO_NOTAB): bigint {
  return (BigInt(type >>> 0) << 32n) | (BigInt(pfn) & PAGE_DATA_PFN_MASK);
}

// ---------------------------------------------------------------------------
// xsim's records (see the header comment for the range and why).

/** xsim's block of record numbers: 0x5853xxxx ("XS"), mandatory; with REC_TYPE_OPTIONAL, 0xD853xxxx. */
export const XSIM_REC_BASE = 0x58530000;
export const REC_TYPE_XSIM_DOMAIN = XSIM_REC_BASE | 0x0001;
export const REC_TYPE_XSIM_PRODUCER = (REC_TYPE_OPTIONAL | XSIM_REC_BASE | 0x0002) >>> 0;
export const REC_TYPE_XSIM_ACCEL_STATE = (REC_TYPE_OPTIONAL | XSIM_REC_BASE | 0x0003) >>> 0;

/** Pages per PAGE_DATA record (libxc's saver batches 1024 as well). */
export const PAGES_PER_RECORD = 1024;
/** An XSIM_DOMAIN or XSIM_ACCEL_STATE record larger than this is not one xsim wrote. */
const XSIM_RECORD_MAX = 16 << 20;
/** Octets of XSIM_PRODUCER kept. */
const PRODUCER_MAX = 256;

const REC_NAMES: Record<number, string> = {
  [REC_TYPE_END]: 'END',
  [REC_TYPE_PAGE_DATA]: 'PAGE_DATA',
  [REC_TYPE_X86_PV_INFO]: 'X86_PV_INFO',
  [REC_TYPE_X86_PV_P2M_FRAMES]: 'X86_PV_P2M_FRAMES',
  [REC_TYPE_X86_PV_VCPU_BASIC]: 'X86_PV_VCPU_BASIC',
  [REC_TYPE_X86_PV_VCPU_EXTENDED]: 'X86_PV_VCPU_EXTENDED',
  [REC_TYPE_X86_PV_VCPU_XSAVE]: 'X86_PV_VCPU_XSAVE',
  [REC_TYPE_SHARED_INFO]: 'SHARED_INFO',
  [REC_TYPE_X86_TSC_INFO]: 'X86_TSC_INFO',
  [REC_TYPE_HVM_CONTEXT]: 'HVM_CONTEXT',
  [REC_TYPE_HVM_PARAMS]: 'HVM_PARAMS',
  [REC_TYPE_TOOLSTACK]: 'TOOLSTACK',
  [REC_TYPE_X86_PV_VCPU_MSRS]: 'X86_PV_VCPU_MSRS',
  [REC_TYPE_VERIFY]: 'VERIFY',
  [REC_TYPE_CHECKPOINT]: 'CHECKPOINT',
  [REC_TYPE_CHECKPOINT_DIRTY_PFN_LIST]: 'CHECKPOINT_DIRTY_PFN_LIST',
  [REC_TYPE_STATIC_DATA_END]: 'STATIC_DATA_END',
  [REC_TYPE_X86_CPUID_POLICY]: 'X86_CPUID_POLICY',
  [REC_TYPE_X86_MSR_POLICY]: 'X86_MSR_POLICY',
  [REC_TYPE_XSIM_DOMAIN]: 'XSIM_DOMAIN',
  [REC_TYPE_XSIM_PRODUCER]: 'XSIM_PRODUCER',
  [REC_TYPE_XSIM_ACCEL_STATE]: 'XSIM_ACCEL_STATE',
};

const hex8 = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
/** "PAGE_DATA (0x00000001)", or the number alone for a type no one named. */
export function recordTypeName(type: number): string {
  const n = REC_NAMES[type >>> 0];
  return n ? `${n} (${hex8(type)})` : hex8(type);
}

const PAGE_TYPE_NAMES: Record<number, string> = {
  0x0: 'NOTAB',
  0x1: 'L1TAB',
  0x2: 'L2TAB',
  0x3: 'L3TAB',
  0x4: 'L4TAB',
  0x9: 'L1TAB_PIN',
  0xa: 'L2TAB_PIN',
  0xb: 'L3TAB_PIN',
  0xc: 'L4TAB_PIN',
  0xd: 'BROKEN',
  0xe: 'XALLOC',
  0xf: 'XTAB',
};

/** xsim's image format before Xen's (refused, with that said). */
const OLD_MAGIC = 'XSIMSAV1';

// ---------------------------------------------------------------------------

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

const pad8 = (n: number): number => (n + REC_ALIGN - 1) & ~(REC_ALIGN - 1);

function record(type: number, body: Uint8Array): Buffer {
  if (body.length > REC_LENGTH_MAX) throw new RangeError(`${recordTypeName(type)} record of ${body.length} octets exceeds REC_LENGTH_MAX`);
  const out = Buffer.alloc(RHDR_SIZE + pad8(body.length));
  out.writeUInt32LE(type >>> 0, 0);
  out.writeUInt32LE(body.length, 4);
  out.set(body, RHDR_SIZE);
  return out;
}

/** The image header (big-endian) and the domain header. */
function headers(): Buffer {
  const h = Buffer.alloc(IHDR_SIZE + DHDR_SIZE);
  h.writeBigUInt64BE(IHDR_MARKER, 0);
  h.writeUInt32BE(IHDR_ID, 8);
  h.writeUInt32BE(IHDR_VERSION, 12);
  h.writeUInt16BE(IHDR_OPT_LITTLE_ENDIAN, 16);
  const d = IHDR_SIZE;
  h.writeUInt32LE(DHDR_TYPE_X86_HVM, d);
  h.writeUInt16LE(PAGE_SHIFT, d + 4);
  h.writeUInt32LE(XEN_MAJOR, d + 8);
  h.writeUInt32LE(XEN_MINOR, d + 12);
  return h;
}

function isZero(page: Uint8Array): boolean {
  const w = new BigUint64Array(page.buffer, page.byteOffset, PAGE_SIZE / 8);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0n) return false;
  return true;
}

/**
 * Encode a domain and the pages of `mem` that are not all zeros.
 * `producer` (e.g. "xsim 0.1.0") goes in the optional XSIM_PRODUCER record.
 */
export function encodeSaveStream(dom: SavedDomain, mem: GuestMemory, o: { producer?: string } = {}): { bytes: Buffer; pages: number } {
  const parts: Buffer[] = [headers()];
  if (o.producer) parts.push(record(REC_TYPE_XSIM_PRODUCER, Buffer.from(o.producer.slice(0, PRODUCER_MAX), 'utf8')));
  const { accel, ...rest } = dom;
  parts.push(record(REC_TYPE_XSIM_DOMAIN, pack(rest)), record(REC_TYPE_STATIC_DATA_END, new Uint8Array(0)));
  const pfns: number[] = [];
  for (let p = 0; p < mem.pages; p++) if (!isZero(mem.page(p))) pfns.push(p);
  for (let i = 0; i < pfns.length; i += PAGES_PER_RECORD) {
    const batch = pfns.slice(i, i + PAGES_PER_RECORD);
    const data = PAGE_DATA_HDR_SIZE + batch.length * 8;
    const body = Buffer.alloc(data + batch.length * PAGE_SIZE);
    body.writeUInt32LE(batch.length, 0);
    batch.forEach((pfn, k) => {
      body.writeBigUInt64LE(pageDataEntry(pfn), PAGE_DATA_HDR_SIZE + k * 8);
      body.set(mem.page(pfn), data + k * PAGE_SIZE);
    });
    parts.push(record(REC_TYPE_PAGE_DATA, body));
  }
  for (const a of accel) parts.push(record(REC_TYPE_XSIM_ACCEL_STATE, pack({ handle: a.handle, plugin: a.plugin, state: a.state })));
  parts.push(record(REC_TYPE_END, new Uint8Array(0)));
  return { bytes: Buffer.concat(parts), pages: pfns.length };
}

export class SaveStreamError extends Error {}

export interface DecodedSaveStream {
  dom: SavedDomain;
  mem: GuestMemory;
  /** Pages written from PAGE_DATA records. */
  pages: number;
  /** The saving xsim, from XSIM_PRODUCER (null without one). */
  producer: string | null;
  /** The domain header's xen_major.xen_minor. */
  xen: { major: number; minor: number };
}

/** Decode a stream into a fresh RAM; every header field, length, pfn and record is checked first. */
export function decodeSaveStream(bytes: Uint8Array, maxPages: number): DecodedSaveStream {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string): never => {
    throw new SaveStreamError(`not a usable xsim save image: ${why}`);
  };
  const xen = checkHeaders(b, bad);
  const version = b.readUInt32BE(12);
  let at = IHDR_SIZE + DHDR_SIZE;
  let dom: SavedDomain | undefined;
  let mem: GuestMemory | undefined;
  let staticEnd = false;
  let pages = 0;
  let producer: string | null = null;
  for (;;) {
    const left = b.length - at;
    if (left < RHDR_SIZE) bad(`truncated at octet ${at}: ${left} octets left where a record header needs ${RHDR_SIZE} (no END record)`);
    const type = b.readUInt32LE(at);
    const len = b.readUInt32LE(at + 4);
    const name = recordTypeName(type);
    const where = `${name} record at octet ${at}`;
    if (len > REC_LENGTH_MAX) bad(`${where}: length ${len} exceeds REC_LENGTH_MAX (${REC_LENGTH_MAX})`);
    const body = at + RHDR_SIZE;
    if (pad8(len) > b.length - body) bad(`${where} runs past the end: ${len} octets of body (${pad8(len)} with padding), ${b.length - body} left`);
    const content = b.subarray(body, body + len);
    if (type === REC_TYPE_END) {
      if (len !== 0) bad(`${where} has a body of ${len} octets (END has none)`);
      break;
    }
    switch (type) {
      case REC_TYPE_XSIM_DOMAIN:
        if (dom) bad(`${where}: a second XSIM_DOMAIN`);
        if (staticEnd) bad(`${where} after STATIC_DATA_END (it is static data: the domain's size comes before its pages)`);
        if (len > XSIM_RECORD_MAX) bad(`${where}: ${len} octets, more than ${XSIM_RECORD_MAX}`);
        dom = checkDomain(unpackSafe(content, where, bad), maxPages, bad);
        mem = GuestMemory.allocate(dom.memPages);
        break;
      case REC_TYPE_XSIM_PRODUCER:
        producer = content.toString('utf8', 0, Math.min(len, PRODUCER_MAX));
        break;
      case REC_TYPE_STATIC_DATA_END:
        if (staticEnd) bad(`${where}: a second STATIC_DATA_END`);
        if (!dom) bad(`${where} before XSIM_DOMAIN`);
        staticEnd = true;
        break;
      case REC_TYPE_PAGE_DATA:
        if (!dom || !mem) bad(`${where} before XSIM_DOMAIN`);
        // Version 2 has no STATIC_DATA_END: libxc infers it at the first PAGE_DATA.
        if (version < 3) staticEnd = true;
        if (!staticEnd) bad(`${where} before STATIC_DATA_END`);
        pages += pageData(mem!, content, where, bad);
        break;
      case REC_TYPE_XSIM_ACCEL_STATE:
        if (!dom) bad(`${where} before XSIM_DOMAIN`);
        dom!.accel.push(checkAccel(unpackSafe(content, where, bad), dom!, where, bad));
        break;
      default:
        // As libxc: an optional record no one here knows is skipped; a mandatory one ends the restore.
        if ((type & REC_TYPE_OPTIONAL) === 0) bad(`${where}: a mandatory record xsim does not handle`);
    }
    at = body + pad8(len);
  }
  if (!dom || !mem) bad('no XSIM_DOMAIN record');
  if (version >= 3 && !staticEnd) bad('no STATIC_DATA_END record');
  return { dom: dom!, mem: mem!, pages, producer, xen };
}

/** The image header, then the domain header: each field checked in the order libxc reads them. */
function checkHeaders(b: Buffer, bad: (why: string) => never): { major: number; minor: number } {
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
function pageData(mem: GuestMemory, c: Buffer, where: string, bad: (why: string) => never): number {
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

function unpackSafe(body: Uint8Array, where: string, bad: (why: string) => never): unknown {
  try {
    return unpack(body);
  } catch (e) {
    return bad(`${where} does not decode: ${(e as Error).message}`);
  }
}

function checkDomain(v: unknown, maxPages: number, bad: (why: string) => never): SavedDomain {
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

function checkAccel(v: unknown, dom: SavedDomain, where: string, bad: (why: string) => never): SavedDomain['accel'][number] {
  const o = v as { handle?: unknown; plugin?: unknown; state?: unknown } | null;
  if (!o || typeof o !== 'object') return bad(`${where} is not an object`);
  if (!dom.vifs.some((x) => x.handle === o.handle)) bad(`${where}: handle ${String(o.handle)} is none of the domain's vifs`);
  if (dom.accel.some((x) => x.handle === o.handle)) bad(`${where}: a second state for vif ${String(o.handle)}`);
  if (typeof o.plugin !== 'string' || o.plugin.length === 0 || o.plugin.length > 64) bad(`${where}: plugin name missing or longer than 64`);
  return { handle: o.handle as number, plugin: o.plugin as string, state: o.state };
}
