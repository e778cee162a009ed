/**
 * What test/xen-abi.test.ts checks: every size, offset and constant of the
 * Xen ABI xsim defines, each beside the C expression that gives the same
 * number (or string) from Xen's public headers, and the C program that
 * prints those (`npx tsx test/abi/xen-abi.ts` writes it to stdout).
 *
 * The ABI modules (abi/ring.ts, abi/netif.ts, abi/grant-table.ts), the
 * event channels' shared_info (evtchn.ts) and the save/migration stream
 * (migration/stream.ts) are scanned: every number and bigint they export is
 * checked, under the C name of the same spelling unless C_EXPR maps it, so a
 * constant added there is checked without touching this file; one the
 * headers lack fails until it is mapped here, given its number from Xen's
 * source in SPEC, or named in XSIM_ONLY with the reason. The xenstore wire
 * protocol, XenbusState, domain ids and the page size live in modules with
 * other things in them: their ABI values are listed in otherChecks().
 *
 * Two translation units: the guest's view (xen-abi.c: what a kernel
 * includes, no __XEN_TOOLS__) and the toolstack's (xen-abi-tools.c:
 * __XEN_TOOLS__ defined before any Xen header, as domctl.h requires), which
 * checks the migration stream's XEN_DOMCTL_PFINFO_* page types.
 *
 * The stream's own format (headers, record types, PAGE_DATA) is in
 * tools/libs/guest/xg_sr_stream_format.h, which libxen-dev does not install:
 * SPEC holds those numbers as read from xen.git, each with the line it comes
 * from. That check is against the text of Xen's source as vendored here, not
 * against a compiled header: weaker, and reported apart (compareSpec).
 */
import { pathToFileURL } from 'node:url';
import * as GRANT from '../../packages/hypervisor/src/abi/grant-table.ts';
import * as NETIF from '../../packages/hypervisor/src/abi/netif.ts';
import * as RING from '../../packages/hypervisor/src/abi/ring.ts';
import * as EVTCHN from '../../packages/hypervisor/src/evtchn.ts';
import * as STREAM from '../../packages/hypervisor/src/migration/stream.ts';
import { DOMID_ANY } from '../../packages/hypervisor/src/xs/perms.ts';
import {
  DOMID_FIRST_RESERVED,
  DOMID_MAX,
  DOMID_SELF,
  PAGE_SHIFT,
  PAGE_SIZE,
  STATE_NAMES,
  XENSTORE_PAYLOAD_MAX,
  XSD_ERRORS,
  XS_HEADER_BYTES,
  XenbusState,
  XsType,
} from '@xsim/hypervisor';

export interface Check {
  /** How a failure names it: xsim's module and export, e.g. "netif.ts TXREQ_GREF". */
  name: string;
  xsim: number | bigint | string;
  /** C giving the headers' value (a number, or a string when xsim's is one). */
  c: string;
  /** Compiled in the toolstack's unit (__XEN_TOOLS__, domctl.h) rather than the guest's. */
  tools?: boolean;
  /** Compare only if the headers define this macro; otherwise `otherwise`. */
  ifdef?: string;
  /** Without `ifdef`: a C expression to compare with instead, or null: not compared (`why` says why that is fine). */
  otherwise?: string | null;
  /** Why this check is not plain (a stand-in, or an item some headers lack). */
  why?: string;
}

const PAGE = '(1 << XEN_PAGE_SHIFT)';
const off = (struct: string, field: string): string => `offsetof(${struct}, ${field})`;
const size = (struct: string, field: string): string => `sizeof(((${struct} *)0)->${field})`;
const SRINGS = ['struct netif_tx_sring', 'struct netif_rx_sring', 'struct xen_netif_ctrl_sring'];
const TXREQ = 'struct netif_tx_request';
const TXRSP = 'struct netif_tx_response';
const RXREQ = 'struct netif_rx_request';
const RXRSP = 'struct netif_rx_response';
const EXTRA = 'struct netif_extra_info';
const CTRLREQ = 'struct xen_netif_ctrl_request';
const CTRLRSP = 'struct xen_netif_ctrl_response';
const GREF = 'struct xen_netif_gref';
const GE1 = 'struct grant_entry_v1';
const VI = 'struct vcpu_info';
const SI = 'struct shared_info';
/** shared_info is laid out per architecture; xsim's is x86_64's. */
const X86_64 = { ifdef: '__x86_64__', otherwise: null, why: "xsim's shared_info is x86_64's; this host's headers give another architecture's" } as const;
/** A shared_info field only x86_64 checks (the layout differs elsewhere). */
const x86 = (c: string): Omit<Check, 'name' | 'xsim'> => ({ c, ...X86_64 });
/** In Linux's netif.h, not in Xen's (Xen's own header has never had XDP). */
const XDP = 'XEN_NETIF_EXTRA_TYPE_XDP';
const XDP_WHY = "Linux's netif.h only: Xen's header has no XDP type";

type CExpr = string | Omit<Check, 'name' | 'xsim'>;

