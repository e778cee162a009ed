/**
 * Xenstore permissions as xenstored's (issue 20, item 10): a watch event
 * goes only to a domain that may read the node (or its parent, or could read
 * the node before the change), as tools/xenstored/watch.c's watch_permitted
 * decides; errors reveal nothing about nodes a domain cannot read
 * (core.c's errno_from_parents); only dom0 may change a node's owner
 * (do_set_perms: EPERM); transactions check the same, against their own view.
 * Each refusal below was allowed before.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Store, XenstoreError, type PermEntry } from '../src/index.ts';

function errno(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof XenstoreError) return e.errno;
    throw e;
  }
  return 'ok';
}

const n = (domid: number): PermEntry => ({ domid, perm: 'n' });
const r = (domid: number): PermEntry => ({ domid, perm: 'r' });
const b = (domid: number): PermEntry => ({ domid, perm: 'b' });

/** A store as the toolstack makes one: each guest owns /local/domain/N, nobody else may read it. */
function host(...guests: number[]): Store {
  const s = new Store();
  for (const d of guests) {
    s.mkdir(0, `/local/domain/${d}`);
    s.setPerms(0, `/local/domain/${d}`, [n(d)]);
  }
  return s;
}

/** Watch `path` as `domid`; the returned list gets every event after the watch's own first one. */
function watch(s: Store, domid: number, path: string): string[] {
  const seen: string[] = [];
  let first = true;
  s.watch(domid, path, `w${domid}`, (p) => {
    if (first) first = false;
    else seen.push(p);
  });
  return seen;
}

const PRIVATE = '/local/domain/1/data/private-xyz';

describe('watch events go only to domains that may read the node (issue 20, item 10)', () => {
  it("a domain watching / hears nothing of another domain's private node being written", () => {
    const s = host(1, 2);
    const [w0, w1, w2] = [watch(s, 0, '/'), watch(s, 1, '/'), watch(s, 2, '/')];
    s.write(1, PRIVATE, 'secret');
    s.setPerms(1, PRIVATE, [n(1)]);
    s.write(1, PRIVATE, 'again');
    expect(w2).toEqual([]);
    expect(w1).toEqual([PRIVATE, PRIVATE, PRIVATE]);
    expect(w0).toEqual([PRIVATE, PRIVATE, PRIVATE]);
    expect(errno(() => s.read(2, PRIVATE))).toBe('EACCES');
  });

  it('nor of it being removed', () => {
    const s = host(1, 2);
    s.write(1, PRIVATE, 'secret');
    const [w1, w2] = [watch(s, 1, '/local'), watch(s, 2, '/local')];
    s.rm(1, '/local/domain/1/data');
    expect(w2).toEqual([]);
    expect(w1).toEqual(['/local/domain/1/data']);
  });

  it('nor of a mkdir there, nor of dom0 writing there', () => {
    const s = host(1, 2);
    const w2 = watch(s, 2, '/local/domain/1');
    s.mkdir(1, '/local/domain/1/dir');
    s.write(0, '/local/domain/1/by-dom0', 'x');
    expect(w2).toEqual([]);
  });

  it('nor of its permissions changing while it stays unreadable to it; a domain they let read it hears', () => {
    const s = host(1, 2, 3);
    s.write(1, PRIVATE, 'secret');
    const [w2, w3] = [watch(s, 2, '/'), watch(s, 3, '/')];
    s.setPerms(1, PRIVATE, [n(1), r(3)]);
    expect(w2).toEqual([]);
    expect(w3).toEqual([PRIVATE]);
  });

  it('a domain that loses read access hears of the change that took it away (the old permissions count)', () => {
    const s = host(1, 2);
    s.write(1, PRIVATE, 'secret');
    s.setPerms(1, PRIVATE, [n(1), r(2)]);
    const w2 = watch(s, 2, PRIVATE);
    s.setPerms(1, PRIVATE, [n(1)]);
    s.write(1, PRIVATE, 'after');
    expect(w2).toEqual([PRIVATE]);
  });

  it('a node unreadable to a domain whose parent it may read is announced to it (xenstored looks at the parent)', () => {
    const s = host(1, 2);
    s.mkdir(1, '/local/domain/1/shared');
    s.setPerms(1, '/local/domain/1/shared', [n(1), r(2)]);
    s.write(1, '/local/domain/1/shared/hidden', 'x');
    s.setPerms(1, '/local/domain/1/shared/hidden', [n(1)]);
    const w2 = watch(s, 2, '/local/domain/1/shared');
    s.write(1, '/local/domain/1/shared/hidden', 'y');
    expect(w2).toEqual(['/local/domain/1/shared/hidden']);
    expect(errno(() => s.read(2, '/local/domain/1/shared/hidden'))).toBe('EACCES');
  });

  it('a transaction committing a write to a private node is announced to its readers only', () => {
    const s = host(1, 2);
    const [w1, w2] = [watch(s, 1, '/'), watch(s, 2, '/')];
    const t = s.transactionStart(1);
    s.write(1, PRIVATE, 'in tx', t);
    expect(s.transactionEnd(1, t, true)).toBe(true);
    expect(w2).toEqual([]);
    expect(w1).toContain(PRIVATE);
  });

  it('a transaction removing a private node is not announced to others', () => {
    const s = host(1, 2);
    s.write(1, PRIVATE, 'secret');
    const w2 = watch(s, 2, '/');
    const t = s.transactionStart(1);
    s.rm(1, PRIVATE, t);
    expect(s.transactionEnd(1, t, true)).toBe(true);
    expect(w2).toEqual([]);
  });

  it('@introduceDomain goes to dom0 and to domains granted it, not to other guests; @releaseDomain to every domain', () => {
    const s = host(1, 2);
    const [i0, i2] = [watch(s, 0, '@introduceDomain'), watch(s, 2, '@introduceDomain')];
    const [r0, r2] = [watch(s, 0, '@releaseDomain'), watch(s, 2, '@releaseDomain')];
    s.introduceDomain(3);
    expect(i0).toEqual(['@introduceDomain']);
    expect(i2).toEqual([]);
    expect(errno(() => s.getPerms(2, '@introduceDomain'))).toBe('EACCES');
    // Changing a special node's permissions is itself an event on it (as in xenstored), then the introduction.
    s.setPerms(0, '@introduceDomain', [n(0), r(2)]);
    s.introduceDomain(4);
    expect(i2).toEqual(['@introduceDomain', '@introduceDomain']);
    s.releaseDomain(3);
    expect(r0).toEqual(['@releaseDomain']);
    expect(r2).toEqual(['@releaseDomain']);
  });
});

