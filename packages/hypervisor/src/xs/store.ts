/**
 * The xenstore tree (no I/O): nodes with values, Xen-style permissions and
 * generation counters; transactions with optimistic concurrency (a commit
 * fails with EAGAIN if anything it touched changed meanwhile, as cxenstored
 * does); watches that fire on change at or below a path and carry only the
 * path and token, never the value.
 */
export type Perm = 'n' | 'r' | 'w' | 'b';
export interface PermEntry {
  domid: number;
  perm: Perm;
}
export type XsErrno = 'ENOENT' | 'EACCES' | 'EINVAL' | 'EEXIST' | 'EAGAIN' | 'E2BIG' | 'ENOSPC';

export class XenstoreError extends Error {
  constructor(
    readonly errno: XsErrno,
    message: string,
  ) {
    super(`${errno}: ${message}`);
    this.name = 'XenstoreError';
  }
}

interface Node {
  value: string;
  perms: PermEntry[];
  children: Map<string, Node>;
  gen: number;
}

export type WatchFn = (path: string, token: string) => void;

interface Watch {
  domid: number;
  path: string;
  token: string;
  fire: WatchFn;
}

interface Tx {
  domid: number;
  /** Generation of every node read or written, when first touched (-1 = absent). */
  touched: Map<string, number>;
  /** Writes in order: value, mkdir, rm or perms. */
  ops: { kind: 'write' | 'mkdir' | 'rm' | 'perms'; path: string; value?: string; perms?: PermEntry[] }[];
}

const PATH_RE = /^[A-Za-z0-9_@/.\-]+$/;
const MAX_PATH = 1024;

export function checkPath(path: string): void {
  if (typeof path !== 'string' || path.length === 0 || path.length > MAX_PATH) throw new XenstoreError('EINVAL', `bad path "${String(path)}"`);
  if (path.startsWith('@')) {
    if (!/^@[A-Za-z]+$/.test(path)) throw new XenstoreError('EINVAL', `bad special path "${path}"`);
    return;
  }
  if (!path.startsWith('/') || !PATH_RE.test(path) || path.includes('//') || (path.length > 1 && path.endsWith('/'))) {
    throw new XenstoreError('EINVAL', `bad path "${path}"`);
  }
}

