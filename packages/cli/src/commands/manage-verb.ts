/** One management verb (`xsim OBJECT VERB ...`) and what it is handed. */
import type { OpArgs, OpName, OpReply } from '@xsim/hypervisor';
import type { ManageProtocol } from '@xsim/toolstack';
import type { Parsed } from '../args.ts';

type Op = OpName<ManageProtocol>;
/** An op's arguments: optional when it takes none (or only optional ones). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
type ArgsOf<K extends Op> = {} extends OpArgs<ManageProtocol, K> ? [args?: OpArgs<ManageProtocol, K>] : [args: OpArgs<ManageProtocol, K>];

export interface ManageContext {
  /** Options and positionals as parsed (positionals after OBJECT VERB are `rest`). */
  p: Parsed;
  verb: string;
  rest: string[];
  /** A request over the control socket, checked by the compiler against the toolstack's MANAGE_PROTOCOL. */
  call: <K extends Op>(op: K, ...args: ArgsOf<K>) => Promise<OpReply<ManageProtocol, K>>;
  /** JSON (-j/-p) or the human text. */
  out: (value: unknown, human: () => string) => string;
  /** --host, where a verb takes it. */
  host: string | undefined;
}

/** A verb: parse what is left, call the toolstack, return what to print. */
export type ManageVerb = (c: ManageContext) => Promise<string>;