describe('only dom0 changes an owner (issue 20, item 10)', () => {
  it('a guest may not give its own node to another domain: EPERM, permissions unchanged', () => {
    const s = host(1, 2);
    s.write(1, '/local/domain/1/data', 'd');
    expect(errno(() => s.setPerms(1, '/local/domain/1/data', [n(2)]))).toBe('EPERM');
    expect(errno(() => s.setPerms(1, '/local/domain/1/data', [b(2), r(1)]))).toBe('EPERM');
    expect(s.getPerms(0, '/local/domain/1/data')).toEqual([n(1)]);
  });

  it('nor inside a transaction', () => {
    const s = host(1, 2);
    s.write(1, '/local/domain/1/data', 'd');
    const t = s.transactionStart(1);
    expect(errno(() => s.setPerms(1, '/local/domain/1/data', [n(2)], t))).toBe('EPERM');
    expect(s.transactionEnd(1, t, true)).toBe(true);
    expect(s.getPerms(0, '/local/domain/1/data')).toEqual([n(1)]);
  });

  it('an owner may grant other domains access, keeping itself owner; dom0 may name any owner', () => {
    const s = host(1, 2);
    s.write(1, '/local/domain/1/data', 'd');
    s.setPerms(1, '/local/domain/1/data', [n(1), r(2)]);
    expect(s.read(2, '/local/domain/1/data')).toBe('d');
    s.setPerms(0, '/local/domain/1/data', [n(2)]);
    expect(s.getPerms(2, '/local/domain/1/data')).toEqual([n(2)]);
  });

  it('write access is not ownership: EACCES', () => {
    const s = host(1);
    s.write(0, '/shared/n', 'x');
    s.setPerms(0, '/shared/n', [n(0), b(1)]);
    expect(errno(() => s.setPerms(1, '/shared/n', [n(0), b(1), r(2)]))).toBe('EACCES');
  });
});

describe('errors reveal nothing a domain may not read (core.c: errno_from_parents)', () => {
  const absent = '/local/domain/1/data/absent';
  const present = '/local/domain/1/data/present';
  function twoNodes(): Store {
    const s = host(1, 2);
    s.write(1, present, 'x');
    return s;
  }
  const ops: [string, (s: Store, p: string) => unknown][] = [
    ['read', (s, p) => s.read(2, p)],
    ['directory', (s, p) => s.directory(2, p)],
    ['get_perms', (s, p) => s.getPerms(2, p)],
    ['rm', (s, p) => s.rm(2, p)],
    ['set_perms', (s, p) => s.setPerms(2, p, [n(2)])],
    ['read in a transaction', (s, p) => s.read(2, p, s.transactionStart(2))],
    ['get_perms in a transaction', (s, p) => s.getPerms(2, p, s.transactionStart(2))],
  ];
  it.each(ops)('%s of a missing node under another domain is EACCES, as of an existing one', (_op, f) => {
    const s = twoNodes();
    expect(errno(() => f(s, present))).toBe('EACCES');
    expect(errno(() => f(s, absent))).toBe('EACCES');
  });

  it('where the domain may look, a missing node is ENOENT', () => {
    const s = twoNodes();
    expect(errno(() => s.read(1, absent))).toBe('ENOENT');
    expect(errno(() => s.getPerms(0, absent))).toBe('ENOENT');
    s.setPerms(1, '/local/domain/1/data', [n(1), r(2)]);
    expect(errno(() => s.read(2, absent))).toBe('ENOENT');
  });
});

