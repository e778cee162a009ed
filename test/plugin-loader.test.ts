/**
 * The plugin loader as a plugin writer meets it (issue 19, items 1 and 2, and
 * the loader's parts of 3 and 4): a plugin API version checked at load (a
 * compatible older plugin runs and is told the host's version at both ends;
 * another major or a newer minor is refused naming both), every mistake the
 * loader cannot use refused by the vetting worker before any domain imports
 * the plugin, naming the field or hook, arguments and messages in plain JSON
 * Schema, an unload the plugin never completes bounded, and `xsim run
 * --plugin-args` with the stream's ports. Fixtures: test/fixtures/plugins/.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, dom0Stats, guestStats, type DomainRef } from '@xsim/toolstack';
import { UNLOAD_DETACH_MS } from '@xsim/netback';
import { THREADS, conservedStream, seededModes, type Json } from './helpers.ts';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/plugins/${name}/`, import.meta.url));
const root = new URL('..', import.meta.url).pathname;
const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };

/** Plugin names loaded on each host now. */
async function loaded(sim: Simulation): Promise<string[][]> {
  const s = await sim.stats();
  return ['host-a', 'host-b'].map((h) => Object.keys(dom0Stats(s, h).accel.plugins));
}

describe('the loader', () => {
  let sim: Simulation;
  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), seededModes()[0].opts);
  });
  afterAll(async () => {
    await sim?.shutdown();
  });
  afterEach(async () => {
    for (const names of await loaded(sim)) for (const n of names) await sim.unloadPlugin(n).catch(() => {});
  });

  it.each([
    [
      'unknown-key',
      /plugin unknown-key: bad manifest: \/apiVersion: not a manifest field \(a manifest has name, version, api, matches, features, messages, args\)/,
    ],
    ['no-name', /plugin no-name: bad manifest: \/name: Expected required property/],
    [
      'misspelt-hook',
      /plugin misspelt-hook: createBackend returned what the loader cannot use: backend has an unknown hook "rxIntercpt" \(did you mean "rxIntercept"\?\)/,
    ],
    [
      'no-intercept-hook',
      /plugin no-intercept-hook: createBackend returned .*: backend: an "intercept" plugin needs a rxIntercept or txIntercept hook; it has neither/,
    ],
    [
      'vif-no-frontend',
      /plugin vif-no-frontend: a "vif" plugin needs a frontend part \(frontend\.ts beside backend\.ts, exporting createFrontend\); it has none/,
    ],
    [
      'vif-no-hooks',
      /plugin vif-no-hooks: createBackend returned .*needs a attachVif hook; it has none; .*needs a detachVif hook; .*needs a onFrontendMessage hook/,
    ],
    [
      'frontend-misspelt',
      /plugin frontend-misspelt: createFrontend returned what netfront cannot use: .*unknown hook "startXmt" \(did you mean "startXmit"\?\)/,
    ],
    [
      'newer-minor',
      /plugin newer-minor: it is written for plugin API 1\.6, newer than the 1\.5 this host speaks: it may use what 1\.5 lacks \(EPROTO\): refused/,
    ],
    [
      'other-major',
      /plugin other-major: it is written for plugin API 2\.0 and this host speaks 1\.5: another major version is incompatible \(EPROTO\): refused/,
    ],
  ])('%s is refused before any domain imports it, naming what is wrong', async (name, message) => {
    const e = await sim.loadPlugin(fixture(name)).then(
      () => new Error('loaded'),
      (x: Error) => x,
    );
    expect(e.message).toMatch(message);
    expect(e.message).toMatch(/refused, no domain has run it$/);
    expect(await loaded(sim)).toEqual([[], []]);
  });

  it('a compatible older plugin loads, and both halves are told the host version', async () => {
    const replies = await sim.loadPlugin(fixture('older-api'));
    expect(replies).toEqual([expect.objectContaining({ name: 'older-api', api: { host: '1.5', plugin: '1.0' } }), expect.anything()]);
    await sim.waitFor('older-api attached to a1', async () => guestStats(await sim.stats(), a1).vifs[0].accel?.current !== null);
    const s = await sim.stats();
    expect(dom0Stats(s, 'host-a').accel.plugins['older-api']).toMatchObject({ hostApi: '1.5', attachedVifs: 2 });
    expect(guestStats(s, a1).vifs[0].accel?.current).toMatchObject({ hostApi: '1.5' });
    await sim.unloadPlugin(fixture('older-api'));
  });

  it('arguments and messages in plain JSON Schema: checked, naming the path, before the plugin sees them', async () => {
    const p = fixture('plain-schema');
    await expect(sim.loadPlugin(p, { args: { label: 'x', maxVifs: 0 } })).rejects.toThrow('plugin plain-schema: bad arguments: /maxVifs: must be >= 1 (got 0)');
    await expect(sim.loadPlugin(p, { args: { label: 'x', peers: ['10.0.0.300'] } })).rejects.toThrow('bad arguments: /peers/0: must match format "ipv4"');
    await expect(sim.loadPlugin(p, { args: { label: 'x', colour: 'red' } })).rejects.toThrow('bad arguments: /colour: must NOT have additional properties');
    await expect(sim.loadPlugin(p, { args: {} })).rejects.toThrow("bad arguments: /label: must have required property 'label'");
    await sim.loadPlugin(p, { host: 'host-a', args: { label: 'lab', maxVifs: 2, peers: ['10.0.0.1'] } });
    // Each guest's accept {token} passed the plugin's plain schema (a bad one would have failed that vif: vifFailures).
    await sim.waitFor(
      'both tokens taken',
      async () => (dom0Stats(await sim.stats(), 'host-a').accel.plugins['plain-schema'] as Json | undefined)?.tokens === 2,
    );
    const st = dom0Stats(await sim.stats(), 'host-a').accel;
    expect(st.plugins['plain-schema']).toMatchObject({ label: 'lab', maxVifs: 2, attachedVifs: 2 });
    expect(st.vifFailures).toBe(0);
  });
});

