/**
 * The plugin conformance suite (`xsim plugin test`, issue 19 item 5): the
 * bundled plugins (vnic, null, firewall) and the example `peers` plugin pass
 * it, through the library on one shared deterministic simulation and once
 * through the CLI; deliberately broken plugins fail it, each with a reason
 * that names what went wrong: swallow (vnic's frontend answering "taken" for
 * frames it throws away) fails on conservation naming startXmit; flaky (a
 * frontend that throws from startXmit) fails naming the hook; undetached (a
 * backend that never calls ctx.detached) fails its unload naming the vifs
 * and the missing call.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, guestStats, runConformance, runStream, type CheckResult, type ConformanceReport, type DomainRef } from '@xsim/toolstack';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}/`, import.meta.url));
const PEERS = fileURLToPath(new URL('../examples/plugins/peers/', import.meta.url));
const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };
const b2: DomainRef = { host: 'host-b', domain: 'b2' };

/** The rows as "id status" lines, and every row's reason on a failure (what a reader of a failed test needs). */
const rows = (r: ConformanceReport) => r.results.map((x) => `${x.id} ${x.status}`);
const explain = (r: ConformanceReport) => r.results.map((x) => `${x.id} ${x.status.toUpperCase()}: ${x.reason}`).join('\n');
const row = (r: ConformanceReport, id: string): CheckResult => r.results.find((x) => x.id === id)!;

/** What every plugin gets: a row per check, none failed; the checks that do not apply to its kind skipped. */
function passes(r: ConformanceReport, kind: 'vif' | 'intercept'): void {
  expect(r.passed, explain(r)).toBe(true);
  const skipped = kind === 'vif' ? ['intercept'] : ['attach', 'quota', 'detach'];
  const ran = ['load', 'handshake', 'attach', 'traffic', 'intercept', 'unload', 'swap', 'reset', 'link', 'mtu', 'migrate', 'quota', 'throws', 'detach'].filter(
    (id) => !skipped.includes(id),
  );
  for (const id of ran) expect(row(r, id).status, `${id}: ${row(r, id).reason}`).toMatch(id === 'handshake' ? /^(pass|skip)$/ : /^pass$/);
  for (const id of skipped) expect(row(r, id).status, `${id}: ${row(r, id).reason}`).toBe('skip');
}

