/**
 * Each host's xenstore served over Xen's own wire protocol (xs_wire.h) on a
 * Unix socket, so the real tools work against a running simulation:
 *
 *   XENSTORED_PATH=/tmp/xsim.sock.xs/host-a xenstore-ls /local/domain
 *
 * A socket connection is dom0's, as with xenstored (privileged: permissions
 * do not stop it). XS_CONTROL "restrict" DOMID (this simulation's own control
 * command: cxenstored removed XS_RESTRICT, which answers ENOSYS here as
 * there) makes it act as that domain from then on, every permission enforced
 * as for the guest itself, by the store as xenstored enforces them (its
 * watches hear only of nodes that domain may read; it may not give a node
 * away: EPERM; privileged requests are EACCES). Writes through the socket
 * are writes to the simulation's store: a vif's state written from outside
 * reaches netback's and netfront's watches like any other.
 *
 * Requests are checked in cxenstored's order (process_message): an unknown
 * type is ENOSYS, a privileged one from a guest EACCES, a tx_id that names
 * no transaction of this connection ENOENT (watches ignore it), then the
 * request itself.
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

/** xen.h's DOMID_FIRST_RESERVED: domids from here on name no guest. */
const DOMID_FIRST_RESERVED = 0x7ff0;

/** Requests cxenstored serves only to a privileged connection (XS_FLAG_PRIV). */
const PRIVILEGED: ReadonlySet<number> = new Set([
  XsType.CONTROL,
  XsType.INTRODUCE,
  XsType.RELEASE,
  XsType.IS_DOMAIN_INTRODUCED,
  XsType.RESUME,
  XsType.SET_TARGET,
]);
/** Requests that ignore the header's tx_id (XS_FLAG_NOTID). */
const NO_TX: ReadonlySet<number> = new Set([XsType.WATCH, XsType.UNWATCH]);

/** cxenstored's onearg: the payload is one string and its nul, nothing after. */
function oneArg(m: XsWireMessage): string {
  const nul = m.payload.indexOf(0);
  if (nul < 0 || nul !== m.payload.length - 1) throw new XsWireError('EINVAL', 'expected one nul-terminated argument');
  return m.payload.toString('utf8', 0, nul);
}