/** Scanned exports whose C counterpart is not the same name; several expressions: checked against each. */
export const C_EXPR: Record<string, CExpr | CExpr[]> = {
  SRING_REQ_PROD: SRINGS.map((s) => off(s, 'req_prod')),
  SRING_REQ_EVENT: SRINGS.map((s) => off(s, 'req_event')),
  SRING_RSP_PROD: SRINGS.map((s) => off(s, 'rsp_prod')),
  SRING_RSP_EVENT: SRINGS.map((s) => off(s, 'rsp_event')),
  SRING_PVT: SRINGS.map((s) => off(s, 'pvt')),
  SRING_PVT_SIZE: SRINGS.map((s) => size(s, 'pvt')),
  SRING_PAD: SRINGS.map((s) => off(s, '__pad')),
  SRING_PAD_SIZE: SRINGS.map((s) => size(s, '__pad')),
  SRING_HEADER_SIZE: SRINGS.map((s) => off(s, 'ring')),

  NETIF_TX_REQ_SIZE: `sizeof(${TXREQ})`,
  TXREQ_GREF: off(TXREQ, 'gref'),
  TXREQ_OFFSET: off(TXREQ, 'offset'),
  TXREQ_FLAGS: off(TXREQ, 'flags'),
  TXREQ_ID: off(TXREQ, 'id'),
  TXREQ_SIZE: off(TXREQ, 'size'),
  NETIF_TX_RSP_SIZE: `sizeof(${TXRSP})`,
  TXRSP_ID: off(TXRSP, 'id'),
  TXRSP_STATUS: off(TXRSP, 'status'),
  NETIF_TX_SLOT_SIZE: 'sizeof(union netif_tx_sring_entry)',
  NETIF_RX_REQ_SIZE: `sizeof(${RXREQ})`,
  RXREQ_ID: off(RXREQ, 'id'),
  RXREQ_GREF: off(RXREQ, 'gref'),
  NETIF_RX_RSP_SIZE: `sizeof(${RXRSP})`,
  RXRSP_ID: off(RXRSP, 'id'),
  RXRSP_OFFSET: off(RXRSP, 'offset'),
  RXRSP_FLAGS: off(RXRSP, 'flags'),
  RXRSP_STATUS: off(RXRSP, 'status'),
  NETIF_RX_SLOT_SIZE: 'sizeof(union netif_rx_sring_entry)',
  NET_TX_RING_SIZE: `__CONST_RING_SIZE(netif_tx, ${PAGE})`,
  NET_RX_RING_SIZE: `__CONST_RING_SIZE(netif_rx, ${PAGE})`,
  XEN_NETBK_LEGACY_SLOTS_MAX: 'XEN_NETIF_NR_SLOTS_MIN',

  NETIF_EXTRA_INFO_SIZE: `sizeof(${EXTRA})`,
  EXTRA_TYPE: off(EXTRA, 'type'),
  EXTRA_FLAGS: off(EXTRA, 'flags'),
  EXTRA_U: off(EXTRA, 'u'),
  EXTRA_U_SIZE: size(EXTRA, 'u'),
  EXTRA_GSO_SIZE: off(EXTRA, 'u.gso.size'),
  EXTRA_GSO_TYPE: off(EXTRA, 'u.gso.type'),
  EXTRA_GSO_PAD: off(EXTRA, 'u.gso.pad'),
  EXTRA_GSO_FEATURES: off(EXTRA, 'u.gso.features'),
  EXTRA_MCAST_ADDR: off(EXTRA, 'u.mcast.addr'),
  EXTRA_MCAST_ADDR_LEN: size(EXTRA, 'u.mcast.addr'),
  EXTRA_HASH_TYPE: off(EXTRA, 'u.hash.type'),
  EXTRA_HASH_ALGORITHM: off(EXTRA, 'u.hash.algorithm'),
  EXTRA_HASH_VALUE: off(EXTRA, 'u.hash.value'),
  EXTRA_XDP_HEADROOM: { c: off(EXTRA, 'u.xdp.headroom'), ifdef: XDP, otherwise: null, why: XDP_WHY },
  EXTRA_XDP_PAD: { c: off(EXTRA, 'u.xdp.pad'), ifdef: XDP, otherwise: null, why: XDP_WHY },
  XEN_NETIF_EXTRA_TYPE_XDP: { c: XDP, ifdef: XDP, otherwise: 'XEN_NETIF_EXTRA_TYPE_MAX', why: `${XDP_WHY}; it takes the number after the header's last type` },
  XEN_NETIF_EXTRA_TYPE_MAX: {
    c: 'XEN_NETIF_EXTRA_TYPE_MAX',
    ifdef: XDP,
    otherwise: 'XEN_NETIF_EXTRA_TYPE_MAX + 1',
    why: `${XDP_WHY}, so xsim's MAX is one more than the header's`,
  },

  XEN_NETIF_CTRL_REQ_SIZE: `sizeof(${CTRLREQ})`,
  CTRLREQ_ID: off(CTRLREQ, 'id'),
  CTRLREQ_TYPE: off(CTRLREQ, 'type'),
  CTRLREQ_DATA: off(CTRLREQ, 'data'),
  XEN_NETIF_CTRL_RSP_SIZE: `sizeof(${CTRLRSP})`,
  CTRLRSP_ID: off(CTRLRSP, 'id'),
  CTRLRSP_TYPE: off(CTRLRSP, 'type'),
  CTRLRSP_STATUS: off(CTRLRSP, 'status'),
  CTRLRSP_DATA: off(CTRLRSP, 'data'),
  NETIF_CTRL_SLOT_SIZE: 'sizeof(union xen_netif_ctrl_sring_entry)',
  NET_CTRL_RING_SIZE: `__CONST_RING_SIZE(xen_netif_ctrl, ${PAGE})`,
  XEN_NETIF_GREF_SIZE: `sizeof(${GREF})`,
  NETIF_GREF_REF: off(GREF, 'ref'),
  NETIF_GREF_FLAGS: off(GREF, 'flags'),
  NETIF_GREF_STATUS: off(GREF, 'status'),

  GRANT_ENTRY_V1_SIZE: `sizeof(${GE1})`,
  GRANT_ENTRY_FLAGS_OFFSET: off(GE1, 'flags'),
  GRANT_ENTRY_DOMID_OFFSET: off(GE1, 'domid'),
  GRANT_ENTRY_FRAME_OFFSET: off(GE1, 'frame'),
  GRANT_ENTRIES_PER_FRAME: `${PAGE} / sizeof(${GE1})`,

  // evtchn.ts: struct vcpu_info and struct shared_info (xen.h, arch-x86/xen.h).
  NR_EVTCHN_PORTS: [
    {
      c: 'NR_EVENT_CHANNELS',
      ifdef: 'NR_EVENT_CHANNELS',
      otherwise: 'EVTCHN_2L_NR_CHANNELS',
      why: "xen.h defines NR_EVENT_CHANNELS only for __XEN_INTERFACE_VERSION__ < 0x00040400; later it is event_channel.h's EVTCHN_2L_NR_CHANNELS, sizeof(xen_ulong_t) * sizeof(xen_ulong_t) * 64",
    },
    `sizeof(((${SI} *)0)->evtchn_pending) * 8`,
  ],
  XEN_LEGACY_MAX_VCPUS: [x86('XEN_LEGACY_MAX_VCPUS'), x86(`sizeof(((${SI} *)0)->vcpu_info) / sizeof(${VI})`)],
  VCPU_INFO_SIZE: x86(`sizeof(${VI})`),
  VCPU_INFO_EVTCHN_UPCALL_PENDING: x86(off(VI, 'evtchn_upcall_pending')),
  VCPU_INFO_EVTCHN_UPCALL_MASK: x86(off(VI, 'evtchn_upcall_mask')),
  VCPU_INFO_EVTCHN_PENDING_SEL: x86(off(VI, 'evtchn_pending_sel')),
  VCPU_INFO_ARCH: x86(off(VI, 'arch')),
  VCPU_INFO_TIME: x86(off(VI, 'time')),
  SHARED_INFO_VCPU_INFO: x86(off(SI, 'vcpu_info')),
  SHARED_INFO_EVTCHN_PENDING: x86(off(SI, 'evtchn_pending')),
  SHARED_INFO_EVTCHN_MASK: x86(off(SI, 'evtchn_mask')),
  SHARED_INFO_WC_VERSION: x86(off(SI, 'wc_version')),
  SHARED_INFO_WC_SEC: x86(off(SI, 'wc_sec')),
  SHARED_INFO_WC_NSEC: x86(off(SI, 'wc_nsec')),
  SHARED_INFO_WC_SEC_HI: x86(off(SI, 'wc_sec_hi')),
  SHARED_INFO_ARCH: x86(off(SI, 'arch')),
  ARCH_SHARED_INFO_SIZE: x86('sizeof(struct arch_shared_info)'),
  SHARED_INFO_SIZE: x86(`sizeof(${SI})`),
  // Words of each bitmap, and bits of the selector that picks one.
  EVTCHN_WORDS: [
    `sizeof(((${SI} *)0)->evtchn_pending) / sizeof(xen_ulong_t)`,
    `sizeof(((${SI} *)0)->evtchn_mask) / sizeof(xen_ulong_t)`,
    `sizeof(((${VI} *)0)->evtchn_pending_sel) * 8`,
  ],
  // EventChannels.status(port).state, as EVTCHNOP_status answers.
  ...Object.fromEntries(
    (
      [
        ['ECS_FREE', 'EVTCHNSTAT_closed'],
        ['ECS_UNBOUND', 'EVTCHNSTAT_unbound'],
        ['ECS_INTERDOMAIN', 'EVTCHNSTAT_interdomain'],
        ['ECS_PIRQ', 'EVTCHNSTAT_pirq'],
      ] as const
    ).map(([k, c]) => [
      k,
      {
        c,
        why: "status() answers as EVTCHNOP_status does (event_channel.h's EVTCHNSTAT_*); Xen's own ECS_* of the same names (xen/sched.h, hypervisor-internal) number otherwise, ECS_RESERVED being 1",
      },
    ]),
  ),

  // migration/stream.ts (the toolstack's unit). PAGE_DATA_TYPE_MASK is in SPEC too; this checks where domctl.h's types land.
  PAGE_DATA_TYPE_MASK: {
    c: '(uint64_t)XEN_DOMCTL_PFINFO_LTAB_MASK << 32',
    why: "libxc writes a page's XEN_DOMCTL_PFINFO_* type 32 bits up (xg_sr_save.c:226, ((uint64_t)(types[i]) << 32); read back at xg_sr_restore.c:383), so the mask is domctl.h's LTAB_MASK moved there",
  },
};

