/**
 * The receiving end of a typed protocol: a dispatcher built from an op table
 * (abi/ops.ts) and a handler per op. It is the one place a channel checks
 * its arguments, so handlers get them typed and never decode by hand.
 */
import { Value } from '@sinclair/typebox/value';
import { RpcError, type RpcHandler, type RpcReply, type RpcValue, type WithShared, type DEFERRED } from './rpc.ts';
import { shortValue, type OpArgs, type OpName, type OpReply, type OpTable } from './abi/ops.ts';
import { logWarn } from './log.ts';

const NONE: readonly SharedArrayBuffer[] = Object.freeze([]);

/** What an op's handler gets beside its arguments. */
export interface OpCall {
  readonly op: string;
  /** Answer later (the handler then returns DEFERRED). */
  later(): RpcReply;
  /** Shared memory that came beside the request. */
  readonly shared: readonly SharedArrayBuffer[];
}

/** A handler's answer: the reply, the reply with shared memory beside it, or DEFERRED (answered through later()). */
export type OpResult<R> = R | WithShared | typeof DEFERRED;

/** A handler per op of a table, each taking that op's (checked) arguments. */
export type OpHandlers<T extends OpTable> = { [K in OpName<T>]: (args: OpArgs<T, K>, call: OpCall) => OpResult<OpReply<T, K>> };

export interface RpcOpServerOptions {
  /** Where a refusal is logged (the kernel's log). */
  log?: (line: string) => void;
  /** Ops the table does not have go here (a kernel extension's); absent: refused as unknown. */
  fallback?: RpcHandler;
}

/**
 * A dispatcher built from an op table and a handler per op: the one place a
 * channel's receiver checks arguments. A request whose arguments fail its
 * op's schema is refused (an error reply naming the op and the field, with
 * code 'refused' at the sender), counted and logged; its handler never runs.
 */
export class RpcOpServer<T extends OpTable> {
  /** Requests refused at the boundary: unknown op, or arguments that fail the op's schema. */
  refused = 0;
  lastRefusal: string | null = null;

  constructor(
    /** The channel's name in refusals ("dom0 control", "MCDI", ...). */
    readonly channel: string,
    readonly table: T,
    private readonly handlers: OpHandlers<T>,
    private readonly o: RpcOpServerOptions = {},
  ) {}

  /** The RpcHandler to give RpcEndpoint.onRequest. */
  readonly handle: RpcHandler = (op, raw, later, shared) => {
    if (!Object.hasOwn(this.table, op)) {
      if (this.o.fallback) return this.o.fallback(op, raw, later, shared);
      throw this.refuse(op, `unknown op (${Object.keys(this.table).join(', ')})`);
    }
    const args = raw ?? {};
    const schema = this.table[op].args;
    if (!Value.Check(schema, args)) {
      const e = Value.Errors(schema, args).First();
      throw this.refuse(op, e ? `argument ${e.path || '(args)'}: ${e.message} (got ${short(e.value)})` : 'arguments do not match the op');
    }
    const handler = this.handlers[op as OpName<T>] as (a: unknown, c: OpCall) => RpcValue;
    return handler(args, { op, later, shared });
  };

  /** The handler to give RpcEndpoint.onEvent: a one-way message, checked the same way; a refused one is counted and logged (nobody to answer). */
  readonly handleEvent = (op: string, raw: RpcValue, shared: readonly SharedArrayBuffer[]): void => {
    try {
      this.handle(
        op,
        raw,
        () => {
          throw new Error(`${this.channel}: ${op} is an event: nothing to answer`);
        },
        shared,
      );
    } catch (e) {
      if (!(e instanceof RpcError && e.code === 'refused')) throw e;
    }
  };

  /** Check and answer one request in process (a test, or a peer that calls the device directly). */
  call(op: string, args: RpcValue, shared: readonly SharedArrayBuffer[] = NONE): RpcValue {
    return this.handle(
      op,
      args,
      () => {
        throw new Error(`${this.channel}: ${op} cannot be answered later in process`);
      },
      shared,
    );
  }

  private refuse(op: string, why: string): RpcError {
    this.refused++;
    const msg = `${this.channel}: ${short(op)} refused: ${why}`;
    this.lastRefusal = msg;
    this.o.log?.(logWarn(msg));
    return new RpcError(msg, op, 'refused');
  }
}

const short = (v: unknown): string => shortValue(v, false);