/** cxenstored's parse_domid: strtoul in base 10, the whole string used, at most 65535 ("" is 0, as strtoul reads it). */
function parseDomid(s: string): number {
  const m = /^[\t\n\v\f\r ]*([+-]?)(\d+)$/.exec(s);
  if (s !== '' && !m) throw new XsWireError('EINVAL', `domid "${s}"`);
  const n = m ? Number(m[2]) : 0;
  // A minus sign wraps to a huge unsigned long (only -0 stays 0).
  if (n > 65535 || (m?.[1] === '-' && n !== 0)) throw new XsWireError('EINVAL', `domid "${s}"`);
  return n;
}

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

  /** The request's transaction (checked before any handler runs: see answer). */
  private tx(m: XsWireMessage): number | undefined {
    return m.txId === 0 ? undefined : m.txId;
  }

  /**
   * The xs_wire message types this socket serves (xs_wire.h's XS_*), each
   * with its handler: the payload's nul-separated strings in, the reply's
   * payload out; an XsWireError becomes an XS_ERROR reply.
   */
  private readonly handlers: Partial<Record<number, (m: XsWireMessage, args: string[]) => string>> = {
    [XsType.READ]: (m) => this.store.read(this.domid, this.abs(oneArg(m)), this.tx(m)),
    [XsType.DIRECTORY]: (m) => {
      const out = nulTerminated(this.store.directory(this.domid, this.abs(oneArg(m)), this.tx(m)));
      if (Buffer.byteLength(out) > XENSTORE_PAYLOAD_MAX) throw new XsWireError('E2BIG', 'directory too large: use XS_DIRECTORY_PART');
      return out;
    },
    [XsType.DIRECTORY_PART]: (m, args) => {
      // "path\0offset\0" in; "generation\0" and the children from byte `offset` of the
      // nul-separated list while they fit, an empty string after the last (send_directory_part).
      if (m.payload.filter((b) => b === 0).length !== 2) throw new XsWireError('EINVAL', 'expected a path and an offset');
      const { children, generation } = this.store.listing(this.domid, this.abs(args[0]), this.tx(m));
      const list = nulTerminated(children);
      const gen = `${generation}\0`;
      // atoi: leading digits (with a sign), else 0; a negative one reads as a huge unsigned offset.
      const lead = /^\s*([+-]?\d+)/.exec(args[1] ?? '');
      const at = lead ? Number(lead[1]) : 0;
      const off = at < 0 ? Infinity : at;
      if (off >= list.length) return `${gen}\0`;
      const maxlen = XENSTORE_PAYLOAD_MAX - gen.length - 1;
      let len = 0;
      while (off + len < list.length) {
        const child = list.indexOf('\0', off + len) - (off + len);
        if (len + child >= maxlen) break;
        len += child + 1;
      }
      return gen + list.slice(off, off + len) + (off + len === list.length ? '\0' : '');
    },
    [XsType.WRITE]: (m) => {
      // "path\0value": the value is the rest of the payload, not nul-terminated.
      const raw = m.payload.toString('utf8');
      const nul = raw.indexOf('\0');
      if (nul < 0) throw new XsWireError('EINVAL', 'write without a value');
      this.store.write(this.domid, this.abs(raw.slice(0, nul)), raw.slice(nul + 1), this.tx(m));
      return 'OK\0';
    },
    [XsType.MKDIR]: (m) => {
      this.store.mkdir(this.domid, this.abs(oneArg(m)), this.tx(m));
      return 'OK\0';
    },
    [XsType.RM]: (m) => {
      this.store.rm(this.domid, this.abs(oneArg(m)), this.tx(m));
      return 'OK\0';
    },
    [XsType.GET_PERMS]: (m) => nulTerminated(this.store.getPerms(this.domid, this.abs(oneArg(m)), this.tx(m)).map((p) => `${p.perm}${p.domid}`)),
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
    [XsType.TRANSACTION_START]: (m) => {
      if (this.tx(m) !== undefined) throw new XsWireError('EBUSY', 'transactions do not nest');
      const id = this.store.transactionStart(this.domid);
      this.txs.add(id);
      return `${id}\0`;
    },
    [XsType.TRANSACTION_END]: (m) => {
      // The argument first: a bad one leaves the transaction open (do_transaction_end).
      const arg = oneArg(m);
      if (arg !== 'T' && arg !== 'F') throw new XsWireError('EINVAL', `transaction end "${arg}" (T or F)`);
      const id = this.tx(m);
      if (id === undefined) throw new XsWireError('ENOENT', 'no transaction to end');
      this.txs.delete(id);
      if (!this.store.transactionEnd(this.domid, id, arg === 'T')) throw new XsWireError('EAGAIN', 'transaction conflict');
      return 'OK\0';
    },
    [XsType.GET_DOMAIN_PATH]: (m) => `${domainPath(parseDomid(oneArg(m)))}\0`,
    [XsType.IS_DOMAIN_INTRODUCED]: (m) => `${this.store.isIntroduced(parseDomid(oneArg(m))) ? 'T' : 'F'}\0`,
    [XsType.CONTROL]: (_m, args) => {
      // cxenstored's control commands are its own (log, quota, live-update...): here only this simulation's.
      if (args[0] !== 'restrict') throw new XsWireError('EINVAL', `control command "${args[0] ?? ''}" (this socket knows "restrict DOMID")`);
      // Act as a domain from now on; then unprivileged, the connection may not come back (CONTROL is EACCES).
      const n = parseDomid(args[1] ?? 'none');
      if (n === 0 || n >= DOMID_FIRST_RESERVED) throw new XsWireError('EINVAL', `domid "${args[1]}" (a guest's: 1 to ${DOMID_FIRST_RESERVED - 1})`);
      this.dropWatches();
      this.endTransactions();
      this.domid = n;
      return 'OK\0';
    },
  };

  private answer(m: XsWireMessage): string {
    const handler = this.handlers[m.type];
    // A type xenstored does not serve is ENOSYS: an unknown one, a reply's, or XS_RESTRICT's (20, removed from Xen).
    const known = typeName(m.type) !== `type ${m.type}` && m.type !== XsType.WATCH_EVENT && m.type !== XsType.ERROR;
    if (!known) throw new XsWireError('ENOSYS', `${typeName(m.type)} is not a request xenstored serves`);
    if (PRIVILEGED.has(m.type) && this.domid !== 0) throw new XsWireError('EACCES', `${typeName(m.type)} is for a privileged connection`);
    if (!NO_TX.has(m.type) && m.txId !== 0 && !this.txs.has(m.txId)) throw new XsWireError('ENOENT', `no transaction ${m.txId} on this connection`);
    // Introduce/release/resume/set-target belong to the toolstack that runs the domains (this simulation).
    if (!handler) throw new XsWireError('ENOSYS', `${typeName(m.type)} is not served on this socket`);
    return handler(m, payloadStrings(m.payload));
  }

  private endTransactions(): void {
    for (const id of this.txs) {
      try {
        this.store.transactionEnd(this.domid, id, false);
      } catch {
        // Already ended.
      }
    }
    this.txs.clear();
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
    this.endTransactions();
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
