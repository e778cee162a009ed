/**
 * The plugin protocol in one place: the manifest a plugin backend exports,
 * the messages of a vif's plugin channel that netback itself handles, and the
 * checks every manifest, every load's arguments and every frontend message
 * pass before a plugin sees them. The manifest's own schema is TypeBox; a
 * plugin's schemas (its arguments, its frontend messages) may be any JSON
 * Schema: TypeBox's (checked by TypeBox's Value, as before) or plain JSON
 * Schema data, draft-07 by default or 2019-09 / 2020-12 by its `$schema`
 * (checked by Ajv 8, the JSON Schema validator most of the ecosystem uses;
 * its formats from ajv-formats).
 *
 *   guest (plugin frontend)                       dom0 (netback + plugin backend)
 *     <- attach {plugin, version, api, pluginApi, frontend}  netback: a plugin takes the vif
 *     <- offer / ready / ... (the plugin's)         plugin backend
 *     -> accept / running / fault ... (plugin's)    checked against manifest.messages, then the plugin
 *     -> decline {reason?}                          frontend could not start: netback checks, plugin told
 *     -> drained                                    frontend let go of the hardware
 *     -> frontend_failed {reason}                   the frontend broke: netback detaches the vif
 *     -> filter_request                             refused by netback (steering is dom0's alone)
 *     <- detached {plugin} / refused {op, reason}   netback
 */
import { Kind, Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { API_VERSION_PATTERN, FRAMEWORK_MESSAGES, closestName, messageProblem as frameworkMessageProblem, shortValue as short } from '@xsim/hypervisor';

// The channel's own messages live in @xsim/hypervisor's abi/plugin-channel.ts, where netfront imports them too.
export { CHANNEL_OP, FRAMEWORK_MESSAGES, PLUGIN_API_VERSION, apiVersionProblem, pluginMessage } from '@xsim/hypervisor';

/** A JSON Schema: TypeBox's, plain data, or true / false. */
export type JsonSchema = TSchema | { readonly [keyword: string]: unknown } | boolean;

const NAME = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' });
const SCHEMA = Type.Unsafe<JsonSchema>(Type.Union([Type.Object({}), Type.Boolean()]));

export const MANIFEST_SCHEMA = Type.Object(
  {
    name: NAME,
    version: Type.String({ minLength: 1, maxLength: 64 }),
    /** The plugin API version the plugin is written for, MAJOR.MINOR (PLUGIN_API_VERSION: same major, a minor no newer). */
    api: Type.String({ pattern: API_VERSION_PATTERN }),
    /** NIC aliases this plugin drives, e.g. "nic:1924-0803"; "*" matches any NIC. */
    matches: Type.Array(Type.String({ pattern: '^(\\*|nic:[0-9a-f]{4}-[0-9a-f]{4})$' }), { minItems: 1 }),
    /** "vif": accelerates vifs (has a frontend part); "intercept": hooks the primary driver's data path. */
    features: Type.Array(Type.Union([Type.Literal('vif'), Type.Literal('intercept')]), { minItems: 1 }),
    /**
     * The frontend → backend messages the backend accepts, by op, as JSON
     * Schemas. Each is checked before the backend sees it; an op not listed is
     * refused. Required for "vif" plugins.
     */
    messages: Type.Optional(Type.Record(Type.String(), SCHEMA)),
    /** The load arguments the backend takes (xsim plugin load NAME --args JSON), as a JSON Schema; checked before createBackend. */
    args: Type.Optional(SCHEMA),
  },
  // A field the loader does not know is a mistake (a misspelling, or a newer plugin API's): refused, named.
  { additionalProperties: false },
);

export type PluginManifest = Static<typeof MANIFEST_SCHEMA>;

const FIELDS = Object.keys(MANIFEST_SCHEMA.properties);

/** Every problem with a manifest, each naming the field: [] if it is fine. (Whether its `api` is one this host speaks is apiVersionProblem's.) */
export function manifestProblems(m: unknown): string[] {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return [`the manifest must be an object, got ${m === null ? 'null' : short(m)}`];
  const out = [...Value.Errors(MANIFEST_SCHEMA, m)]
    .filter((e) => e.type !== ValueErrorType.ObjectAdditionalProperties)
    .map((e) => `${e.path || '(manifest)'}: ${e.message}${e.value === undefined ? '' : ` (got ${short(e.value)})`}`);
  for (const k of Object.keys(m)) {
    if (FIELDS.includes(k)) continue;
    const near = closestName(k, FIELDS);
    out.push(`/${k}: not a manifest field (${near ? `did you mean "${near}"? ` : ''}a manifest has ${FIELDS.join(', ')})`);
  }
  if (out.length > 0) return out;
  const mm = m as PluginManifest;
  if (mm.features.includes('vif') && !mm.messages) out.push('/messages: a "vif" plugin must declare the frontend messages its backend accepts');
  if (mm.args !== undefined) out.push(...unusable('/args', mm.args));
  for (const [op, s] of Object.entries(mm.messages ?? {})) out.push(...unusable(`/messages/${op}`, s));
  return out;
}

function unusable(path: string, schema: JsonSchema): string[] {
  try {
    validator(schema);
    return [];
  } catch (e) {
    return [`${path}: cannot be used as a JSON Schema: ${e instanceof Error ? e.message : String(e)}`];
  }
}

/**
 * One Ajv per JSON Schema draft, made on first use: strict about keywords (a
 * misspelt one is refused), quiet about the rest. Ajv is loaded then too (it
 * is CommonJS, so a synchronous require): a host whose plugins declare only
 * TypeBox schemas, and every vetting worker for one, never pays for it.
 */
const ajvs = new Map<string, Ajv>();
const AJV_OPTIONS = { strict: true, strictTypes: false, strictTuples: false, strictRequired: false, addUsedSchema: false } as const;
const load = createRequire(import.meta.url);
const DRAFTS: Record<string, () => Ajv> = {
  'draft-07': () => new (load('ajv') as typeof import('ajv')).Ajv(AJV_OPTIONS),
  '2019-09': () => new (load('ajv/dist/2019.js') as typeof import('ajv/dist/2019.js')).Ajv2019(AJV_OPTIONS),
  '2020-12': () => new (load('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')).Ajv2020(AJV_OPTIONS),
};

function ajvFor(schema: object): Ajv {
  const uri = (schema as { $schema?: unknown }).$schema;
  const draft =
    uri === undefined || (typeof uri === 'string' && /^https?:\/\/json-schema\.org\/draft-07\/schema#?$/.test(uri))
      ? 'draft-07'
      : typeof uri === 'string'
        ? /^https:\/\/json-schema\.org\/draft\/(2019-09|2020-12)\/schema$/.exec(uri)?.[1]
        : undefined;
  if (!draft) throw new Error(`$schema ${short(uri)} is not a draft this loader knows (draft-07, 2019-09, 2020-12)`);
  let ajv = ajvs.get(draft);
  if (!ajv) {
    ajv = DRAFTS[draft]();
    (load('ajv-formats') as typeof import('ajv-formats')).default(ajv);
    ajvs.set(draft, ajv);
  }
  return ajv;
}

/** Compiled plain schemas, by schema object (a plugin's manifest lives as long as its module). */
const compiled = new WeakMap<object, ValidateFunction>();

/** A function that finds the first problem of a value against `schema`, or undefined; throws if the schema cannot be used. */
function validator(schema: JsonSchema): (v: unknown) => { path: string; message: string; value: unknown } | undefined {
  if (typeof schema === 'boolean') return (v) => (schema ? undefined : { path: '', message: 'the schema accepts nothing (false)', value: v });
  if (Kind in schema) {
    const t = schema as TSchema;
    return (v) => {
      const e = Value.Errors(t, v).First();
      return e && { path: e.path, message: e.message, value: e.value };
    };
  }
  let check = compiled.get(schema);
  if (!check) {
    check = ajvFor(schema).compile(schema);
    compiled.set(schema, check);
  }
  const fn = check;
  return (v) => (fn(v) ? undefined : ajvError(fn.errors?.[0], v));
}

/** An Ajv error as a path and a message: a missing or an extra property is named in the path, as TypeBox's are. */
function ajvError(e: ErrorObject | undefined, v: unknown): { path: string; message: string; value: unknown } {
  if (!e) return { path: '', message: 'invalid', value: v };
  const p = e.params as { missingProperty?: string; additionalProperty?: string };
  const extra = p.missingProperty ?? p.additionalProperty;
  const path = extra === undefined ? e.instancePath : `${e.instancePath}/${extra}`;
  const value =
    extra === undefined
      ? e.instancePath
          .split('/')
          .slice(1)
          .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], v)
      : undefined;
  return { path, message: e.message ?? e.keyword, value };
}

