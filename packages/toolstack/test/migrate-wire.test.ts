/**
 * The migration-between-partitions protocol's messages (migrate-wire.ts):
 * every message a peer sends is checked once; one test per malformed field,
 * a property that anything at all is either a message or a MigrateWireError,
 * and the framing over a real socket pair on loopback (too long, not
 * msgpack, the peer hanging up, nothing coming).
 */
import net from 'node:net';
import { pack } from 'msgpackr';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { MigrateConn, MigrateWireError, MSG_MAX, checkMigrateMsg, frameMigrateMsg, type MigrateMsg } from '../src/migrate-wire.ts';

const hello = (): Record<string, unknown> => ({
  op: 'hello',
  v: 1,
  host: 'host-b',
  name: 'a1',
  from: 'host-a',
  memPages: 1024,
  live: true,
  vifs: [{ handle: 0, mac: '00:16:3e:0a:01:01', ip: '10.0.10.1', mtu: 1500 }],
});
const done = (): Record<string, unknown> => ({
  op: 'done',
  domid: 4,
  pcpu: 1,
  connectedAt: 1.5e12,
  firstRxAt: null,
  accel: ['vnic'],
  accelAfterMs: 12,
  pages: 300,
});

describe('migration messages, checked once', () => {
  it('takes every well-formed message as it is', () => {
    expect(checkMigrateMsg(hello())).toEqual(hello());
    expect(checkMigrateMsg(done())).toEqual(done());
    for (const op of ['accept', 'ready', 'go']) expect(checkMigrateMsg({ op })).toEqual({ op });
    expect(checkMigrateMsg({ op: 'refuse', error: 'no' })).toEqual({ op: 'refuse', error: 'no' });
  });

  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['not an object', [] as unknown as Record<string, unknown>, /not an object/],
    ['an unknown op', { op: 'teleport' }, /unknown op "teleport"/],
    ['another version', { ...hello(), v: 2 }, /hello\.v 2: this xsim speaks version 1/],
    // Found by the property below: the message for it once threw a TypeError of its own (String() of an object whose toString is null).
    ['a version that is an object with no toString', { ...hello(), v: { toString: null } }, /hello\.v \{"toString":null\}: this xsim speaks version 1/],
    ['an empty host', { ...hello(), host: '' }, /hello\.host must be a name/],
    ['a name of 65 characters', { ...hello(), name: 'x'.repeat(65) }, /hello\.name must be a name of 1 to 64/],
    ['no source', { ...hello(), from: 7 }, /hello\.from must be a name/],
    ['memPages 0', { ...hello(), memPages: 0 }, /hello\.memPages 0 outside/],
    ['memPages fractional', { ...hello(), memPages: 1.5 }, /hello\.memPages 1\.5 outside/],
    ['live not a boolean', { ...hello(), live: 'yes' }, /hello\.live must be true or false/],
    ['no vifs', { ...hello(), vifs: [] }, /hello\.vifs must list 1 to 64 vifs/],
    ['65 vifs', { ...hello(), vifs: Array.from({ length: 65 }, () => (hello().vifs as unknown[])[0]) }, /1 to 64 vifs/],
    ['a vif without its MTU', { ...hello(), vifs: [{ handle: 0, mac: '00:16:3e:0a:01:01', ip: '10.0.10.1' }] }, /hello\.vifs\[0\] must be/],
    ['a vif with MTU 67', { ...hello(), vifs: [{ handle: 0, mac: '00:16:3e:0a:01:01', ip: '10.0.10.1', mtu: 67 }] }, /hello\.vifs\[0\]/],
    ['a refusal without its reason', { op: 'refuse' }, /refuse\.error must be a string/],
    ['a failure with a reason of 4097 characters', { op: 'failed', error: 'x'.repeat(4097) }, /failed\.error/],
    ['done with domid 0', { ...done(), domid: 0 }, /done\.domid 0 outside 1\.\.65535/],
    ['done with a pCPU -1', { ...done(), pcpu: -1 }, /done\.pcpu -1 is not a pCPU/],
    ['done without its page count', { ...done(), pages: undefined }, /done\.pages must be a count/],
    ['done with no time', { ...done(), connectedAt: 'now' }, /done\.connectedAt must be a time/],
    ['done with a first frame at NaN', { ...done(), firstRxAt: Number.NaN }, /done\.firstRxAt must be a time or null/],
    ['done with a plugin that is not a name', { ...done(), accel: [3] }, /done\.accel must list plugin names/],
  ];
  for (const [what, msg, re] of cases)
    it(`refuses ${what}`, () => {
      expect(() => checkMigrateMsg(msg)).toThrow(MigrateWireError);
      expect(() => checkMigrateMsg(msg)).toThrow(re);
    });

  it('anything at all is a message or a MigrateWireError, never another error (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.record({ op: fc.constantFrom('hello', 'done', 'refuse', 'go', 'x'), v: fc.anything(), vifs: fc.anything(), error: fc.anything() }),
        ),
        (v) => {
          try {
            checkMigrateMsg(v);
          } catch (e) {
            expect(e).toBeInstanceOf(MigrateWireError);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('migration framing over a socket', () => {
  let server: net.Server | null = null;
  const opened: net.Socket[] = [];
  afterEach(async () => {
    for (const s of opened.splice(0)) s.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = null;
  });

  /** A connected pair: our MigrateConn, and the raw socket of the server's end. */
  async function pair(): Promise<{ conn: MigrateConn; raw: net.Socket }> {
    let raw!: net.Socket;
    const got = new Promise<void>((r) => {
      server = net.createServer((s) => {
        raw = s;
        opened.push(s);
        r();
      });
    });
    await new Promise<void>((r) => server!.listen({ host: '127.0.0.1', port: 0 }, () => r()));
    const conn = await MigrateConn.connect('127.0.0.1', (server!.address() as net.AddressInfo).port, 'the test peer', 5000);
    await got;
    return { conn, raw };
  }

  it('reads messages cut anywhere and sent back to back', async () => {
    const { conn, raw } = await pair();
    const bytes = Buffer.concat([frameMigrateMsg(hello() as MigrateMsg), frameMigrateMsg({ op: 'go' })]);
    for (let i = 0; i < bytes.length; i += 7) raw.write(bytes.subarray(i, i + 7));
    expect(await conn.next(5000, 'hello')).toEqual(hello());
    expect(await conn.next(5000, 'go')).toEqual({ op: 'go' });
    conn.close();
    raw.destroy();
  });

  it('refuses a frame longer than MSG_MAX at its length, without waiting for it', async () => {
    const { conn, raw } = await pair();
    const h = Buffer.alloc(4);
    h.writeUInt32BE(MSG_MAX + 1, 0);
    raw.write(h);
    await expect(conn.next(5000, 'hello')).rejects.toThrow(/a message of 65537 octets \(at most 65536\)/);
    conn.close();
    raw.destroy();
  });

  it('refuses a frame that is not msgpack, and a msgpack value that is no message', async () => {
    const { conn, raw } = await pair();
    raw.write(Buffer.from([0, 0, 0, 2, 0xd9, 0x05])); // a str8 of 5 octets, cut after its length
    await expect(conn.next(5000, 'hello')).rejects.toThrow(/does not decode/);
    const body = pack({ op: 'hello', v: 1 });
    const f = Buffer.alloc(4 + body.length);
    f.writeUInt32BE(body.length, 0);
    f.set(body, 4);
    raw.write(f);
    await expect(conn.next(5000, 'hello')).rejects.toThrow(/hello\.host/);
    conn.close();
    raw.destroy();
  });

  it('names the peer that hung up, and the wait that timed out', async () => {
    const a = await pair();
    a.raw.destroy();
    await expect(a.conn.next(5000, 'the answer')).rejects.toThrow(/the test peer closed the connection/);
    await new Promise<void>((r) => server!.close(() => r()));
    server = null;
    const b = await pair();
    await expect(b.conn.next(50, 'the answer to hello')).rejects.toThrow(/nothing came within 50 ms while waiting for the answer to hello/);
    b.conn.close();
    b.raw.destroy();
  });

  it('a connection no one takes fails naming where', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0 }, () => r()));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    await expect(MigrateConn.connect('127.0.0.1', port, 'partition p9', 5000)).rejects.toThrow(/partition p9: connect ECONNREFUSED/);
  });
});
