/**
 * A control-plane channel between two bus endpoints: msgpackr-encoded
 * requests (answered once), responses and one-way events. Used for
 * toolstack→domain control, dom0→NIC MCDI, plugin channels and the pCPU
 * schedulers' management.
 *
 * A domain's worker reads its endpoints with poll() inside its turns; the main
 * thread (and in-process services) listen() and handle each arrival at once.
 * A synchronous request (a kernel blocking for MCDI) posts, then pumps the bus
 * and sleeps on its pCPU's doorbell until the reply arrives.
 */
import { Packr } from 'msgpackr';
import type { Addr, Bus, Envelope, Inbox } from './bus/bus.ts';
import type { AnyOps, OpArgs, OpName, OpReply, OpTable } from './abi/ops.ts';

const packr = new Packr({ useRecords: false, moreTypes: false });

export type RpcValue = unknown;

export interface RpcRequest {
  t: 'req';
  id: number;
  op: string;
  args: RpcValue;
  /** Shared-memory handles travelling beside the message (never packed: packing would copy them). */
  shared?: SharedArrayBuffer[];
}
export interface RpcResponse {
  t: 'rsp';
  id: number;
  ok: boolean;
  value?: RpcValue;
  error?: string;
  /** Set when the receiver refused the request itself (its arguments failed the op's schema). */
  code?: 'refused';
  shared?: SharedArrayBuffer[];
}
export interface RpcEvent {
  t: 'evt';
  op: string;
  args: RpcValue;
  shared?: SharedArrayBuffer[];
}
export type RpcMessage = RpcRequest | RpcResponse | RpcEvent;

/**
 * Why a request failed, for callers that act on it: no answer in time, the
 * channel closed under it, the peer answered with an error, or the message
 * itself was refused (not an rpc message, or arguments that fail the op's
 * schema at the receiver).
 */
export type RpcErrorCode = 'timeout' | 'closed' | 'remote' | 'refused';

export class RpcError extends Error {
  constructor(
    message: string,
    readonly op: string,
    readonly code: RpcErrorCode = 'remote',
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/**
 * Handles one request. Return a value to answer at once, or call `later` to
 * answer after the domain has done the work (a stream that runs for seconds).
 */
export type RpcHandler = (op: string, args: RpcValue, later: () => RpcReply, shared: readonly SharedArrayBuffer[]) => RpcValue | typeof DEFERRED;

/**
 * The answer to one request, to call once. `id` names the request on its
 * channel: a domain that is saved or migrated with requests still to answer
 * keeps the ids in its saved state, and its restored kernel answers them
 * through `RpcEndpoint.replier(id)` (the caller never knew it moved).
 */
export type RpcReply = ((result: RpcValue, error?: string, shared?: SharedArrayBuffer[]) => void) & { readonly id: number };
export const DEFERRED: unique symbol = Symbol('deferred');
/** Return a value with shared memory beside it from a handler. */
export class WithShared {
  constructor(
    readonly value: RpcValue,
    readonly shared: SharedArrayBuffer[],
  ) {}
}
const NONE: readonly SharedArrayBuffer[] = Object.freeze([]);

/** How a synchronous request waits on a worker: pump the bus, sleep on the pCPU doorbell. */
export interface SyncWait {
  snapshot(): number;
  pump(): void;
  sleep(seen: number, ms: number): void;
  now(): number;
}

/** How an asynchronous request's deadline is kept (real timers, or a virtual clock's). */
export type SetTimer = (fn: () => void, ms: number) => { cancel(): void };
export const realTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref?.();
  return { cancel: () => clearTimeout(t) };
};

function encode(m: RpcMessage): { b: Uint8Array; s?: SharedArrayBuffer[] } {
  if (m.shared?.length) {
    const { shared, ...rest } = m;
    return { b: packr.pack(rest), s: shared };
  }
  return { b: packr.pack(m) };
}

function decode(e: Envelope): RpcMessage {
  const m = packr.unpack(e.b) as RpcMessage;
  if (m === null || typeof m !== 'object' || (m.t !== 'req' && m.t !== 'rsp' && m.t !== 'evt'))
    throw new RpcError('control message is not an rpc message', '?', 'refused');
  if (e.s?.length) m.shared = e.s;
  return m;
}

export interface RpcEndpointOptions {
  /** On a worker: how requestSync waits. Absent: requestSync only works with a peer that answers in process, at once. */
  wait?: SyncWait;
  setTimer?: SetTimer;
}

/**
 * One end of a channel. `Out` is the table of the ops this end sends (its
 * peer serves them): request() and event() take only its ops, each with its
 * arguments' type, and resolve to its reply's type. The default, AnyOps,
 * leaves a channel untyped.
 */
export class RpcEndpoint<Out extends OpTable = AnyOps> {
  readonly #bus: Bus;
  readonly #inbox: Inbox;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: RpcValue) => void; reject: (e: Error) => void; op: string; timer: { cancel(): void } }>();
  private readonly syncReplies = new Map<number, RpcResponse>();
  private readonly held: RpcMessage[] = [];
  private handler: RpcHandler | undefined;
  private eventHandler: ((op: string, args: RpcValue, shared: readonly SharedArrayBuffer[]) => void) | undefined;
  private closed = false;
  private readonly wait?: SyncWait;
  private readonly setTimer: SetTimer;
  /** Messages that could not be decoded (a peer's garbage): dropped, counted. */
  undecodable = 0;

