/**
 * Typed protocols: every control channel is a table op -> { args, reply },
 * as io/netif.h documents each of its messages once, field by field.
 *
 *   args   a TypeBox schema: the sender's argument type is derived from it
 *          (a misspelt op or a wrong field does not compile), and the
 *          receiver checks every request against it once, at the boundary
 *          (RpcOpServer in rpc.ts), so its handlers get typed arguments.
 *   reply  the answer's type, as a schema that is not checked (the sender
 *          trusts its own peer's answers no more than before: it reads them).
 *
 * The tables themselves live beside this file, one module per channel:
 * kernel-ops.ts (what every kernel answers), endpoint-ops.ts (the traffic
 * apps), dom0-ops.ts, guest-ops.ts, fabric-ops.ts, mcdi.ts, sched-ops.ts,
 * plugin-channel.ts.
 */
import { Type, type Static, type TSchema, type TUnknown } from '@sinclair/typebox';

/** One op: its arguments' schema and its reply's type. */
export interface OpDef<A extends TSchema = TSchema, R extends TSchema = TSchema> {
  readonly args: A;
  readonly reply: R;
}

export type OpTable = Record<string, OpDef>;

/** An op of a table. */
export function op<A extends TSchema, R extends TSchema>(args: A, reply: R): OpDef<A, R> {
  return { args, reply };
}

/** A reply type that is documented, not checked (a plain data tree, the peer's to shape). */
export function replyOf<T>(): TSchema & { static: T } {
  return Type.Unsafe<T>({});
}

/** Arguments of an op that takes none. */
export const NO_ARGS = Type.Object({});

/** A channel that says nothing of its ops: any op, any arguments, any reply (the default of an RpcEndpoint). */
export type AnyOps = Record<string, OpDef<TUnknown, TUnknown>>;

export type OpName<T extends OpTable> = keyof T & string;
export type OpArgs<T extends OpTable, K extends OpName<T>> = Static<T[K]['args']>;
export type OpReply<T extends OpTable, K extends OpName<T>> = Static<T[K]['reply']>;

/** A sender's arguments, deadline and shared memory: the arguments optional when the op takes none (or only optional ones). */
// `{} extends Args` is the idiom for "every field of Args is optional", not an object type.
export type OpRequestParams<T extends OpTable, K extends OpName<T>> =
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  {} extends OpArgs<T, K>
    ? [args?: OpArgs<T, K>, timeoutMs?: number, shared?: SharedArrayBuffer[]]
    : [args: OpArgs<T, K>, timeoutMs?: number, shared?: SharedArrayBuffer[]];

/** A peer's value as a refusal quotes it: JSON (a string bare if `quote` is false), cut to 60 characters. */
export function shortValue(v: unknown, quote = true): string {
  let s: string;
  try {
    s = !quote && typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
