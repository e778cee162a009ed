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
 * Grant operation status codes (enum grant_status). Note: Xen's bad_gntref is -3
 * and bad_handle is -4; we keep Xen's numbers so traces read like real ones.
 */
export const GNTST_okay = 0;
export const GNTST_general_error = -1;
export const GNTST_bad_domain = -2;
export const GNTST_bad_gntref = -3;
export const GNTST_bad_handle = -4;
export const GNTST_permission_denied = -8;
export const GNTST_bad_page = -9;
export const GNTST_bad_copy_arg = -10;
export const GNTST_eagain = -12;

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
  [GNTST_permission_denied]: 'permission_denied',
  [GNTST_bad_page]: 'bad_page',
  [GNTST_bad_copy_arg]: 'bad_copy_arg',
  [GNTST_eagain]: 'eagain',
};

export function grantStatusName(status: number): string {
  return NAMES[status] ?? `unknown(${status})`;
}

/** Grant frames per domain: Xen's default max_grant_frames (32 × 512 v1 entries). */
export const GRANT_FRAMES = 32;
export const GRANT_ENTRIES_PER_FRAME = 4096 / GRANT_ENTRY_V1_SIZE;
/** Refs 0..7 are reserved in Linux (GNTTAB_NR_RESERVED_ENTRIES); we reserve them too. */
export const GNTTAB_NR_RESERVED_ENTRIES = 8;