/** Scanned exports with no counterpart in the headers or in Xen's source, and why. */
export const XSIM_ONLY: Record<string, string> = {
  GRANT_FRAMES: "xsim's grant-table size per domain, a policy (Xen's default maximum, 64, is a hypervisor option, not a header constant)",
  BINDING_BYTES: "the words a channel's two ends share in place of Xen's hypervisor writing the receiver's shared_info: xsim's, Xen has none",
  XEN_MAJOR:
    "the Xen release xsim says its hypervisor follows, written in the domain header (libxc writes the running Xen's XENVER_version): a claim, not a constant of any header",
  XEN_MINOR: 'as XEN_MAJOR',
  PAGES_PER_RECORD:
    "how many pages xsim puts in a PAGE_DATA record, a writer's choice (libxc's MAX_BATCH_SIZE, xg_save_restore.h:27, is 1024 too; a reader takes any count)",
  XSIM_REC_BASE: "xsim's own block of record types (0x5853xxxx), outside Xen's numbering",
  REC_TYPE_XSIM_DOMAIN: "xsim's own record (XSIM_REC_BASE)",
  REC_TYPE_XSIM_PRODUCER: "xsim's own record (XSIM_REC_BASE | REC_TYPE_OPTIONAL)",
  REC_TYPE_XSIM_ACCEL_STATE: "xsim's own record (XSIM_REC_BASE | REC_TYPE_OPTIONAL)",
  XSIM_RECORD_MAX: "the largest XSIM_DOMAIN or XSIM_ACCEL_STATE record xsim's reader takes (16 MiB): a bound on xsim's own records",
  PRODUCER_MAX: "how many octets of xsim's own XSIM_PRODUCER record are kept",
};

