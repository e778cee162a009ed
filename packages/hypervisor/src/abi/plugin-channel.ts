/**
 * A vif's plugin channel (one per vif, between the guest's accelerator host
 * in netfront and dom0's accelerator manager in netback): one-way events,
 * each a msgpackr map {plugin?, ...fields}. The framework's own messages are
 * typed here, where both ends import them; a plugin's own messages (offer,
 * accept, ready, ...) are its manifest's, checked by netback against the
 * schemas the manifest declares before the plugin sees them.
 *
 *   dom0 -> guest (netback)
 *     attach          {plugin: string       the plugin that takes the vif
 *                      version: string      its manifest's version
 *                      api: string          the plugin API dom0's netback speaks (PLUGIN_API_VERSION)
 *                      pluginApi: string    the plugin API the plugin was written for (its manifest's api)
 *                      frontend: string}    URL of its frontend part ('' if none)
 *     detached        {plugin}              the plugin let go: back to the slow path
 *     refused         {op, reason}          a message of the guest's that netback refused
 *   dom0 -> guest (a plugin's backend; the accelerator host acts on them too)
 *     offer           {plugin, ...}         the hardware is ready: the frontend's newDevice(args), netfront calls it from now
 *     detach          {plugin, ...}         stop taking frames and drain; the host answers drained once empty
 *   guest -> dom0 (checked by netback; the plugin is told)
 *     decline         {plugin?, reason? (<= 1024 chars)}   the frontend could not start
 *     drained         {plugin?}             the frontend let go of the hardware
 *     frontend_failed {plugin?, reason?}    the frontend broke: netback detaches the vif
 *     filter_request  {...}                 refused, counted: steering is dom0's alone
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { op, replyOf, shortValue as short, type AnyOps } from './ops.ts';

/**
 * The plugin API version, MAJOR.MINOR (as the 2007 accelerator's
 * NET_ACCEL_MSG_VERSION, checked at both ends). A plugin's manifest names the
 * version it was written for (`api`); the host refuses one for another major
 * or a newer minor, naming both (the accelerator answered -EPROTO), and tells
 * a compatible older one its own (ctx.apiVersion, and the attach message).
 * A minor bump only adds (optional hooks, context fields, message fields); a
 * major bump changes or removes something a plugin may rely on.
 *
 *   1.0  the hooks of AccelBackend / AccelFrontend, the channel messages above,
 *        the manifest's name, version, matches, features, messages, args
 *   1.1  the version handshake: the manifest's `api`, ctx.apiVersion at both
 *        ends, attach's `api` and `pluginApi`; a manifest's schemas may be any
 *        JSON Schema (draft-07, 2019-09 or 2020-12), not only TypeBox's
 *   1.2  a second NIC model: the backend context's vdpa/vdpaShared (the virtio
 *        NIC's admin commands beside mcdi/mcdiShared), and the optional hook
 *        onUplinkForget(mac) (a destination no longer behind the uplink)
 *   1.3  frames built in their final DMA buffer: the frontend's optional hooks
 *        txBuffer(len) (where the stack builds the next frame) and flush()
 *        (the end of a burst: one doorbell for the frames taken since)
 *   1.4  checksum offload: the frontend's optional hook csumOffload() (its
 *        hardware completes partial checksums), startXmit's csumPartial
 *        argument (only for a frontend whose csumOffload() says so: netfront
 *        completes every partial checksum for the others), and deliver's
 *        rxFlags (NETRXF_data_validated: the NIC checked the checksum); MCDI
 *        vi_init's csum (TXD_CSUM, EV_RX_CSUM_OK)
 */
export const PLUGIN_API_VERSION = '1.5';

/** What a plugin API version looks like: MAJOR.MINOR, decimal, no leading zeros. */
export const API_VERSION_PATTERN = '^(0|[1-9][0-9]{0,3})\\.(0|[1-9][0-9]{0,3})$';

/**
 * Why a plugin written for plugin API `wanted` cannot run against `host`'s, or
 * undefined if it can (same major, a minor no newer than the host's). `who`
 * names the host's side in the reason ("this host", "this guest's netfront").
 */
