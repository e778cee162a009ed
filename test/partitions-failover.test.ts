/**
 * `xsim run topo.json --partitions local` when a partition dies, and with
 * --serve (issue 24, item 2). A partition killed mid-stream is a failed host:
 * the survivors set their tunnel ends toward it down, so what they send
 * toward it is counted (linkDownDrops at a NIC wired to it), the stream
 * between two survivors is accounted with the dead one's counters missing,
 * and the exit status says a partition died. With --serve --idle the
 * coordinator's one control socket reaches a domain in either partition.
 * Every wait is bounded in time; every process is ended by its pid.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { alive, freshBasePort, killAll, xsim } from './partition-procs.ts';

const THREE = 'test/fixtures/partitions-3.json';
const TWO = 'test/fixtures/partitions-2.json';
const RUN_MS = 180_000;
/** A test's own bound: three processes' boots and a run, on 2 busy cores. */
const TEST_MS = 2 * RUN_MS + 60_000;

afterAll(() => killAll());

/** Until none of `ps` is alive, polled every 50 ms, at most `ms`. */
async function allGone(ps: number[], ms: number): Promise<number[]> {
  const until = Date.now() + ms;
  while (Date.now() < until && ps.some(alive)) await new Promise((r) => setTimeout(r, 50));
  return ps.filter(alive);
}

