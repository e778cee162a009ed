/**
 * `xsim run topo.json --partition NAME` (issue 24, item 2): two processes,
 * one per partition of test/fixtures/partitions-2.json, boot on this machine
 * and a guest of one pings a guest of the other over their VXLAN tunnel on
 * loopback; what --partition cannot do is refused naming the end at fault.
 * Every wait is bounded; every process is ended by its pid.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { freshBasePort, killAll, xsim } from './partition-procs.ts';

const TOPO = 'test/fixtures/partitions-2.json';
const BOOT_MS = 60_000;
/** A test's own bound: two processes' boots and a run, on 2 busy cores. */
const TEST_MS = 3 * BOOT_MS;

afterAll(() => killAll());

describe('xsim run --partition', () => {
  it(
    'two partitions, two processes: a1 in p0 pings b1 in p1 over the tunnel, every probe answered',
    async () => {
      const base = String(freshBasePort());
      const sock = `/tmp/xsim-part-${process.pid}-${base}.sock`;
      const p1 = xsim(['run', TOPO, '--partition', 'p1', '--serve', '--idle', '--socket', sock, '--vxlan-base-port', base]);
      try {
        await p1.line(/^xsim: serving on /, BOOT_MS);
        expect(p1.out()).toMatch(/topology "two-partitions:p1": host-b \(dom0 \+ b1, b2\)/);
        const p0 = xsim(['run', TOPO, '--partition', 'p0', '--workload', 'ping', '--to', 'host-b/b1', '--count', '20', '-j', '--vxlan-base-port', base]);
        expect(await p0.exit(BOOT_MS)).toBe(0);
        const r = JSON.parse(p0.out()) as { topology: string; ping: { count: number; lost: number }; stats: Record<string, unknown> };
        expect(r.topology).toBe('two-partitions:p0');
        expect(r.ping).toMatchObject({ count: 20, lost: 0 });
        // Only p0's domains are in its counters; its wire is a tunnel that carried the echoes both ways.
        expect(Object.keys(r.stats).filter((k) => k !== 'fabric')).toEqual(['host-a/dom0', 'host-a/a1', 'host-a/a2']);
        const vx = (r.stats.fabric as { vxlan: { tunnels: { vni: number; vxlanTxSent: number; vxlanRxFrames: number }[] } }).vxlan;
        expect(vx.tunnels).toHaveLength(1);
        expect(vx.tunnels[0].vni).toBe(10000);
        expect(vx.tunnels[0].vxlanTxSent).toBeGreaterThanOrEqual(20);
        expect(vx.tunnels[0].vxlanRxFrames).toBeGreaterThanOrEqual(20);
        const stop = xsim(['shutdown', '--socket', sock]);
        expect(await stop.exit(30_000)).toBe(0);
        expect(await p1.exit(30_000)).toBe(0);
      } finally {
        if (p1.child.exitCode === null) p1.child.kill('SIGKILL');
      }
    },
    TEST_MS,
  );

  it.each([
    [['--to', 'host-b/b1'], /--to host-b\/b1 is in partition p1, not p0: with --partition only --workload ping reaches another partition's guest/],
    [['--from', 'host-b/b1', '--to', 'host-a/a1'], /--from host-b\/b1 is in partition p1, not p0: a partition sends from its own guests/],
    [['--workload', 'ping', '--to', 'host-b/b9'], /no domain "b9" on host-b \(domUs: b1, b2\)/],
  ])(
    'refused before anything starts: %j',
    async (extra, re) => {
      const p = xsim(['run', TOPO, '--partition', 'p0', ...extra]);
      expect(await p.exit(30_000)).not.toBe(0);
      expect(p.err()).toMatch(re);
    },
    TEST_MS,
  );

  it(
    'an unknown partition, a topology without partitions, --partition without a file',
    async () => {
      const cases: [string[], RegExp][] = [
        [[TOPO, '--partition', 'p9'], /no partition "p9" in topology "two-partitions" \(partitions: p0, p1\)/],
        [['topologies/default.json', '--partition', 'p0'], /topology "default" has no "partitions": nothing to split/],
        [['--partition', 'p0'], /--partition NAME runs a partition of a topology file: give the file/],
        [[TOPO, '--vxlan-base-port', '30000'], /--vxlan-base-port goes with --partition NAME/],
      ];
      const ps = cases.map(([args]) => xsim(['run', ...args]));
      for (const [i, p] of ps.entries()) {
        expect(await p.exit(30_000)).not.toBe(0);
        expect(p.err()).toMatch(cases[i][1]);
      }
    },
    TEST_MS,
  );
});
