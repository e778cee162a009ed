/**
 * The xenstore tree (no I/O): nodes with values, Xen-style permissions and
 * generation counters; transactions with optimistic concurrency (a commit
 * fails with EAGAIN if anything it touched changed meanwhile, as cxenstored
 * does); watches that fire on change at or below a path and carry only the
 * path and token, never the value.
 *
 * Permissions are checked as xenstored checks them (tools/xenstored/core.c):
 * a request needs the right on the node; for a node that does not exist, the
 * nearest existing ancestor decides whether the caller may learn so (ENOENT)
 * or gets EACCES, so errors reveal nothing a domain cannot read. Only the
 * owner (or dom0) changes a node's permissions, and only dom0 changes its
 * owner (EPERM). A watch event goes only to a domain that can read the node
 * or its parent, or could read the node before the change (watch.c,
 * watch_permitted); @introduceDomain and @releaseDomain are nodes with
 * permissions of their own, as in xenstored.
 *
 * At the edges it answers as cxenstored (tools/xenstored/core.c): a node
 * name has only letters, digits and - / _ @ (no '.'); an unprivileged
 * domain's path is shorter than XENSTORE_REL_PATH_MAX, counted below
 * /local/domain/N/ when under it; removing a node that is already gone is
 * fine while its parent is there; mkdir of an existing node changes nothing
 * and fires nothing; removing a subtree fires a watch on each node removed
 * (the top one for watches at or above it, every other one for watches on
 * exactly that node); a commit fires once for each node it changed. A
 * released domain leaves nothing behind (XSA-322): the nodes it owns go,
 * and entries naming it go from every other node's permissions.
 */
import { DOMID_SELF } from '../grant-ops.ts';
import { DOMID_ANY, PERM_OWNER, PERM_READ, PERM_WRITE, accessFor, canRead, clonePerms, isPrivileged, validPerms, type PermEntry } from './perms.ts';
import { Transaction, type LiveNode, type NodeView } from './tx.ts';

export type { Perm, PermEntry } from './perms.ts';
export type XsErrno = 'ENOENT' | 'EACCES' | 'EINVAL' | 'EEXIST' | 'EAGAIN' | 'E2BIG' | 'ENOSPC' | 'EPERM';

export class XenstoreError extends Error {
  constructor(
    readonly errno: XsErrno,
    message: string,
  ) {
    super(`${errno}: ${message}`);
    this.name = 'XenstoreError';
  }
}

export type WatchFn = (path: string, token: string) => void;

interface Watch {
  domid: number;
  path: string;
  token: string;
  fire: WatchFn;
}

/**
 * Whose permissions decide who hears of a change: the node's before it
 * (set_perms, a transaction's first touch), the node's now (absent if it is
 * gone) and its parent's (looked at only while the node exists).
 */
interface Audience {
  before?: readonly PermEntry[];
  node?: readonly PermEntry[];
  parent?: readonly PermEntry[];
}

/** xs_wire.h: the longest path an unprivileged domain may name below its /local/domain/N/ (and elsewhere): cxenstored's default path-max quota. */
export const XENSTORE_REL_PATH_MAX = 2048;
/** cxenstored's valid_chars: nothing else may appear in a path. */
const VALID_CHARS = /^[A-Za-z0-9\-/_@]+$/;
/** What cxenstored's sscanf("/local/domain/%5u/%n") matches: the part not counted against the limit. */
const LOCAL_PREFIX = /^\/local\/domain\/(?:-\d{1,4}|\d{1,5})\//;

/**
 * cxenstored's canonicalize: only valid characters, absolute (or a special
 * @name), no trailing or double slash, and for an unprivileged domain a
 * path shorter than XENSTORE_REL_PATH_MAX not counting /local/domain/N/.
 * A privileged domain has no path limit (only the message size bounds it).
 */
