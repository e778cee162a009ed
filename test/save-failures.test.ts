/**
 * A save that cannot be written never loses the guest (issue 20, item 3). As
 * `xl save` does, the destination is checked and opened before the guest is
 * touched: a directory, a missing directory or a FIFO is refused with the
 * guest running on, and nothing is left beside the target. A write that fails
 * after the suspend resumes the guest on its host from the image in memory.
 * Capture and trace check their file the same way when they start (items 4
 * and 11): a FIFO or a directory is refused at once, not at stop.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, type DomainRef } from '@xsim/toolstack';

const a2: DomainRef = { host: 'host-a', domain: 'a2' };

describe.each([
  { name: 'deterministic, seed 1', opts: { deterministic: { seed: 1 } } },
  { name: 'threads', opts: { pcpus: 2 } },
])('domain save failures ($name)', ({ opts }) => {
  let sim: Simulation;
  const dir = mkdtempSync(join(tmpdir(), 'xsim-save-'));

  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { ...opts, log: () => {} });
  });

  afterAll(async () => {
    await sim?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  /** a2 is listed, answers, and nothing but what the test made is in the directory. */
  async function a2RunsOn(expected: string[]): Promise<void> {
    const d = (await sim.listDomains()).find((x) => x.host === 'host-a' && x.name === 'a2');
    expect(d?.state).toBe('running');
    expect((await sim.guestStats(a2)).vifs.length).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(expected.sort());
  }

  it('into a directory: refused before the guest is touched', async () => {
    mkdirSync(join(dir, 'adir'));
    await expect(sim.saveDomain(a2, join(dir, 'adir'))).rejects.toThrow(/cannot save host-a\/a2 to .*adir: is a directory; give a regular file or a new name/);
    await a2RunsOn(['adir']);
  });

  it('into a directory that does not exist: refused, the guest runs on', async () => {
    await expect(sim.saveDomain(a2, join(dir, 'missing', 'img'))).rejects.toThrow(/no such directory .*missing/);
    await a2RunsOn(['adir']);
  });

  it('to a FIFO: refused at once (opening it would block until someone reads)', async () => {
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    await expect(sim.saveDomain(a2, join(dir, 'fifo'))).rejects.toThrow(/fifo: is a FIFO/);
    await a2RunsOn(['adir', 'fifo']);
  });

  it('a write that fails after the suspend resumes the guest on its host, and says so', async () => {
    // The name is a regular file when the save checks it, and a directory when the image is renamed onto it.
    const target = join(dir, 'swapped');
    writeFileSync(target, 'old');
    const saving = sim.saveDomain(a2, target);
    const partial = () => readdirSync(dir).some((f) => f.endsWith('.partial'));
    await sim.waitFor('the save to open its temporary file', () => partial(), 10_000);
    rmSync(target);
    mkdirSync(target);
    await expect(saving).rejects.toThrow(/cannot save host-a\/a2 to .*swapped: .*; host-a\/a2 was resumed on host-a/);
    await a2RunsOn(['adir', 'fifo', 'swapped']);
    expect(existsSync(join(target, 'old'))).toBe(false);
  });

  it('a good path still saves, leaving only the image', async () => {
    const s = await sim.saveDomain(a2, join(dir, 'a2.img'));
    expect(s.pages).toBeGreaterThan(0);
    expect(readdirSync(dir).sort()).toEqual(['a2.img', 'adir', 'fifo', 'swapped']);
    const back = await sim.restoreDomain(join(dir, 'a2.img'));
    expect(back.domain).toBe('host-a/a2');
  });

  it('capture and trace refuse a directory, a FIFO or a missing directory when they start, not at stop', async () => {
    await expect(sim.captureStart(['host-a/*'], { file: join(dir, 'adir') })).rejects.toThrow(/capture: cannot write .*adir: is a directory/);
    await expect(sim.captureStart(['host-a/*'], { file: join(dir, 'fifo') })).rejects.toThrow(/capture: cannot write .*fifo: is a FIFO/);
    await expect(sim.captureStart(['host-a/*'], { file: join(dir, 'nowhere', 'x.pcapng') })).rejects.toThrow(/no such directory/);
    await expect(sim.traceStart({ file: join(dir, 'fifo') })).rejects.toThrow(/trace: cannot write .*fifo: is a FIFO/);
    await expect(sim.traceStart({ file: join(dir, 'adir') })).rejects.toThrow(/trace: cannot write .*adir: is a directory/);
    // Nothing was started: a capture to a good file starts and stops.
    const c = await sim.captureStart(['host-a/*'], { file: join(dir, 'ok.pcapng') });
    expect(c.interfaces.length).toBeGreaterThan(0);
    expect((await sim.captureStop()).file).toBe(join(dir, 'ok.pcapng'));
  });

  it('two concurrent capture starts, or trace starts: one starts, the other is refused, nothing is orphaned (item 7)', async () => {
    const caps = await Promise.allSettled([join(dir, 'c1.pcapng'), join(dir, 'c2.pcapng')].map((file) => sim.captureStart(['host-a/*'], { file })));
    expect(caps.map((x) => x.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(String((caps.find((x) => x.status === 'rejected') as PromiseRejectedResult).reason)).toMatch(
      /capture: (already capturing into|a capture into) .*c[12]\.pcapng/,
    );
    await sim.captureStop();
    await expect(sim.captureStop()).rejects.toThrow(/capture: not capturing/);
    const traces = await Promise.allSettled([join(dir, 't1.json'), join(dir, 't2.json')].map((file) => sim.traceStart({ file })));
    expect(traces.map((x) => x.status).sort()).toEqual(['fulfilled', 'rejected']);
    await sim.traceStop();
    await expect(sim.traceStop()).rejects.toThrow(/trace: not tracing/);
    // Exactly one finished file of each, no temporary file left.
    const files = readdirSync(dir);
    expect(files.filter((f) => /^c[12]\.pcapng$/.test(f))).toHaveLength(1);
    expect(files.filter((f) => /^t[12]\.json$/.test(f))).toHaveLength(1);
    expect(files.filter((f) => f.endsWith('.partial'))).toEqual([]);
  });
});
