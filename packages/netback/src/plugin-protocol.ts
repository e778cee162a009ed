/**
 * The plugin protocol in one place: the manifest a plugin backend exports,
 * the messages of a vif's plugin channel that netback itself handles, and the
 * checks every manifest and every frontend message passes before a plugin
 * sees it. Schemas are TypeBox (plain JSON Schema data: a plugin declares its
 * own message schemas in its manifest and they cross module boundaries as data).
 *
 *   guest (plugin frontend)                       dom0 (netback + plugin backend)
 *     <- attach {plugin, version, frontend}         netback: a plugin takes the vif
 *     <- offer / ready / ... (the plugin's)         plugin backend
 *     -> accept / running / fault ... (plugin's)    checked against manifest.messages, then the plugin
 *     -> decline {reason?}                          frontend could not start: netback checks, plugin told
 *     -> drained                                    frontend let go of the hardware
 *     -> frontend_failed {reason}                   the frontend broke: netback detaches the vif
 *     -> filter_request                             refused by netback (steering is dom0's alone)
 *     <- detached {plugin} / refused {op, reason}   netback
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { shortValue as short } from '@xsim/hypervisor';

// The channel's own messages live in @xsim/hypervisor's abi/plugin-channel.ts, where netfront imports them too.
export { CHANNEL_OP, FRAMEWORK_MESSAGES, messageProblem, pluginMessage } from '@xsim/hypervisor';

const NAME = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' });

export const MANIFEST_SCHEMA = Type.Object(
  {
    name: NAME,
    version: Type.String({ minLength: 1, maxLength: 64 }),
    /** NIC aliases this plugin drives, e.g. "nic:1924-0803"; "*" matches any NIC. */
    matches: Type.Array(Type.String({ pattern: '^(\\*|nic:[0-9a-f]{4}-[0-9a-f]{4})$' }), { minItems: 1 }),
    /** "vif": accelerates vifs (has a frontend part); "intercept": hooks the primary driver's data path. */
    features: Type.Array(Type.Union([Type.Literal('vif'), Type.Literal('intercept')]), { minItems: 1 }),
    /**
     * The frontend → backend messages the backend accepts, by op, as JSON Schemas
     * (TypeBox). Each is checked before the backend sees it; an op not listed is
     * refused. Required for "vif" plugins.
     */
    messages: Type.Optional(Type.Record(Type.String(), Type.Unsafe<TSchema>(Type.Object({})))),
    /** The load arguments the backend takes (xsim plugin load NAME --args JSON), as a JSON Schema; checked before createBackend. */
    args: Type.Optional(Type.Unsafe<TSchema>(Type.Object({}))),
  },
  { additionalProperties: true },
);

export type PluginManifest = Omit<Static<typeof MANIFEST_SCHEMA>, 'messages' | 'args'> & { messages?: Record<string, TSchema>; args?: TSchema };

/** Every problem with a manifest, each naming the field: [] if it is fine. */
export function manifestProblems(m: unknown): string[] {
  if (m === null || typeof m !== 'object') return [`the manifest must be an object, got ${m === null ? 'null' : typeof m}`];
  const out = [...Value.Errors(MANIFEST_SCHEMA, m)].map(
    (e) => `${e.path || '(manifest)'}: ${e.message}${e.value === undefined ? '' : ` (got ${short(e.value)})`}`,
  );
  const mm = m as PluginManifest;
  if (out.length === 0 && mm.features.includes('vif') && !mm.messages)
    out.push('/messages: a "vif" plugin must declare the frontend messages its backend accepts');
  return out;
}

export { Type };