export function checkPath(path: string, domid = 0): void {
  if (typeof path !== 'string' || !VALID_CHARS.test(path) || (!path.startsWith('/') && !path.startsWith('@'))) {
    throw new XenstoreError('EINVAL', `bad path "${String(path)}"`);
  }
  if (path.includes('//') || (path.length > 1 && path.endsWith('/'))) throw new XenstoreError('EINVAL', `bad path "${path}"`);
  const counted = path.length - (LOCAL_PREFIX.exec(path)?.[0].length ?? 0);
  if (!isPrivileged(domid) && counted >= XENSTORE_REL_PATH_MAX) {
    throw new XenstoreError('EINVAL', `path of ${counted} characters for domain ${domid} (at most ${XENSTORE_REL_PATH_MAX - 1}): ${path.slice(0, 40)}...`);
  }
}

/** A tree path (not a special one) for operations on values and children. */
function checkTreePath(path: string, domid: number): void {
  checkPath(path, domid);
  if (path.startsWith('@')) throw new XenstoreError('EINVAL', `${path} is a special path (for watches and permissions only)`);
}

function split(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

/** The parent's path; a special node's parent is the root, as in xenstored. */
function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

const VERB: Record<number, string> = { [PERM_READ]: 'read', [PERM_WRITE]: 'write', [PERM_WRITE | PERM_OWNER]: 'change permissions of' };

export class Store {
  private readonly root: LiveNode = { value: '', perms: [{ domid: 0, perm: 'n' }], children: new Map(), gen: 0 };
  /** xenstored's special nodes: @releaseDomain readable by every domain, @introduceDomain by dom0 only (setup_structure). */
  private readonly special = new Map<string, PermEntry[]>([
    [
      '@releaseDomain',
      [
        { domid: 0, perm: 'n' },
        { domid: DOMID_ANY, perm: 'r' },
      ],
    ],
    ['@introduceDomain', [{ domid: 0, perm: 'n' }]],
  ]);
  private gen = 1;
  private nextTx = 1;
  /** Domains introduced and not yet released; dom0 is from the start, as xenstored introduces it itself. */
  private readonly introduced = new Set<number>([0]);
  /** While a commit replays its changes: the nodes whose watches already fired (a commit fires once per node). */
  private committing: Set<string> | null = null;
  private readonly txs = new Map<number, Transaction>();
  private readonly watches: Watch[] = [];

  private find(path: string): LiveNode | undefined {
    let n: LiveNode | undefined = this.root;
    for (const part of split(path)) {
      n = n.children.get(part);
      if (!n) return undefined;
    }
    return n;
  }

  /** A node as a request sees it: the transaction's view, or the live tree's. */
  private view(path: string, t: Transaction | undefined): NodeView | undefined {
    if (path.startsWith('@')) {
      const perms = this.special.get(path);
      return perms && { value: '', perms };
    }
    return t ? t.lookup(path) : this.find(path);
  }

  /**
   * xenstored's get_node: the node, if `domid` has every right in `want` on it
   * (else EACCES); undefined if it does not exist and its nearest existing
   * ancestor grants `domid` one of those rights (else EACCES: a domain may not
   * learn what exists where it cannot look).
   */
  private reach(domid: number, path: string, want: number, t: Transaction | undefined): NodeView | undefined {
    const n = this.view(path, t);
    const denied = (): XenstoreError => new XenstoreError('EACCES', `domain ${domid} may not ${VERB[want]} ${path}`);
    if (n) {
      if ((accessFor(domid, n.perms) & want) !== want) throw denied();
      return n;
    }
    let q = path;
    let a: NodeView | undefined;
    do {
      q = parentOf(q);
      a = this.view(q, t);
    } while (!a && q !== '/');
    if (!a || (accessFor(domid, a.perms) & want) === 0) throw denied();
    return undefined;
  }

  private tx(id: number | undefined, domid: number): Transaction | undefined {
    if (id === undefined || id === 0) return undefined;
    const t = this.txs.get(id);
    if (!t || t.domid !== domid) throw new XenstoreError('ENOENT', `no transaction ${id}`);
    return t;
  }

  private missing(path: string): XenstoreError {
    return new XenstoreError('ENOENT', `${path} does not exist`);
  }

  read(domid: number, path: string, txId?: number): string {
    checkTreePath(path, domid);
    const t = this.tx(txId, domid);
    const n = this.reach(domid, path, PERM_READ, t);
    t?.touch(path);
    if (!n) throw this.missing(path);
    return n.value;
  }

  directory(domid: number, path: string, txId?: number): string[] {
    return this.listing(domid, path, txId).children;
  }

  /**
   * A node's children (sorted) and its generation, which changes whenever
   * the node or its list of children does (XS_DIRECTORY_PART hands it out so
   * a client reading a long list in parts can tell it changed meanwhile). In
   * a transaction, as the transaction sees the node.
   */
  listing(domid: number, path: string, txId?: number): { children: string[]; generation: number } {
    checkTreePath(path, domid);
    const t = this.tx(txId, domid);
    const n = this.reach(domid, path, PERM_READ, t);
    t?.touch(path);
    if (!n) throw this.missing(path);
    if (t) return { children: t.children(path), generation: t.generation(path) };
    const live = this.find(path)!;
    return { children: [...live.children.keys()].sort(), generation: live.gen };
  }

  write(domid: number, path: string, value: string, txId?: number): void {
    checkTreePath(path, domid);
    if (typeof value !== 'string' || value.length > 4096) throw new XenstoreError('E2BIG', `value for ${path} too large`);
    this.put(domid, path, value, txId);
  }

  mkdir(domid: number, path: string, txId?: number): void {
    checkTreePath(path, domid);
    this.put(domid, path, undefined, txId);
  }

  /**
   * A write (value) or mkdir (undefined): needs write access to the node, or
   * to the nearest existing ancestor of a new one. mkdir of a node that is
   * there already changes nothing and fires no watch (do_mkdir).
   */
  private put(domid: number, path: string, value: string | undefined, txId: number | undefined): void {
    const t = this.tx(txId, domid);
    const n = this.reach(domid, path, PERM_WRITE, t);
    if (value === undefined && n) {
      t?.touch(path);
      return;
    }
    if (t) {
      t.touch(path);
      t.write(path, value, domid);
      return;
    }
    this.applyWrite(domid, path, value);
  }

  /**
   * do_rm: a node already gone is fine (nothing fires) if its parent is
   * there; ENOENT only when the parent is missing too. In a transaction, as
   * the transaction sees the tree; what it looked at counts for the commit.
   */
  rm(domid: number, path: string, txId?: number): void {
    checkTreePath(path, domid);
    const t = this.tx(txId, domid);
    const n = this.reach(domid, path, PERM_WRITE, t);
    if (path === '/') throw new XenstoreError('EINVAL', 'cannot remove the root');
    if (!n) {
      const parent = parentOf(path);
      t?.touch(path);
      t?.touch(parent);
      if (this.view(parent, t)) return;
      throw this.missing(path);
    }
    if (t) {
      t.touch(path);
      t.rm(path);
      return;
    }
    this.applyRm(path);
  }

  getPerms(domid: number, path: string, txId?: number): PermEntry[] {
    checkPath(path, domid);
    const t = path.startsWith('@') ? undefined : this.tx(txId, domid);
    const n = this.reach(domid, path, PERM_READ, t);
    t?.touch(path);
    if (!n) throw this.missing(path);
    return clonePerms(n.perms);
  }

  /**
   * do_set_perms: only the owner (or dom0) may, and only dom0 may name
   * another owner (EPERM). A special node's permissions change at once, in a
   * transaction or not.
   */
  setPerms(domid: number, path: string, perms: PermEntry[], txId?: number): void {
    checkPath(path, domid);
    if (!validPerms(perms)) throw new XenstoreError('EINVAL', `bad permissions for ${path}`);
    const t = path.startsWith('@') ? undefined : this.tx(txId, domid);
    const n = this.reach(domid, path, PERM_WRITE | PERM_OWNER, t);
    if (!n) throw this.missing(path);
    if (!isPrivileged(domid) && perms[0].domid !== n.perms[0].domid) {
      throw new XenstoreError('EPERM', `domain ${domid} may not give ${path} to domain ${perms[0].domid}`);
    }
    if (t) {
      t.touch(path);
      t.setPerms(path, perms);
      return;
    }
    const before = n.perms;
    if (path.startsWith('@')) this.special.set(path, clonePerms(perms));
    else {
      const node = this.find(path)!;
      node.perms = clonePerms(perms);
      node.gen = this.gen++;
    }
    this.fire(path, { before, node: perms, parent: this.find(parentOf(path))?.perms });
  }

  /** Write or make a node in the live tree; new nodes inherit their parent's permissions, and a guest owns what it creates. */
  private applyWrite(domid: number, path: string, value: string | undefined, t?: Transaction): void {
    let parent: LiveNode | undefined;
    let n = this.root;
    for (const part of split(path)) {
      let c = n.children.get(part);
      if (!c) {
        const perms = clonePerms(n.perms);
        if (!isPrivileged(domid)) perms[0] = { domid, perm: perms[0].perm };
        c = { value: '', perms, children: new Map(), gen: this.gen++ };
        n.children.set(part, c);
        // The parent's list of children changed: so did its generation (add_child writes the parent).
        n.gen = this.gen++;
      }
      parent = n;
      n = c;
    }
    if (value !== undefined) n.value = value;
    n.gen = this.gen++;
    this.fire(path, { before: t?.permsBefore(path), node: n.perms, parent: parent?.perms });
  }

  /**
   * Remove a subtree, as rm_node walks it: each node below the top fires the
   * watches on exactly its path, deepest first, then the top one fires the
   * watches at or above it. Outside a transaction, who could read a node or
   * its parent hears of it; at a commit, who could read the top node when
   * the transaction first touched it (and each node below as it was).
   */
  private applyRm(path: string, t?: Transaction): void {
    const parts = split(path);
    const parent = this.find('/' + parts.slice(0, -1).join('/')) ?? this.root;
    const gone = parent.children.get(parts[parts.length - 1]);
    if (!gone) return;
    const below = (at: string, n: LiveNode): void => {
      for (const [name, c] of n.children) {
        const p = `${at}/${name}`;
        below(p, c);
        this.fire(p, t ? { before: c.perms } : { node: c.perms, parent: n.perms }, true);
      }
    };
    below(path, gone);
    parent.children.delete(parts[parts.length - 1]);
    parent.gen = this.gen++;
    this.fire(path, t ? { before: t.permsBefore(path) } : { node: gone.perms, parent: parent.perms });
  }

  transactionStart(domid: number): number {
    const id = this.nextTx++;
    this.txs.set(
      id,
      new Transaction(
        domid,
        (p) => this.find(p),
        () => this.gen++,
      ),
    );
    return id;
  }

  /**
   * Returns false (EAGAIN) if a node the transaction touched changed since.
   * Without a transaction to end (id 0) it is ENOENT, as do_transaction_end
   * answers. A commit fires each changed node's watches once.
   */
  transactionEnd(domid: number, id: number, commit: boolean): boolean {
    if (!id) throw new XenstoreError('ENOENT', 'no transaction to end');
    const t = this.tx(id, domid)!;
    this.txs.delete(id);
    if (!commit) return true;
    for (const [path, { gen }] of t.touched) if ((this.find(path)?.gen ?? -1) !== gen) return false;
    this.committing = new Set();
    try {
      this.replay(domid, t);
    } finally {
      this.committing = null;
    }
    return true;
  }

  private replay(domid: number, t: Transaction): void {
    for (const op of t.ops) {
      if (op.kind === 'write') this.applyWrite(domid, op.path, op.value, t);
      else if (op.kind === 'mkdir') this.applyWrite(domid, op.path, undefined, t);
      else if (op.kind === 'rm') this.applyRm(op.path, t);
      else {
        const n = this.find(op.path);
        if (n) {
          n.perms = clonePerms(op.perms);
          n.gen = this.gen++;
          this.fire(op.path, { before: t.permsBefore(op.path), node: n.perms, parent: this.find(parentOf(op.path))?.perms });
        }
      }
    }
  }

  /** Register a watch; like Xen it fires once at once (whatever the watcher may read: the path is its own). */
  watch(domid: number, path: string, token: string, fire: WatchFn): void {
    checkPath(path, domid);
    if (this.watches.some((w) => w.domid === domid && w.path === path && w.token === token))
      throw new XenstoreError('EEXIST', `watch on ${path} with token ${token} exists`);
    this.watches.push({ domid, path, token, fire });
    fire(path, token);
  }

  unwatch(domid: number, path: string, token: string): void {
    const i = this.watches.findIndex((w) => w.domid === domid && w.path === path && w.token === token);
    if (i < 0) throw new XenstoreError('ENOENT', `no watch on ${path} with token ${token}`);
    this.watches.splice(i, 1);
  }

  /** watch_permitted: the watcher could read the node before, or can read it or (while it exists) its parent now. */
  private mayHear(domid: number, a: Audience): boolean {
    if (a.before && canRead(domid, a.before)) return true;
    if (!a.node) return false;
    return canRead(domid, a.node) || (a.parent !== undefined && canRead(domid, a.parent));
  }

  /** Fire the watches at or above `path` (exact: only those on `path` itself) that may hear of it. */
  private fire(path: string, audience: Audience, exact = false): void {
    if (this.committing) {
      if (this.committing.has(path)) return;
      this.committing.add(path);
    }
    for (const w of this.watches) {
      if (path !== w.path && (exact || !(path.startsWith(w.path) && (w.path === '/' || path[w.path.length] === '/')))) continue;
      if (this.mayHear(w.domid, audience)) w.fire(path, w.token);
    }
  }

  private fireSpecial(name: '@introduceDomain' | '@releaseDomain'): void {
    this.fire(name, { node: this.special.get(name), parent: this.root.perms });
  }

  /** What the store holds (for leak checks: a domain that went away must leave none of it behind). */
  usage(): { nodes: number; watches: number; transactions: number } {
    let nodes = 0;
    const walk = (n: LiveNode): void => {
      nodes++;
      for (const c of n.children.values()) walk(c);
    };
    walk(this.root);
    return { nodes, watches: this.watches.length, transactions: this.txs.size };
  }

  /** The toolstack introduced a domain: tell @introduceDomain watchers (those who may read it). */
  introduceDomain(domid: number): void {
    this.introduced.add(domid);
    this.fireSpecial('@introduceDomain');
  }

  /** XS_IS_DOMAIN_INTRODUCED: introduced and not released (DOMID_SELF, the asker itself, always is). */
  isIntroduced(domid: number): boolean {
    return domid === DOMID_SELF || this.introduced.has(domid);
  }

  /**
   * The toolstack destroyed a domain: drop its watches and transactions,
   * revoke what it held (xenstored's domain_tree_remove, XSA-322: a later
   * domain with its domid inherits nothing), tell @releaseDomain watchers.
   */
  releaseDomain(domid: number): void {
    this.introduced.delete(domid);
    for (let i = this.watches.length - 1; i >= 0; i--) if (this.watches[i].domid === domid) this.watches.splice(i, 1);
    for (const [id, t] of this.txs) if (t.domid === domid) this.txs.delete(id);
    if (!isPrivileged(domid)) this.revoke(domid);
    this.fireSpecial('@releaseDomain');
  }

  /** Nodes the domain owns are removed (their watches fire), and entries naming it go from every other node's permissions. */
  private revoke(domid: number): void {
    const strip = (perms: PermEntry[]): PermEntry[] => [perms[0], ...perms.slice(1).filter((p) => p.domid !== domid)];
    const walk = (at: string, n: LiveNode): void => {
      n.perms = strip(n.perms);
      for (const [name, c] of [...n.children]) {
        const p = at === '/' ? `/${name}` : `${at}/${name}`;
        if (c.perms[0].domid === domid) this.applyRm(p);
        else walk(p, c);
      }
    };
    walk('/', this.root);
    for (const [name, perms] of this.special) this.special.set(name, strip(perms));
  }
}