/** Where SPEC's numbers were read: xen.git at the release of the headers xsim follows (libxen-dev 4.17.7). */
export const SPEC_SOURCE = {
  repo: 'xen-project/xen',
  at: 'RELEASE-4.17.7 (commit 9373a593c5a6ef57db1302eb1dca58cc3eb51c07)',
  dir: 'tools/libs/guest/',
  /** Also read at master: the same numbers. */
  alsoAt: 'ce17dc6742507d5d78caea9f3cf089f5fdb92c5e (master, 2026-06): the same numbers and lines, but for line 56, REC_ALIGN_ORDER (3U) renamed REC_ALIGN 8',
} as const;

export interface SpecValue {
  /** The number as read (not compiled). */
  value: number | bigint;
  /** File (under SPEC_SOURCE.dir) and line(s). */
  at: string;
  /** The line it is read from, or for a size what the struct holds. */
  line: string;
}

/**
 * The migration stream's numbers that no installed header has, as read from
 * xen.git at SPEC_SOURCE.at. A size is the sum of the struct's fields (each
 * aligned to its size, none padded: the stream's structs are laid out to
 * need no padding).
 */
export const SPEC: Record<string, SpecValue> = {
  IHDR_SIZE: { value: 24, at: 'xg_sr_stream_format.h:14-22', line: 'struct xc_sr_ihdr: u64 marker, u32 id, u32 version, u16 options, u16 _res1, u32 _res2' },
  IHDR_MARKER: { value: 0xffffffffffffffffn, at: 'xg_sr_stream_format.h:24', line: '#define IHDR_MARKER  0xffffffffffffffffULL' },
  IHDR_ID: { value: 0x58454e46, at: 'xg_sr_stream_format.h:25', line: '#define IHDR_ID      0x58454E46U' },
  IHDR_VERSION: {
    value: 3,
    at: 'xg_sr_save.c:16',
    line: '.version = htonl(3), (write_headers; docs/specs/libxc-migration-stream.pandoc:130: version 0x00000003)',
  },
  IHDR_VERSION_MIN: { value: 2, at: 'xg_sr_restore.c:38', line: 'if ( ihdr.version < 2 || ihdr.version > 3 ) (read_headers)' },
  _IHDR_OPT_ENDIAN: { value: 0, at: 'xg_sr_stream_format.h:27', line: '#define _IHDR_OPT_ENDIAN 0' },
  IHDR_OPT_LITTLE_ENDIAN: { value: 0 << 0, at: 'xg_sr_stream_format.h:28', line: '#define IHDR_OPT_LITTLE_ENDIAN (0 << _IHDR_OPT_ENDIAN)' },
  IHDR_OPT_BIG_ENDIAN: { value: 1 << 0, at: 'xg_sr_stream_format.h:29', line: '#define IHDR_OPT_BIG_ENDIAN    (1 << _IHDR_OPT_ENDIAN)' },
  DHDR_SIZE: { value: 16, at: 'xg_sr_stream_format.h:34-41', line: 'struct xc_sr_dhdr: u32 type, u16 page_shift, u16 _res1, u32 xen_major, u32 xen_minor' },
  DHDR_TYPE_X86_PV: { value: 0x00000001, at: 'xg_sr_stream_format.h:43', line: '#define DHDR_TYPE_X86_PV  0x00000001U' },
  DHDR_TYPE_X86_HVM: { value: 0x00000002, at: 'xg_sr_stream_format.h:44', line: '#define DHDR_TYPE_X86_HVM 0x00000002U' },
  RHDR_SIZE: { value: 8, at: 'xg_sr_stream_format.h:49-53', line: 'struct xc_sr_rhdr: u32 type, u32 length' },
  REC_ALIGN: {
    value: 1 << 3,
    at: 'xg_sr_stream_format.h:56',
    line: '#define REC_ALIGN_ORDER               (3U) (records align to 1 << 3; master: #define REC_ALIGN 8)',
  },
  REC_LENGTH_MAX: { value: 128 << 20, at: 'xg_sr_stream_format.h:58', line: '#define REC_LENGTH_MAX                (128U << 20)' },
  REC_TYPE_END: { value: 0x00000000, at: 'xg_sr_stream_format.h:60', line: '#define REC_TYPE_END                        0x00000000U' },
  REC_TYPE_PAGE_DATA: { value: 0x00000001, at: 'xg_sr_stream_format.h:61', line: '#define REC_TYPE_PAGE_DATA                  0x00000001U' },
  REC_TYPE_X86_PV_INFO: { value: 0x00000002, at: 'xg_sr_stream_format.h:62', line: '#define REC_TYPE_X86_PV_INFO                0x00000002U' },
  REC_TYPE_X86_PV_P2M_FRAMES: { value: 0x00000003, at: 'xg_sr_stream_format.h:63', line: '#define REC_TYPE_X86_PV_P2M_FRAMES          0x00000003U' },
  REC_TYPE_X86_PV_VCPU_BASIC: { value: 0x00000004, at: 'xg_sr_stream_format.h:64', line: '#define REC_TYPE_X86_PV_VCPU_BASIC          0x00000004U' },
  REC_TYPE_X86_PV_VCPU_EXTENDED: { value: 0x00000005, at: 'xg_sr_stream_format.h:65', line: '#define REC_TYPE_X86_PV_VCPU_EXTENDED       0x00000005U' },
  REC_TYPE_X86_PV_VCPU_XSAVE: { value: 0x00000006, at: 'xg_sr_stream_format.h:66', line: '#define REC_TYPE_X86_PV_VCPU_XSAVE          0x00000006U' },
  REC_TYPE_SHARED_INFO: { value: 0x00000007, at: 'xg_sr_stream_format.h:67', line: '#define REC_TYPE_SHARED_INFO                0x00000007U' },
  REC_TYPE_X86_TSC_INFO: { value: 0x00000008, at: 'xg_sr_stream_format.h:68', line: '#define REC_TYPE_X86_TSC_INFO               0x00000008U' },
  REC_TYPE_HVM_CONTEXT: { value: 0x00000009, at: 'xg_sr_stream_format.h:69', line: '#define REC_TYPE_HVM_CONTEXT                0x00000009U' },
  REC_TYPE_HVM_PARAMS: { value: 0x0000000a, at: 'xg_sr_stream_format.h:70', line: '#define REC_TYPE_HVM_PARAMS                 0x0000000aU' },
  REC_TYPE_TOOLSTACK: { value: 0x0000000b, at: 'xg_sr_stream_format.h:71', line: '#define REC_TYPE_TOOLSTACK                  0x0000000bU' },
  REC_TYPE_X86_PV_VCPU_MSRS: { value: 0x0000000c, at: 'xg_sr_stream_format.h:72', line: '#define REC_TYPE_X86_PV_VCPU_MSRS           0x0000000cU' },
  REC_TYPE_VERIFY: { value: 0x0000000d, at: 'xg_sr_stream_format.h:73', line: '#define REC_TYPE_VERIFY                     0x0000000dU' },
  REC_TYPE_CHECKPOINT: { value: 0x0000000e, at: 'xg_sr_stream_format.h:74', line: '#define REC_TYPE_CHECKPOINT                 0x0000000eU' },
  REC_TYPE_CHECKPOINT_DIRTY_PFN_LIST: { value: 0x0000000f, at: 'xg_sr_stream_format.h:75', line: '#define REC_TYPE_CHECKPOINT_DIRTY_PFN_LIST  0x0000000fU' },
  REC_TYPE_STATIC_DATA_END: { value: 0x00000010, at: 'xg_sr_stream_format.h:76', line: '#define REC_TYPE_STATIC_DATA_END            0x00000010U' },
  REC_TYPE_X86_CPUID_POLICY: { value: 0x00000011, at: 'xg_sr_stream_format.h:77', line: '#define REC_TYPE_X86_CPUID_POLICY           0x00000011U' },
  REC_TYPE_X86_MSR_POLICY: { value: 0x00000012, at: 'xg_sr_stream_format.h:78', line: '#define REC_TYPE_X86_MSR_POLICY             0x00000012U' },
  REC_TYPE_OPTIONAL: { value: 0x80000000, at: 'xg_sr_stream_format.h:80', line: '#define REC_TYPE_OPTIONAL             0x80000000U' },
  PAGE_DATA_HDR_SIZE: { value: 8, at: 'xg_sr_stream_format.h:83-88', line: 'struct xc_sr_rec_page_data_header: u32 count, u32 _res1, u64 pfn[0]' },
  PAGE_DATA_PFN_MASK: { value: 0x000fffffffffffffn, at: 'xg_sr_stream_format.h:90', line: '#define PAGE_DATA_PFN_MASK  0x000fffffffffffffULL' },
  PAGE_DATA_TYPE_MASK: { value: 0xf000000000000000n, at: 'xg_sr_stream_format.h:91', line: '#define PAGE_DATA_TYPE_MASK 0xf000000000000000ULL' },
};

