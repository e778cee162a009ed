/**
 * `xsim run topo.json --partitions local` (issue 24, item 2): a process per
 * partition on this machine, driven as one simulation. A stream from a guest
 * of p0 to a guest of p1 crosses their VXLAN tunnel and is conserved over
 * both partitions' counters; --workload ping crosses too; a partition that
 * dies is reported by name and the other is shut down; a coordinator that
 * dies takes its partitions with it. No process outlives its test: every
 * pid is checked, every wait bounded.
 */
import { createSocket } from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, freshBasePort, killAll, xsim, type XsimProc } from './partition-procs.ts';

const TOPO = 'test/fixtures/partitions-2.json';
const RUN_MS = 150_000;
/** A test's own bound: boots of two processes and a run, on 2 busy cores (vitest's default 60 s is too short). */
const TEST_MS = 2 * RUN_MS + 60_000;

afterAll(() => killAll());

/** The partitions' pids, from the coordinator's "partition NAME up (pid N)" lines. */
async function pids(p: XsimProc): Promise<Record<string, number>> {
  await p.line(/^xsim: partition p1 up \(pid \d+\)/, RUN_MS);
  await p.line(/^xsim: partition p0 up \(pid \d+\)/, RUN_MS);
  return Object.fromEntries([...p.out().matchAll(/^xsim: partition (\w+) up \(pid (\d+)\)/gm)].map((m) => [m[1], Number(m[2])]));
}

/** Until none of `ps` is alive, polled every 50 ms, at most `ms`. */
async function allGone(ps: number[], ms: number): Promise<number[]> {
  const until = Date.now() + ms;
  while (Date.now() < until && ps.some(alive)) await new Promise((r) => setTimeout(r, 50));
  return ps.filter(alive);
}

