/**
 * A xenstore transaction: its own view of the tree (what it wrote, made,
 * removed and re-permitted, over the live tree), what it touched for the
 * conflict check at commit, and its writes in order to replay them then.
 * Like xenstored's accessed-node list, it remembers each touched node's
 * permissions as they were at first touch: who could read a node before the
 * transaction changed it hears of the change at commit.
 */
import { clonePerms, inheritPerms, type PermEntry } from './perms.ts';

/** A node of the live tree. */
export interface LiveNode {
  value: string;
  perms: PermEntry[];
  children: Map<string, LiveNode>;
  gen: number;
}

/** What a request sees of a node: its value and permissions. */
export interface NodeView {
  value: string;
  perms: readonly PermEntry[];
}

interface TxNode extends NodeView {
  /** Made by the transaction: nothing of the live tree lies below it. */
  fresh: boolean;
}

export type TxOp =
  | { kind: 'write'; path: string; value: string }
  | { kind: 'mkdir'; path: string }
  | { kind: 'rm'; path: string }
  | { kind: 'perms'; path: string; perms: PermEntry[] };

/** "/", "/a", "/a/b" for "/a/b". */
function prefixes(path: string): string[] {
  const out = ['/'];
  if (path === '/') return out;
  let at = 0;
  for (;;) {
    at = path.indexOf('/', at + 1);
    if (at < 0) break;
    out.push(path.slice(0, at));
  }
  out.push(path);
  return out;
}

export class Transaction {
  /** Each node touched: its generation then (-1: absent), and its permissions then if it existed. */
  readonly touched = new Map<string, { gen: number; perms?: PermEntry[] }>();
  readonly ops: TxOp[] = [];
  /** The transaction's own nodes: a copy it changed, one it made (fresh), or null for one it removed. */
  private readonly view = new Map<string, TxNode | null>();
  /** Generations of the nodes the transaction changed (their value, permissions or children), drawn from the store's counter. */
  private readonly gens = new Map<string, number>();

  constructor(
    readonly domid: number,
    private readonly live: (path: string) => LiveNode | undefined,
    private readonly nextGen: () => number,
  ) {}

  /** A node's generation as the transaction sees it: its own if it changed the node, else the live one when first touched. */
  generation(path: string): number {
    return this.gens.get(path) ?? this.touched.get(path)?.gen ?? this.live(path)?.gen ?? 0;
  }

  private changed(path: string): void {
    this.gens.set(path, this.nextGen());
  }

  touch(path: string): void {
    if (this.touched.has(path)) return;
    const n = this.live(path);
    this.touched.set(path, n ? { gen: n.gen, perms: clonePerms(n.perms) } : { gen: -1 });
  }

  /** Permissions of a node when the transaction first touched it (undefined if it did not exist then). */
  permsBefore(path: string): PermEntry[] | undefined {
    return this.touched.get(path)?.perms;
  }

  lookup(path: string): TxNode | undefined {
    let found: TxNode | undefined;
    for (const q of prefixes(path)) {
      const own = this.view.get(q);
      if (own === null) return undefined;
      if (own) {
        found = own;
        continue;
      }
      if (found?.fresh) return undefined;
      const n = this.live(q);
      if (!n) return undefined;
      found = { value: n.value, perms: n.perms, fresh: false };
    }
    return found;
  }

  /** Children of an existing node, as the transaction sees them, sorted. */
  children(path: string): string[] {
    const names = new Set<string>(this.lookup(path)?.fresh ? [] : (this.live(path)?.children.keys() ?? []));
    const under = path === '/' ? '/' : `${path}/`;
    for (const [k, own] of this.view) {
      if (k === path || !k.startsWith(under) || k.includes('/', under.length)) continue;
      const name = k.slice(under.length);
      if (own === null) names.delete(name);
      else names.add(name);
    }
    return [...names].sort();
  }

  /** Write a value (undefined: mkdir), making missing parents as `creator` would. */
  write(path: string, value: string | undefined, creator: number): void {
    this.ops.push(value === undefined ? { kind: 'mkdir', path } : { kind: 'write', path, value });
    let node = this.lookup('/')!;
    let above = '/';
    for (const q of prefixes(path).slice(1)) {
      const n = this.lookup(q);
      if (n) node = n;
      else {
        node = { value: '', perms: inheritPerms(node.perms, creator), fresh: true };
        this.view.set(q, node);
        this.changed(above);
        this.changed(q);
      }
      above = q;
    }
    if (value !== undefined) {
      this.view.set(path, { value, perms: clonePerms(node.perms), fresh: node.fresh });
      this.changed(path);
    }
  }

  rm(path: string): void {
    this.ops.push({ kind: 'rm', path });
    for (const k of [...this.view.keys()]) if (k.startsWith(`${path}/`)) this.view.delete(k);
    for (const k of [...this.gens.keys()]) if (k === path || k.startsWith(`${path}/`)) this.gens.delete(k);
    this.view.set(path, null);
    this.changed(path.slice(0, path.lastIndexOf('/')) || '/');
  }

  setPerms(path: string, perms: readonly PermEntry[]): void {
    this.ops.push({ kind: 'perms', path, perms: clonePerms(perms) });
    const n = this.lookup(path)!;
    this.view.set(path, { value: n.value, perms: clonePerms(perms), fresh: n.fresh });
    this.changed(path);
  }
}