describe('transactions check against their own view', () => {
  it('set_perms on a node the transaction made, and get_perms there, see the transaction', () => {
    const s = host(1, 2);
    const t = s.transactionStart(1);
    s.write(1, '/local/domain/1/new/key', 'v', t);
    s.setPerms(1, '/local/domain/1/new', [n(1), r(2)], t);
    expect(s.getPerms(1, '/local/domain/1/new', t)).toEqual([n(1), r(2)]);
    expect(s.getPerms(1, '/local/domain/1/new/key', t)).toEqual([n(1)]);
    expect(errno(() => s.getPerms(1, '/local/domain/1/new'))).toBe('ENOENT');
    expect(s.transactionEnd(1, t, true)).toBe(true);
    expect(s.read(2, '/local/domain/1/new')).toBe('');
    expect(errno(() => s.read(2, '/local/domain/1/new/key'))).toBe('EACCES');
  });

  it('a node the transaction removed is gone for it, and what it re-makes there is fresh', () => {
    const s = host(1);
    s.write(1, '/local/domain/1/a/old', '1');
    const t = s.transactionStart(1);
    s.rm(1, '/local/domain/1/a', t);
    expect(errno(() => s.read(1, '/local/domain/1/a/old', t))).toBe('ENOENT');
    s.write(1, '/local/domain/1/a/new', '2', t);
    expect(s.directory(1, '/local/domain/1/a', t)).toEqual(['new']);
    expect(s.directory(1, '/local/domain/1/a')).toEqual(['old']);
    expect(s.transactionEnd(1, t, true)).toBe(true);
    expect(s.directory(1, '/local/domain/1/a')).toEqual(['new']);
  });
});

/**
 * Random operations by random domains, some in transactions, with domains 1-3
 * watching "/": a domain hears of a change only if it could read the node (or
 * its parent) before or after it, and always if it can read the node after it
 * or could read a node that was removed or re-permitted. Readability is judged
 * by the store's own reads, as the issue judged it.
 */
describe('watch events and reads agree (property)', () => {
  const seg = fc.constantFrom('a', 'b');
  const path = fc.array(seg, { minLength: 1, maxLength: 3 }).map((p) => '/' + p.join('/'));
  const dom = fc.integer({ min: 0, max: 3 });
  const perm = fc.record({ domid: dom, perm: fc.constantFrom('n' as const, 'r' as const, 'w' as const, 'b' as const) });
  const op = fc.record({
    by: dom,
    inTx: fc.boolean(),
    path,
    what: fc.oneof(
      fc.record({ k: fc.constant('write' as const), v: fc.constantFrom('', 'v') }),
      fc.record({ k: fc.constant('mkdir' as const) }),
      fc.record({ k: fc.constant('rm' as const) }),
      fc.record({ k: fc.constant('perms' as const), perms: fc.array(perm, { minLength: 1, maxLength: 3 }) }),
    ),
  });
  const parentOf = (p: string): string => p.slice(0, p.lastIndexOf('/')) || '/';

  it('holds for any sequence', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        const s = new Store();
        s.setPerms(0, '/', [n(0), b(1), r(2)]);
        const heard = [1, 2, 3].map((d) => watch(s, d, '/'));
        const readable = (d: number, p: string): boolean => errno(() => s.read(d, p)) === 'ok';
        for (const o of ops) {
          const before = [1, 2, 3].map((d) => readable(d, o.path) || readable(d, parentOf(o.path)));
          const nodeBefore = [1, 2, 3].map((d) => readable(d, o.path));
          // mkdir of a node that is there, and rm of one that is not, change nothing and fire nothing.
          const existed = readable(0, o.path);
          const noop = (w0: typeof o.what): boolean => (w0.k === 'mkdir' && existed) || (w0.k === 'rm' && !existed);
          for (const h of heard) h.length = 0;
          const t = o.inTx ? s.transactionStart(o.by) : undefined;
          const w = o.what;
          const result = errno(() => {
            if (w.k === 'write') s.write(o.by, o.path, w.v, t);
            else if (w.k === 'mkdir') s.mkdir(o.by, o.path, t);
            else if (w.k === 'rm') s.rm(o.by, o.path, t);
            else s.setPerms(o.by, o.path, w.perms, t);
          });
          if (t !== undefined) s.transactionEnd(o.by, t, result === 'ok');
          [1, 2, 3].forEach((d, i) => {
            const after = readable(d, o.path) || readable(d, parentOf(o.path));
            const got = heard[i];
            if (result !== 'ok' || noop(w)) expect(got).toEqual([]);
            expect(got.every((p) => p === o.path)).toBe(true);
            if (got.length > 0) expect(before[i] || after).toBe(true);
            if (result === 'ok' && !noop(w) && (readable(d, o.path) || ((w.k === 'rm' || w.k === 'perms') && nodeBefore[i])))
              expect(got.length).toBeGreaterThan(0);
          });
        }
      }),
      { numRuns: 300 },
    );
  });
});
