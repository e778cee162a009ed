/**
 * Xenstore permissions as xenstored evaluates them (tools/xenstored/core.c,
 * perm_for_conn). A node's first entry names its owner and, with its letter,
 * what every domain without an entry of its own may do; later entries grant
 * one domain each (the first that names the domain counts). The owner and a
 * privileged domain (dom0 here) may do everything, and only they hold the
 * owner right that changing permissions needs. DOMID_ANY in an entry names
 * every domain (xenstored gives @releaseDomain to all domains that way).
 */
export type Perm = 'n' | 'r' | 'w' | 'b';
export interface PermEntry {
  domid: number;
  perm: Perm;
}

/** xen.h's DOMID_ANY: an entry with it applies to every domain. */
export const DOMID_ANY = 0x7ff5;

/** xenstored's XS_PERM_* rights, as bits. */
export const PERM_READ = 1;
export const PERM_WRITE = 2;
export const PERM_OWNER = 4;
const ALL = PERM_READ | PERM_WRITE | PERM_OWNER;

const BITS: Record<Perm, number> = { n: 0, r: PERM_READ, w: PERM_WRITE, b: PERM_READ | PERM_WRITE };

/** Only the control domain is privileged (no other domain is given xenstored's privilege here). */
export function isPrivileged(domid: number): boolean {
  return domid === 0;
}

function names(e: PermEntry, domid: number): boolean {
  return e.domid === domid || e.domid === DOMID_ANY;
}

/** The rights (PERM_* bits) `domid` has on a node with these permissions. */
export function accessFor(domid: number, perms: readonly PermEntry[]): number {
  const owner = perms[0];
  if (isPrivileged(domid) || names(owner, domid)) return ALL;
  for (let i = 1; i < perms.length; i++) if (names(perms[i], domid)) return BITS[perms[i].perm];
  return BITS[owner.perm];
}

export function canRead(domid: number, perms: readonly PermEntry[]): boolean {
  return (accessFor(domid, perms) & PERM_READ) !== 0;
}

export function clonePerms(perms: readonly PermEntry[]): PermEntry[] {
  return perms.map((p) => ({ domid: p.domid, perm: p.perm }));
}

/** A new node's permissions: its parent's, and an unprivileged domain owns what it creates (construct_node). */
export function inheritPerms(parent: readonly PermEntry[], creator: number): PermEntry[] {
  const perms = clonePerms(parent);
  if (!isPrivileged(creator)) perms[0] = { domid: creator, perm: perms[0].perm };
  return perms;
}

/** A permission list a request may set: at least the owner's entry, each a domid and one of n, r, w, b. */
export function validPerms(perms: unknown): perms is PermEntry[] {
  return (
    Array.isArray(perms) &&
    perms.length > 0 &&
    perms.every(
      (p: unknown) =>
        typeof p === 'object' &&
        p !== null &&
        Number.isInteger((p as PermEntry).domid) &&
        (p as PermEntry).domid >= 0 &&
        (p as PermEntry).domid <= 0xffff &&
        typeof (p as PermEntry).perm === 'string' &&
        (p as PermEntry).perm.length === 1 &&
        'nrwb'.includes((p as PermEntry).perm),
    )
  );
}