describe('a partition that dies is a failed host', () => {
  it(
    'p0 (the switch) killed mid-stream from b1 (p1) to c1 (p2): p1 and p2 set their wires to it down, what b sends toward it is linkDownDrops, the rest is accounted; exit status 3',
    async () => {
      const args = ['--from', 'host-b/b1', '--to', 'host-c/c1', '--count', '30000', '--pcpus', '1', '-j', '--vxlan-base-port', String(freshBasePort())];
      const p = xsim(['run', THREE, '--partitions', 'local', ...args]);
      // The stream starts as soon as the ping is done: kill p0 then, with the stream's 30000 frames ahead (-j: progress on stderr).
      await p.line(/^xsim: ping done \(20 answered, 0 lost/, RUN_MS);
      const pids = Object.fromEntries([...p.err().matchAll(/^xsim: partition (\w+) up \(pid (\d+)\)/gm)].map((m) => [m[1], Number(m[2])]));
      expect(Object.keys(pids).sort()).toEqual(['p0', 'p1', 'p2']);
      process.kill(pids.p0, 'SIGKILL');
      expect(await p.exit(RUN_MS)).toBe(3);
      expect(p.err()).toMatch(
        new RegExp(
          `partition p0 \\(pid ${pids.p0}\\) was killed by SIGKILL; its wires are down as a failed host's: on p1 wires\\[0\\]\\.b \\(VNI 10001\\); on p2 wires\\[0\\]\\.b \\(VNI 10002\\)`,
        ),
      );
      expect(p.err()).toMatch(/partition p0 \(pid \d+\) was killed by SIGKILL during the run \(exit status 3\)/);
      type Account = { sent: number; delivered: number; dropped: number; inUdp: number; intoDead: number; dead: string[]; conserved: boolean };
      const r = JSON.parse(p.out()) as {
        stream: { sent: number };
        account: Account & { drops: Record<string, number> };
        dead: { name: string; pid: number; wiresDown: Record<string, { vni: number }[]> }[];
        stats: Record<string, unknown> & { fabric: { nics: { name: string; linkDownDrops: number }[]; vxlan: { tunnels: { vni: number; link: string }[] } } };
      };
      expect(r.dead.map((d) => [d.name, d.pid])).toEqual([['p0', pids.p0]]);
      expect(r.dead[0].wiresDown).toEqual({ p1: [expect.objectContaining({ vni: 10001 })], p2: [expect.objectContaining({ vni: 10002 })] });
      // Only the survivors are in the counters; their tunnel ends to p0 are down.
      expect(Object.keys(r.stats).sort()).toEqual(['fabric', 'host-b/b1', 'host-b/dom0', 'host-c/c1', 'host-c/dom0']);
      expect(r.stats.fabric.vxlan.tunnels.map((t) => [t.vni, t.link])).toEqual([
        [10001, 'down'],
        [10002, 'down'],
      ]);
      // What b sent toward p0 after its wire went down died at its NIC, counted there.
      const nic = r.stats.fabric.nics.find((n) => n.name === 'host-b-nic')!;
      expect(nic.linkDownDrops).toBeGreaterThan(0);
      expect(r.account.drops['fabric.nics.0.linkDownDrops']).toBe(nic.linkDownDrops);
      // Nothing else is lost: every frame sent is delivered, counted, in UDP, or sent into p0 (gone with it); the only drop
      // counters that grew in the stream are the dead wires' (the link down; sends to p0's closed port before it was down).
      const a = r.account;
      expect(a).toMatchObject({ sent: r.stream.sent, dead: ['p0'], conserved: true });
      expect(a.delivered + a.dropped + a.inUdp).toBeLessThanOrEqual(a.sent);
      expect(a.delivered + a.dropped + a.inUdp + a.intoDead).toBeGreaterThanOrEqual(a.sent);
      for (const k of Object.keys(a.drops)) expect(k).toMatch(/\.(linkDownDrops|vxlanTxSendErrors|vxlanTxDown)$/);
      expect(await allGone(Object.values(pids), 10_000)).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'a partition killed that holds an end (the receiver) ends the run with an error naming it and the end',
    async () => {
      const p = xsim(['run', THREE, '--partitions', 'local', '--count', '50000000', '--pcpus', '1', '--vxlan-base-port', String(freshBasePort())]);
      await p.line(/^xsim: ping done/, RUN_MS);
      const pid = Number(/^xsim: partition p1 up \(pid (\d+)\)/m.exec(p.out())![1]);
      process.kill(pid, 'SIGKILL');
      expect(await p.exit(60_000)).not.toBe(0);
      expect(p.err()).toMatch(new RegExp(`partition p1 \\(pid ${pid}\\) was killed by SIGKILL: it held host-b/b1, the receiver`));
      const all = [...p.out().matchAll(/^xsim: partition \w+ up \(pid (\d+)\)/gm)].map((m) => Number(m[1]));
      expect(await allGone(all, 10_000)).toEqual([]);
    },
    TEST_MS,
  );
});

describe('xsim run --partitions local --serve --idle', () => {
  it(
    "one control socket for both partitions: domain list is every partition's, dev stats reach a domain in each, what cannot cross is refused naming the partitions",
    async () => {
      const base = String(freshBasePort());
      const sock = `/tmp/xsim-parts-${process.pid}-${base}.sock`;
      const p = xsim(['run', TWO, '--partitions', 'local', '--serve', '--idle', '--socket', sock, '--pcpus', '1', '--vxlan-base-port', base]);
      try {
        await p.line(/^xsim: serving on /, RUN_MS);
        const pids = [...p.out().matchAll(/^xsim: partition \w+ up \(pid (\d+)\)/gm)].map((m) => Number(m[1]));
        expect(pids).toHaveLength(2);
        const cmd = async (args: string[]) => {
          const c = xsim([...args, '--socket', sock]);
          const code = await c.exit(60_000);
          return { code, out: c.out(), err: c.err() };
        };
        const list = await cmd(['domain', 'list', '-j']);
        expect(list.code, list.err).toBe(0);
        const doms = (JSON.parse(list.out) as { host: string; name: string }[]).map((d) => `${d.host}/${d.name}`).sort();
        expect(doms).toEqual(['host-a/Domain-0', 'host-a/a1', 'host-a/a2', 'host-b/Domain-0', 'host-b/b1', 'host-b/b2'].sort());
        for (const dev of ['host-a/a1', 'host-b/b1']) {
          const st = await cmd(['dev', 'stats', 'show', dev, '-j']);
          expect(st.code, st.err).toBe(0);
          const v = JSON.parse(st.out) as { dev: string; frontend: Record<string, unknown>; backend: Record<string, unknown> };
          expect(v.dev).toBe(`${dev}/vif0`);
          expect(Object.keys(v.frontend).length).toBeGreaterThan(0);
          expect(Object.keys(v.backend).length).toBeGreaterThan(0);
        }
        // Across partitions: p0's toolstack carries a1 to p1's over TCP; the socket then finds it in p1.
        const mig = await cmd(['migrate', 'host-a/a1', '--to', 'host-b', '--live', '-j']);
        expect(mig.code, mig.err).toBe(0);
        expect(JSON.parse(mig.out)).toMatchObject({ domain: 'a1', from: { host: 'host-a' }, to: { host: 'host-b' }, live: true, lostTotal: 0 });
        const moved = await cmd(['domain', 'list', '-j']);
        const where = (JSON.parse(moved.out) as { host: string; name: string }[]).filter((d) => d.name === 'a1').map((d) => d.host);
        expect(where).toEqual(['host-b']);
        const cap = await cmd(['capture', 'start', 'host-a/*']);
        expect(cap.code).not.toBe(0);
        expect(cap.err).toMatch(/a capture across partitions is not built/);
        const none = await cmd(['dev', 'stats', 'show', 'host-z/z1']);
        expect(none.code).not.toBe(0);
        expect(none.err).toMatch(/no host "host-z" in topology "two-partitions" \(hosts: host-a, host-b\)/);
        const stop = await cmd(['shutdown']);
        expect(stop.code, stop.err).toBe(0);
        expect(await p.exit(60_000)).toBe(0);
        expect(await allGone(pids, 10_000)).toEqual([]);
      } finally {
        if (p.child.exitCode === null) p.child.kill('SIGKILL');
      }
    },
    TEST_MS,
  );
});
