import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Store, XenstoreError } from '../src/index.ts';

function errno(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof XenstoreError) return e.errno;
    throw e;
  }
  return 'ok';
}

describe('xenstore tree', () => {
  it('creates parents on write, lists children sorted, removes recursively', () => {
    const s = new Store();
    s.write(0, '/local/domain/1/device/vif/0/mac', 'aa');
    s.write(0, '/local/domain/1/device/vif/1/mac', 'bb');
    expect(s.directory(0, '/local/domain/1/device/vif')).toEqual(['0', '1']);
    expect(s.read(0, '/local/domain/1/device')).toBe('');
    s.rm(0, '/local/domain/1/device');
    expect(errno(() => s.read(0, '/local/domain/1/device/vif/0/mac'))).toBe('ENOENT');
    expect(s.directory(0, '/local/domain/1')).toEqual([]);
  });

  it('rejects malformed paths with EINVAL naming the path', () => {
    const s = new Store();
    // (A path too long for a guest: xs-edges.test.ts; dom0 has no path limit, as in cxenstored.)
    for (const p of ['relative', '/a//b', '/a/', '/bad path', '', '/a.b']) {
      expect(() => s.write(0, p, 'v')).toThrow(XenstoreError);
      expect(errno(() => s.write(0, p, 'v'))).toBe('EINVAL');
    }
    expect(() => s.read(0, '/a//b')).toThrow(/bad path "\/a\/\/b"/);
  });

  it('enforces Xen-style permissions', () => {
    const s = new Store();
    s.mkdir(0, '/local/domain/1');
    s.setPerms(0, '/local/domain/1', [{ domid: 1, perm: 'n' }]);
    s.mkdir(0, '/local/domain/2');
    s.setPerms(0, '/local/domain/2', [
      { domid: 2, perm: 'n' },
      { domid: 1, perm: 'r' },
    ]);
    s.write(0, '/local/domain/2/secret', 'x');
    // A guest writes its own subtree, and owns what it creates there.
    s.write(1, '/local/domain/1/data', 'd');
    expect(s.getPerms(0, '/local/domain/1/data')[0].domid).toBe(1);
    // It may read where granted 'r', never write there, and not touch others at all.
    expect(s.read(1, '/local/domain/2/secret')).toBe('x');
    expect(errno(() => s.write(1, '/local/domain/2/secret', 'y'))).toBe('EACCES');
    expect(errno(() => s.read(3, '/local/domain/2/secret'))).toBe('EACCES');
    expect(errno(() => s.write(1, '/local/domain/0/evil', 'y'))).toBe('EACCES');
    expect(errno(() => s.setPerms(1, '/local/domain/2', [{ domid: 1, perm: 'b' }]))).toBe('EACCES');
    // dom0 can do everything.
    s.write(0, '/local/domain/1/data', 'from dom0');
    expect(s.read(1, '/local/domain/1/data')).toBe('from dom0');
  });

  it('commits transactions atomically and fails a conflicting one with EAGAIN', () => {
    const s = new Store();
    s.write(0, '/a/x', '1');
    const t = s.transactionStart(0);
    s.write(0, '/a/y', '2', t);
    expect(s.read(0, '/a/y', t)).toBe('2');
    expect(errno(() => s.read(0, '/a/y'))).toBe('ENOENT');
    expect(s.transactionEnd(0, t, true)).toBe(true);
    expect(s.read(0, '/a/y')).toBe('2');

    const t2 = s.transactionStart(0);
    expect(s.read(0, '/a/x', t2)).toBe('1');
    s.write(0, '/a/x', 'changed behind its back');
    s.write(0, '/a/z', 'z', t2);
    expect(s.transactionEnd(0, t2, true)).toBe(false);
    expect(errno(() => s.read(0, '/a/z'))).toBe('ENOENT');

    const t3 = s.transactionStart(0);
    s.write(0, '/a/w', 'w', t3);
    s.transactionEnd(0, t3, false);
    expect(errno(() => s.read(0, '/a/w'))).toBe('ENOENT');

    const t4 = s.transactionStart(0);
    s.write(0, '/b/q', 'q', t4);
    s.write(0, '/a/unrelated', 'u');
    expect(s.transactionEnd(0, t4, true)).toBe(true);
  });

  it('fires watches on registration and on changes at or below, not on siblings; tx changes on commit', () => {
    const s = new Store();
    // Domain 1 hears only of what it may read: give it read access to the backend directory.
    s.mkdir(0, '/local/domain/0/backend');
    s.setPerms(0, '/local/domain/0/backend', [
      { domid: 0, perm: 'n' },
      { domid: 1, perm: 'r' },
    ]);
    const seen: string[] = [];
    s.watch(1, '/local/domain/0/backend', 'tok', (p, t) => seen.push(`${t}:${p}`));
    expect(seen).toEqual(['tok:/local/domain/0/backend']);
    s.write(0, '/local/domain/0/backend/vif/1/0/state', '2');
    s.write(0, '/local/domain/0/backendx', 'sibling');
    expect(seen.slice(1)).toEqual(['tok:/local/domain/0/backend/vif/1/0/state']);
    const t = s.transactionStart(0);
    s.write(0, '/local/domain/0/backend/k', 'v', t);
    expect(seen.length).toBe(2);
    s.transactionEnd(0, t, true);
    expect(seen.at(-1)).toBe('tok:/local/domain/0/backend/k');
    s.rm(0, '/local/domain/0/backend/vif');
    expect(seen.at(-1)).toBe('tok:/local/domain/0/backend/vif');
    const rel: string[] = [];
    s.watch(0, '@releaseDomain', 'r', (p) => rel.push(p));
    s.releaseDomain(1);
    expect(rel).toEqual(['@releaseDomain', '@releaseDomain']);
    // Domain 1's watches went with it.
    s.write(0, '/local/domain/0/backend/again', 'x');
    expect(seen.at(-1)).toBe('tok:/local/domain/0/backend/vif');
  });

  it('agrees with a Map model on random write/mkdir/rm sequences (property)', () => {
    const seg = fc.constantFrom('a', 'b', 'c');
    const path = fc.array(seg, { minLength: 1, maxLength: 3 }).map((p) => '/' + p.join('/'));
    const op = fc.oneof(
      fc.record({ k: fc.constant('write' as const), path, v: fc.string({ maxLength: 3 }) }),
      fc.record({ k: fc.constant('mkdir' as const), path }),
      fc.record({ k: fc.constant('rm' as const), path }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const s = new Store();
        const m = new Map<string, string>();
        const ensure = (p: string, v?: string) => {
          const parts = p.slice(1).split('/');
          for (let i = 1; i <= parts.length; i++) {
            const q = '/' + parts.slice(0, i).join('/');
            if (!m.has(q)) m.set(q, '');
          }
          if (v !== undefined) m.set(p, v);
        };
        for (const o of ops) {
          if (o.k === 'write') {
            s.write(0, o.path, o.v);
            ensure(o.path, o.v);
          } else if (o.k === 'mkdir') {
            s.mkdir(0, o.path);
            ensure(o.path);
          } else {
            // A node already gone is fine while its parent is there (do_rm).
            const parent = o.path.slice(0, o.path.lastIndexOf('/')) || '/';
            expect(errno(() => s.rm(0, o.path))).toBe(m.has(o.path) || parent === '/' || m.has(parent) ? 'ok' : 'ENOENT');
            for (const k of [...m.keys()]) if (k === o.path || k.startsWith(o.path + '/')) m.delete(k);
          }
        }
        for (const p of ['/a', '/b', '/c', '/a/a', '/a/b', '/b/c/a', '/c/c/c']) {
          if (m.has(p)) {
            expect(s.read(0, p)).toBe(m.get(p));
            const kids = [...m.keys()].filter((k) => k.startsWith(p + '/') && !k.slice(p.length + 1).includes('/')).map((k) => k.slice(p.length + 1));
            expect(s.directory(0, p)).toEqual(kids.sort());
          } else expect(errno(() => s.read(0, p))).toBe('ENOENT');
        }
      }),
    );
  });
});
