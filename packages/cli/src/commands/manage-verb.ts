/** One management verb (`xsim OBJECT VERB ...`) and what it is handed. */
import type { Parsed } from '../args.ts';

type Json = Record<string, unknown>;

export interface ManageContext {
  /** Options and positionals as parsed (positionals after OBJECT VERB are `rest`). */
  p: Parsed;
  verb: string;
  rest: string[];
  /** A request over the control socket: an op of the toolstack's MANAGE_OPS table. */
  call: (op: string, args?: Json) => Promise<unknown>;
  /** JSON (-j/-p) or the human text. */
  out: (value: unknown, human: () => string) => string;
  /** --host, where a verb takes it. */
  host: string | undefined;
}

/** A verb: parse what is left, call the toolstack, return what to print. */
export type ManageVerb = (c: ManageContext) => Promise<string>;
