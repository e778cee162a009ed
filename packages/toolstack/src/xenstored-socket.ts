/**
 * Each host's xenstore served over Xen's own wire protocol (xs_wire.h) on a
 * Unix socket, so the real tools work against a running simulation:
 *
 *   XENSTORED_PATH=/tmp/xsim.sock.xs/host-a xenstore-ls /local/domain
 *
 * A socket connection is dom0's, as with xenstored (privileged: permissions
 * do not stop it); XS_RESTRICT(domid) makes it act as that domain from then
 * on, every permission enforced as for the guest itself, by the store as
 * xenstored enforces them (its watches hear only of nodes that domain may
 * read; it may not give a node away: EPERM). Writes through the
 * socket are writes to the simulation's store: a vif's state written from
 * outside reaches netback's and netfront's watches like any other.
 */
import { existsSync, lstatSync, mkdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  logWarn,
  XENSTORE_PAYLOAD_MAX,
  XSD_ERRORS,
  XenstoreError,
  XsType,
  XsWireDecoder,
  LOCAL_DOMAIN,
  domainPath,
  encodeXsWire,
  nulTerminated,
  payloadStrings,
  typeName,
  type Perm,
  type PermEntry,
  type Store,
  type XsWireMessage,
  type XsdError,
} from '@xsim/hypervisor';
import { claimSocketPath } from './control-socket.ts';

class XsWireError extends Error {
  constructor(
    readonly errno: XsdError,
    message: string,
  ) {
    super(message);
  }
}

let nextConn = 1;

/** One client of the socket: the domain it acts as, its watches and transactions. */
class XsConnection {
  private domid = 0;
  private readonly id = nextConn++;
  private readonly decoder = new XsWireDecoder();
  private readonly watches: { path: string; token: string; key: string }[] = [];
  private readonly txs = new Set<number>();
  /** Events raised while a request is being answered go out after its answer (xenstored's order). */
  private held: Buffer[] | null = null;

  constructor(
    private readonly store: Store,
    private readonly sock: Socket,
    private readonly log: (l: string) => void,
  ) {
    sock.on('data', (chunk) => this.data(chunk));
    sock.on('close', () => this.closed());
    sock.on('error', () => {});
  }

  private data(chunk: Buffer): void {
    for (const m of this.decoder.push(chunk)) this.serve(m);
    if (this.decoder.error) {
      this.log(logWarn(`xenstore socket: closing a client that sent a ${this.decoder.error}`));
      this.sock.destroy();
    }
  }

  private send(type: number, reqId: number, txId: number, payload: string): void {
    const b = encodeXsWire({ type, reqId, txId, payload });
    if (this.held) this.held.push(b);
    else this.sock.write(b);
  }

  private serve(m: XsWireMessage): void {
    this.held = [];
    const events = this.held;
    try {
      const value = this.answer(m);
      this.held = null;
      this.send(m.type, m.reqId, m.txId, value);
    } catch (e) {
      this.held = null;
      const errno: XsdError =
        e instanceof XenstoreError || e instanceof XsWireError ? (XSD_ERRORS.includes(e.errno as XsdError) ? (e.errno as XsdError) : 'EINVAL') : 'EINVAL';
      this.send(XsType.ERROR, m.reqId, m.txId, `${errno}\0`);
    }
    for (const b of events) this.sock.write(b);
  }

  /** A path as the connection's domain names it: relative ones are under its /local/domain/N. */
  private abs(path: string | undefined): string {
    if (path === undefined || path === '') throw new XsWireError('EINVAL', 'no path');
    return path.startsWith('/') || path.startsWith('@') ? path : `${domainPath(this.domid)}/${path}`;
  }

  private rel(path: string, asGiven: string): string {
    if (asGiven.startsWith('/') || asGiven.startsWith('@')) return path;
    const base = `${domainPath(this.domid)}/`;
    return path.startsWith(base) ? path.slice(base.length) : path;
  }

  private tx(m: XsWireMessage): number | undefined {
    if (m.txId === 0) return undefined;
    if (!this.txs.has(m.txId)) throw new XsWireError('ENOENT', `no transaction ${m.txId} on this connection`);
    return m.txId;
  }