/** The scanned modules; `tools`: their checks compile in the toolstack's unit. */
const SCANNED: { file: string; mod: Record<string, unknown>; tools?: boolean }[] = [
  { file: 'ring.ts', mod: RING },
  { file: 'netif.ts', mod: NETIF },
  { file: 'grant-table.ts', mod: GRANT },
  { file: 'evtchn.ts', mod: EVTCHN },
  { file: 'migration/stream.ts', mod: STREAM, tools: true },
];

/** A check against SPEC's numbers (Xen's source as read, not compiled). */
export interface SpecCheck {
  name: string;
  xsim: number | bigint;
  spec: SpecValue;
}

/** The checks of every number the scanned modules export, and the mapping errors (stale entries, or ones both checked and XSIM_ONLY). */
function scannedChecks(): { checks: Check[]; spec: SpecCheck[]; errors: string[] } {
  const checks: Check[] = [];
  const spec: SpecCheck[] = [];
  const errors: string[] = [];
  const seen = new Set<string>();
  for (const { file, mod, tools } of SCANNED) {
    for (const [key, value] of Object.entries(mod)) {
      if (typeof value !== 'number' && typeof value !== 'bigint') continue;
      seen.add(key);
      if (key in XSIM_ONLY) continue;
      const name = `${file} ${key}`;
      if (key in SPEC) spec.push({ name, xsim: value, spec: SPEC[key] });
      if (key in SPEC && !(key in C_EXPR)) continue;
      const m = C_EXPR[key] ?? { c: key, ifdef: key, otherwise: null };
      const all = Array.isArray(m) ? m : [m];
      for (const e of all) {
        const k = typeof e === 'string' ? { c: e } : e;
        // Several expressions: each named, by its ring for the SRING_* offsets.
        const label = all.length === 1 ? '' : ` (${key.startsWith('SRING_') ? SRINGS[all.indexOf(e)] : k.c})`;
        checks.push({ name: name + label, xsim: value, ...(tools ? { tools } : {}), ...k });
      }
    }
  }
  const tables: [string, Record<string, unknown>][] = [
    ['C_EXPR', C_EXPR],
    ['SPEC', SPEC],
    ['XSIM_ONLY', XSIM_ONLY],
  ];
  for (const [table, entries] of tables) {
    for (const key of Object.keys(entries)) {
      if (!seen.has(key)) errors.push(`test/abi/xen-abi.ts ${table} maps ${key}, which no scanned module exports any more`);
      // C_EXPR and SPEC may both check a key; XSIM_ONLY says it is checked nowhere.
      if (table !== 'XSIM_ONLY' && key in XSIM_ONLY) errors.push(`test/abi/xen-abi.ts maps ${key} in ${table} and calls it xsim's own (XSIM_ONLY)`);
    }
  }
  return { checks, spec, errors };
}

