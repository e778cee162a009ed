/**
 * Grant table v1 binary layout and constants, from xen/include/public/grant_table.h.
 *
 * struct grant_entry_v1 { uint16_t flags; domid_t domid; uint32_t frame; } — 8 bytes.
 * All multi-byte fields are little-endian (x86 guests).
 */
export const GRANT_ENTRY_V1_SIZE = 8;
export const GRANT_ENTRY_FLAGS_OFFSET = 0;
export const GRANT_ENTRY_DOMID_OFFSET = 2;
export const GRANT_ENTRY_FRAME_OFFSET = 4;

export const GTF_invalid = 0;
export const GTF_permit_access = 1;
export const GTF_accept_transfer = 2;
export const GTF_type_mask = 3;
export const GTF_readonly = 1 << 2;
export const GTF_reading = 1 << 3;
export const GTF_writing = 1 << 4;

/** gnttab_copy_t.flags */
export const GNTCOPY_source_gref = 1 << 0;
export const GNTCOPY_dest_gref = 1 << 1;

/**
 * Grant operation status codes (grant_table.h's GNTST_*), with Xen's numbers
 * so traces read like real ones. xsim's grant operations return the ones in
 * GrantStatus; the others (-5 to -7, -11, -13) are here so a status from
 * anywhere can be named.
 */
export const GNTST_okay = 0;
export const GNTST_general_error = -1;
export const GNTST_bad_domain = -2;
export const GNTST_bad_gntref = -3;
export const GNTST_bad_handle = -4;
export const GNTST_bad_virt_addr = -5;
export const GNTST_bad_dev_addr = -6;
export const GNTST_no_device_space = -7;
export const GNTST_permission_denied = -8;
export const GNTST_bad_page = -9;
export const GNTST_bad_copy_arg = -10;
export const GNTST_address_too_big = -11;
export const GNTST_eagain = -12;
export const GNTST_no_space = -13;

export type GrantStatus =
  | typeof GNTST_okay
  | typeof GNTST_general_error
  | typeof GNTST_bad_domain
  | typeof GNTST_bad_gntref
  | typeof GNTST_bad_handle
  | typeof GNTST_permission_denied
  | typeof GNTST_bad_page
  | typeof GNTST_bad_copy_arg
  | typeof GNTST_eagain;

const NAMES: Record<number, string> = {
  [GNTST_okay]: 'okay',
  [GNTST_general_error]: 'general_error',
  [GNTST_bad_domain]: 'bad_domain',
  [GNTST_bad_gntref]: 'bad_gntref',
  [GNTST_bad_handle]: 'bad_handle',
  [GNTST_bad_virt_addr]: 'bad_virt_addr',
  [GNTST_bad_dev_addr]: 'bad_dev_addr',
  [GNTST_no_device_space]: 'no_device_space',
  [GNTST_permission_denied]: 'permission_denied',
  [GNTST_bad_page]: 'bad_page',
  [GNTST_bad_copy_arg]: 'bad_copy_arg',
  [GNTST_address_too_big]: 'address_too_big',
  [GNTST_eagain]: 'eagain',
  [GNTST_no_space]: 'no_space',
};

export function grantStatusName(status: number): string {
  return NAMES[status] ?? `unknown(${status})`;
}

/**
 * Grant-table frames each domain gets: 32 (32 × 512 = 16,384 v1 entries).
 * This is not Xen's default: Xen's maximum is 64 frames unless its
 * gnttab_max_frames option says otherwise. 32 was libxl's fixed default
 * (LIBXL_MAX_GRANT_FRAMES_DEFAULT, now deprecated: libxl passes "the
 * hypervisor's default"), and Xen's own default before 4.10 made it 64.
 * xsim keeps 32 because it allocates a domain's whole table when the domain
 * is made (Xen grows a table on demand up to its maximum): 32 rather than 64
 * halves what every domain's table costs (128 KiB, and 64 KiB of pin
 * counts in the hypervisor's view of it), and xsim's drivers grant fewer entries than
 * 32 frames hold.
 */
export const GRANT_FRAMES = 32;
export const GRANT_ENTRIES_PER_FRAME = 4096 / GRANT_ENTRY_V1_SIZE;
/** grant_table.h: refs 0..7 are the toolstack's (0 the console's, 1 xenstore's); guests allocate from 8, as Linux does. */
export const GNTTAB_NR_RESERVED_ENTRIES = 8;
