/**
 * A control-plane channel: msgpackr-encoded messages over a MessagePort, with
 * the receiving worker's wake word kicked after every post (a worker blocked
 * in Atomics.wait would otherwise never see the message). Workers read with
 * receiveMessageOnPort, synchronously; the main thread reads asynchronously.
 *
 * Used for toolstack→domain control, dom0→NIC MCDI commands and plugin
 * channels. Xenstore has its own protocol module.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { Packr } from 'msgpackr';
import type { WakeWord } from './wake.ts';

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
}
export interface RpcEvent {
  t: 'evt';
  op: string;
  args: RpcValue;
  shared?: SharedArrayBuffer[];
}
export type RpcMessage = RpcRequest | RpcResponse | RpcEvent;

export class RpcError extends Error {
  constructor(
    message: string,
    readonly op: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/**
 * Handles one request. Return a value to answer at once, or call `later` to
 * answer after the domain has done the work (a stream that runs for seconds).
 */
export type RpcHandler = (
  op: string,
  args: RpcValue,
  later: () => (result: RpcValue, error?: string) => void,
  shared: readonly SharedArrayBuffer[],
) => RpcValue | typeof DEFERRED;
export const DEFERRED: unique symbol = Symbol('deferred');
const NONE: readonly SharedArrayBuffer[] = Object.freeze([]);

interface Envelope {
  b: Uint8Array;
  s?: SharedArrayBuffer[];
}

function encode(msg: RpcMessage): Envelope {
  if ((msg.t === 'req' || msg.t === 'evt') && msg.shared?.length) {
    const { shared, ...rest } = msg;
    return { b: packr.pack(rest), s: shared };
  }
  return { b: packr.pack(msg) };
}

function decode(data: unknown): RpcMessage {
  const env = data as Envelope;
  if (!env || !(env.b instanceof Uint8Array)) throw new RpcError('control message is not a msgpack envelope', '?');
  const msg = packr.unpack(env.b) as RpcMessage;
  if (env.s && (msg.t === 'req' || msg.t === 'evt')) msg.shared = env.s;
  return msg;
}

export class RpcEndpoint {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: RpcValue) => void; reject: (e: Error) => void; op: string }>();
  private readonly syncReplies = new Map<number, RpcResponse>();
  private readonly queued: RpcMessage[] = [];
  private handler: RpcHandler | undefined;
  private eventHandler: ((op: string, args: RpcValue, shared: readonly SharedArrayBuffer[]) => void) | undefined;
  private closed = false;

  /**
   * @param port  our end of the channel
   * @param peerWake the peer worker's wake word (null when the peer is the main thread)
   * @param selfWake our own wake word (null on the main thread, which never blocks)
   */
  constructor(
    readonly port: MessagePort,
    private readonly peerWake: WakeWord | null,
    private readonly selfWake: WakeWord | null,
  ) {}

  /** Main-thread mode: receive asynchronously through the port's event loop. */
  listen(): this {
    this.port.on('message', (data: unknown) => this.deliver(decode(data)));
    return this;
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
    this.port.postMessage(encode(msg));
    this.peerWake?.kick();
  }

  event(op: string, args: RpcValue, shared?: SharedArrayBuffer[]): void {
    this.post({ t: 'evt', op, args, shared });
  }

  /** Asynchronous request (main thread). */
  request(op: string, args: RpcValue, timeoutMs = 60_000, shared?: SharedArrayBuffer[]): Promise<RpcValue> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError(`${op}: no reply within ${timeoutMs} ms`, op));
      }, timeoutMs);
      timer.unref?.();
      this.pending.set(id, {
        op,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.post({ t: 'req', id, op, args, shared });
    });
  }

  /** Synchronous request (worker): blocks on our wake word until the reply arrives. */
  requestSync(op: string, args: RpcValue, timeoutMs = 10_000, shared?: SharedArrayBuffer[]): RpcValue {
    if (!this.selfWake) throw new RpcError('requestSync needs a wake word (worker side only)', op);
    const id = this.nextId++;
    this.post({ t: 'req', id, op, args, shared });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = this.selfWake.snapshot();
      this.drain(true);
      const rsp = this.syncReplies.get(id);
      if (rsp) {
        this.syncReplies.delete(id);
        if (!rsp.ok) throw new RpcError(`${op}: ${rsp.error ?? 'failed'}`, op);
        return rsp.value;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new RpcError(`${op}: no reply within ${timeoutMs} ms`, op);
      this.selfWake.sleep(seen, Math.min(left, 100));
    }
  }

  /**
   * Worker mode: drain and handle everything that arrived. Cheap when nothing
   * did. Returns the number of messages handled.
   */
  poll(): number {
    const n = this.drain(false);
    let handled = 0;
    while (this.queued.length) {
      this.deliver(this.queued.shift()!);
      handled++;
    }
    return n + handled;
  }

  private drain(holdRequests: boolean): number {
    let n = 0;
    for (;;) {
      const m = receiveMessageOnPort(this.port);
      if (!m) return n;
      n++;
      const msg = decode(m.message);
      if (msg.t === 'rsp' && !this.pending.has(msg.id)) this.syncReplies.set(msg.id, msg);
      else if (holdRequests) this.queued.push(msg);
      else this.deliver(msg);
    }
  }

  private deliver(msg: RpcMessage): void {
    if (msg.t === 'rsp') {
      const p = this.pending.get(msg.id);
      if (p) {
        this.pending.delete(msg.id);
        if (msg.ok) p.resolve(msg.value);
        else p.reject(new RpcError(`${p.op}: ${msg.error ?? 'failed'}`, p.op));
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

  private serve(req: RpcRequest): void {
    const reply = (value: RpcValue, error?: string): void => {
      this.post(error === undefined ? { t: 'rsp', id: req.id, ok: true, value } : { t: 'rsp', id: req.id, ok: false, error });
    };
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
      reply(v);
    } catch (e) {
      reply(undefined, e instanceof Error ? e.message : String(e));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new RpcError(`${p.op}: channel closed`, p.op));
    this.pending.clear();
    this.port.close();
  }
}
