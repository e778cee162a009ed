/**
 * The store at the edges, answering as cxenstored does (issue 22, item 6;
 * tools/xenstored/core.c, domain.c, transaction.c of xen-project/xen): node
 * names, path length, removing what is gone, ending no transaction, the
 * special nodes, mkdir and rm events, generations, a released domain's
 * nodes (XSA-322) and which domains are introduced.
 */
import { describe, expect, it } from 'vitest';
import { DOMID_SELF, Store, XENSTORE_REL_PATH_MAX, XenstoreError } from '../src/index.ts';

function errno(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof XenstoreError) return e.errno;
    throw e;
  }
  return 'ok';
}

/** A store with guest 1's home as libxl makes it: (n0,r1), and a data directory it owns. */
function withGuest(): Store {
  const s = new Store();
  s.mkdir(0, '/local/domain/1');
  s.setPerms(0, '/local/domain/1', [
    { domid: 0, perm: 'n' },
    { domid: 1, perm: 'r' },
  ]);
  s.mkdir(0, '/local/domain/1/data');
  s.setPerms(0, '/local/domain/1/data', [{ domid: 1, perm: 'n' }]);
  return s;
}

describe('xenstored at the edges (issue 22, item 6)', () => {
  it("a '.' in a node name is EINVAL, as valid_chars allows only letters, digits and - / _ @", () => {
    const s = new Store();
    for (const p of ['/a/b.c', '/a/.', '/a/..', '/.hidden']) expect(errno(() => s.write(0, p, 'v'))).toBe('EINVAL');
    expect(errno(() => s.watch(0, '/a.b', 't', () => {}))).toBe('EINVAL');
    // What valid_chars allows, '@' inside a name too.
    expect(errno(() => s.write(0, '/a-b/c_d/e@f/G9', 'v'))).toBe('ok');
  });

  it('a guest path is shorter than XENSTORE_REL_PATH_MAX below /local/domain/N/ (elsewhere, whole); dom0 has no path limit', () => {
    const s = withGuest();
    const home = '/local/domain/1/';
    const longest = 'data/' + 'x'.repeat(XENSTORE_REL_PATH_MAX - 1 - 'data/'.length);
    expect(longest.length).toBe(2047);
    expect(errno(() => s.write(1, home + longest, 'v'))).toBe('ok');
    expect(errno(() => s.write(1, home + longest + 'y', 'v'))).toBe('EINVAL');
    // The home prefix is not counted: 2047 characters after it make an absolute path of 2063.
    expect((home + longest).length).toBeGreaterThan(2048);
    // Outside a home directory the whole path counts.
    s.mkdir(0, '/tool');
    s.setPerms(0, '/tool', [{ domid: 1, perm: 'n' }]);
    expect(errno(() => s.write(1, '/tool/' + 'z'.repeat(2047 - 6), 'v'))).toBe('ok');
    expect(errno(() => s.write(1, '/tool/' + 'z'.repeat(2048 - 6), 'v'))).toBe('EINVAL');
    // Privileged: no limit (cxenstored checks the path-max quota only for unprivileged domains).
    expect(errno(() => s.write(0, '/tool/' + 'q'.repeat(3000), 'v'))).toBe('ok');
  });

  it('removing a node that is already gone is OK while its parent is there, ENOENT when the parent is gone too; in a transaction alike', () => {
    const s = withGuest();
    s.write(0, '/a/b', 'x');
    expect(errno(() => s.rm(0, '/a/missing'))).toBe('ok');
    expect(errno(() => s.rm(0, '/nowhere/missing'))).toBe('ENOENT');
    // A guest: OK under its own directory; where it may not look it learns nothing (EACCES).
    expect(errno(() => s.rm(1, '/local/domain/1/data/missing'))).toBe('ok');
    expect(errno(() => s.rm(1, '/local/domain/1/data/no/such'))).toBe('ENOENT');
    expect(errno(() => s.rm(1, '/local/domain/2/missing'))).toBe('EACCES');
    const t = s.transactionStart(0);
    expect(errno(() => s.rm(0, '/a/missing', t))).toBe('ok');
    expect(errno(() => s.rm(0, '/nowhere/missing', t))).toBe('ENOENT');
    // As the transaction sees it: a parent it removed is gone, one it made is there.
    s.rm(0, '/a/b', t);
    expect(errno(() => s.rm(0, '/a/b/c', t))).toBe('ENOENT');
    s.write(0, '/made/x', '1', t);
    expect(errno(() => s.rm(0, '/made/y', t))).toBe('ok');
    expect(s.transactionEnd(0, t, true)).toBe(true);
  });

  it('ending no transaction (id 0) is ENOENT, as do_transaction_end answers', () => {
    const s = new Store();
    expect(errno(() => s.transactionEnd(0, 0, true))).toBe('ENOENT');
    expect(errno(() => s.transactionEnd(0, 0, false))).toBe('ENOENT');
    expect(errno(() => s.transactionEnd(0, 99, true))).toBe('ENOENT');
  });

  it('reading or listing @releaseDomain is EINVAL (no special node there); its permissions and watches are served', () => {
    const s = new Store();
    for (const d of [0, 1]) {
      expect(errno(() => s.read(d, '@releaseDomain'))).toBe('EINVAL');
      expect(errno(() => s.directory(d, '@releaseDomain'))).toBe('EINVAL');
      expect(errno(() => s.write(d, '@releaseDomain', 'x'))).toBe('EINVAL');
    }
    expect(s.getPerms(1, '@releaseDomain')[0]).toEqual({ domid: 0, perm: 'n' });
  });

  it('mkdir of a node that is there changes nothing and fires no watch (do_mkdir); a new one fires', () => {
    const s = new Store();
    s.write(0, '/a/b', 'keep');
    const seen: string[] = [];
    s.watch(0, '/a', 't', (p) => seen.push(p));
    const gen = s.listing(0, '/a').generation;
    s.mkdir(0, '/a/b');
    s.mkdir(0, '/a');
    expect(seen).toEqual(['/a']);
    expect(s.read(0, '/a/b')).toBe('keep');
    expect(s.listing(0, '/a').generation).toBe(gen);
    s.mkdir(0, '/a/c');
    expect(seen).toEqual(['/a', '/a/c']);
    const t = s.transactionStart(0);
    s.mkdir(0, '/a/b', t);
    s.transactionEnd(0, t, true);
    expect(seen).toEqual(['/a', '/a/c']);
  });

  it('removing a subtree fires a watch on each node removed, deepest first: the top for watches at or above it, the rest for watches on exactly them', () => {
    const s = new Store();
    s.write(0, '/a/b/c', '1');
    s.write(0, '/a/b/d', '2');
    const seen: string[] = [];
    for (const w of ['/', '/a', '/a/b', '/a/b/c', '/a/b/c/never']) s.watch(0, w, w, (p, t) => seen.push(`${t}<-${p}`));
    seen.length = 0;
    s.rm(0, '/a');
    expect(seen).toEqual(['/a/b/c<-/a/b/c', '/a/b<-/a/b', '/<-/a', '/a<-/a']);
  });

  it('a commit fires once for each node it changed, however often the transaction wrote it', () => {
    const s = new Store();
    s.write(0, '/a/x', '0');
    const seen: string[] = [];
    s.watch(0, '/a', 't', (p) => seen.push(p));
    seen.length = 0;
    const t = s.transactionStart(0);
    s.write(0, '/a/x', '1', t);
    s.write(0, '/a/x', '2', t);
    s.write(0, '/a/y', '3', t);
    s.write(0, '/a/x', '4', t);
    expect(s.transactionEnd(0, t, true)).toBe(true);
    expect(seen).toEqual(['/a/x', '/a/y']);
    expect(s.read(0, '/a/x')).toBe('4');
  });

  it("a node's generation changes with its value and with its list of children, so a transaction that listed it conflicts", () => {
    const s = new Store();
    s.write(0, '/a/x', '1');
    const g0 = s.listing(0, '/a').generation;
    expect(g0).toBeGreaterThan(0);
    s.write(0, '/a/x', '2');
    expect(s.listing(0, '/a').generation).toBe(g0);
    s.write(0, '/a/y/z', '1');
    const g1 = s.listing(0, '/a').generation;
    expect(g1).toBeGreaterThan(g0);
    s.rm(0, '/a/y');
    expect(s.listing(0, '/a').generation).toBeGreaterThan(g1);
    // A transaction that listed /a does not commit over a child made meanwhile (EAGAIN).
    const t = s.transactionStart(0);
    expect(s.directory(0, '/a', t)).toEqual(['x']);
    s.write(0, '/other', 'o', t);
    s.write(0, '/a/new', 'n');
    expect(s.transactionEnd(0, t, true)).toBe(false);
    // In a transaction: stable while nothing changes, new once it changes the list.
    const t2 = s.transactionStart(0);
    const tg = s.listing(0, '/a', t2).generation;
    expect(s.listing(0, '/a', t2).generation).toBe(tg);
    s.write(0, '/a/more', 'm', t2);
    expect(s.listing(0, '/a', t2)).toEqual({ children: ['more', 'new', 'x'], generation: expect.any(Number) });
    expect(s.listing(0, '/a', t2).generation).not.toBe(tg);
    s.transactionEnd(0, t2, false);
  });

  it('a released domain leaves nothing behind (XSA-322): its nodes go (their watches fire), entries naming it go', () => {
    const s = withGuest();
    s.write(1, '/local/domain/1/data/mine', 'x');
    s.mkdir(0, '/local/domain/0/backend/vif/1/0');
    s.setPerms(0, '/local/domain/0/backend/vif/1/0', [
      { domid: 0, perm: 'n' },
      { domid: 1, perm: 'r' },
      { domid: 3, perm: 'r' },
    ]);
    s.setPerms(0, '@releaseDomain', [
      { domid: 0, perm: 'n' },
      { domid: 1, perm: 'r' },
    ]);
    const seen: string[] = [];
    s.watch(0, '/local/domain/1/data/mine', 't', (p) => seen.push(p));
    seen.length = 0;
    s.introduceDomain(1);
    s.releaseDomain(1);
    expect(s.directory(0, '/local/domain/1')).toEqual([]);
    expect(seen).toEqual(['/local/domain/1/data/mine']);
    expect(s.getPerms(0, '/local/domain/1')).toEqual([{ domid: 0, perm: 'n' }]);
    expect(s.getPerms(0, '/local/domain/0/backend/vif/1/0')).toEqual([
      { domid: 0, perm: 'n' },
      { domid: 3, perm: 'r' },
    ]);
    expect(s.getPerms(0, '@releaseDomain')).toEqual([{ domid: 0, perm: 'n' }]);
    // A later domain 1 inherits no access.
    expect(errno(() => s.read(1, '/local/domain/0/backend/vif/1/0'))).toBe('EACCES');
  });

  it('IS_DOMAIN_INTRODUCED: dom0 from the start, a guest between introduce and release, DOMID_SELF always', () => {
    const s = new Store();
    expect(s.isIntroduced(0)).toBe(true);
    expect(s.isIntroduced(DOMID_SELF)).toBe(true);
    expect(s.isIntroduced(5)).toBe(false);
    s.introduceDomain(5);
    expect(s.isIntroduced(5)).toBe(true);
    s.releaseDomain(5);
    expect(s.isIntroduced(5)).toBe(false);
  });
});
