/** The xenstore sockets leave nothing behind: their socket files, and the directory if they made it. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '@xsim/hypervisor';
import { serveXenstores } from '../src/xenstored-socket.ts';

const base = mkdtempSync(join(tmpdir(), 'xsim-xs-dir-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('serveXenstores', () => {
  it('removes the directory it made when it closes', async () => {
    const dir = join(base, 'made.xs');
    const s = await serveXenstores([{ spec: { name: 'h' }, xenstore: { store: new Store() } }], dir);
    expect(existsSync(join(dir, 'h'))).toBe(true);
    await s.close();
    expect(existsSync(dir)).toBe(false);
  });

  it('leaves a directory that was there before, with only its own socket gone', async () => {
    const dir = mkdtempSync(join(base, 'given-'));
    const s = await serveXenstores([{ spec: { name: 'h' }, xenstore: { store: new Store() } }], dir);
    await s.close();
    expect(existsSync(dir)).toBe(true);
    expect(existsSync(join(dir, 'h'))).toBe(false);
  });
});