  constructor(
    bus: Bus,
    readonly self: Addr,
    readonly peer: Addr,
    readonly ch: number,
    o: RpcEndpointOptions = {},
  ) {
    this.#bus = bus;
    this.#inbox = bus.register(self, ch, peer);
    this.wait = o.wait;
    this.setTimer = o.setTimer ?? realTimer;
  }

  /** Handle each message the moment it arrives (main thread, in-process services). */
  listen(): this {
    this.#inbox.immediate = true;
    this.#inbox.onArrive = (e) => this.arrive(e);
    return this;
  }

  /** Called when something arrives (a domain core marks itself runnable). */
  set onArrive(f: (() => void) | null) {
    this.#inbox.onArrive = f ? () => f() : null;
  }

  /** Messages waiting to be polled. */
  get queued(): number {
    return this.#inbox.size + this.held.length;
  }

  onRequest(handler: RpcHandler): this {
    this.handler = handler;
    return this;
  }

  onEvent(handler: (op: string, args: RpcValue, shared: readonly SharedArrayBuffer[]) => void): this {
    this.eventHandler = handler;
    return this;
  }

  private post(msg: RpcMessage): void {
    if (this.closed) return;
    const { b, s } = encode(msg);
    this.#bus.send({ to: this.peer, from: this.self, ch: this.ch, b, s });
  }

  event<K extends OpName<Out>>(op: K, args: OpArgs<Out, K>, shared?: SharedArrayBuffer[]): void {
    this.post({ t: 'evt', op, args, shared });
  }

  /** Asynchronous request. */
  request<K extends OpName<Out>>(op: K, args: OpArgs<Out, K>, timeoutMs = 60_000, shared?: SharedArrayBuffer[]): Promise<OpReply<Out, K>> {
    const id = this.nextId++;
    return new Promise<RpcValue>((resolve, reject) => {
      const timer = this.setTimer(() => {
        this.pending.delete(id);
        reject(new RpcError(`${op}: no reply within ${timeoutMs} ms`, op, 'timeout'));
      }, timeoutMs);
      this.pending.set(id, { op, resolve, reject, timer });
      this.post({ t: 'req', id, op, args, shared });
    }) as Promise<OpReply<Out, K>>;
  }

  /** Synchronous request: blocks (pumping the bus, sleeping on the pCPU doorbell) until the reply. */
  requestSync<K extends OpName<Out>>(op: K, args: OpArgs<Out, K>, timeoutMs = 10_000, shared?: SharedArrayBuffer[]): OpReply<Out, K> {
    return this.requestSyncShared(op, args, timeoutMs, shared).value;
  }

