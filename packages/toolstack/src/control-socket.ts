/**
 * The control socket of a running simulation (`xsim run --serve`): a Unix
 * socket carrying msgpackr messages, each framed by a 4-byte big-endian
 * length. A request is { op, args }; the reply { ok: true, value } or
 * { ok: false, error }. One request per connection, as `xl` does it: the
 * commands are short-lived processes.
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import { Value } from '@sinclair/typebox/value';
import type { OpArgs, OpName, OpReply } from '@xsim/hypervisor';
import { MANAGE_OPS } from './manage.ts';
import { MANAGE_PROTOCOL, type ManageProtocol } from './manage-ops.ts';
import type { Simulation } from './simulation.ts';

/** Where `xsim run --serve` listens and the management commands connect, unless told otherwise. */
export function defaultSocketPath(): string {
  return process.env.XSIM_SOCKET ?? join(tmpdir(), 'xsim.sock');
}

/** A request's size limit: control messages are small; anything bigger is a confused peer. */
const MAX_FRAME = 1 << 20;

function frame(msg: unknown): Buffer {
  const body = pack(msg);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/** Read one framed message from a socket. */
function readFrame(sock: Socket): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 4) return;
      const len = buf.readUInt32BE(0);
      if (len > MAX_FRAME) return done(new Error(`control message of ${len} bytes exceeds ${MAX_FRAME}`));
      if (buf.length < 4 + len) return;
      try {
        done(undefined, unpack(buf.subarray(4, 4 + len)));
      } catch (e) {
        done(e instanceof Error ? e : new Error(String(e)));
      }
    };
    const onEnd = () => done(new Error('control socket closed before a whole message arrived'));
    const done = (e?: Error, v?: unknown) => {
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('error', onEnd);
      if (e) reject(e);
      else resolve(v);
    };
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('error', onEnd);
  });
}

