/**
 * The plugin loader in dom0, in process (issue 19): the plugin API version at
 * load, the manifest's fields, the hooks of the object createBackend returns,
 * any JSON Schema for arguments and messages, and an unload the plugin never
 * completes. Each refusal names the field, hook or versions. The plugins are
 * test/fixtures/plugins/*; the manager runs on a fake NIC and channels.
 */
import { describe, expect, it } from 'vitest';
import { Driverlink } from '@xsim/nic';
import { PLUGIN_API_VERSION, closestName, hookProblems, type RpcEndpoint, type ToFrontendChannel } from '@xsim/hypervisor';
import {
  ACCEL_BACKEND_HOOKS,
  AccelManager,
  UNLOAD_DETACH_MS,
  apiVersionProblem,
  backendProblems,
  manifestProblems,
  messageProblem,
  schemaProblem,
  Type,
} from '../src/index.ts';
import type { HostContext } from '../src/accel-held.ts';
import type { PluginManifest } from '../src/accel-api.ts';

const fixture = (name: string, part = 'backend') => new URL(`../../../test/fixtures/plugins/${name}/${part}.ts`, import.meta.url).href;
const manifest = (over: Record<string, unknown> = {}) => ({ name: 'p', version: '1.0.0', api: '1.1', matches: ['*'], features: ['intercept'], ...over });

describe('the plugin API version', () => {
  it('is MAJOR.MINOR; a plugin for an older minor runs, one for a newer minor or another major is refused naming both', () => {
    expect(PLUGIN_API_VERSION).toMatch(/^\d+\.\d+$/);
    expect(apiVersionProblem('1.0', '1.1')).toBeUndefined();
    expect(apiVersionProblem('1.1', '1.1')).toBeUndefined();
    expect(apiVersionProblem('1.2', '1.1')).toMatch(/written for plugin API 1\.2, newer than the 1\.1 this host speaks.*EPROTO/);
    expect(apiVersionProblem('2.0', '1.1')).toMatch(/written for plugin API 2\.0 and this host speaks 1\.1: another major version/);
    expect(apiVersionProblem('0.9', '1.1')).toMatch(/0\.9 and this host speaks 1\.1/);
    expect(apiVersionProblem(99, '1.1')).toMatch(/must be MAJOR\.MINOR .*got 99/);
  });

  it('a manifest must name it', () => {
    const { api: _, ...noApi } = manifest();
    expect(manifestProblems(noApi)).toEqual(['/api: Expected required property', '/api: Expected string']);
    expect(manifestProblems(manifest({ api: '1' }))).toEqual([expect.stringMatching(/^\/api: Expected string to match/)]);
    expect(manifestProblems(manifest())).toEqual([]);
  });
});