/** ABI values from modules that hold other things too. */
function otherChecks(): Check[] {
  const out: Check[] = [];
  for (const [key, value] of Object.entries(XsType)) {
    if (key === 'RESTRICT') {
      const why = 'removed from xs_wire.h in Xen 4.9; its number stays unused (XS_RESET_WATCHES is XS_SET_TARGET + 2)';
      out.push({ name: `xs/wire.ts XsType.${key}`, xsim: value, c: 'XS_SET_TARGET + 1', why });
    } else out.push({ name: `xs/wire.ts XsType.${key}`, xsim: value, c: `XS_${key}` });
  }
  out.push({ name: 'xs/wire.ts XS_HEADER_BYTES', xsim: XS_HEADER_BYTES, c: 'sizeof(struct xsd_sockmsg)' });
  out.push({ name: 'xs/wire.ts XENSTORE_PAYLOAD_MAX', xsim: XENSTORE_PAYLOAD_MAX, c: 'XENSTORE_PAYLOAD_MAX' });
  out.push({ name: 'xs/wire.ts XSD_ERRORS.length', xsim: XSD_ERRORS.length, c: 'sizeof(xsd_errors) / sizeof(xsd_errors[0])' });
  XSD_ERRORS.forEach((e, i) => out.push({ name: `xs/wire.ts XSD_ERRORS[${i}]`, xsim: e, c: `xsd_errors[${i}].errstring` }));
  for (const [key, value] of Object.entries(XenbusState)) {
    if (typeof value === 'number') out.push({ name: `xs/index.ts XenbusState.${key}`, xsim: value, c: `XenbusState${key}` });
  }
  STATE_NAMES.forEach((s, i) => out.push({ name: `vif-xenstore.ts STATE_NAMES[${i}] ("${s}")`, xsim: i, c: `XenbusState${s}` }));
  out.push({ name: 'grant-ops.ts DOMID_FIRST_RESERVED', xsim: DOMID_FIRST_RESERVED, c: 'DOMID_FIRST_RESERVED' });
  out.push({ name: 'grant-ops.ts DOMID_MAX', xsim: DOMID_MAX, c: 'DOMID_FIRST_RESERVED - 1' });
  out.push({ name: 'grant-ops.ts DOMID_SELF', xsim: DOMID_SELF, c: 'DOMID_SELF' });
  out.push({ name: 'xs/perms.ts DOMID_ANY', xsim: DOMID_ANY, c: 'DOMID_ANY', ifdef: 'DOMID_ANY', otherwise: null, why: 'xen.h has it from Xen 4.22 (0x7FF5)' });
  out.push({ name: 'memory.ts PAGE_SHIFT', xsim: PAGE_SHIFT, c: 'XEN_PAGE_SHIFT' });
  out.push({ name: 'memory.ts PAGE_SIZE', xsim: PAGE_SIZE, c: PAGE });
  // __CONST_RING_SIZE for pages other than 4096 (a multi-page ring, a small one), through ringSlots().
  for (const [ring, slot] of [
    ['netif_tx', NETIF.NETIF_TX_SLOT_SIZE],
    ['netif_rx', NETIF.NETIF_RX_SLOT_SIZE],
    ['xen_netif_ctrl', NETIF.NETIF_CTRL_SLOT_SIZE],
  ] as const) {
    for (const bytes of [128, 1000, 8192, 65536])
      out.push({ name: `ring.ts ringSlots(${slot}, ${bytes})`, xsim: RING.ringSlots(slot, bytes), c: `__CONST_RING_SIZE(${ring}, ${bytes})` });
  }
  return out;
}