  /** requestSync, with the shared memory that came back beside the reply. */
  requestSyncShared<K extends OpName<Out>>(
    op: K,
    args: OpArgs<Out, K>,
    timeoutMs = 10_000,
    shared?: SharedArrayBuffer[],
  ): { value: OpReply<Out, K>; shared: readonly SharedArrayBuffer[] } {
    const id = this.nextId++;
    this.post({ t: 'req', id, op, args, shared });
    const w = this.wait;
    const deadline = (w?.now() ?? 0) + timeoutMs;
    for (;;) {
      const seen = w?.snapshot() ?? 0;
      w?.pump();
      this.drain();
      const rsp = this.syncReplies.get(id);
      if (rsp) {
        this.syncReplies.delete(id);
        if (!rsp.ok) throw new RpcError(`${op}: ${rsp.error ?? 'failed'}`, op, rsp.code ?? 'remote');
        return { value: rsp.value as OpReply<Out, K>, shared: rsp.shared ?? NONE };
      }
      if (!w) throw new RpcError(`${op}: the peer did not answer (a synchronous request to an in-process peer must be answered at once)`, op, 'timeout');
      const left = deadline - w.now();
      if (left <= 0) throw new RpcError(`${op}: no reply within ${timeoutMs} ms`, op, 'timeout');
      w.sleep(seen, Math.min(left, 100));
    }
  }

  /** Take arrivals: replies are filed for requestSync, everything else is held for poll(). */
  private drain(): void {
    for (;;) {
      const e = this.#inbox.take();
      if (!e) return;
      const m = this.decodeOrCount(e);
      if (!m) continue;
      if (m.t === 'rsp' && !this.pending.has(m.id)) this.syncReplies.set(m.id, m);
      else this.held.push(m);
    }
  }

  private decodeOrCount(e: Envelope): RpcMessage | undefined {
    try {
      return decode(e);
    } catch {
      this.undecodable++;
      return undefined;
    }
  }

  /** Handle everything that arrived. Cheap when nothing did. Returns messages handled. */
  poll(): number {
    let n = 0;
    while (this.held.length > 0) {
      this.deliver(this.held.shift()!);
      n++;
    }
    for (;;) {
      const e = this.#inbox.take();
      if (!e) return n;
      const m = this.decodeOrCount(e);
      if (!m) continue;
      n++;
      this.deliver(m);
    }
  }

  private arrive(e: Envelope): void {
    const m = this.decodeOrCount(e);
    if (m) this.deliver(m);
  }

  private deliver(msg: RpcMessage): void {
    if (msg.t === 'rsp') {
      const p = this.pending.get(msg.id);
      if (p) {
        this.pending.delete(msg.id);
        p.timer.cancel();
        if (msg.ok) p.resolve(msg.value);
        else p.reject(new RpcError(`${p.op}: ${msg.error ?? 'failed'}`, p.op, msg.code ?? 'remote'));
      } else {
        this.syncReplies.set(msg.id, msg);
      }
      return;
    }
    if (msg.t === 'evt') {
      this.eventHandler?.(msg.op, msg.args, msg.shared ?? NONE);
      return;
    }
    this.serve(msg);
  }

  /** The reply to request `id` that an earlier incarnation of this endpoint accepted (a restored domain's). */
  replier(id: number): RpcReply {
    let answered = false;
    const reply = (value: RpcValue, error?: string, shared?: SharedArrayBuffer[]): void => {
      if (answered) return;
      answered = true;
      this.post(error === undefined ? { t: 'rsp', id, ok: true, value, shared } : { t: 'rsp', id, ok: false, error });
    };
    return Object.assign(reply, { id });
  }

  private serve(req: RpcRequest): void {
    const reply = this.replier(req.id);
    if (!this.handler) return reply(undefined, `no handler for ${req.op}`);
    let deferred = false;
    try {
      const v = this.handler(
        req.op,
        req.args,
        () => {
          deferred = true;
          return reply;
        },
        req.shared ?? NONE,
      );
      if (v === DEFERRED || deferred) return;
      if (v instanceof WithShared) reply(v.value, undefined, v.shared);
      else reply(v);
    } catch (e) {
      // A request refused at the boundary (its arguments failed the op's schema) says so: the sender's RpcError has code 'refused'.
      if (e instanceof RpcError && e.code === 'refused') this.post({ t: 'rsp', id: req.id, ok: false, error: e.message, code: 'refused' });
      else reply(undefined, e instanceof Error ? e.message : String(e));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      p.timer.cancel();
      p.reject(new RpcError(`${p.op}: channel closed`, p.op, 'closed'));
    }
    this.pending.clear();
    this.#bus.unregister(this.self, this.ch, this.peer);
  }
}
