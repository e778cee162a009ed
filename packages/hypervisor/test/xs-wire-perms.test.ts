/**
 * Xenstore permissions over the xs_wire socket (issue 20, item 10): a
 * connection restricted to a guest (XS_CONTROL restrict) gets no watch event for a
 * node it cannot read, cannot give its node to another domain (EPERM), and
 * cannot tell a missing node from a hidden one where it may not look. The
 * socket is served from a bare store, no simulation running.
 */
import { mkdtempSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Store, XsType, XsWireDecoder, encodeXsWire, payloadStrings, type XsWireMessage } from '../src/index.ts';
import { serveXenstores, type XenstoreSockets } from '@xsim/toolstack';

class Client {
  private readonly decoder = new XsWireDecoder();
  private readonly inbox: XsWireMessage[] = [];
  private wake: (() => void) | null = null;
  private reqId = 1;
  readonly events: string[] = [];

  private constructor(readonly sock: Socket) {
    sock.on('data', (b) => {
      for (const m of this.decoder.push(b)) {
        if (m.type === XsType.WATCH_EVENT) this.events.push(payloadStrings(m.payload)[0]);
        else this.inbox.push(m);
      }
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

async function serve(): Promise<{ store: Store; connect: (domid: number) => Promise<Client> }> {
  const store = new Store();
  for (const d of [1, 2]) {
    store.mkdir(0, `/local/domain/${d}`);
    store.setPerms(0, `/local/domain/${d}`, [{ domid: d, perm: 'n' }]);
    store.write(0, `/local/domain/${d}/name`, `g${d}`);
  }
  sockets = await serveXenstores([{ spec: { name: 'h' }, xenstore: { store } }], join(mkdtempSync(join(tmpdir(), 'xsim-xs-perms-')), 'xs'));
  const path = sockets.paths.h;
  return {
    store,
    connect: async (domid) => {
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

describe('the xs_wire socket enforces xenstored permissions on a restricted connection (issue 20, item 10)', () => {
  it("a guest watching / gets no event for another domain's private node, and gets one for its own", async () => {
    const { store, connect } = await serve();
    const g2 = await connect(2);
    expect(await g2.ask(XsType.WATCH, '/\0all\0')).toEqual(['OK']);
    store.write(1, '/local/domain/1/data/private-xyz', 'secret');
    store.setPerms(1, '/local/domain/1/data/private-xyz', [{ domid: 1, perm: 'n' }]);
    store.rm(1, '/local/domain/1/data');
    // Its own node last: events go out in order, so once this one is in, any earlier one would be too.
    store.write(2, '/local/domain/2/data/mine', 'x');
    for (let i = 0; i < 50 && !g2.events.includes('/local/domain/2/data/mine'); i++) await g2.ask(XsType.READ, 'name\0');
    expect(g2.events).toEqual(['/', '/local/domain/2/data/mine']);
    expect(await g2.ask(XsType.READ, '/local/domain/1/name\0')).toBe('EACCES');
  });

  it('a guest may not give its own node to another domain: XS_ERROR EPERM', async () => {
    const { connect } = await serve();
    const g1 = await connect(1);
    expect(await g1.ask(XsType.WRITE, 'data\0d')).toEqual(['OK']);
    expect(await g1.ask(XsType.SET_PERMS, 'data\0n2\0')).toBe('EPERM');
    expect(await g1.ask(XsType.GET_PERMS, 'data\0')).toEqual(['n1']);
    expect(await g1.ask(XsType.SET_PERMS, 'data\0n1\0r2\0')).toEqual(['OK']);
  });

  it('a guest cannot tell a missing node from a hidden one under another domain: EACCES for both', async () => {
    const { connect } = await serve();
    const g2 = await connect(2);
    for (const p of ['/local/domain/1/name', '/local/domain/1/absent']) {
      expect(await g2.ask(XsType.READ, `${p}\0`)).toBe('EACCES');
      expect(await g2.ask(XsType.GET_PERMS, `${p}\0`)).toBe('EACCES');
    }
    expect(await g2.ask(XsType.READ, 'absent\0')).toBe('ENOENT');
  });

  it('get_perms inside a transaction sees the transaction', async () => {
    const { connect } = await serve();
    const g1 = await connect(1);
    const tx = Number((await g1.ask(XsType.TRANSACTION_START, '\0'))[0]);
    expect(await g1.ask(XsType.WRITE, 'made\0v', tx)).toEqual(['OK']);
    expect(await g1.ask(XsType.SET_PERMS, 'made\0n1\0r2\0', tx)).toEqual(['OK']);
    expect(await g1.ask(XsType.GET_PERMS, 'made\0', tx)).toEqual(['n1', 'r2']);
    expect(await g1.ask(XsType.TRANSACTION_END, 'T\0', tx)).toEqual(['OK']);
    expect(await g1.ask(XsType.GET_PERMS, 'made\0')).toEqual(['n1', 'r2']);
  });
});
