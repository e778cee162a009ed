/**
 * xenstored for one host, served where the toolstack runs (the main thread,
 * or in process in a deterministic run). It listens on the host's service
 * address; every request is answered to the domain the bus says sent it (a
 * domain is identified by its connection, never by what it claims, so a guest
 * cannot act as dom0). A sender the toolstack never introduced is ignored.
 */
import { ANY, CH, type Addr, type Bus, type Envelope } from '../bus/bus.ts';
import { decodeXs, encodeXs, type XsMessage, type XsRequest } from './protocol.ts';
import { Store, XenstoreError, type PermEntry, type WatchFn } from './store.ts';

export interface XenstoreServerStats {
  requests: number;
  /** Requests from a bus address no domain of this host was introduced as. */
  fromStrangers: number;
  /** Requests that were not xenstore messages at all. */
  garbage: number;
}

export class XenstoreServer {
  readonly store = new Store();
  /** bus address (uid) → domid, for every domain introduced. */
  private readonly domids = new Map<Addr, number>();
  readonly stats: XenstoreServerStats = { requests: 0, fromStrangers: 0, garbage: 0 };

  constructor(
    private readonly bus: Bus,
    readonly addr: Addr,
  ) {
    const inbox = bus.register(addr, CH.xenstore, ANY);
    inbox.immediate = true;
    inbox.onArrive = (e) => this.serve(e);
  }

  /** XS_INTRODUCE: domain `domid` speaks from bus address `uid`. */
  introduce(uid: Addr, domid: number): void {
    this.domids.set(uid, domid);
    this.store.introduceDomain(domid);
  }

  /** The domain is gone: drop its watches and transactions, tell @releaseDomain watchers. */
  release(uid: Addr): void {
    const domid = this.domids.get(uid);
    this.domids.delete(uid);
    if (domid !== undefined) this.store.releaseDomain(domid);
  }

  private send(to: Addr, m: XsMessage): void {
    this.bus.send({ to, from: this.addr, ch: CH.xenstore, b: encodeXs(m) });
  }

  private serve(e: Envelope): void {
    const d = this.domids.get(e.from);
    if (d === undefined) {
      this.stats.fromStrangers++;
      return;
    }
    let req: XsRequest;
    try {
      const m = decodeXs(e.b);
      if (m.kind !== 'req') return;
      req = m;
    } catch {
      this.stats.garbage++;
      return; // garbage from a guest is ignored, never fatal to xenstored
    }
    this.stats.requests++;
    const s = this.store;
    const path = String(req.path ?? '');
    const to = e.from;
    try {
      let value: string | string[] | number | boolean | PermEntry[] | undefined;
      switch (req.op) {
        case 'read':
          value = s.read(d, path, req.tx);
          break;
        case 'write':
          s.write(d, path, String(req.value ?? ''), req.tx);
          break;
        case 'mkdir':
          s.mkdir(d, path, req.tx);
          break;
        case 'rm':
          s.rm(d, path, req.tx);
          break;
        case 'directory':
          value = s.directory(d, path, req.tx);
          break;
        case 'get_perms':
          value = s.getPerms(d, path, req.tx);
          break;
        case 'set_perms':
          s.setPerms(d, path, req.perms ?? [], req.tx);
          break;
        case 'transaction_start':
          value = s.transactionStart(d);
          break;
        case 'transaction_end':
          value = s.transactionEnd(d, Number(req.tx), req.commit !== false);
          break;
        case 'watch': {
          const token = String(req.token ?? '');
          s.watch(d, path, token, (p, t) => this.send(to, { kind: 'watch', path: p, token: t }));
          break;
        }
        case 'unwatch':
          s.unwatch(d, path, String(req.token ?? ''));
          break;
        default:
          throw new XenstoreError('EINVAL', `unknown operation ${String(req.op)}`);
      }
      this.send(to, { kind: 'rsp', id: req.id, ok: true, value });
    } catch (err) {
      const xe = err instanceof XenstoreError ? err : new XenstoreError('EINVAL', err instanceof Error ? err.message : String(err));
      this.send(to, { kind: 'rsp', id: req.id, ok: false, errno: xe.errno, message: xe.message });
    }
  }

  // The toolstack's own access, as dom0, without a round trip.
  read(domid: number, path: string): string | undefined {
    try {
      return this.store.read(domid, path);
    } catch (e) {
      if (e instanceof XenstoreError && e.errno === 'ENOENT') return undefined;
      throw e;
    }
  }
  /** Children of `path`, or undefined if it does not exist. */
  directory(domid: number, path: string): string[] | undefined {
    try {
      return this.store.directory(domid, path);
    } catch (e) {
      if (e instanceof XenstoreError && e.errno === 'ENOENT') return undefined;
      throw e;
    }
  }
  write(domid: number, path: string, value: string): void {
    this.store.write(domid, path, value);
  }
  mkdir(domid: number, path: string): void {
    this.store.mkdir(domid, path);
  }
  rm(domid: number, path: string): void {
    this.store.rm(domid, path);
  }
  setPerms(domid: number, path: string, perms: PermEntry[]): void {
    this.store.setPerms(domid, path, perms);
  }
  watch(path: string, token: string, fire: WatchFn): void {
    this.store.watch(0, path, token, fire);
  }
  unwatch(path: string, token: string): void {
    this.store.unwatch(0, path, token);
  }

  /** Nodes, watches and open transactions in the store. */
  usage(): { nodes: number; watches: number; transactions: number } {
    return this.store.usage();
  }

  close(): void {
    this.bus.unregister(this.addr, CH.xenstore, ANY);
  }
}