/** Every check: against the headers (checks) and against SPEC (spec); and what is wrong with the tables themselves. */
export function abiChecks(): { checks: Check[]; spec: SpecCheck[]; errors: string[] } {
  const { checks, spec, errors } = scannedChecks();
  return { checks: [...checks, ...otherChecks()], spec, errors };
}

/** A value as a failure shows it: strings quoted, numbers in decimal and, past 9, hex. */
export function show(v: number | bigint | string): string {
  if (typeof v === 'string') return JSON.stringify(v);
  const hex = v < 0 ? '' : ` (0x${v.toString(16)})`;
  return v > 9 || v < 0 ? `${v}${typeof v === 'bigint' ? 'n' : ''}${hex}` : String(v);
}

/** The generated sources: the guest's unit (with main) and the toolstack's. */
export const GUEST_SOURCE = 'xen-abi.c';
export const TOOLS_SOURCE = 'xen-abi-tools.c';

/**
 * The C program, two files (GUEST_SOURCE, TOOLS_SOURCE): prints one line per
 * check, `index<TAB>how<TAB>value`, how being `c` (its expression),
 * `otherwise` (the stand-in, the headers lacking `ifdef`) or `absent` (not
 * compared). A bigint is printed unsigned, a number signed.
 */
export function cProgram(checks: readonly Check[]): Record<string, string> {
  const body = (tools: boolean): string[] =>
    checks.flatMap((k, i) => {
      if (Boolean(k.tools) !== tools) return [];
      const print = (how: string, expr: string): string =>
        typeof k.xsim === 'string'
          ? `  printf("%d\\t${how}\\t%s\\n", ${i}, ${expr});`
          : typeof k.xsim === 'bigint' && k.xsim >= 0n
            ? `  printf("%d\\t${how}\\t%llu\\n", ${i}, (unsigned long long)(${expr}));`
            : `  printf("%d\\t${how}\\t%lld\\n", ${i}, (long long)(${expr}));`;
      const lines = [`  /* ${k.name.replace(/\*\//g, '* /')} */`];
      if (!k.ifdef) return [[...lines, print('c', k.c)].join('\n')];
      const other = k.otherwise == null ? `  printf("%d\\tabsent\\t\\n", ${i});` : print('otherwise', k.otherwise);
      return [[...lines, `#ifdef ${k.ifdef}`, print('c', k.c), '#else', other, '#endif'].join('\n')];
    });
  const guest = `/* Generated by test/abi/xen-abi.ts: xsim's ABI values as Xen's public headers give them, as a guest includes them. */
#include <errno.h> /* before xs_wire.h: xsd_errors[] needs the E* names */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define xen_mb() __sync_synchronize()
#define xen_rmb() __sync_synchronize()
#define xen_wmb() __sync_synchronize()
#include <xen/xen.h>
#include <xen/event_channel.h>
#include <xen/grant_table.h>
#include <xen/io/ring.h>
#include <xen/io/netif.h>
#include <xen/io/xenbus.h>
#include <xen/io/xs_wire.h>

void xsim_tools_checks(void); /* ${TOOLS_SOURCE} */

int main(void) {
  printf("interface\\t0x%08x\\n", __XEN_LATEST_INTERFACE_VERSION__);
${body(false).join('\n')}
  xsim_tools_checks();
  return 0;
}
`;
  const tools = `/* Generated by test/abi/xen-abi.ts: the values only the toolstack's headers give (domctl.h). */
#define __XEN_TOOLS__ 1 /* before any Xen header: domctl.h needs xen.h's tools-only part */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <xen/xen.h>
#include <xen/domctl.h>

void xsim_tools_checks(void);
void xsim_tools_checks(void) {
${body(true).join('\n')}
}
`;
  return { [GUEST_SOURCE]: guest, [TOOLS_SOURCE]: tools };
}

