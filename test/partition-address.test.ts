/**
 * Partitions on addresses of their own (issue 24, item 6), through the real
 * CLI: `xsim run topo.json --partition NAME --partition-address
 * NAME=ADDR[:PORT] ...` in two processes, p0 on 127.0.0.1 (given by the
 * name localhost, resolved at start) and p1 on 127.0.0.2 with a port of its
 * own (both loopback on Linux), a guest of p0 pinging one of p1 across; and
 * the flag's refusals, each naming the flag. Helpers: test/partition-procs.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { freshBasePort, killAll, xsim } from './partition-procs.ts';

const TOPO = 'test/fixtures/partitions-2.json';
const BOOT_MS = 60_000;
/** Two processes' boots and a run, on 2 busy cores. */
const TEST_MS = 3 * BOOT_MS;

afterAll(() => killAll());

describe('xsim run --partition with --partition-address', () => {
  it(
    'p0 at localhost (127.0.0.1), p1 at 127.0.0.2:PORT: a1 pings b1 across, every probe answered; each tunnel end on its own address',
    async () => {
      const base = freshBasePort();
      const p1Port = base + 7;
      const addrs = ['--partition-address', 'p0=localhost', '--partition-address', `p1=127.0.0.2:${p1Port}`, '--vxlan-base-port', String(base)];
      const sock = `/tmp/xsim-part-addr-${process.pid}-${base}.sock`;
      const p1 = xsim(['run', TOPO, '--partition', 'p1', '--serve', '--idle', '--socket', sock, ...addrs]);
      try {
        await p1.line(/^xsim: serving on /, BOOT_MS);
        expect(p1.out()).toContain(`xsim: partition p1 on 127.0.0.2:${p1Port}; tunnels: VNI 10000 to p0 at 127.0.0.1:${base}`);
        const p0 = xsim(['run', TOPO, '--partition', 'p0', '--workload', 'ping', '--to', 'host-b/b1', '--count', '20', '-j', ...addrs]);
        expect(await p0.exit(BOOT_MS)).toBe(0);
        const r = JSON.parse(p0.out()) as { ping: { count: number; lost: number }; stats: { fabric: unknown } };
        expect(r.ping).toMatchObject({ count: 20, lost: 0 });
        const vx = (r.stats.fabric as { vxlan: { tunnels: { local: string; remote: string; vni: number; vxlanTxSent: number; vxlanRxFrames: number }[] } })
          .vxlan;
        expect(vx.tunnels).toHaveLength(1);
        expect(vx.tunnels[0]).toMatchObject({ local: `127.0.0.1:${base}`, remote: `127.0.0.2:${p1Port}`, vni: 10000 });
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

  it(
    'refused before anything starts, naming the flag',
    async () => {
      const cases: [string[], RegExp][] = [
        [
          ['--partition', 'p0', '--partition-address', 'p9=127.0.0.2'],
          /--partition-address p9=127\.0\.0\.2: no partition "p9" in topology "two-partitions" \(partitions: p0, p1\)/,
        ],
        [['--partition', 'p0', '--partition-address', 'p1=10.0.0.256'], /--partition-address p1=10\.0\.0\.256: "10\.0\.0\.256" is not an IPv4 address/],
        [
          ['--partition', 'p0', '--partition-address', 'p1=127.0.0.2:70000'],
          /--partition-address p1=127\.0\.0\.2:70000: port "70000" is not an integer from 1 to 65535/,
        ],
        [
          ['--partition', 'p0', '--partition-address', 'p0=127.0.0.2:5000', '--partition-address', 'p1=127.0.0.2:5000'],
          /partitions p0 and p1 are both given 127\.0\.0\.2:5000 \(p0: address from --partition-address p0=127\.0\.0\.2:5000/,
        ],
        [['--partition-address', 'p1=127.0.0.2'], /--partition-address goes with --partition NAME/],
        [['--bind-any'], /--bind-any goes with --partition NAME/],
        [['--partitions', 'local', '--partition-address', 'p9=127.0.0.2'], /--partition-address p9=127\.0\.0\.2: no partition "p9"/],
      ];
      const ps = cases.map(([args]) => xsim(['run', TOPO, ...args]));
      for (const [i, p] of ps.entries()) {
        expect(await p.exit(30_000)).not.toBe(0);
        expect(p.err()).toMatch(cases[i][1]);
      }
    },
    TEST_MS,
  );
});
