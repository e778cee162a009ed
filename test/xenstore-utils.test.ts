/**
 * The real xenstore tools against a running simulation: each host's xenstore
 * served over Xen's wire protocol (xs_wire.h) on a Unix socket. Debian's
 * xenstore-utils (test/tools.ts; .ci/run installs them when missing) list, read, write,
 * watch and chmod through it; a write from outside reaches the drivers.
 * A raw client checks what the tools cannot reach: a connection restricted
 * to a guest (XS_CONTROL "restrict") gets that guest's permissions, and malformed
 * messages get XS_ERROR or the connection closed, never a crash.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XsType, encodeXsWire, payloadStrings, XsWireDecoder, type XsWireMessage } from '@xsim/hypervisor';
import { Simulation, defaultTopology, serveXenstores, type XenstoreSockets } from '@xsim/toolstack';
import { THREADS } from './helpers.ts';
import { needs } from './tools.ts';

let sim: Simulation;
let sockets: XenstoreSockets;
let env: NodeJS.ProcessEnv;

const run = promisify(execFile);
/** A real tool, run asynchronously: the xenstore it talks to is served by this very thread. */
async function tool(name: string, ...args: string[]): Promise<string> {
  try {
    return (await run(name, args, { env, timeout: 10_000 })).stdout;
  } catch (e) {
    throw new Error(`${name} ${args.join(' ')}: ${(e as { stderr?: string }).stderr ?? (e as Error).message}`);
  }
}