describe('xsim run --partitions local', () => {
  it(
    '--plugin vnic: loaded in every partition, the stream crosses the tunnel on the fast path (dom0 of the receiving host sees almost none of it)',
    async () => {
      const p = xsim([
        'run',
        TOPO,
        '--partitions',
        'local',
        '--plugin',
        'vnic',
        '--count',
        '5000',
        '--pcpus',
        '1',
        '--vxlan-base-port',
        String(freshBasePort()),
      ]);
      expect(await p.exit(RUN_MS)).toBe(0);
      const out = p.out();
      expect(out).toMatch(/^xsim: plugin vnic loaded in every partition \(p0: 1 host\(s\), p1: 1 host\(s\)\); both ends accelerated$/m);
      expect(out).toMatch(/conservation across 2 partitions: sent 5000 = .*: conserved$/m);
      // host-b's NIC: every frame of the stream came off the wire, and all but the learning ones went to b1's VI, not dom0's (VI 0).
      const m = /^host-b-nic +(\d+) +(\d+) +(\d+) +(\d+)$/m.exec(out);
      expect(m, out).not.toBeNull();
      const [, , wireRx, toVi0, filters] = m!.map(Number);
      expect(wireRx).toBeGreaterThanOrEqual(5000);
      expect(filters).toBeGreaterThan(0);
      expect(toVi0).toBeLessThan(wireRx / 20);
    },
    TEST_MS,
  );

  it(
    'a stream from p0 to p1 crosses the tunnel, conserved over both partitions; the processes are gone after',
    async () => {
      const p = xsim(['run', TOPO, '--partitions', 'local', '--count', '5000', '--pcpus', '1', '--vxlan-base-port', String(freshBasePort())]);
      const ps = await pids(p);
      expect(Object.keys(ps).sort()).toEqual(['p0', 'p1']);
      expect(await p.exit(RUN_MS)).toBe(0);
      const out = p.out();
      expect(out).toMatch(/host-a\/a1 \(p0\) -> host-b\/b1 \(p1\)/);
      const m = /conservation across 2 partitions: sent (\d+) = delivered (\d+) \+ counted drops (\d+) \+ in UDP between partitions (\d+).*: conserved$/m.exec(
        out,
      );
      expect(m, out).not.toBeNull();
      const [sent, delivered, dropped, inUdp] = m!.slice(1).map(Number);
      expect(sent).toBe(5000);
      expect(delivered + dropped + inUdp).toBe(5000);
      expect(delivered).toBeGreaterThan(0);
      // Both partitions' NICs, in one table: host-a's sent the stream onto the tunnel, host-b's took it off.
      expect(out).toMatch(/^host-a-nic +\d{4,}/m);
      expect(out).toMatch(/^host-b-nic +\d+ +\d{4,}/m);
      expect(await allGone(Object.values(ps), 10_000)).toEqual([]);
    },
    TEST_MS,
  );

  it(
    '--workload ping: every probe from a1 (p0) to b1 (p1) answered, as JSON',
    async () => {
      const p = xsim([
        'run',
        TOPO,
        '--partitions',
        'local',
        '--workload',
        'ping',
        '--count',
        '30',
        '-j',
        '--pcpus',
        '1',
        '--vxlan-base-port',
        String(freshBasePort()),
      ]);
      expect(await p.exit(RUN_MS)).toBe(0);
      const r = JSON.parse(p.out()) as { ping: { count: number; lost: number }; partitions: { name: string; pid: number }[]; stats: Record<string, unknown> };
      expect(r.ping).toMatchObject({ count: 30, lost: 0 });
      expect(r.partitions.map((x) => x.name)).toEqual(['p0', 'p1']);
      // The merged counters hold every partition's domains.
      expect(Object.keys(r.stats).sort()).toEqual(['fabric', 'host-a/a1', 'host-a/a2', 'host-a/dom0', 'host-b/b1', 'host-b/b2', 'host-b/dom0']);
      expect(
        await allGone(
          r.partitions.map((x) => x.pid),
          10_000,
        ),
      ).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'a rack cut between tor1 and the spine: a stream from h00 (left) to h03 (right) crosses three switches and the tunnel, conserved',
    async () => {
      const p = xsim([
        'run',
        'test/fixtures/partitions-rack.json',
        '--partitions',
        'local',
        '--count',
        '3000',
        '--pcpus',
        '1',
        '-j',
        '--from',
        'h00/h00g01',
        '--to',
        'h03/h03g01',
        '--vxlan-base-port',
        String(freshBasePort()),
      ]);
      expect(await p.exit(RUN_MS)).toBe(0);
      type Sw = { name: string; swForwarded: number };
      const r = JSON.parse(p.out()) as {
        account: { sent: number; delivered: number; dropped: number; inUdp: number; conserved: boolean };
        partitions: { pid: number }[];
        stats: { fabric: { switches: Sw[]; vxlan: { tunnels: { vni: number }[] } } };
      };
      expect(r.account).toMatchObject({ sent: 3000, conserved: true });
      expect(r.account.delivered + r.account.dropped + r.account.inUdp).toBe(3000);
      // wires[5] (tor1 - spine) is the cut one: VNI 10005 on both sides; every frame delivered passed each switch on the path
      // (a frame the tunnel refused, its queue full, was forwarded by the switches before it only: counted, not delivered).
      expect(r.stats.fabric.vxlan.tunnels.map((t) => t.vni)).toEqual([10005, 10005]);
      expect(r.account.delivered).toBeGreaterThan(0);
      for (const sw of r.stats.fabric.switches) expect(sw.swForwarded, sw.name).toBeGreaterThanOrEqual(r.account.delivered);
      expect(
        await allGone(
          r.partitions.map((x) => x.pid),
          10_000,
        ),
      ).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'a partition killed mid-run is reported by name and pid, and the other is shut down',
    async () => {
      const p = xsim(['run', TOPO, '--partitions', 'local', '--count', '50000000', '--pcpus', '1', '--vxlan-base-port', String(freshBasePort())]);
      const ps = await pids(p);
      await p.line(/frames of 1500 bytes/, RUN_MS);
      process.kill(ps.p1, 'SIGKILL');
      expect(await p.exit(60_000)).not.toBe(0);
      expect(p.err()).toMatch(new RegExp(`partition p1 \\(pid ${ps.p1}\\) was killed by SIGKILL`));
      expect(await allGone([ps.p0, ps.p1], 10_000)).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'a partition that cannot boot (its UDP port is taken) is reported by name and pid with why; the other is ended',
    async () => {
      const base = freshBasePort();
      const taken = createSocket('udp4');
      await new Promise<void>((r) => taken.bind(base, '127.0.0.1', r));
      try {
        const p = xsim(['run', TOPO, '--partitions', 'local', '--count', '100', '--pcpus', '1', '--vxlan-base-port', String(base)]);
        expect(await p.exit(RUN_MS)).not.toBe(0);
        const started = Object.fromEntries([...p.out().matchAll(/^xsim: partition (\w+) starting \(pid (\d+)\)/gm)].map((m) => [m[1], Number(m[2])]));
        expect(Object.keys(started).sort()).toEqual(['p0', 'p1']);
        expect(p.err()).toMatch(
          new RegExp(`partition p0 \\(pid ${started.p0}\\) failed to boot: .*wires\\[0\\]\\.b\\.vxlan\\.local: cannot bind UDP 127\\.0\\.0\\.1:${base}`),
        );
        expect(await allGone(Object.values(started), 10_000)).toEqual([]);
      } finally {
        taken.close();
      }
    },
    TEST_MS,
  );

  it(
    'TCP across partitions: a stream every octet of which the sink checked, then request/response, between a1 (p0) and b1 (p1)',
    async () => {
      const base = freshBasePort();
      const st = xsim([
        'run',
        TOPO,
        '--partitions',
        'local',
        '--workload',
        'tcp-stream',
        '--bytes',
        '3000000',
        '-j',
        '--pcpus',
        '1',
        '--vxlan-base-port',
        String(base),
      ]);
      expect(await st.exit(RUN_MS), st.err()).toBe(0);
      const s = JSON.parse(st.out()) as { tcpStream: { bytes: number; sentBytes: number; complete: boolean; corrupt: number; from: string; to: string } };
      expect(s.tcpStream).toMatchObject({ from: 'host-a/a1', to: 'host-b/b1', bytes: 3_000_000, sentBytes: 3_000_000, complete: true, corrupt: 0 });
      const rr = xsim([
        'run',
        TOPO,
        '--partitions',
        'local',
        '--workload',
        'tcp-rr',
        '--count',
        '200',
        '-j',
        '--pcpus',
        '1',
        '--vxlan-base-port',
        String(base + 2),
      ]);
      expect(await rr.exit(RUN_MS), rr.err()).toBe(0);
      const r = JSON.parse(rr.out()) as { tcpRr: { transactions: number; complete: boolean; p50Us: number } };
      expect(r.tcpRr).toMatchObject({ transactions: 200, complete: true });
      expect(r.tcpRr.p50Us).toBeGreaterThan(0);
    },
    TEST_MS,
  );

  it(
    'a coordinator that dies takes its partitions with it (no orphans)',
    async () => {
      const p = xsim(['run', TOPO, '--partitions', 'local', '--count', '50000000', '--pcpus', '1', '--vxlan-base-port', String(freshBasePort())]);
      const ps = await pids(p);
      p.child.kill('SIGKILL');
      await p.exit(10_000);
      expect(await allGone([ps.p0, ps.p1], 30_000)).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'what --partitions local refuses, naming it',
    async () => {
      const cases: [string[], RegExp][] = [
        [[TOPO, '--partitions', 'k8s'], /--partitions takes "local"/],
        [['topologies/default.json', '--partitions', 'local'], /topology "default" has no "partitions"/],
        [[TOPO, '--partitions', 'local', '--workload', 'iperf'], /--partitions local runs --workload udp-stream, ping, tcp-stream, tcp-rr, got "iperf"/],
        [[TOPO, '--partitions', 'local', '--workload', 'tcp-rr', '--bytes', '1000'], /--bytes goes with --workload tcp-stream, not tcp-rr/],
        [[TOPO, '--partitions', 'local', '--serve'], /--partitions local --serve serves idle only: add --idle/],
        [[TOPO, '--partitions', 'local', '--to', 'host-b/b9'], /no domain "b9" on host-b/],
      ];
      const ps = cases.map(([args]) => xsim(['run', ...args]));
      for (const [i, q] of ps.entries()) {
        expect(await q.exit(30_000)).not.toBe(0);
        expect(q.err()).toMatch(cases[i][1]);
      }
    },
    TEST_MS,
  );
});
