/**
 * The pCPU workers' compiled copy of the packages (hypervisor's
 * domain/mirror.ts): a worker runs it with no loader hooks, and a module it
 * does not hold (a user's kernel or plugin) is loaded through tsx with the
 * same package instances; two builds at once both end with a whole copy; an
 * edit gives another name; XSIM_NO_BUNDLE=1 turns it off.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { hashOf, makeMirror, workerMirror } from '../packages/hypervisor/src/domain/mirror.ts';

const scratch = mkdtempSync(join(tmpdir(), 'xsim-mirror-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the workers’ compiled copy of the packages', () => {
  it('runs with no hooks; a module outside it comes through tsx and shares its package instances', async () => {
    const mirror = await workerMirror();
    expect(mirror).not.toBeNull();
    const reply = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const w = new Worker(new URL('./fixtures/mirror/worker.mjs', import.meta.url), {
        execArgv: [],
        workerData: { mirror, packages: new URL('../packages/', import.meta.url).href, probe: new URL('./fixtures/mirror/probe.ts', import.meta.url).href },
      });
      w.once('message', (m) => void w.terminate().then(() => resolve(m)));
      w.once('error', reject);
    });
    expect(reply).toEqual({
      before: { ok: true, sameMetrics: true },
      probe: 1,
      sameHypervisor: true,
      sameMetrics: true,
      sameTypebox: true,
      error: null,
    });
  });

  it('two builds at once both end with one whole copy', async () => {
    const base = join(scratch, 'cache');
    const [a, b] = await Promise.all([makeMirror(base), makeMirror(base)]);
    expect(a).toEqual(b);
    const out = fileURLToPath(a!.out);
    for (const f of ['hypervisor/src/sched/worker.mjs', 'netback/src/dom0.mjs', 'netfront/src/guest.mjs', 'nic/src/fabric.mjs', '_vendor/map.json'])
      expect(existsSync(join(out, f)), f).toBe(true);
    expect(readdirSync(base).filter((n) => n.startsWith('tmp-'))).toEqual([]);
  });

  it('is named by the sources’ contents', () => {
    const f = join(scratch, 'a.ts');
    writeFileSync(f, 'export const a = 1;\n');
    const before = hashOf([f]);
    expect(hashOf([f])).toBe(before);
    writeFileSync(f, 'export const a = 2;\n');
    expect(hashOf([f])).not.toBe(before);
  });

  it('XSIM_NO_BUNDLE=1 turns it off', async () => {
    process.env.XSIM_NO_BUNDLE = '1';
    try {
      expect(await workerMirror()).toBeNull();
    } finally {
      delete process.env.XSIM_NO_BUNDLE;
    }
  });
});
