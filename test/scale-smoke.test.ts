/**
 * `xsim scale` as a user runs it, at its smallest: each point in a child
 * process, the JSON in its schema, a conserved stream across the rack. No
 * timing is asserted (the figures are the command's output, not a test's).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SCALE_SCHEMA, type ScaleJson } from '@xsim/bench';

describe('xsim scale', () => {
  it('boots each point in a fresh process and reports boot, RSS, idle CPU and a conserved cross-rack stream', () => {
    const out = `/tmp/xsim-scale-smoke-${process.pid}.json`;
    const root = new URL('..', import.meta.url).pathname;
    const text = execFileSync('npx', ['xsim', 'scale', '--domains', '8,40', '--idle-seconds', '0.5', '--stream-frames', '500', '--pcpus', '2', '--out', out], {
      cwd: root,
      stdio: 'pipe',
      timeout: 120_000,
    }).toString();
    const r = JSON.parse(readFileSync(out, 'utf8')) as ScaleJson;
    expect(r.schema).toBe(SCALE_SCHEMA);
    expect(r.points.map((p) => [p.domUs, p.hosts, p.switches])).toEqual([
      [8, 2, 1],
      [42, 3, 1],
    ]);
    for (const p of r.points) {
      expect(p.pcpus).toBe(2);
      expect(p.idleSeconds).toBe(0.5);
      expect(p.bootMs).toBeGreaterThan(0);
      expect(p.shutdownMs).toBeGreaterThan(0);
      expect(p.maxRssMb).toBeGreaterThan(0);
      // The process's CPU time over the idle wall time: from none to every core the machine has.
      expect(p.idleCores).toBeGreaterThanOrEqual(0);
      expect(p.idleCores).toBeLessThanOrEqual(r.machine.cores);
      expect(p.stream).toMatchObject({ frames: 500, delivered: 500, conserved: true });
      expect(p.stream!.pps).toBeGreaterThan(0);
      expect(p.stream!.gbps).toBeGreaterThan(0);
    }
    expect(r.points[1].stream?.to).toBe('h02/h02g14');
    expect(text).toMatch(/domUs +domains +hosts/);
  });

  it('refuses a domain count it cannot build, by name', () => {
    const root = new URL('..', import.meta.url).pathname;
    expect(() => execFileSync('npx', ['xsim', 'scale', '--domains', '16,abc'], { cwd: root, stdio: 'pipe' })).toThrow(
      /--domains: "abc" is not a domU count from 2 to 12800/,
    );
  });
});