function describeFile(st: import('node:fs').Stats): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isFIFO()) return 'FIFO';
  return 'special file';
}

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * Serve the management ops for `sim` on a Unix socket. `extra` ops (the run
 * command's own, like shutdown) are served beside them.
 */
/**
 * Make `path` free for a new Unix socket: only a socket left by a simulation
 * that is gone may be replaced; anything else at that path (a user's file, a
 * directory) is not ours to delete, and a live socket is someone else's.
 */
export async function claimSocketPath(path: string, hint: string): Promise<void> {
  if (!existsSync(path)) return;
  const st = lstatSync(path);
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket (it is a ${describeFile(st)}); refusing to replace it: ${hint}`);
  const live = await new Promise<boolean>((r) => {
    const c = createConnection(path, () => {
      c.destroy();
      r(true);
    }).on('error', () => r(false));
  });
  if (live) throw new Error(`${path}: another simulation is serving there (${hint})`);
  unlinkSync(path);
}

type Extra = Record<string, (args: Record<string, unknown>) => Promise<unknown>>;

/** A request that passed the boundary's checks: one of the server's own ops, or a declared management op with arguments its schema accepts. */
export type CheckedRequest =
  { kind: 'extra'; op: string; args: Record<string, unknown> } | { kind: 'manage'; op: keyof typeof MANAGE_OPS; args: Record<string, unknown> };

/**
 * One request, checked once at the boundary: a declared op (never "constructor",
 * "toString" or "__proto__" from the prototype chain), arguments an object that
 * its schema in MANAGE_PROTOCOL accepts. `extra`: the server's own ops (taken
 * by name, their arguments theirs to check).
 */
export function checkRequest(req: unknown, extra: readonly string[]): CheckedRequest {
  const { op, args } = (req ?? {}) as { op?: unknown; args?: unknown };
  const name = typeof op === 'string' ? op : '';
  if (args !== undefined && (args === null || typeof args !== 'object' || Array.isArray(args)))
    throw new Error(`operation ${name || JSON.stringify(op)}: arguments must be an object, got ${JSON.stringify(args)}`);
  const a = (args ?? {}) as Record<string, unknown>;
  if (extra.includes(name)) return { kind: 'extra', op: name, args: a };
  if (!Object.hasOwn(MANAGE_OPS, name))
    throw new Error(`unknown operation ${JSON.stringify(op)} (known: ${[...Object.keys(MANAGE_OPS), ...extra].sort().join(', ')})`);
  const k = name as keyof typeof MANAGE_OPS;
  const schema = MANAGE_PROTOCOL[k].args;
  if (!Value.Check(schema, a)) {
    const bad = [...Value.Errors(schema, a)].slice(0, 3).map((e) => `${e.path || '(arguments)'}: ${e.message}`);
    throw new Error(`operation ${name}: bad arguments: ${bad.join('; ')}`);
  }
  return { kind: 'manage', op: k, args: a };
}

/** A management op on `sim`, checked as the socket checks it (a partition answers the ops its coordinator forwards this way). */
export function manageAnswer(sim: Simulation, op: string, args: Record<string, unknown>): Promise<unknown> {
  const c = checkRequest({ op, args }, []);
  return (MANAGE_OPS[c.op as keyof typeof MANAGE_OPS] as (sim: Simulation, args: unknown) => Promise<unknown>)(sim, c.args);
}

function answer(sim: Simulation, extra: Extra, req: unknown): Promise<unknown> {
  const c = checkRequest(req, Object.keys(extra));
  if (c.kind === 'extra') return extra[c.op](c.args);
  return (MANAGE_OPS[c.op] as (sim: Simulation, args: unknown) => Promise<unknown>)(sim, c.args);
}

export async function serveControl(sim: Simulation, path: string, extra: Extra = {}): Promise<ControlServer> {
  return serveRequests(path, async (req) => answer(sim, extra, req));
}

/**
 * Serve a control socket at `path` whose every request `handle` answers
 * (serveControl: a simulation's ops; `--partitions local`: forwarded to the
 * partition that holds what the request names). A request that throws is
 * answered with its error; the server goes on.
 */
export async function serveRequests(path: string, handle: (req: unknown) => Promise<unknown>): Promise<ControlServer> {
  await claimSocketPath(path, 'set --socket or XSIM_SOCKET');
  const server: Server = createServer((sock) => {
    readFrame(sock)
      .then(handle)
      .then(
        (value) => sock.end(frame({ ok: true, value: value ?? null })),
        (e: unknown) => sock.end(frame({ ok: false, error: e instanceof Error ? e.message : String(e) })),
      );
    sock.on('error', () => sock.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      // The socket drives the whole simulation: only its owner may connect.
      chmodSync(path, 0o600);
      resolve();
    });
  });
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Ours to remove only if it is still the socket we made.
        if (existsSync(path) && lstatSync(path).isSocket()) unlinkSync(path);
      }),
  };
}

/** One request to a serving simulation, as raw as the wire: any op, any arguments (what a hostile or older client could send). */
export async function controlRequest(path: string, op: string, args: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<unknown> {
  const sock = await new Promise<Socket>((resolve, reject) => {
    const s = createConnection(path, () => resolve(s));
    s.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? new Error(`no simulation is serving on ${path} (start one with: xsim run --serve)`) : e),
    );
  });
  sock.setTimeout(timeoutMs, () => sock.destroy(new Error(`${op}: no answer within ${timeoutMs} ms`)));
  try {
    const reply = readFrame(sock);
    sock.write(frame({ op, args }));
    const r = (await reply) as { ok: boolean; value?: unknown; error?: string };
    if (!r.ok) throw new Error(r.error ?? `${op} failed`);
    return r.value;
  } finally {
    sock.destroy();
  }
}

/** One request to a serving simulation, checked by the compiler against the control socket's protocol. */
export async function manageRequest<K extends OpName<ManageProtocol>>(
  path: string,
  op: K,
  args: OpArgs<ManageProtocol, K>,
  timeoutMs = 60_000,
): Promise<OpReply<ManageProtocol, K>> {
  return (await controlRequest(path, op, args as Record<string, unknown>, timeoutMs)) as OpReply<ManageProtocol, K>;
}