  /**
   * The xs_wire message types this socket serves (xs_wire.h's XS_*), each
   * with its handler: the payload's nul-separated strings in, the reply's
   * payload out; an XsWireError becomes an XS_ERROR reply.
   */
  private readonly handlers: Partial<Record<number, (m: XsWireMessage, args: string[]) => string>> = {
    [XsType.READ]: (m, args) => this.store.read(this.domid, this.abs(args[0]), this.tx(m)),
    [XsType.DIRECTORY]: (m, args) => {
      const out = nulTerminated(this.store.directory(this.domid, this.abs(args[0]), this.tx(m)));
      if (Buffer.byteLength(out) > XENSTORE_PAYLOAD_MAX) throw new XsWireError('E2BIG', 'directory too large: use XS_DIRECTORY_PART');
      return out;
    },
    [XsType.DIRECTORY_PART]: (m, args) => {
      // "gen\0child\0...": children from `offset` while they fit; an empty string ends the list.
      const all = this.store.directory(this.domid, this.abs(args[0]), this.tx(m));
      const offset = Number(args[1] ?? 0);
      let out = '0\0';
      let i = Number.isInteger(offset) && offset >= 0 ? offset : 0;
      for (; i < all.length; i++) {
        const next = `${all[i]}\0`;
        if (Buffer.byteLength(out + next) + 1 > XENSTORE_PAYLOAD_MAX) break;
        out += next;
      }
      return i >= all.length ? out + '\0' : out;
    },
    [XsType.WRITE]: (m) => {
      // "path\0value": the value is the rest of the payload, not nul-terminated.
      const raw = m.payload.toString('utf8');
      const nul = raw.indexOf('\0');
      if (nul < 0) throw new XsWireError('EINVAL', 'write without a value');
      this.store.write(this.domid, this.abs(raw.slice(0, nul)), raw.slice(nul + 1), this.tx(m));
      return 'OK\0';
    },
    [XsType.MKDIR]: (m, args) => {
      this.store.mkdir(this.domid, this.abs(args[0]), this.tx(m));
      return 'OK\0';
    },
    [XsType.RM]: (m, args) => {
      this.store.rm(this.domid, this.abs(args[0]), this.tx(m));
      return 'OK\0';
    },
    [XsType.GET_PERMS]: (m, args) => nulTerminated(this.store.getPerms(this.domid, this.abs(args[0]), this.tx(m)).map((p) => `${p.perm}${p.domid}`)),
    [XsType.SET_PERMS]: (m, args) => {
      const perms: PermEntry[] = args.slice(1).map((x) => {
        const mm = /^([nrwb])(\d+)$/.exec(x);
        if (!mm) throw new XsWireError('EINVAL', `permission "${x}" is not [nrwb]DOMID`);
        return { perm: mm[1] as Perm, domid: Number(mm[2]) };
      });
      this.store.setPerms(this.domid, this.abs(args[0]), perms, this.tx(m));
      return 'OK\0';
    },
    [XsType.WATCH]: (_m, args) => {
      const [given, token] = args;
      if (token === undefined) throw new XsWireError('EINVAL', 'watch without a token');
      const path = this.abs(given);
      // The store knows watches by (domain, path, token): make ours unique to this connection.
      const key = `xs-wire-${this.id}:${token}`;
      if (this.watches.some((w) => w.path === path && w.token === token)) throw new XsWireError('EEXIST', 'watch exists');
      this.watches.push({ path, token, key });
      this.store.watch(this.domid, path, key, (p) => this.send(XsType.WATCH_EVENT, 0, 0, nulTerminated([this.rel(p, given), token])));
      return 'OK\0';
    },
    [XsType.UNWATCH]: (_m, args) => {
      const path = this.abs(args[0]);
      const i = this.watches.findIndex((w) => w.path === path && w.token === args[1]);
      if (i < 0) throw new XsWireError('ENOENT', 'no such watch');
      const [w] = this.watches.splice(i, 1);
      this.store.unwatch(this.domid, w.path, w.key);
      return 'OK\0';
    },
    [XsType.RESET_WATCHES]: (_m) => {
      this.dropWatches();
      return 'OK\0';
    },
    [XsType.TRANSACTION_START]: (_m) => {
      const id = this.store.transactionStart(this.domid);
      this.txs.add(id);
      return `${id}\0`;
    },
    [XsType.TRANSACTION_END]: (m, args) => {
      const id = this.tx(m);
      if (id === undefined) throw new XsWireError('EINVAL', 'transaction end outside a transaction');
      this.txs.delete(id);
      if (!this.store.transactionEnd(this.domid, id, args[0] === 'T')) throw new XsWireError('EAGAIN', 'transaction conflict');
      return 'OK\0';
    },
    [XsType.GET_DOMAIN_PATH]: (_m, args) => {
      const n = Number(args[0]);
      if (!Number.isInteger(n) || n < 0) throw new XsWireError('EINVAL', `domid "${args[0]}"`);
      return `${domainPath(n)}\0`;
    },
    [XsType.IS_DOMAIN_INTRODUCED]: (_m, args) => {
      const n = Number(args[0]);
      return `${Number.isInteger(n) && this.store.directory(0, LOCAL_DOMAIN).includes(String(n)) ? 'T' : 'F'}\0`;
    },
    [XsType.RESTRICT]: (_m, args) => {
      // Act as a domain from now on: only dom0 may, and a restricted connection stays restricted.
      const n = Number(args[0]);
      if (this.domid !== 0) throw new XsWireError('EACCES', 'only a privileged connection may restrict itself');
      if (!Number.isInteger(n) || n <= 0 || n > 0x7fef) throw new XsWireError('EINVAL', `domid "${args[0]}"`);
      this.dropWatches();
      this.domid = n;
      return 'OK\0';
    },
  };