export function apiVersionProblem(wanted: unknown, host: string = PLUGIN_API_VERSION, who = 'this host'): string | undefined {
  if (typeof wanted !== 'string' || !new RegExp(API_VERSION_PATTERN).test(wanted))
    return `its plugin API version must be MAJOR.MINOR (${who} speaks ${host}), got ${short(wanted)}`;
  const [wMajor, wMinor] = wanted.split('.').map(Number);
  const [hMajor, hMinor] = host.split('.').map(Number);
  if (wMajor !== hMajor) return `it is written for plugin API ${wanted} and ${who} speaks ${host}: another major version is incompatible (EPROTO)`;
  if (wMinor > hMinor) return `it is written for plugin API ${wanted}, newer than the ${host} ${who} speaks: it may use what ${host} lacks (EPROTO)`;
  return undefined;
}

/** Ops netback routes itself (or passes on after its own check). */
export const CHANNEL_OP = {
  attach: 'attach',
  detached: 'detached',
  offer: 'offer',
  detach: 'detach',
  refused: 'refused',
  decline: 'decline',
  drained: 'drained',
  frontendFailed: 'frontend_failed',
  filterRequest: 'filter_request',
} as const;

const plugin = Type.String();
const reason = Type.String({ maxLength: 1024 });
const event = replyOf<void>();

/** A message whose fields past `plugin` are the plugin's own (checked as an object with an optional string plugin, typed as open). */
function pluginOwn() {
  return Type.Unsafe<{ plugin?: string; [field: string]: unknown }>(Type.Object({ plugin: Type.Optional(plugin) }, { additionalProperties: true }));
}

/** dom0 -> guest: the framework's messages. */
export const TO_FRONTEND = {
  [CHANNEL_OP.attach]: op(
    Type.Object({ plugin, version: Type.String(), api: Type.String({ maxLength: 16 }), pluginApi: Type.String({ maxLength: 16 }), frontend: Type.String() }),
    event,
  ),
  [CHANNEL_OP.detached]: op(Type.Object({ plugin }), event),
  [CHANNEL_OP.refused]: op(Type.Object({ op: Type.String(), reason: Type.String() }), event),
  // The rest of an offer or a detach is the plugin's own (its frontend reads it).
  [CHANNEL_OP.offer]: op(pluginOwn(), event),
  [CHANNEL_OP.detach]: op(pluginOwn(), event),
} as const;

/** guest -> dom0: the framework's messages, with the shape netback accepts. */
export const TO_BACKEND = {
  [CHANNEL_OP.decline]: op(Type.Object({ plugin: Type.Optional(plugin), reason: Type.Optional(reason) }), event),
  [CHANNEL_OP.drained]: op(Type.Object({ plugin: Type.Optional(plugin) }), event),
  [CHANNEL_OP.frontendFailed]: op(Type.Object({ plugin: Type.Optional(plugin), reason: Type.Optional(reason) }), event),
  [CHANNEL_OP.filterRequest]: op(Type.Record(Type.String(), Type.Unknown()), event),
} as const;

/**
 * The channel as each end sends on it: the framework's messages typed, and
 * any other op a plugin's own (its manifest's schemas judge those).
 */
export type ToFrontendChannel = typeof TO_FRONTEND & AnyOps;
export type ToBackendChannel = typeof TO_BACKEND & AnyOps;

/** Frontend -> backend ops every vif plugin may receive, with the shape netback accepts (filter_request never reaches a plugin). */
export const FRAMEWORK_MESSAGES: Record<string, TSchema> = {
  [CHANNEL_OP.decline]: TO_BACKEND.decline.args,
  [CHANNEL_OP.drained]: TO_BACKEND.drained.args,
  [CHANNEL_OP.frontendFailed]: TO_BACKEND.frontend_failed.args,
};

/**
 * Check one frontend message against the schema for its op. Returns a reason
 * if it is refused (unknown op, wrong shape), or undefined if it may pass.
 */
