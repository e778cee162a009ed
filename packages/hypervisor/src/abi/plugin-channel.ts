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
  [CHANNEL_OP.attach]: op(Type.Object({ plugin, version: Type.String(), frontend: Type.String() }), event),
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