/** A raw xs_wire client: send requests, collect what comes back. */
class RawClient {
  private readonly decoder = new XsWireDecoder();
  private readonly inbox: XsWireMessage[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  constructor(readonly sock: Socket) {
    sock.on('data', (b) => {
      this.inbox.push(...this.decoder.push(b));
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static open(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path, () => resolve(new RawClient(s))).on('error', reject);
    });
  }
  async ask(type: number, payload: string | Buffer, txId = 0, reqId = 7): Promise<{ type: number; strings: string[]; raw: string }> {
    this.sock.write(encodeXsWire({ type, reqId, txId, payload }));
    for (;;) {
      const i = this.inbox.findIndex((m) => m.reqId === reqId && m.type !== XsType.WATCH_EVENT);
      if (i >= 0) {
        const [m] = this.inbox.splice(i, 1);
        return { type: m.type, strings: payloadStrings(m.payload), raw: m.payload.toString() };
      }
      if (this.closed) throw new Error('connection closed');
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
  async untilClosed(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
  }
}

beforeAll(async () => {
  sim = await Simulation.start(defaultTopology(), { ...THREADS.opts, log: () => {} });
  sockets = await serveXenstores(sim.hosts, join(mkdtempSync(join(tmpdir(), 'xsim-xs-')), 'xs'));
  env = { ...process.env, XENSTORED_PATH: sockets.paths['host-a'] };
});

afterAll(async () => {
  await sockets?.close();
  await sim?.shutdown();
});

describe(
  'xenstore-utils against a running simulation',
  needs('xenstore-ls', 'xenstore-list', 'xenstore-read', 'xenstore-write', 'xenstore-rm', 'xenstore-watch'),
  () => {
    it('xenstore-ls lists a guest and its vif as the drivers wrote them; -p shows the permissions', async () => {
      const ls = await tool('xenstore-ls', '/local/domain/1');
      expect(ls).toMatch(/^name = "a1"$/m);
      expect(ls).toMatch(/^ {3}state = "4"$/m);
      expect(ls).toMatch(/^ {3}backend = "\/local\/domain\/0\/backend\/vif\/1\/0"$/m);
      expect(await tool('xenstore-ls', '-p', '/local/domain/0/backend/vif/1/0')).toMatch(/^state = "4" [ .]+\(n0,r1\)$/m);
      expect((await tool('xenstore-list', '/local/domain')).split('\n').filter(Boolean)).toEqual(['0', '1', '2']);
    });

    it("xenstore-read and xenstore-write go to the simulation's own store; xenstore-rm removes", async () => {
      expect(await tool('xenstore-read', '/local/domain/2/name')).toBe('a2\n');
      await tool('xenstore-write', '/local/domain/1/data/greeting', 'hello');
      expect(sim.host('host-a').xenstore.read(0, '/local/domain/1/data/greeting')).toBe('hello');
      await tool('xenstore-rm', '/local/domain/1/data');
      expect(sim.host('host-a').xenstore.read(0, '/local/domain/1/data/greeting')).toBeUndefined();
      await expect(tool('xenstore-read', '/local/domain/9/name')).rejects.toThrow(/couldn't read path/);
    });

    it('xenstore-watch sees the simulation write', async () => {
      const w = spawn('xenstore-watch', ['-n', '2', '/local/domain/1/data2'], { env });
      let out = '';
      w.stdout.on('data', (b: Buffer) => (out += b.toString()));
      const done = new Promise<number | null>((r) => w.on('exit', r));
      // The first event is the watch's own registration; then the simulation writes.
      await sim.waitFor('the watch to be registered', () => out.includes('/local/domain/1/data2'), 5000);
      sim.host('host-a').xenstore.write(0, '/local/domain/1/data2/x', '1');
      expect(await done).toBe(0);
      expect(out.split('\n').filter(Boolean)).toEqual(['/local/domain/1/data2', '/local/domain/1/data2/x']);
    });

    it('a vif state of 5 written from outside starts its teardown: both ends reach Closed', async () => {
      await tool('xenstore-write', '/local/domain/2/device/vif/0/state', '5');
      await sim.waitFor(
        'a2 vif0 closed',
        async () =>
          (await tool('xenstore-read', '/local/domain/0/backend/vif/2/0/state')) === '6\n' &&
          (await tool('xenstore-read', '/local/domain/2/device/vif/0/state')) === '6\n',
        5000,
      );
      const stats = await sim.dom0Stats('host-a');
      expect(stats.vifs['vif2.0'].history.join('; ')).toMatch(/Connected->Closing \(frontend Closing\)/);
    });
  },
);

describe('the xs_wire socket, raw', () => {
  it("a connection restricted to a guest has that guest's permissions, and relative paths are its own", async () => {
    const c = await RawClient.open(sockets.paths['host-a']);
    expect((await c.ask(XsType.CONTROL, 'restrict\x001\0')).raw).toBe('OK\0');
    expect((await c.ask(XsType.READ, 'name\0')).raw).toBe('a1');
    // Its home directory is libxl's (n0,r1): it may not rename itself; the directories libxl gives it
    // (data, drivers, feature, ...) are its own (an earlier test removed data).
    expect(await c.ask(XsType.WRITE, 'name\0evil')).toMatchObject({ type: XsType.ERROR, strings: ['EACCES'] });
    expect(await c.ask(XsType.GET_PERMS, '/local/domain/1\0')).toMatchObject({ strings: ['n0', 'r1'] });
    expect((await c.ask(XsType.WRITE, 'drivers/note\0hi')).raw).toBe('OK\0');
    expect(await c.ask(XsType.READ, '/local/domain/2/name\0')).toMatchObject({ type: XsType.ERROR, strings: ['EACCES'] });
    expect(await c.ask(XsType.WRITE, '/local/domain/0/backend/vif/1/0/state\x005')).toMatchObject({ type: XsType.ERROR, strings: ['EACCES'] });
    // Its own backend directory it may read (r1), not write.
    expect((await c.ask(XsType.READ, '/local/domain/0/backend/vif/1/0/mac\0')).raw).toBe('00:16:3e:0a:01:01');
    expect(await c.ask(XsType.CONTROL, 'restrict\x000\0')).toMatchObject({ type: XsType.ERROR, strings: ['EACCES'] });
    c.sock.destroy();
  });

  it('transactions commit, and a conflicting one answers EAGAIN', async () => {
    const c = await RawClient.open(sockets.paths['host-a']);
    const tx = Number((await c.ask(XsType.TRANSACTION_START, '\0')).strings[0]);
    expect(tx).toBeGreaterThan(0);
    await c.ask(XsType.READ, '/local/domain/1/name\0', tx);
    await c.ask(XsType.WRITE, '/local/domain/1/tx-test\x00a', tx);
    sim.host('host-a').xenstore.write(0, '/local/domain/1/name', 'a1'); // touches what the transaction read
    expect(await c.ask(XsType.TRANSACTION_END, 'T\0', tx)).toMatchObject({ type: XsType.ERROR, strings: ['EAGAIN'] });
    const tx2 = Number((await c.ask(XsType.TRANSACTION_START, '\0')).strings[0]);
    await c.ask(XsType.WRITE, '/local/domain/1/tx-test\x00b', tx2);
    expect((await c.ask(XsType.TRANSACTION_END, 'T\0', tx2)).raw).toBe('OK\0');
    expect(sim.host('host-a').xenstore.read(0, '/local/domain/1/tx-test')).toBe('b');
    c.sock.destroy();
  });

  it.each([
    ['an unknown type', 99, 'x\0', 'ENOSYS'],
    ['XS_INTRODUCE (the simulation introduces domains)', XsType.INTRODUCE, '5\x001\x002\0', 'ENOSYS'],
    ['a write without a value', XsType.WRITE, '/local/domain/1/x', 'EINVAL'],
    ['a read without a path', XsType.READ, '', 'EINVAL'],
    ['a malformed path', XsType.READ, '/local//domain\0', 'EINVAL'],
    ['bad permissions', XsType.SET_PERMS, '/local/domain/1/name\0q7\0', 'EINVAL'],
    ['a watch without a token', XsType.WATCH, '/local\0', 'EINVAL'],
    ['a transaction that does not exist', XsType.READ, '/local/domain/1/name\0', 'ENOENT', 4242],
  ])('%s gets XS_ERROR %s... and the connection goes on', async (_what, type, payload, errno, tx = 0) => {
    const c = await RawClient.open(sockets.paths['host-a']);
    expect(await c.ask(type, payload, tx)).toMatchObject({ type: XsType.ERROR, strings: [errno] });
    expect((await c.ask(XsType.READ, '/local/domain/1/name\0')).raw).toBe('a1');
    c.sock.destroy();
  });

  it('a header announcing more than XENSTORE_PAYLOAD_MAX closes that connection only', needs('xenstore-read'), async () => {
    const c = await RawClient.open(sockets.paths['host-a']);
    const h = Buffer.alloc(16);
    h.writeUInt32LE(XsType.READ, 0);
    h.writeUInt32LE(5000, 12);
    c.sock.write(h);
    await c.untilClosed();
    expect(await tool('xenstore-read', '/local/domain/1/name')).toBe('a1\n');
  });
});
