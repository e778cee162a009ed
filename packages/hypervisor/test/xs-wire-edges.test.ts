/**
 * The xs_wire socket at the edges, answering as cxenstored does (issue 22,
 * item 6; process_message, do_transaction_end, send_directory_part and
 * do_is_domain_introduced in xen-project/xen tools/xenstored): served from
 * a bare store, no simulation running.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { DOMID_SELF, Store, XsType, XsWireDecoder, encodeXsWire, payloadStrings, type XsWireMessage } from '../src/index.ts';
import { serveXenstores, type XenstoreSockets } from '@xsim/toolstack';
import { needs } from '../../../test/tools.ts';

/** The type number XS_RESTRICT had before Xen removed it. */
const XS_RESTRICT_REMOVED = 20;

class Client {
  private readonly decoder = new XsWireDecoder();
  private readonly inbox: XsWireMessage[] = [];
  private wake: (() => void) | null = null;
  private reqId = 1;

  private constructor(readonly sock: Socket) {
    sock.on('data', (b) => {
      for (const m of this.decoder.push(b)) if (m.type !== XsType.WATCH_EVENT) this.inbox.push(m);
      this.wake?.();
    });
  }

  static open(path: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path, () => resolve(new Client(s))).on('error', reject);
    });
  }

  /** One request and its answer: the reply's strings, or the errno of an XS_ERROR. */
  async ask(type: number, payload: string, txId = 0): Promise<string[] | string> {
    const reqId = this.reqId++;
    this.sock.write(encodeXsWire({ type, reqId, txId, payload }));
    for (;;) {
      const i = this.inbox.findIndex((m) => m.reqId === reqId);
      if (i >= 0) {
        const [m] = this.inbox.splice(i, 1);
        return m.type === XsType.ERROR ? payloadStrings(m.payload)[0] : payloadStrings(m.payload);
      }
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

let sockets: XenstoreSockets | undefined;
const clients: Client[] = [];

async function serve(): Promise<{ store: Store; path: string; connect: (domid?: number) => Promise<Client> }> {
  const store = new Store();
  store.mkdir(0, '/local/domain/1');
  store.setPerms(0, '/local/domain/1', [
    { domid: 0, perm: 'n' },
    { domid: 1, perm: 'r' },
  ]);
  store.write(0, '/local/domain/1/name', 'g1');
  sockets = await serveXenstores([{ spec: { name: 'h' }, xenstore: { store } }], join(mkdtempSync(join(tmpdir(), 'xsim-xs-edges-')), 'xs'));
  const path = sockets.paths.h;
  return {
    store,
    path,
    connect: async (domid = 0) => {
      const c = await Client.open(path);
      clients.push(c);
      if (domid !== 0) expect(await c.ask(XsType.CONTROL, `restrict\0${domid}\0`)).toEqual(['OK']);
      return c;
    },
  };
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.sock.destroy();
  await sockets?.close();
  sockets = undefined;
});

describe('the xs_wire socket at the edges (issue 22, item 6)', () => {
  it('TRANSACTION_END with an argument other than T or F is EINVAL and the transaction stays open', async () => {
    const { store, connect } = await serve();
    const c = await connect();
    const tx = Number((await c.ask(XsType.TRANSACTION_START, '\0'))[0]);
    expect(await c.ask(XsType.WRITE, '/t/k\0v', tx)).toEqual(['OK']);
    for (const bad of ['X\0', 'TRUE\0', 'T', 'T\0F\0', '\0']) expect(await c.ask(XsType.TRANSACTION_END, bad, tx)).toBe('EINVAL');
    // Still open: not committed, not aborted.
    expect(() => store.read(0, '/t/k')).toThrow(/ENOENT/);
    expect(await c.ask(XsType.READ, '/t/k\0', tx)).toEqual(['v']);
    expect(await c.ask(XsType.TRANSACTION_END, 'T\0', tx)).toEqual(['OK']);
    expect(store.read(0, '/t/k')).toBe('v');
  });

  it("TRANSACTION_END outside a transaction (tx_id 0) is ENOENT; one of a transaction not this connection's is ENOENT", async () => {
    const { connect } = await serve();
    const c = await connect();
    expect(await c.ask(XsType.TRANSACTION_END, 'T\0')).toBe('ENOENT');
    expect(await c.ask(XsType.TRANSACTION_END, 'F\0')).toBe('ENOENT');
    const other = await connect();
    const tx = Number((await other.ask(XsType.TRANSACTION_START, '\0'))[0]);
    expect(await c.ask(XsType.TRANSACTION_END, 'T\0', tx)).toBe('ENOENT');
    expect(await other.ask(XsType.TRANSACTION_END, 'F\0', tx)).toEqual(['OK']);
  });

  it('a tx_id naming no transaction is ENOENT before any request looks at it (watches ignore it); transactions do not nest: EBUSY', async () => {
    const { connect } = await serve();
    const c = await connect();
    expect(await c.ask(XsType.GET_DOMAIN_PATH, '1\0', 4242)).toBe('ENOENT');
    expect(await c.ask(XsType.TRANSACTION_START, '\0', 4242)).toBe('ENOENT');
    expect(await c.ask(XsType.WATCH, '/w\0tok\0', 4242)).toEqual(['OK']);
    expect(await c.ask(XsType.UNWATCH, '/w\0tok\0', 4242)).toEqual(['OK']);
    const tx = Number((await c.ask(XsType.TRANSACTION_START, '\0'))[0]);
    expect(await c.ask(XsType.TRANSACTION_START, '\0', tx)).toBe('EBUSY');
  });

  it('XS_RESTRICT, removed from Xen, is ENOSYS; XS_CONTROL "restrict" acts as a guest, which may then send no privileged request', async () => {
    const { connect } = await serve();
    const c = await connect();
    expect(await c.ask(XS_RESTRICT_REMOVED, '1\0')).toBe('ENOSYS');
    expect(await c.ask(XsType.CONTROL, 'log\0on\0')).toBe('EINVAL');
    expect(await c.ask(XsType.CONTROL, 'restrict\x000\0')).toBe('EINVAL');
    expect(await c.ask(XsType.CONTROL, 'restrict\0x\0')).toBe('EINVAL');
    expect(await c.ask(XsType.CONTROL, 'restrict\x001\0')).toEqual(['OK']);
    expect(await c.ask(XsType.READ, 'name\0')).toEqual(['g1']);
    expect(await c.ask(XsType.WRITE, 'name\0evil')).toBe('EACCES');
    for (const [type, payload] of [
      [XsType.CONTROL, 'restrict\x002\0'],
      [XsType.IS_DOMAIN_INTRODUCED, '0\0'],
      [XsType.INTRODUCE, '5\x001\x002\0'],
      [XsType.RELEASE, '5\0'],
      [XsType.SET_TARGET, '5\x006\0'],
    ] as const)
      expect(await c.ask(type, payload)).toBe('EACCES');
  });

  it('IS_DOMAIN_INTRODUCED: dom0 and DOMID_SELF are, a guest while introduced, a bad domid is EINVAL', async () => {
    const { store, connect } = await serve();
    const c = await connect();
    expect(await c.ask(XsType.IS_DOMAIN_INTRODUCED, '0\0')).toEqual(['T']);
    expect(await c.ask(XsType.IS_DOMAIN_INTRODUCED, `${DOMID_SELF}\0`)).toEqual(['T']);
    // /local/domain/1 is there, but domain 1 was never introduced.
    expect(await c.ask(XsType.IS_DOMAIN_INTRODUCED, '1\0')).toEqual(['F']);
    store.introduceDomain(1);
    expect(await c.ask(XsType.IS_DOMAIN_INTRODUCED, '1\0')).toEqual(['T']);
    store.releaseDomain(1);
    expect(await c.ask(XsType.IS_DOMAIN_INTRODUCED, '1\0')).toEqual(['F']);
    for (const bad of ['x\0', '65536\0', '-1\0', '1\0\0', '0x1\0']) expect(await c.ask(XsType.IS_DOMAIN_INTRODUCED, bad)).toBe('EINVAL');
    expect(await c.ask(XsType.GET_DOMAIN_PATH, '+7\0')).toEqual(['/local/domain/7']);
    expect(await c.ask(XsType.GET_DOMAIN_PATH, '7x\0')).toBe('EINVAL');
  });

  it("DIRECTORY_PART hands out the node's generation, which changes with its children, and parts at byte offsets", async () => {
    const { store, connect } = await serve();
    const c = await connect();
    for (const k of ['aa', 'b', 'cccc']) store.write(0, `/d/${k}`, '');
    const first = (await c.ask(XsType.DIRECTORY_PART, '/d\0' + '0\0')) as string[];
    const gen = first[0];
    expect(gen).toBe(String(store.listing(0, '/d').generation));
    expect(gen).not.toBe('0');
    expect(first.slice(1)).toEqual(['aa', 'b', 'cccc', '']);
    // Offsets count bytes of "aa\0b\0cccc\0": 3 is where "b" starts.
    expect(await c.ask(XsType.DIRECTORY_PART, '/d\x003\0')).toEqual([gen, 'b', 'cccc', '']);
    expect(await c.ask(XsType.DIRECTORY_PART, '/d\x0010\0')).toEqual([gen, '']);
    expect(await c.ask(XsType.DIRECTORY_PART, '/d\0')).toBe('EINVAL');
    store.write(0, '/d/e', '');
    const again = (await c.ask(XsType.DIRECTORY_PART, '/d\x000\0')) as string[];
    expect(again[0]).not.toBe(gen);
  });

  it('reading @releaseDomain is EINVAL', async () => {
    const { connect } = await serve();
    const c = await connect();
    expect(await c.ask(XsType.READ, '@releaseDomain\0')).toBe('EINVAL');
    expect(await c.ask(XsType.GET_PERMS, '@releaseDomain\0')).toEqual(['n0', 'r32757']);
  });

  it('xenstore-list reads a directory too long for one reply through DIRECTORY_PART', needs('xenstore-list'), async () => {
    const { store, path } = await serve();
    // 300 children of 20 characters: 6300 bytes, more than a 4096-byte reply holds.
    const names = Array.from({ length: 300 }, (_, i) => `child-${String(i).padStart(14, '0')}`);
    for (const n of names) store.write(0, `/big/${n}`, '');
    const { stdout } = await promisify(execFile)('xenstore-list', ['/big'], { env: { ...process.env, XENSTORED_PATH: path }, timeout: 10_000 });
    expect(stdout.split('\n').filter(Boolean)).toEqual(names);
  });
});
