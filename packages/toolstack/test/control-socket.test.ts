/**
 * The control socket checks every request once, at the socket, against the
 * op's schema in MANAGE_PROTOCOL: an unknown op, arguments that are not an
 * object or that the schema refuses are answered with an error naming the op
 * and the field, and no handler runs (the simulation here is a stub that fails
 * the test if anything reaches it). manageRequest's sends are checked by the
 * compiler (the @ts-expect-error lines must fail to type-check).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlRequest, manageRequest, serveControl, type ControlServer, type Simulation } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'xsim-ctl-'));
const socket = join(dir, 'ctl.sock');
let server: ControlServer;
let reached = 0;

beforeAll(async () => {
  // Any property read means a handler ran: the boundary let something through.
  const sim = new Proxy({}, { get: () => (reached++, () => Promise.reject(new Error('reached the simulation'))) }) as unknown as Simulation;
  server = await serveControl(sim, socket, { shutdown: async () => 'shutting down' });
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('control socket: arguments checked once at the boundary', () => {
  it.each([
    ['mgmtdev.set', { dev: 'host-a-nic', mtu: '9000' }, /operation mgmtdev\.set: bad arguments: \/mtu: Expected integer/],
    ['mgmtdev.set', { dev: 'host-a-nic', link: 'sideways' }, /operation mgmtdev\.set: bad arguments: \/link/],
    ['mgmtdev.set', { dev: 'host-a-nic', reset: false }, /\/reset/],
    ['domain.create', { host: 'host-a' }, /operation domain\.create: bad arguments: \/name: Expected required property/],
    ['domain.create', { host: 'host-a', name: 'x', memPages: 1.5 }, /\/memPages: Expected integer/],
    ['domain.shutdown', { host: 'host-a', domain: '' }, /\/domain: Expected string length greater or equal to 1/],
    ['domain.migrate', { host: 'host-a', domain: 'a1', to: 'host-b', live: 'yes' }, /\/live: Expected boolean/],
    ['dev.add', { dev: 'host-a/a1', colour: 'blue' }, /operation dev\.add: bad arguments: \/colour: Unexpected property/],
    ['capture.start', { specs: [], file: '/tmp/x.pcapng' }, /\/specs: Expected array length to be greater or equal to 1/],
    ['plugin.load', { name: 'vnic', args: [1] }, /\/args: Expected object/],
    ['trace.start', { file: '/tmp/t.json', sample: 'often' }, /\/sample: Expected integer/],
  ])('%s %j is refused, naming the field', async (op, args, message) => {
    await expect(controlRequest(socket, op, args)).rejects.toThrow(message);
    expect(reached).toBe(0);
  });

  it('an unknown op, or one from the prototype chain, is refused naming the known ones', async () => {
    for (const op of ['frobnicate', 'constructor', '__proto__', 'toString']) {
      await expect(controlRequest(socket, op)).rejects.toThrow(new RegExp(`unknown operation "${op}" \\(known: .*domain\\.create.*shutdown`));
    }
    expect(reached).toBe(0);
  });

  it('arguments that are not an object are refused', async () => {
    await expect(controlRequest(socket, 'dev.list', [1, 2] as unknown as Record<string, unknown>)).rejects.toThrow(
      /operation dev\.list: arguments must be an object/,
    );
    expect(reached).toBe(0);
  });

  it('well-formed arguments reach the simulation (the stub refuses them there)', async () => {
    await expect(manageRequest(socket, 'domain.list', {})).rejects.toThrow(/reached the simulation/);
    expect(reached).toBeGreaterThan(0);
  });
});

/* eslint-disable @typescript-eslint/no-unused-vars */
async function typedSends(): Promise<void> {
  const list = await manageRequest(socket, 'domain.list', {});
  const id: number = list[0].domid;
  await manageRequest(socket, 'mgmtdev.set', { dev: 'host-a-nic', link: 'down' });
  // @ts-expect-error a misspelt op
  await manageRequest(socket, 'domain.lst', {});
  // @ts-expect-error a wrong value (link is 'up' or 'down')
  await manageRequest(socket, 'mgmtdev.set', { dev: 'host-a-nic', link: 'sideways' });
  // @ts-expect-error a missing argument (domain.create needs a name)
  await manageRequest(socket, 'domain.create', { host: 'host-a' });
  // @ts-expect-error an argument the op does not take
  await manageRequest(socket, 'dev.del', { dev: 'host-a/a1/vif1', force: true });
}