/** The gcc command line, given the sources (cProgram's files, written out) and the binary. */
export function gccArgs(sources: readonly string[], binary: string): string[] {
  return ['-std=gnu11', '-Wall', '-Wextra', '-Werror', '-D__XEN_INTERFACE_VERSION__=__XEN_LATEST_INTERFACE_VERSION__', '-o', binary, ...sources];
}

export interface Outcome {
  compared: number;
  mismatches: string[];
  /** Items compared against a stand-in, or not at all, with the reason. */
  notes: string[];
  interfaceVersion: string;
}

/** Compares the C program's output with xsim's values. */
export function compare(checks: readonly Check[], output: string): Outcome {
  const got = new Map<number, { how: string; value: string }>();
  let interfaceVersion = '';
  for (const line of output.split('\n')) {
    const [a, how, value = ''] = line.split('\t');
    if (a === 'interface') interfaceVersion = how;
    else if (a !== '') got.set(Number(a), { how, value });
  }
  const out: Outcome = { compared: 0, mismatches: [], notes: [], interfaceVersion };
  checks.forEach((k, i) => {
    const g = got.get(i);
    if (!g) return void out.mismatches.push(`${k.name}: the C program printed nothing for it`);
    if (g.how === 'absent') {
      if (k.why) return void out.notes.push(`${k.name} = ${show(k.xsim)}: not in these headers (${k.why})`);
      return void out.mismatches.push(
        `${k.name} = ${show(k.xsim)}: the headers do not define ${k.c}; map it in test/abi/xen-abi.ts (C_EXPR), give Xen's number from its source (SPEC) or say why it is xsim's own (XSIM_ONLY)`,
      );
    }
    out.compared++;
    const expr = g.how === 'otherwise' ? k.otherwise! : k.c;
    // A stand-in always says why; a plain check with a reason, too (with ifdef, the reason is for the headers lacking it).
    if (g.how === 'otherwise' || (k.why && !k.ifdef)) out.notes.push(`${k.name} = ${show(k.xsim)}: compared with ${expr} (${k.why})`);
    const theirs = typeof k.xsim === 'string' ? g.value : BigInt(g.value);
    const same = typeof k.xsim === 'string' ? theirs === k.xsim : theirs === BigInt(k.xsim);
    const shown = typeof k.xsim === 'number' && typeof theirs === 'bigint' ? Number(theirs) : theirs;
    if (!same) out.mismatches.push(`${k.name} = ${show(k.xsim)}, but the headers' ${expr} = ${show(shown)}`);
  });
  return out;
}

/** Compares xsim's values with SPEC's numbers (read from Xen's source, not compiled). */
export function compareSpec(spec: readonly SpecCheck[]): Pick<Outcome, 'compared' | 'mismatches'> {
  const out = { compared: 0, mismatches: [] as string[] };
  for (const k of spec) {
    out.compared++;
    if (BigInt(k.xsim) !== BigInt(k.spec.value)) {
      out.mismatches.push(`${k.name} = ${show(k.xsim)}, but ${SPEC_SOURCE.dir}${k.spec.at} at ${SPEC_SOURCE.at} gives ${show(k.spec.value)}: ${k.spec.line}`);
    }
  }
  return out;
}

// `tsx test/abi/xen-abi.ts`: the C program's two files, to read or build by hand.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [file, text] of Object.entries(cProgram(abiChecks().checks))) process.stdout.write(`/* ==== ${file} ==== */\n${text}`);
}