describe.each([seededModes()[0], THREADS])('an unload the plugin never completes ($name)', (mode) => {
  let sim: Simulation;
  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), mode.opts);
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  it('fails within the bound naming the vifs and the missing ctx.detached; the plugin is removed by force and its VIs released', async () => {
    await sim.loadPlugin(fixture('never-detaches'), { host: 'host-a' });
    await sim.waitFor('never-detaches attached to a1', async () => guestStats(await sim.stats(), a1).vifs[0].accel?.current !== null);
    const t0 = performance.now();
    await expect(sim.unloadPlugin('never-detaches', { host: 'host-a' })).rejects.toThrow(
      /plugin never-detaches: unload gave up after 5000 ms: vif1\.0, vif2\.0 never detached \(detachVif was called for each, and the plugin never called ctx\.detached\(vif\)\); removed by force: those vifs are back on the slow path and the 63 VI\(s\) it held are released/,
    );
    // On dom0's clock (virtual in a deterministic run): never the toolstack's 30 s request timeout.
    expect(performance.now() - t0).toBeLessThan(UNLOAD_DETACH_MS + 15_000);
    const s = await sim.stats();
    const acc = dom0Stats(s, 'host-a').accel;
    expect(acc.plugins).toEqual({});
    expect(acc.failures).toContainEqual({
      plugin: 'never-detaches',
      hook: 'detachVif',
      error: expect.stringMatching(/ctx\.detached\(vif\) for vif1\.0, vif2\.0/),
    });
    await sim.waitFor('a1 back on the slow path', async () => guestStats(await sim.stats(), a1).vifs[0].accel?.plugin === null);
    // Its 63 VIs are free again: vnic takes one for a1 and carries a stream on it.
    await sim.loadPlugin('vnic');
    await sim.waitFor('vnic ready on a1', async () => guestStats(await sim.stats(), a1).vifs[0].accel?.current?.ready === true);
    await conservedStream(sim, { from: a1, to: b1, count: 3000, frameSize: 1500, window: 128, srcPort: 43300 });
    expect(guestStats(await sim.stats(), a1).vifs[0].txAccel).toBeGreaterThan(0);
    await sim.unloadPlugin('vnic');
  });
});

describe('xsim run --plugin NAME --plugin-args JSON --port N', () => {
  const run = (...args: string[]) => {
    const r = spawnSync('npx', ['xsim', 'run', '--deterministic', '--count', '300', '--window', '0', '-j', ...args], { cwd: root, timeout: 120_000 });
    return { status: r.status, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  const rules = JSON.stringify({ rules: [{ proto: 17, dstPort: 5009 }] });

  it("gives the plugin its arguments, and streams on the port given (the firewall's rule matches only it)", () => {
    const other = run('--plugin', 'firewall', '--plugin-args', rules, '--port', '5010', '--src-port', '42010');
    expect(other.err).not.toMatch(/xsim: /);
    const o = JSON.parse(other.out) as Json;
    expect(o.stats['host-a/dom0'].accel.plugins.firewall).toMatchObject({ rules: 1, matched: 0 });
    expect(o.stream.delivered).toBe(300);
    const hit = JSON.parse(run('--plugin', 'firewall', '--plugin-args', rules, '--port', '5009').out) as Json;
    expect(hit.stats['host-a/dom0'].accel.plugins.firewall.matched).toBe(300);
    expect(hit.stream.delivered).toBe(0);
  });

  it('refuses arguments the plugin does not take, naming the path, and shows the options in --help', () => {
    const bad = run('--plugin', 'firewall', '--plugin-args', '{"rules":"x"}');
    expect(bad.status).toBe(1);
    expect(bad.err).toMatch(/plugin firewall: bad arguments: \/rules: Expected array/);
    const help = spawnSync('npx', ['xsim', 'run', '--help'], { cwd: root, timeout: 60_000 }).stdout.toString();
    expect(help).toMatch(/--plugin-args JSON +its load arguments/);
    expect(help).toMatch(/--port N +the stream's UDP destination port \(default 5001\)/);
    expect(help).toMatch(/--src-port N +the sender's UDP source port/);
  });
});