function split(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

export class Store {
  private readonly root: Node = { value: '', perms: [{ domid: 0, perm: 'n' }], children: new Map(), gen: 0 };
  private gen = 1;
  private nextTx = 1;
  private readonly txs = new Map<number, Tx>();
  private readonly watches: Watch[] = [];

  private find(path: string): Node | undefined {
    let n: Node | undefined = this.root;
    for (const part of split(path)) {
      n = n.children.get(part);
      if (!n) return undefined;
    }
    return n;
  }

  private can(domid: number, node: Node, want: 'r' | 'w'): boolean {
    if (domid === 0) return true;
    const owner = node.perms[0];
    if (owner.domid === domid) return true;
    const e = node.perms.slice(1).find((p) => p.domid === domid) ?? owner;
    return e.perm === 'b' || e.perm === want;
  }

  /** The deepest existing ancestor-or-self governs creating a node. */
  private nearest(path: string): Node {
    let n = this.root;
    for (const part of split(path)) {
      const c = n.children.get(part);
      if (!c) break;
      n = c;
    }
    return n;
  }

  private tx(id: number | undefined, domid: number): Tx | undefined {
    if (id === undefined || id === 0) return undefined;
    const t = this.txs.get(id);
    if (!t || t.domid !== domid) throw new XenstoreError('ENOENT', `no transaction ${id}`);
    return t;
  }

  private touch(t: Tx, path: string): void {
    if (!t.touched.has(path)) t.touched.set(path, this.find(path)?.gen ?? -1);
  }

  /** A transaction's view: replay its pending writes over the live tree for one path. */
  private txView(t: Tx, path: string): { exists: boolean; value: string; children: Set<string> } {
    const n = this.find(path);
    let exists = n !== undefined;
    let value = n?.value ?? '';
    const children = new Set(n ? n.children.keys() : []);
    for (const op of t.ops) {
      if (op.kind === 'rm' && (path === op.path || path.startsWith(op.path + '/'))) {
        exists = false;
        value = '';
        children.clear();
      } else if ((op.kind === 'write' || op.kind === 'mkdir') && (op.path === path || op.path.startsWith(path === '/' ? '/' : path + '/'))) {
        if (op.path === path) {
          if (op.kind === 'write') value = op.value!;
          else if (!exists) value = '';
        } else {
          const rest = op.path.slice(path === '/' ? 1 : path.length + 1);
          children.add(rest.split('/')[0]);
        }
        exists = true;
      } else if (op.kind === 'rm' && op.path.startsWith(path + '/')) {
        const rest = op.path.slice(path.length + 1);
        if (!rest.includes('/')) children.delete(rest);
      }
    }
    return { exists, value, children };
  }

  read(domid: number, path: string, txId?: number): string {
    checkPath(path);
    const t = this.tx(txId, domid);
    const n = this.find(path);
    if (n && !this.can(domid, n, 'r')) throw new XenstoreError('EACCES', `domain ${domid} may not read ${path}`);
    if (t) {
      this.touch(t, path);
      const v = this.txView(t, path);
      if (!v.exists) throw new XenstoreError('ENOENT', `${path} does not exist`);
      return v.value;
    }
    if (!n) throw new XenstoreError('ENOENT', `${path} does not exist`);
    return n.value;
  }

  directory(domid: number, path: string, txId?: number): string[] {
    checkPath(path);
    const t = this.tx(txId, domid);
    const n = this.find(path);
    if (n && !this.can(domid, n, 'r')) throw new XenstoreError('EACCES', `domain ${domid} may not read ${path}`);
    if (t) {
      this.touch(t, path);
      const v = this.txView(t, path);
      if (!v.exists) throw new XenstoreError('ENOENT', `${path} does not exist`);
      return [...v.children].sort();
    }
    if (!n) throw new XenstoreError('ENOENT', `${path} does not exist`);
    return [...n.children.keys()].sort();
  }

  write(domid: number, path: string, value: string, txId?: number): void {
    checkPath(path);
    if (path.startsWith('@')) throw new XenstoreError('EINVAL', `cannot write special path ${path}`);
    if (typeof value !== 'string' || value.length > 4096) throw new XenstoreError('E2BIG', `value for ${path} too large`);
    this.checkWrite(domid, path);
    const t = this.tx(txId, domid);
    if (t) {
      this.touch(t, path);
      t.ops.push({ kind: 'write', path, value });
      return;
    }
    this.applyWrite(domid, path, value, false);
  }

  mkdir(domid: number, path: string, txId?: number): void {
    checkPath(path);
    this.checkWrite(domid, path);
    const t = this.tx(txId, domid);
    if (t) {
      this.touch(t, path);
      t.ops.push({ kind: 'mkdir', path });
      return;
    }
    this.applyWrite(domid, path, '', true);
  }

  rm(domid: number, path: string, txId?: number): void {
    checkPath(path);
    if (path === '/') throw new XenstoreError('EINVAL', 'cannot remove the root');
    const n = this.find(path);
    if (n && !this.can(domid, n, 'w')) throw new XenstoreError('EACCES', `domain ${domid} may not remove ${path}`);
    const t = this.tx(txId, domid);
    if (t) {
      this.touch(t, path);
      t.ops.push({ kind: 'rm', path });
      return;
    }
    if (!n) throw new XenstoreError('ENOENT', `${path} does not exist`);
    this.applyRm(path);
  }

  getPerms(domid: number, path: string): PermEntry[] {
    checkPath(path);
    const n = this.find(path);
    if (!n) throw new XenstoreError('ENOENT', `${path} does not exist`);
    if (!this.can(domid, n, 'r')) throw new XenstoreError('EACCES', `domain ${domid} may not read ${path}`);
    return n.perms.map((p) => ({ ...p }));
  }

  setPerms(domid: number, path: string, perms: PermEntry[], txId?: number): void {
    checkPath(path);
    if (!Array.isArray(perms) || perms.length === 0 || perms.some((p) => !Number.isInteger(p.domid) || !'nrwb'.includes(p.perm))) {
      throw new XenstoreError('EINVAL', `bad permissions for ${path}`);
    }
    const n = this.find(path);
    if (!n) throw new XenstoreError('ENOENT', `${path} does not exist`);
    if (domid !== 0 && n.perms[0].domid !== domid) throw new XenstoreError('EACCES', `only the owner may change permissions of ${path}`);
    const t = this.tx(txId, domid);
    if (t) {
      this.touch(t, path);
      t.ops.push({ kind: 'perms', path, perms });
      return;
    }
    n.perms = perms.map((p) => ({ ...p }));
    n.gen = this.gen++;
    this.fire(path);
  }

  private checkWrite(domid: number, path: string): void {
    const n = this.find(path) ?? this.nearest(path);
    if (!this.can(domid, n, 'w')) throw new XenstoreError('EACCES', `domain ${domid} may not write ${path}`);
  }

  private applyWrite(domid: number, path: string, value: string, isMkdir: boolean): void {
    let n = this.root;
    for (const part of split(path)) {
      let c = n.children.get(part);
      if (!c) {
        // New nodes inherit the parent's permissions; a guest creating one owns it.
        const perms = n.perms.map((p) => ({ ...p }));
        if (domid !== 0) perms[0] = { domid, perm: perms[0].perm };
        c = { value: '', perms, children: new Map(), gen: this.gen++ };
        n.children.set(part, c);
      }
      n = c;
    }
    if (!isMkdir) n.value = value;
    n.gen = this.gen++;
    this.fire(path);
  }

  private applyRm(path: string): void {
    const parts = split(path);
    const parent = this.find('/' + parts.slice(0, -1).join('/')) ?? this.root;
    if (!parent.children.delete(parts[parts.length - 1])) return;
    parent.gen = this.gen++;
    this.fire(path);
  }

  transactionStart(domid: number): number {
    const id = this.nextTx++;
    this.txs.set(id, { domid, touched: new Map(), ops: [] });
    return id;
  }

  /** Returns false (EAGAIN) if a node the transaction touched changed since. */
  transactionEnd(domid: number, id: number, commit: boolean): boolean {
    const t = this.tx(id, domid)!;
    this.txs.delete(id);
    if (!commit) return true;
    for (const [path, gen] of t.touched) if ((this.find(path)?.gen ?? -1) !== gen) return false;
    for (const op of t.ops) {
      if (op.kind === 'write') this.applyWrite(domid, op.path, op.value!, false);
      else if (op.kind === 'mkdir') this.applyWrite(domid, op.path, '', true);
      else if (op.kind === 'rm') this.applyRm(op.path);
      else {
        const n = this.find(op.path);
        if (n) {
          n.perms = op.perms!;
          n.gen = this.gen++;
          this.fire(op.path);
        }
      }
    }
    return true;
  }

  /** Register a watch; like Xen it fires once at once. */
  watch(domid: number, path: string, token: string, fire: WatchFn): void {
    checkPath(path);
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

  private fire(path: string): void {
    for (const w of this.watches) {
      if (path === w.path || (path.startsWith(w.path) && (w.path === '/' || path[w.path.length] === '/'))) w.fire(path, w.token);
    }
  }

  /** What the store holds (for leak checks: a domain that went away must leave none of it behind). */
  usage(): { nodes: number; watches: number; transactions: number } {
    let nodes = 0;
    const walk = (n: Node): void => {
      nodes++;
      for (const c of n.children.values()) walk(c);
    };
    walk(this.root);
    return { nodes, watches: this.watches.length, transactions: this.txs.size };
  }

  /** The toolstack destroyed a domain: drop its watches and transactions, tell @releaseDomain watchers. */
  releaseDomain(domid: number): void {
    for (let i = this.watches.length - 1; i >= 0; i--) if (this.watches[i].domid === domid) this.watches.splice(i, 1);
    for (const [id, t] of this.txs) if (t.domid === domid) this.txs.delete(id);
    this.fire('@releaseDomain');
  }
}
