/**
 * Migration between partitions, on the wire: one TCP connection from the
 * source partition's toolstack to the destination's, which listens on its
 * partition's address at the TCP port of the same number as its VXLAN UDP
 * port. The shape is xl migrate's over ssh: the domain's configuration
 * first, then libxc's stream, then a handshake before the destination lets
 * the guest run, so a guest runs in exactly one place.
 *
 *   source                                     destination
 *   hello {v, host, name, from, memPages,  →
 *          live, vifs}                          checks it can take the guest
 *                                          ←   accept | refuse {error}
 *   the migration v2 stream, live order    →   read into fresh RAM, checked
 *   (stream.ts: pages round after round,
 *   XSIM_DOMAIN and plugin state after the
 *   suspend, END)
 *                                          ←   ready | refuse {error}
 *   go                                     →   the guest boots from its record
 *                                          ←   done {domid, pcpu, connectedAt, firstRxAt,
 *                                                 accel, accelAfterMs, pages} | failed {error}
 *
 * Until `go` the source can resume the guest where it was; a destination
 * that never hears `go` throws the image away. Each control message is
 * framed: length u32 (big-endian, at most MSG_MAX), then msgpack of
 * {op, ...args}. Every message read is checked here, once, field by field.
 */
import net from 'node:net';
import { pack, unpack } from 'msgpackr';
import type { SaveStreamReader } from '@xsim/hypervisor';

export const MIGRATE_WIRE_VERSION = 1;
/** A control message is small: a vif list at most. */
export const MSG_MAX = 64 * 1024;

export interface MigrateVif {
  handle: number;
  mac: string;
  ip: string;
  mtu: number;
}

/** The messages of one migration, op -> its fields. */
export interface MigrateMsgs {
  hello: { v: number; host: string; name: string; from: string; memPages: number; live: boolean; vifs: MigrateVif[] };
  accept: { [k in never]: never };
  refuse: { error: string };
  ready: { [k in never]: never };
  go: { [k in never]: never };
  /** The guest runs at the destination: where, and what it saw once up (clocks: epoch ms). */
  done: { domid: number; pcpu: number; connectedAt: number; firstRxAt: number | null; accel: string[]; accelAfterMs: number | null; pages: number };
  failed: { error: string };
}

export type MigrateOp = keyof MigrateMsgs;
export type MigrateMsg<K extends MigrateOp = MigrateOp> = { [P in K]: { op: P } & MigrateMsgs[P] }[K];

export class MigrateWireError extends Error {}

const isInt = (x: unknown, lo: number, hi: number): x is number => Number.isInteger(x) && (x as number) >= lo && (x as number) <= hi;
const isStr = (x: unknown, max: number): x is string => typeof x === 'string' && x.length > 0 && x.length <= max;
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
/** A peer's value in an error message: whatever it is (an object whose toString is not a function included), never a throw. */
function shown(x: unknown): string {
  try {
    return JSON.stringify(x) ?? typeof x;
  } catch {
    return Object.prototype.toString.call(x);
  }
}

/** A message read from the peer, checked field by field; throws naming the first field that is wrong. */
export function checkMigrateMsg(v: unknown): MigrateMsg {
  const m = v as Record<string, unknown> | null;
  const bad = (why: string): never => {
    throw new MigrateWireError(`malformed migration message: ${why}`);
  };
  if (!m || typeof m !== 'object' || Array.isArray(m)) return bad('not an object');
  switch (m.op) {
    case 'hello': {
      if (m.v !== MIGRATE_WIRE_VERSION) bad(`hello.v ${shown(m.v)}: this xsim speaks version ${MIGRATE_WIRE_VERSION}`);
      for (const k of ['host', 'name', 'from'] as const) if (!isStr(m[k], 64)) bad(`hello.${k} must be a name of 1 to 64 characters`);
      if (!isInt(m.memPages, 1, 1 << 20)) bad(`hello.memPages ${shown(m.memPages)} outside 1..${1 << 20}`);
      if (typeof m.live !== 'boolean') bad('hello.live must be true or false');
      if (!Array.isArray(m.vifs) || m.vifs.length < 1 || m.vifs.length > 64) bad('hello.vifs must list 1 to 64 vifs');
      (m.vifs as unknown[]).forEach((x, i) => {
        const f = x as Record<string, unknown> | null;
        if (!f || !isInt(f.handle, 0, 1 << 16) || !isStr(f.mac, 17) || !isStr(f.ip, 15) || !isInt(f.mtu, 68, 65535))
          bad(`hello.vifs[${i}] must be {handle, mac, ip, mtu}`);
      });
      return m as MigrateMsg<'hello'>;
    }
    case 'accept':
    case 'ready':
    case 'go':
      return { op: m.op } as MigrateMsg;
    case 'refuse':
    case 'failed':
      if (typeof m.error !== 'string' || m.error.length > 4096) bad(`${m.op}.error must be a string of at most 4096 characters`);
      return { op: m.op, error: m.error as string };
    case 'done': {
      if (!isInt(m.domid, 1, 65535)) bad(`done.domid ${shown(m.domid)} outside 1..65535`);
      if (!isInt(m.pcpu, 0, 4096)) bad(`done.pcpu ${shown(m.pcpu)} is not a pCPU`);
      if (!isInt(m.pages, 0, Number.MAX_SAFE_INTEGER)) bad('done.pages must be a count');
      if (!isNum(m.connectedAt)) bad('done.connectedAt must be a time');
      for (const k of ['firstRxAt', 'accelAfterMs'] as const) if (m[k] !== null && !isNum(m[k])) bad(`done.${k} must be a time or null`);
      if (!Array.isArray(m.accel) || !m.accel.every((x) => isStr(x, 64))) bad('done.accel must list plugin names');
      return m as MigrateMsg<'done'>;
    }
    default:
      return bad(`unknown op ${shown(m.op)}`);
  }
}