  private answer(m: XsWireMessage): string {
    const handler = this.handlers[m.type];
    // Introduce/release/resume/set-target belong to the toolstack that runs the domains (this simulation).
    if (!handler) throw new XsWireError('ENOSYS', `${typeName(m.type)} is not served on this socket`);
    return handler(m, payloadStrings(m.payload));
  }

  private dropWatches(): void {
    for (const w of this.watches.splice(0)) {
      try {
        this.store.unwatch(this.domid, w.path, w.key);
      } catch {
        // Already gone with the domain.
      }
    }
  }

  private closed(): void {
    this.dropWatches();
    for (const id of this.txs) {
      try {
        this.store.transactionEnd(this.domid, id, false);
      } catch {
        // Already ended.
      }
    }
    this.txs.clear();
  }
}

export interface XenstoreSockets {
  /** Socket path per host name. */
  paths: Record<string, string>;
  close(): Promise<void>;
}

/** What the socket serves of a host: its name and its xenstore (a HostResources has both). */
export interface XenstoreHost {
  spec: { name: string };
  xenstore: { store: Store };
}

/** Serve every host's xenstore at DIR/<host>. DIR is made if missing; a socket left over in it is replaced. */
export async function serveXenstores(hosts: readonly XenstoreHost[], dir: string, log: (l: string) => void = () => {}): Promise<XenstoreSockets> {
  const made = !existsSync(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const servers: Server[] = [];
  const conns = new Set<Socket>();
  const paths: Record<string, string> = {};
  for (const h of hosts) {
    const path = join(dir, h.spec.name);
    await claimSocketPath(path, 'choose another directory');
    const server = createServer((sock) => {
      conns.add(sock);
      sock.on('close', () => conns.delete(sock));
      new XsConnection(h.xenstore.store, sock, log);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    servers.push(server);
    paths[h.spec.name] = path;
  }
  return {
    paths,
    close: async () => {
      for (const c of conns) c.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      // Ours, and closed: a socket file left behind would only confuse the next run.
      for (const p of Object.values(paths)) if (existsSync(p) && lstatSync(p).isSocket()) unlinkSync(p);
      // The directory too, if we made it and nothing else was put in it meanwhile.
      if (made) rmEmptyDir(dir);
    },
  };
}

function rmEmptyDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Not empty (someone put something there) or already gone: leave it.
  }
}
