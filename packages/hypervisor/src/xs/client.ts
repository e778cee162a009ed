/**
 * A domain's xenstore connection (xenbus in the guest kernel). Calls are
 * synchronous, as in a kernel: post the request and wait (pumping the bus,
 * sleeping on the pCPU's doorbell) until the reply arrives; in process,
 * xenstored answers at once. Watch events that arrive meanwhile are queued,
 * never run re-entrantly; the domain runs them from pump().
 */
import { CH, type Addr, type Bus, type Inbox } from '../bus/bus.ts';
import type { SyncWait } from '../rpc.ts';
import { decodeXs, encodeXs, type XsOp, type XsRequest, type XsResponse } from './protocol.ts';
import { XenstoreError, type PermEntry } from './store.ts';

export type WatchCallback = (path: string, token: string) => void;

export class XenstoreClient {
  readonly #bus: Bus;
  readonly #inbox: Inbox;
  private nextId = 1;
  private readonly replies = new Map<number, XsResponse>();
  private readonly events: { path: string; token: string }[] = [];
  private readonly callbacks = new Map<string, WatchCallback>();

  constructor(
    bus: Bus,
    private readonly self: Addr,
    private readonly server: Addr,
    private readonly wait: SyncWait | null,
    private readonly timeoutMs = 10_000,
  ) {
    this.#bus = bus;
    this.#inbox = bus.register(self, CH.xenstore, server);
  }

  /** Called when something arrives for this connection (the domain's core marks itself runnable). */
  set onArrive(f: (() => void) | null) {
    this.#inbox.onArrive = f ? () => f() : null;
  }

  get queued(): number {
    return this.#inbox.size + this.events.length;
  }

  private drain(): void {
    for (;;) {
      const e = this.#inbox.take();
      if (!e) return;
      let msg;
      try {
        msg = decodeXs(e.b);
      } catch {
        continue;
      }
      if (msg.kind === 'rsp') this.replies.set(msg.id, msg);
      else if (msg.kind === 'watch') this.events.push({ path: msg.path, token: msg.token });
    }
  }

  private call(op: XsOp, fields: Omit<XsRequest, 'kind' | 'id' | 'op'>): XsResponse & { ok: true } {
    const id = this.nextId++;
    this.#bus.send({ to: this.server, from: this.self, ch: CH.xenstore, b: encodeXs({ kind: 'req', id, op, ...fields }) });
    const w = this.wait;
    const deadline = (w?.now() ?? 0) + this.timeoutMs;
    for (;;) {
      const seen = w?.snapshot() ?? 0;
      w?.pump();
      this.drain();
      const r = this.replies.get(id);
      if (r) {
        this.replies.delete(id);
        if (!r.ok) throw new XenstoreError(r.errno, r.message);
        return r;
      }
      if (!w) throw new Error(`xenstore ${op} ${fields.path ?? ''}: xenstored did not answer`);
      const left = deadline - w.now();
      if (left <= 0) throw new Error(`xenstore ${op} ${fields.path ?? ''}: no reply within ${this.timeoutMs} ms`);
      w.sleep(seen, Math.min(left, 100));
    }
  }

  read(path: string, tx?: number): string {
    return String(this.call('read', { path, tx }).value);
  }

  /**
   * The value, or undefined if the node is not there for this domain: missing
   * (ENOENT) or out of its sight (EACCES; xenstored answers that for a missing
   * node under a directory the domain may not read, so to a guest the two are
   * one, as Linux's xenbus_read_driver_state reads any error as Unknown).
   */
  tryRead(path: string, tx?: number): string | undefined {
    try {
      return this.read(path, tx);
    } catch (e) {
      if (e instanceof XenstoreError && (e.errno === 'ENOENT' || e.errno === 'EACCES')) return undefined;
      throw e;
    }
  }

  write(path: string, value: string, tx?: number): void {
    this.call('write', { path, value, tx });
  }

  mkdir(path: string, tx?: number): void {
    this.call('mkdir', { path, tx });
  }

  rm(path: string, tx?: number): void {
    this.call('rm', { path, tx });
  }

  directory(path: string, tx?: number): string[] {
    return this.call('directory', { path, tx }).value as string[];
  }

  getPerms(path: string, tx?: number): PermEntry[] {
    return this.call('get_perms', { path, tx }).value as PermEntry[];
  }

  setPerms(path: string, perms: PermEntry[], tx?: number): void {
    this.call('set_perms', { path, perms, tx });
  }

  transactionStart(): number {
    return this.call('transaction_start', {}).value as number;
  }

  /** False if the transaction conflicted (EAGAIN): the caller retries. */
  transactionEnd(tx: number, commit: boolean): boolean {
    return this.call('transaction_end', { tx, commit }).value as boolean;
  }

  watch(path: string, token: string, cb: WatchCallback): void {
    this.callbacks.set(token, cb);
    this.call('watch', { path, token });
  }

  unwatch(path: string, token: string): void {
    this.call('unwatch', { path, token });
    this.callbacks.delete(token);
  }

  /** Non-blocking: take what arrived and run queued watch callbacks. Returns events handled. */
  pump(): number {
    this.drain();
    let n = 0;
    while (this.events.length > 0) {
      const e = this.events.shift()!;
      n++;
      this.callbacks.get(e.token)?.(e.path, e.token);
    }
    return n;
  }

  close(): void {
    this.#bus.unregister(this.self, CH.xenstore, this.server);
  }
}