/** One control message, framed. */
export function frameMigrateMsg(m: MigrateMsg): Buffer {
  const body = pack(m);
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

/**
 * One end of a migration's connection: control messages in and out, the
 * stream out (with the socket's backpressure) and in (into a reader). Every
 * wait is bounded; the peer closing or erring fails the wait naming it.
 */
export class MigrateConn {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private sink: SaveStreamReader | null = null;
  private wake: (() => void) | null = null;
  private ended: Error | null = null;

  constructor(
    private readonly sock: net.Socket,
    /** Who is at the other end, for errors ("partition p1 at 127.0.0.1:14790"). */
    readonly peer: string,
  ) {
    sock.setNoDelay(true);
    sock.on('data', (c: Buffer) => this.arrive(c));
    sock.on('error', (e) => this.end(new MigrateWireError(`${peer}: ${e.message}`)));
    sock.on('close', () => this.end(new MigrateWireError(`${peer} closed the connection`)));
  }

  static connect(address: string, port: number, peer: string, timeoutMs: number): Promise<MigrateConn> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: address, port });
      const t = setTimeout(() => {
        sock.destroy();
        reject(new MigrateWireError(`${peer}: no connection within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(t);
        resolve(new MigrateConn(sock, peer));
      });
      sock.once('error', (e) => {
        clearTimeout(t);
        reject(new MigrateWireError(`${peer}: ${e.message}`));
      });
    });
  }

  send(m: MigrateMsg): void {
    this.sock.write(frameMigrateMsg(m));
  }

  /** Stream octets out; resolves once the socket has taken them (its buffer drained), so a sender never runs ahead by more than that. */
  async write(parts: Buffer[], timeoutMs: number): Promise<void> {
    let ok = true;
    for (const p of parts) ok = this.sock.write(p) && ok;
    if (ok) return;
    await this.until(
      () => !this.sock.writableNeedDrain,
      timeoutMs,
      'to take the stream',
      (w) => this.sock.once('drain', w),
    );
  }

  /** The next control message, checked; `what` names it in a timeout. */
  async next(timeoutMs: number, what: string): Promise<MigrateMsg> {
    let len = -1;
    await this.until(
      () => {
        if (this.buffered < 4) return false;
        len = this.peek(4).readUInt32BE(0);
        if (len > MSG_MAX) throw new MigrateWireError(`${this.peer} sent a message of ${len} octets (at most ${MSG_MAX})`);
        return this.buffered >= 4 + len;
      },
      timeoutMs,
      what,
    );
    const body = this.take(4 + len).subarray(4);
    let v: unknown;
    try {
      v = unpack(body);
    } catch (e) {
      throw new MigrateWireError(`${this.peer} sent a message that does not decode: ${(e as Error).message}`);
    }
    return checkMigrateMsg(v);
  }

  /** Feed arriving octets to `reader` until it has read END; `idleMs` bounds the wait between two chunks. */
  async readStream(reader: SaveStreamReader, idleMs: number): Promise<void> {
    this.sink = reader;
    try {
      if (this.buffered > 0) reader.push(this.take(this.buffered));
      while (!reader.done) {
        const seen = reader.octets;
        await this.until(() => reader.done || reader.octets !== seen, idleMs, 'the rest of the migration stream');
      }
    } finally {
      this.sink = null;
    }
    const rest = reader.trailing();
    if (rest.length > 0) this.arrive(rest);
  }

  close(): void {
    this.sock.end();
    this.sock.destroySoon();
  }

  private arrive(c: Buffer): void {
    if (this.sink) {
      try {
        this.sink.push(c);
      } catch (e) {
        this.end(e as Error);
      }
    } else {
      this.chunks.push(c);
      this.buffered += c.length;
    }
    this.wake?.();
  }

  private end(e: Error): void {
    this.ended ??= e;
    this.wake?.();
  }

  /** Wait until `ready()` holds, the connection ends, or `timeoutMs` passes with nothing new. */
  private until(ready: () => boolean, timeoutMs: number, what: string, arm?: (wake: () => void) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        try {
          if (ready()) return done(null);
          if (this.ended) return done(this.ended);
        } catch (e) {
          return done(e as Error);
        }
        return false;
      };
      const t = setTimeout(() => done(new MigrateWireError(`${this.peer}: nothing came within ${timeoutMs} ms while waiting for ${what}`)), timeoutMs);
      const done = (e: Error | null): true => {
        clearTimeout(t);
        this.wake = null;
        if (e) reject(e);
        else resolve();
        return true;
      };
      if (check()) return;
      this.wake = () => void check();
      arm?.(() => void check());
    });
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0].subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    const out = this.chunks[0].subarray(0, n);
    const rest = this.chunks[0].subarray(n);
    if (rest.length > 0) this.chunks[0] = rest;
    else this.chunks.shift();
    this.buffered -= n;
    return out;
  }
}
