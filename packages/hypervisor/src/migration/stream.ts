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
 * A save file writes only pages that are not all zeros (a restored domain's
 * RAM starts zeroed), as libxc leaves out frames that are not populated.
 *
 * A live stream (migration between partitions, over TCP) is in libxc's live
 * order instead: the headers, STATIC_DATA_END, then PAGE_DATA records round
 * after round while the guest runs (a page sent again in a later round
 * overwrites the earlier copy), and only after the suspend XSIM_DOMAIN,
 * XSIM_ACCEL_STATE and END, as libxc sends HVM_CONTEXT and HVM_PARAMS after
 * the pages. The receiver learns the domain's size before the stream (xl
 * sends the domain's configuration first), so its reader is told memPages.
 * Between hosts of one process, live migration copies pages between the two
 * RAMs directly (precopy.ts) and hands over SavedDomain itself.
 *
 * The reader (stream-reader.ts) takes the stream in chunks as they arrive.
 *
 * Images in xsim's earlier "XSIMSAV1" format are recognised and refused with
 * that said: they are not read.
 */
import { pack } from 'msgpackr';
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
export const XSIM_RECORD_MAX = 16 << 20;
/** Octets of XSIM_PRODUCER kept. */
export const PRODUCER_MAX = 256;

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

export const hex8 = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
/** "PAGE_DATA (0x00000001)", or the number alone for a type no one named. */
export function recordTypeName(type: number): string {
  const n = REC_NAMES[type >>> 0];
  return n ? `${n} (${hex8(type)})` : hex8(type);
}

/** A PAGE_DATA entry's type (bits 60-63) by name: XEN_DOMCTL_PFINFO_* >> 28. */
export const PAGE_TYPE_NAMES: Record<number, string> = {
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
export const OLD_MAGIC = 'XSIMSAV1';

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

export const pad8 = (n: number): number => (n + REC_ALIGN - 1) & ~(REC_ALIGN - 1);

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

/** XSIM_PRODUCER: the saving xsim's version (optional record). */
export function producerRecord(producer: string): Buffer {
  return record(REC_TYPE_XSIM_PRODUCER, Buffer.from(producer.slice(0, PRODUCER_MAX), 'utf8'));
}

/** XSIM_DOMAIN: the domain without its plugins' states (they go in XSIM_ACCEL_STATE records). */
export function domainRecord(dom: SavedDomain): Buffer {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { accel, ...rest } = dom;
  return record(REC_TYPE_XSIM_DOMAIN, pack(rest));
}

/** STATIC_DATA_END (empty). */
export function staticDataEndRecord(): Buffer {
  return record(REC_TYPE_STATIC_DATA_END, new Uint8Array(0));
}

/** PAGE_DATA records for `pfns` of `mem`, PAGES_PER_RECORD a record, every page with its data (type NOTAB). */
export function pageDataRecords(mem: GuestMemory, pfns: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < pfns.length; i += PAGES_PER_RECORD) {
    const batch = pfns.slice(i, i + PAGES_PER_RECORD);
    const data = PAGE_DATA_HDR_SIZE + batch.length * 8;
    const body = Buffer.alloc(data + batch.length * PAGE_SIZE);
    body.writeUInt32LE(batch.length, 0);
    batch.forEach((pfn, k) => {
      body.writeBigUInt64LE(pageDataEntry(pfn), PAGE_DATA_HDR_SIZE + k * 8);
      body.set(mem.page(pfn), data + k * PAGE_SIZE);
    });
    out.push(record(REC_TYPE_PAGE_DATA, body));
  }
  return out;
}

/** XSIM_ACCEL_STATE records, one per accelerated vif, then END. */
export function closingRecords(accel: SavedDomain['accel']): Buffer[] {
  return [
    ...accel.map((a) => record(REC_TYPE_XSIM_ACCEL_STATE, pack({ handle: a.handle, plugin: a.plugin, state: a.state }))),
    record(REC_TYPE_END, new Uint8Array(0)),
  ];
}

/** The image and domain headers, and XSIM_PRODUCER when `producer` is given: how every stream starts. */
export function streamStart(o: { producer?: string } = {}): Buffer[] {
  return o.producer ? [headers(), producerRecord(o.producer)] : [headers()];
}

/** The pfns of `mem` whose page is not all zeros (a restored domain's RAM starts zeroed, so only these are written). */
export function populatedPages(mem: GuestMemory): number[] {
  const pfns: number[] = [];
  for (let p = 0; p < mem.pages; p++) if (!isZero(mem.page(p))) pfns.push(p);
  return pfns;
}

/**
 * Encode a domain and the pages of `mem` that are not all zeros, in a save
 * file's order: XSIM_DOMAIN first (the domain's size before its pages).
 * `producer` (e.g. "xsim 0.1.0") goes in the optional XSIM_PRODUCER record.
 */
export function encodeSaveStream(dom: SavedDomain, mem: GuestMemory, o: { producer?: string } = {}): { bytes: Buffer; pages: number } {
  const pfns = populatedPages(mem);
  const parts = [...streamStart(o), domainRecord(dom), staticDataEndRecord(), ...pageDataRecords(mem, pfns), ...closingRecords(dom.accel)];
  return { bytes: Buffer.concat(parts), pages: pfns.length };
}