export function messageProblem(schemas: Record<string, TSchema> | undefined, op: string, args: unknown): string | undefined {
  // Own keys only: an op named "__proto__" or "constructor" must not find Object.prototype's.
  const schema = Object.hasOwn(FRAMEWORK_MESSAGES, op) ? FRAMEWORK_MESSAGES[op] : Object.hasOwn(schemas ?? {}, op) ? schemas![op] : undefined;
  if (!schema)
    return `op "${short(op)}" is not a message this plugin accepts (${[...Object.keys(FRAMEWORK_MESSAGES), ...Object.keys(schemas ?? {})].join(', ')})`;
  try {
    const first = Value.Errors(schema, args).First();
    if (!first) return undefined;
    return `${op}${first.path}: ${first.message} (got ${short(first.value)})`;
  } catch (e) {
    // A validator that cannot judge the message (a plugin's malformed schema) refuses it.
    return `${op}: cannot be checked against its schema (${e instanceof Error ? e.message : String(e)})`;
  }
}

/** Check one dom0 -> guest framework message (the guest trusts its backend no more than netback trusts it). */
export function frontendMessageProblem(op: string, args: unknown): string | undefined {
  if (!Object.hasOwn(TO_FRONTEND, op)) return undefined;
  const first = Value.Errors(TO_FRONTEND[op as keyof typeof TO_FRONTEND].args, args).First();
  return first ? `${op}${first.path}: ${first.message} (got ${short(first.value)})` : undefined;
}

/** A plugin-channel message schema: the given fields, plus the `plugin` field every frontend message carries; nothing else. */
export function pluginMessage<P extends Record<string, TSchema>>(props: P) {
  return Type.Object({ plugin: Type.Optional(Type.String({ maxLength: 64 })), ...props }, { additionalProperties: false });
}

/**
 * The members a plugin object (what createBackend or createFrontend returns)
 * may have, by name: a hook the framework calls (required or optional), or a
 * string it reads. The backend's and the frontend's tables are beside their
 * interfaces (ACCEL_BACKEND_HOOKS in @xsim/netback, ACCEL_FRONTEND_HOOKS in
 * @xsim/netfront), each checked by the compiler against the interface.
 */
export type HookKind = 'required' | 'optional' | 'string';

/** Levenshtein distance (insertions, deletions, substitutions), for suggesting a known name. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The known name closest to `name` if it is near enough to be a misspelling of it (at most 2 edits, and under a third of its length). */
export function closestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0.5 : editDistance(name, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== undefined && bestD <= 2 && bestD * 3 < best.length ? best : undefined;
}

/** Every method name of `obj`: its own and its prototypes' (up to Object's), without the constructor. */
function methodNames(obj: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = obj; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const k of Object.getOwnPropertyNames(o)) if (k !== 'constructor' && typeof Reflect.get(obj, k) === 'function') names.add(k);
  }
  return [...names];
}

/**
 * Every problem with a plugin object against the members the framework knows
 * (`hooks`), each naming the member: a required hook missing, a known one that
 * is not a function (or `name` not a string), and a method the framework does
 * not know, with the closest known name suggested. Every method of a plain
 * object is meant as a hook, so each unknown one is refused; a class instance
 * may have helpers of its own, so there only a near miss of a known hook (a
 * misspelling, closestName) is refused. `what` names the object ("backend").
 */
export function hookProblems(obj: unknown, hooks: Readonly<Record<string, HookKind>>, what: string): string[] {
  if (obj === null || typeof obj !== 'object') return [`${what} must be an object of hooks, got ${obj === null ? 'null' : typeof obj}`];
  const out: string[] = [];
  const known = Object.keys(hooks);
  const plain = [Object.prototype, null].includes(Object.getPrototypeOf(obj) as object | null);
  for (const [k, kind] of Object.entries(hooks)) {
    const v: unknown = Reflect.get(obj, k);
    if (kind === 'string') {
      if (typeof v !== 'string') out.push(`${what}.${k} must be a string, got ${short(v)}`);
    } else if (v === undefined) {
      if (kind === 'required') out.push(`${what} has no ${k} hook (required)`);
    } else if (typeof v !== 'function') out.push(`${what}.${k} must be a function, got ${short(v)}`);
  }
  for (const m of methodNames(obj)) {
    if (Object.hasOwn(hooks, m)) continue;
    const near = closestName(m, known);
    if (near) out.push(`${what} has an unknown hook "${m}" (did you mean "${near}"?)`);
    else if (plain) out.push(`${what} has an unknown hook "${m}" (known: ${known.join(', ')})`);
  }
  return out;
}
