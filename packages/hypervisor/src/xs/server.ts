/**
 * xenstored, served by the main thread. Each domain gets its own connection
 * (a MessagePort) and is always identified by that connection, never by what
 * it claims, so a guest cannot act as dom0. After posting anything to a domain
 * we kick its wake word: its worker may be blocked in Atomics.wait.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { WakeWord } from '../wake.ts';
import { decodeXs, encodeXs, type XsMessage, type XsRequest } from './protocol.ts';
import { Store, XenstoreError, type PermEntry, type WatchFn } from './store.ts';

interface Conn {
  domid: number;
  port: MessagePort;
  wake: WakeWord;
}

export class XenstoreServer {
  readonly store = new Store();
  private readonly conns: Conn[] = [];

  /** A connection for domain `domid`: transfer the returned port to its worker. */
  connect(domid: number, wake: WakeWord): MessagePort {
    const { port1, port2 } = new MessageChannel();
    const conn: Conn = { domid, port: port1, wake };
    this.conns.push(conn);
    port1.on('message', (data: unknown) => this.serve(conn, data));
    return port2;
  }

  private send(conn: Conn, m: XsMessage): void {
    conn.port.postMessage(encodeXs(m));
    conn.wake.kick();
  }

  private serve(conn: Conn, data: unknown): void {
    let req: XsRequest;
    try {
      const m = decodeXs(data);
      if (m.kind !== 'req') return;
      req = m;
    } catch {
      return; // garbage from a guest is ignored, never fatal to xenstored
    }
    const s = this.store;
    const d = conn.domid;
    const path = String(req.path ?? '');
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
          value = s.getPerms(d, path);
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
          s.watch(d, path, token, (p, t) => this.send(conn, { kind: 'watch', path: p, token: t }));
          break;
        }
        case 'unwatch':
          s.unwatch(d, path, String(req.token ?? ''));
          break;
        default:
          throw new XenstoreError('EINVAL', `unknown operation ${String(req.op)}`);
      }
      this.send(conn, { kind: 'rsp', id: req.id, ok: true, value });
    } catch (e) {
      const xe = e instanceof XenstoreError ? e : new XenstoreError('EINVAL', e instanceof Error ? e.message : String(e));
      this.send(conn, { kind: 'rsp', id: req.id, ok: false, errno: xe.errno, message: xe.message });
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

  close(): void {
    for (const c of this.conns) c.port.close();
    this.conns.length = 0;
  }
}