describe('the plugin conformance suite', () => {
  let sim: Simulation;
  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { deterministic: { seed: 1 }, log: () => {} });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  it.each([
    ['vnic', 'vif'],
    ['null', 'vif'],
    ['firewall', 'intercept'],
  ] as const)('the bundled %s passes', async (name, kind) => {
    const r = await runConformance(name, { sim });
    expect(r.plugin).toBe(name);
    expect(r.features).toEqual([kind]);
    passes(r, kind);
    // vnic carries the stream on its fast path; null declines every frame (and says so).
    if (name === 'vnic') expect(row(r, 'traffic').reason).toMatch(/100\.0% of the sender's frames on the fast path/);
    // vnic honours a vif's limits/max-filters: a full quota evicts a learnt filter.
    if (name === 'vnic') expect(row(r, 'quota').reason).toMatch(/filtersEvicted \+\d+/);
    if (name === 'null') expect(row(r, 'traffic').reason).toMatch(/took no frame/);
    // A copy of it made to throw: from startXmit in the guest (vnic only: null takes no frame), from linkChange in dom0.
    expect(row(r, 'throws').reason).toMatch(name === 'vnic' ? /^its frontend threw from startXmit mid-stream/ : /startXmit never threw|no guest half/);
    if (name === 'firewall')
      expect(row(r, 'intercept').reason).toMatch(
        /frames offered to txIntercept on host-a, \d+ to rxIntercept on host-b; its own counters moved \(host-a inspected \+\d+/,
      );
  });

  it('the example peers plugin passes, with a1 and b1 as its peers', async () => {
    const r = await runConformance(PEERS, { sim, args: { peers: ['10.0.10.1', '10.0.11.1'] } });
    expect([r.plugin, r.version]).toEqual(['peers', '0.1.0']);
    passes(r, 'vif');
    expect(row(r, 'traffic').reason).toMatch(/100\.0% of the sender's frames on the fast path/);
  });

  it('the example peers plugin accelerates traffic to its peers only', async () => {
    await sim.loadPlugin(PEERS, { args: { peers: ['10.0.11.1'] } });
    try {
      await sim.waitFor('a1 attached', async () => guestStats(await sim.stats(), a1).vifs[0].accel?.current?.ready === true);
      const taken = async () => guestStats(await sim.stats(), a1).vifs[0].accel!.txTaken;
      const notPeer = async () => Number(guestStats(await sim.stats(), a1).vifs[0].accel!.current!.declinedNotPeer);
      const [t0, n0] = [await taken(), await notPeer()];
      const toPeer = await runStream(sim, { from: a1, to: b1, count: 2000, frameSize: 1500, window: 128 });
      const [t1, n1] = [await taken(), await notPeer()];
      const toOther = await runStream(sim, { from: a1, to: b2, count: 2000, frameSize: 1500, window: 128 });
      expect([toPeer.delivered, toOther.delivered]).toEqual([2000, 2000]);
      expect(t1 - t0, 'frames to b1, a peer, on the fast path').toBe(2000);
      expect(await taken(), 'frames to b2, not a peer: none on the fast path').toBe(t1);
      expect((await notPeer()) - n1).toBeGreaterThanOrEqual(2000);
      expect(n1 - n0).toBeLessThan(10);
    } finally {
      await sim.unloadPlugin('peers');
    }
  });

  it('swallow (a frontend that takes frames and loses them) fails on conservation, naming startXmit and where', async () => {
    const r = await runConformance(fixture('swallow'), { sim, only: ['load', 'attach', 'traffic', 'unload'] });
    expect(r.passed).toBe(false);
    expect(rows(r)).toEqual(expect.arrayContaining(['load pass', 'attach pass', 'traffic fail', 'unload fail']));
    expect(row(r, 'traffic').reason).toMatch(
      /^startXmit lost \d+ frame\(s\) at host-a\/a1 vif0: it took them \(answered true\) but neither put them on its hardware \(txPosted\) nor counted them dropped \(txDropped\)/,
    );
  });

  it('flaky (a frontend that throws from startXmit) fails, naming the hook and the error', async () => {
    const r = await runConformance(fixture('flaky'), { sim, args: { frontendFailIn: 'startXmit', frontendAfter: 1000 }, only: ['load', 'traffic'] });
    expect(r.passed).toBe(false);
    expect(row(r, 'traffic').status).toBe('fail');
    expect(row(r, 'traffic').reason).toMatch(/^the frontend at a1 vif0 threw 1 time\(s\), last in startXmit: flaky: startXmit broke on purpose/);
  });

  it('leaves the shared simulation as it found it: no plugin loaded, every vif on the slow path', async () => {
    const s = await sim.stats();
    for (const h of ['host-a', 'host-b']) expect(Object.keys((s[`${h}/dom0`] as { accel: { plugins: object } }).accel.plugins)).toEqual([]);
    for (const g of [a1, b1, b2]) expect(guestStats(s, g).vifs[0].accel?.plugin).toBeNull();
  });
});

describe('a plugin whose detach never completes', () => {
  it('fails its unload, naming each vif still held and the missing ctx.detached', async () => {
    const r = await runConformance(fixture('undetached'), { only: ['load', 'attach', 'unload', 'detach'], deadlineMs: 3000 });
    expect(r.passed).toBe(false);
    expect(row(r, 'unload').status).toBe('fail');
    expect(row(r, 'unload').reason).toMatch(/ctx\.detached\(vif\)/);
    expect(row(r, 'unload').reason).toMatch(/host-a\/a1 vif0|vif1\.0/);
    expect(row(r, 'detach').status).toBe('fail');
  });
});

describe('xsim plugin test', () => {
  const xsim = (...args: string[]) => spawnSync('npx', ['xsim', 'plugin', 'test', ...args], { cwd: root, timeout: 120_000, encoding: 'utf8' });

  it('runs the suite on vnic without a running simulation: a table of PASS rows, exit status 0; -j gives the report', () => {
    const r = xsim('vnic', '-j', '-q');
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as ConformanceReport;
    expect(report.passed, explain(report)).toBe(true);
    expect(report.seed).toBe(1);
    expect(rows(report)).toEqual(expect.arrayContaining(['load pass', 'traffic pass', 'unload pass', 'swap pass', 'reset pass', 'migrate pass']));
  });

  it('exits 1 when a check fails, the reason in the table', () => {
    const r = xsim('no-such-plugin', '-q');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^load on every host +FAIL +no plugin "no-such-plugin"/m);
    expect(r.stdout).toMatch(/^FAILED: 0 passed, 1 failed, 13 skipped/m);
  });
});