describe('the manifest', () => {
  it('an unknown field is refused, naming it and the fields a manifest has', () => {
    expect(manifestProblems(manifest({ apiVersion: 99 }))).toEqual([
      '/apiVersion: not a manifest field (a manifest has name, version, api, matches, features, messages, args)',
    ]);
    expect(manifestProblems(manifest({ feature: ['vif'] }))).toEqual([expect.stringMatching(/^\/feature: not a manifest field \(did you mean "features"\?/)]);
  });

  it('a missing name is refused, naming the field', () => {
    const { name: _, ...noName } = manifest();
    expect(manifestProblems(noName)).toContain('/name: Expected required property');
  });

  it('a schema that cannot be used (a misspelt keyword, an unknown draft) is refused at load, naming where it is', () => {
    expect(manifestProblems(manifest({ args: { type: 'object', properties: { n: { type: 'integer', minimun: 1 } } } }))).toEqual([
      expect.stringMatching(/^\/args: cannot be used as a JSON Schema: strict mode: unknown keyword: "minimun"/),
    ]);
    expect(manifestProblems(manifest({ features: ['vif'], messages: { accept: { $schema: 'http://json-schema.org/draft-04/schema#' } } }))).toEqual([
      expect.stringMatching(/^\/messages\/accept: cannot be used as a JSON Schema: \$schema .* is not a draft this loader knows/),
    ]);
  });
});

describe('arguments and messages as any JSON Schema', () => {
  const args = {
    type: 'object',
    properties: { rate: { type: 'integer', minimum: 1 }, peers: { type: 'array', items: { type: 'string', format: 'ipv4' } } },
    required: ['rate'],
    additionalProperties: false,
  };

  it('a plain JSON Schema checks, naming the path (a missing or an extra property too)', () => {
    expect(manifestProblems(manifest({ args }))).toEqual([]);
    expect(schemaProblem(args, { rate: 5, peers: ['10.0.0.1'] })).toBeUndefined();
    expect(schemaProblem(args, { rate: 0 })).toBe('/rate: must be >= 1 (got 0)');
    expect(schemaProblem(args, { rate: 1, peers: ['10.0.0.300'] })).toBe('/peers/0: must match format "ipv4" (got "10.0.0.300")');
    expect(schemaProblem(args, {})).toBe("/rate: must have required property 'rate'");
    expect(schemaProblem(args, { rate: 1, colour: 'red' })).toBe('/colour: must NOT have additional properties');
  });

  it('2019-09 and 2020-12 schemas by their $schema, TypeBox schemas as before, true and false', () => {
    const s2020 = { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'array', prefixItems: [{ type: 'integer' }], items: false };
    expect(schemaProblem(s2020, [1])).toBeUndefined();
    expect(schemaProblem(s2020, [1, 2])).toMatch(/^\(value\): must NOT have more than 1 items/);
    const s2019 = { $schema: 'https://json-schema.org/draft/2019-09/schema', type: 'object', dependentRequired: { a: ['b'] } };
    expect(schemaProblem(s2019, { a: 1 })).toMatch(/must have property b when property a is present/);
    expect(schemaProblem(Type.Object({ n: Type.Integer() }), { n: 'x' })).toBe('/n: Expected integer (got "x")');
    expect(schemaProblem(true, 5)).toBeUndefined();
    expect(schemaProblem(false, 5)).toMatch(/accepts nothing/);
  });

  it("a frontend message is checked against the plugin's plain schema for its op", () => {
    const messages = { accept: { type: 'object', properties: { token: { type: 'string', pattern: '^t-' } }, required: ['token'] } };
    expect(messageProblem(messages, 'accept', { token: 't-1' })).toBeUndefined();
    expect(messageProblem(messages, 'accept', { token: 'x' })).toBe('accept/token: must match pattern "^t-" (got "x")');
    expect(messageProblem(messages, 'accept', {})).toBe("accept/token: must have required property 'token'");
    expect(messageProblem(messages, 'drained', { plugin: 3 })).toMatch(/drained\/plugin/);
    expect(messageProblem(messages, 'nonsense', {})).toMatch(/is not a message this plugin accepts/);
  });
});

describe("the backend object's hooks", () => {
  const base = { name: 'p', probe: () => undefined, remove: () => {}, stats: () => ({}) };
  const m = (features: PluginManifest['features']) => ({ ...manifest(), features }) as PluginManifest;

  it('a misspelt hook is refused, with the closest known one suggested', () => {
    expect(closestName('rxIntercpt', Object.keys(ACCEL_BACKEND_HOOKS))).toBe('rxIntercept');
    expect(backendProblems(m(['intercept']), { ...base, rxIntercpt: () => true, txIntercept: () => false })).toEqual([
      'backend has an unknown hook "rxIntercpt" (did you mean "rxIntercept"?)',
    ]);
    expect(backendProblems(m(['intercept']), { ...base, txIntercept: () => false, frobnicate: () => 0 })).toEqual([
      expect.stringMatching(/^backend has an unknown hook "frobnicate" \(known: name, probe, remove, stats, /),
    ]);
  });

  it("a class's helper methods are its own business; a near miss of a hook is still refused", () => {
    class Helpers {
      readonly name = 'p';
      probe() {}
      remove() {}
      stats() {
        return {};
      }
      txIntercept() {
        return this.decide();
      }
      private decide() {
        return false;
      }
    }
    class Misspelt extends Helpers {
      onUplinkLearnt() {}
    }
    expect(backendProblems(m(['intercept']), new Helpers())).toEqual([]);
    expect(backendProblems(m(['intercept']), new Misspelt())).toEqual(['backend has an unknown hook "onUplinkLearnt" (did you mean "onUplinkLearn"?)']);
  });

  it('required hooks and their types', () => {
    expect(hookProblems({ name: 3, probe: () => undefined, stats: 'no' }, ACCEL_BACKEND_HOOKS, 'backend')).toEqual([
      'backend.name must be a string, got 3',
      'backend has no remove hook (required)',
      'backend.stats must be a function, got "no"',
    ]);
    expect(hookProblems(null, ACCEL_BACKEND_HOOKS, 'backend')).toEqual(['backend must be an object of hooks, got null']);
  });

  it('an intercept plugin without an intercept hook is refused', () => {
    expect(backendProblems(m(['intercept']), base)).toEqual(['backend: an "intercept" plugin needs a rxIntercept or txIntercept hook; it has neither']);
  });

  it("a vif plugin without a vif's hooks is refused, naming each", () => {
    expect(backendProblems(m(['vif']), { ...base, attachVif: () => {} })).toEqual([
      'backend: a "vif" plugin needs a detachVif hook; it has none',
      'backend: a "vif" plugin needs a onFrontendMessage hook; it has none',
    ]);
  });
});

/** An accelerator manager on a fake NIC of 8 VIs, its channels recording what they were sent, its clock set by hand. */
function manager() {
  const sent: { key: string; op: string; args: Record<string, unknown> }[] = [];
  const free = [1, 2, 3, 4, 5, 6, 7];
  const logs: string[] = [];
  let now = 0;
  const driverlink = new Driverlink(() => ({ alias: 'nic:1924-0803', mac: 1, mtu: 1500, vis: 8, linkUp: true }));
  const ctx = {
    nic: () => driverlink.nic(),
    dom0: 0,
    mcdi: () => true,
    mcdiShared: () => ({ value: true, shared: [] }),
    vdpa: () => {
      throw new Error("ctx.vdpa: this host's NIC nic:1924-0803 is the VI model");
    },
    vdpaShared: () => {
      throw new Error("ctx.vdpaShared: this host's NIC nic:1924-0803 is the VI model");
    },
    allocVi: () => free.shift() ?? null,
    freeVi: (vi: number) => free.push(vi),
    deviceIrq: () => {
      throw new Error('no guests here');
    },
    mapGrants: () => 'no guests here',
    unmapGrants: () => {},
    uplinkMacs: () => [],
    log: (m: string) => logs.push(m),
  } as unknown as HostContext;
  const accel = new AccelManager({
    driverlink,
    ctx,
    clock: { now: () => now },
    defer: (p, then, fail) => void p.then(then, fail),
    writeAccelKey: () => {},
  });
  for (const [domid, key] of [
    [1, '1/0'],
    [2, '2/0'],
  ] as const) {
    const rpc = { onEvent: () => {}, event: (op: string, args: Record<string, unknown>) => sent.push({ key, op, args }), poll: () => 0, close: () => {} };
    accel.addChannel({ key, domid, handle: 0, mac: domid, ip: domid }, rpc as unknown as RpcEndpoint<ToFrontendChannel>);
    accel.vifConnected(key);
  }
  /** Load a fixture (its frontend.ts as its frontend part, unless `frontend` is null: none). */
  const load = (name: string, args: Record<string, unknown> = {}, frontend: string | null = fixture(name, 'frontend')) =>
    new Promise<unknown>((resolve, reject) => accel.load(name, fixture(name), frontend ?? undefined, args, (r, e) => (e ? reject(new Error(e)) : resolve(r))));
  const unload = (name: string) => new Promise<unknown>((resolve, reject) => accel.unload(name, (r, e) => (e ? reject(new Error(e)) : resolve(r))));
  return { accel, sent, free, logs, load, unload, advance: (ms: number) => (now += ms), driverlink };
}

describe('the loader in dom0 (what the vetting worker also refuses, checked again where the plugin runs)', () => {
  it.each([
    ['unknown-key', /bad manifest: \/apiVersion: not a manifest field/],
    ['no-name', /bad manifest: \/name: Expected required property/],
    ['newer-minor', /plugin newer-minor: it is written for plugin API 1\.6, newer than the 1\.5 this host speaks.*: refused/],
    ['other-major', /plugin other-major: it is written for plugin API 2\.0 and this host speaks 1\.5: another major version is incompatible/],
    ['misspelt-hook', /createBackend returned what the loader cannot use: backend has an unknown hook "rxIntercpt" \(did you mean "rxIntercept"\?\)/],
    ['no-intercept-hook', /an "intercept" plugin needs a rxIntercept or txIntercept hook/],
    ['vif-no-hooks', /a "vif" plugin needs a attachVif hook; it has none; .*detachVif.*onFrontendMessage/],
  ])('%s is refused, and nothing of it stays', async (name, message) => {
    const m = manager();
    await expect(m.load(name)).rejects.toThrow(message);
    expect([...m.accel.plugins.keys()]).toEqual([]);
    expect(m.driverlink.events.log).toEqual([]);
  });

  it('a vif plugin without a frontend part is refused', async () => {
    await expect(manager().load('vif-no-frontend', {}, null)).rejects.toThrow(/a "vif" plugin needs a frontend part/);
  });

  it('a backend refused after createBackend gives back the VIs it took', async () => {
    const m = manager();
    const src =
      `export const manifest = ${JSON.stringify(manifest({ name: 'greedy' }))};\n` +
      "export function createBackend(ctx) { ctx.allocVi(); ctx.allocVi(); return { name: 'greedy', probe() {}, remove() {}, stats() { return {}; }, rxIntercpt() { return false; } }; }";
    const url = `data:text/javascript,${encodeURIComponent(src)}`;
    await expect(new Promise((res, rej) => m.accel.load('greedy', url, undefined, {}, (r, e) => (e ? rej(new Error(e)) : res(r))))).rejects.toThrow(
      /unknown hook "rxIntercpt"/,
    );
    expect(m.free.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('a backend whose probe refuses the NIC gives back the VIs it took in createBackend', async () => {
    const m = manager();
    const src =
      `export const manifest = ${JSON.stringify(manifest({ name: 'picky' }))};\n` +
      "export function createBackend(ctx) { ctx.allocVi(); ctx.allocVi(); return { name: 'picky', probe() { return 'not this NIC'; }, remove() {}, stats() { return {}; }, rxIntercept() { return false; } }; }";
    const url = `data:text/javascript,${encodeURIComponent(src)}`;
    await expect(new Promise((res, rej) => m.accel.load('picky', url, undefined, {}, (r, e) => (e ? rej(new Error(e)) : res(r))))).rejects.toThrow(
      /picky refused the NIC: not this NIC/,
    );
    // Before, the two VIs stayed taken for good (the free list lost 1 and 2).
    expect(m.free.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect([...m.accel.plugins.keys()]).toEqual([]);
  });

  it('a compatible older plugin loads and is told the host version: in its context and in the attach message', async () => {
    const m = manager();
    const reply = await m.load('older-api');
    expect(reply).toMatchObject({ name: 'older-api', api: { host: '1.5', plugin: '1.0' }, vifs: 2 });
    expect(m.accel.stats().plugins['older-api']).toMatchObject({ hostApi: '1.5' });
    expect(m.sent.filter((s) => s.op === 'attach').map((s) => s.args)).toEqual([
      { plugin: 'older-api', version: '0.1.0', api: '1.5', pluginApi: '1.0', frontend: fixture('older-api', 'frontend') },
      { plugin: 'older-api', version: '0.1.0', api: '1.5', pluginApi: '1.0', frontend: fixture('older-api', 'frontend') },
    ]);
  });

  it('plain JSON Schema arguments are checked before createBackend, naming the path', async () => {
    const m = manager();
    await expect(m.load('plain-schema', { label: 'x', maxVifs: 0 })).rejects.toThrow('plugin plain-schema: bad arguments: /maxVifs: must be >= 1 (got 0)');
    await expect(m.load('plain-schema', { maxVifs: 1 })).rejects.toThrow("bad arguments: /label: must have required property 'label'");
    await m.load('plain-schema', { label: 'x', maxVifs: 1 });
    expect(m.accel.stats().plugins['plain-schema']).toMatchObject({ label: 'x', maxVifs: 1, attachedVifs: 1 });
  });

  it('an unload the plugin never completes fails after UNLOAD_DETACH_MS naming the vifs and ctx.detached; the plugin is removed by force', async () => {
    const m = manager();
    await m.load('never-detaches');
    expect(m.free).toEqual([]);
    const unloaded = m.unload('never-detaches');
    let settled = false;
    void unloaded.catch(() => {}).finally(() => (settled = true));
    m.advance(UNLOAD_DETACH_MS - 1);
    m.accel.poll();
    await Promise.resolve();
    expect(settled).toBe(false);
    expect(m.accel.stats().plugins['never-detaches']).toMatchObject({ unloading: true, detachAsked: 2 });
    expect(m.accel.nextDeadline()).toBe(UNLOAD_DETACH_MS);
    m.advance(1);
    m.accel.poll();
    await expect(unloaded).rejects.toThrow(
      /plugin never-detaches: unload gave up after 5000 ms: vif1\.0, vif2\.0 never detached \(detachVif was called for each, and the plugin never called ctx\.detached\(vif\)\); removed by force: those vifs are back on the slow path and the 7 VI\(s\) it held are released/,
    );
    expect(m.accel.plugins.size).toBe(0);
    expect(m.accel.nextDeadline()).toBe(Infinity);
    expect(m.free.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(m.sent.filter((s) => s.op === 'detached').map((s) => s.key)).toEqual(['1/0', '2/0']);
    expect(m.accel.stats().vifs).toEqual({ '1/0': null, '2/0': null });
    expect(m.accel.failures).toContainEqual({
      plugin: 'never-detaches',
      hook: 'detachVif',
      error: expect.stringMatching(/never called ctx\.detached\(vif\) for vif1\.0, vif2\.0/),
    });
    // The host is not left "unloading": the plugin loads again.
    await m.load('never-detaches');
  });
});