/** Where `value` first breaks `schema` ("/path: message (got V)"), or undefined if it conforms; a schema that cannot be used says so. */
export function schemaProblem(schema: JsonSchema, value: unknown): string | undefined {
  let e: ReturnType<ReturnType<typeof validator>>;
  try {
    e = validator(schema)(value);
  } catch (err) {
    return `cannot be checked against its schema (${err instanceof Error ? err.message : String(err)})`;
  }
  return e && `${e.path || '(value)'}: ${e.message}${e.value === undefined ? '' : ` (got ${short(e.value)})`}`;
}

/**
 * Check one frontend message against the schema for its op: the framework's
 * for decline, drained and frontend_failed, the plugin's manifest's for the
 * rest. Returns a reason if it is refused (unknown op, wrong shape), or
 * undefined if it may pass.
 */
export function messageProblem(schemas: Readonly<Record<string, JsonSchema>> | undefined, op: string, args: unknown): string | undefined {
  // Own keys only: an op named "__proto__" or "constructor" must not find Object.prototype's.
  if (Object.hasOwn(FRAMEWORK_MESSAGES, op) || !schemas || !Object.hasOwn(schemas, op))
    return frameworkMessageProblem(schemas as Record<string, TSchema>, op, args);
  const problem = schemaProblem(schemas[op], args);
  return problem && `${op}${problem.startsWith('(value)') ? problem.slice(7) : problem.startsWith('/') ? problem : `: ${problem}`}`;
}

export { Type };
