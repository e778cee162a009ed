/**
 * The operations the model test issues, as fast-check generates them: plain
 * data naming what to do with abstract picks (the n-th guest of the model, the
 * n-th file of a pool), resolved against the model only when the step runs,
 * so a generated sequence stays meaningful however earlier steps went (and
 * shrinks). Each operation goes over the control socket (manageRequest, one
 * connection each, as xsim's commands do) or through the Simulation API.
 */
import fc from 'fast-check';
import { PLUGINS, type PluginName } from './model.ts';

export type Via = 'socket' | 'api';
/** Where a save, capture or trace writes: a file of its pool, or a path it must refuse. */
export type OutSpot = number | 'adir' | 'missing' | 'fifo';
/** Where a restore reads: an image of the pool, or a file that is no image. */
export type InSpot = number | 'junk' | 'adir' | 'fifo';

export type OpSpec = { via: Via } & (
  | { k: 'create'; host: number; name: number; mem: 'default' | 'big' | 'tiny'; ip: 'auto' | 'used' | 'fresh'; mac: 'auto' | 'used' | 'fresh'; n: number }
  | { k: 'destroy' | 'shutdown'; pick: number }
  | { k: 'save'; pick: number; file: OutSpot }
  | { k: 'restore'; file: InSpot; host: number | null }
  | { k: 'migrate'; pick: number; to: number; live: boolean }
  | { k: 'devAdd'; pick: number; name: 'auto' | 'dup' | 'bad' | 'high'; ip: 'auto' | 'used' | 'fresh'; mtu: number | null; n: number }
  | { k: 'devDel'; pick: number; vif: number }
  | { k: 'pluginLoad' | 'pluginUnload'; plugin: PluginName; host: number | null }
  | { k: 'pluginSwap'; host: number }
  | { k: 'captureStart'; specs: number; file: OutSpot }
  | { k: 'captureStop' | 'traceStop' }
  | { k: 'traceStart'; file: OutSpot }
  | { k: 'link'; host: number; up: boolean }
  | { k: 'mtu'; host: number; mtu: number }
  | { k: 'reset'; host: number }
  | { k: 'read'; what: number; pick: number }
);

export type OpKind = OpSpec['k'];

/** Host picks: 0 and 1 are the topology's; 2 is a host that does not exist. */
export const HOST_CHOICES = 3;
/** Names a create may take: a small pool so that names collide, and a few it must refuse. */
export const NAMES = ['g0', 'g1', 'g2', 'g3', 'g4', 'g5', 'g6', 'g7', 'g8', 'g9', 'a2', 'b2', 'a1', 'dom0', 'Bad_Name'];
export const IMAGES = 4;
export const CAPTURE_SPECS = [['host-a'], ['host-b/b1'], ['host-*'], ['host-a/a1', 'host-b'], ['host-z/*']];
export const READS = ['domain.list', 'dev.list', 'plugin.list', 'mgmtdev.list', 'capture.list', 'dev.stats', 'dev.features'] as const;

const via = fc.constantFrom<Via>('socket', 'socket', 'api');
const pick = fc.nat(999);
const host = fc.oneof({ weight: 12, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: fc.constant(2) });
const outSpot = (n: number) =>
  fc.oneof({ weight: 10, arbitrary: fc.nat(n - 1) as fc.Arbitrary<OutSpot> }, { weight: 1, arbitrary: fc.constantFrom<OutSpot>('adir', 'missing', 'fifo') });
const addr = fc.constantFrom<'auto' | 'used' | 'fresh'>('auto', 'auto', 'auto', 'auto', 'used', 'fresh');

/** One operation, weighted so that guests come and go about as fast as they are made. */
export function opArb(): fc.Arbitrary<OpSpec> {
  const w = (weight: number, arbitrary: fc.Arbitrary<OpSpec>) => ({ weight, arbitrary });
  return fc.oneof(
    w(
      9,
      fc.record({
        k: fc.constant('create' as const),
        via,
        host,
        name: fc.nat(NAMES.length - 1),
        mem: fc.constantFrom<'default' | 'big' | 'tiny'>('default', 'default', 'big', 'big', 'big', 'tiny'),
        ip: addr,
        mac: addr,
        n: fc.nat(49),
      }),
    ),
    w(4, fc.record({ k: fc.constant('destroy' as const), via, pick })),
    w(3, fc.record({ k: fc.constant('shutdown' as const), via, pick })),
    w(3, fc.record({ k: fc.constant('save' as const), via, pick, file: outSpot(IMAGES) })),
    w(
      3,
      fc.record({
        k: fc.constant('restore' as const),
        via,
        file: fc.oneof(
          { weight: 12, arbitrary: fc.nat(IMAGES - 1) as fc.Arbitrary<InSpot> },
          { weight: 1, arbitrary: fc.constantFrom<InSpot>('junk', 'adir', 'fifo') },
        ),
        host: fc.option(host, { nil: null }),
      }),
    ),
    w(4, fc.record({ k: fc.constant('migrate' as const), via, pick, to: host, live: fc.boolean() })),
    w(
      5,
      fc.record({
        k: fc.constant('devAdd' as const),
        via,
        pick,
        name: fc.constantFrom<'auto' | 'dup' | 'bad' | 'high'>('auto', 'auto', 'auto', 'auto', 'dup', 'bad', 'high'),
        ip: addr,
        mtu: fc.constantFrom<number | null>(null, null, null, 1400, 9000),
        n: fc.nat(49),
      }),
    ),
    w(4, fc.record({ k: fc.constant('devDel' as const), via, pick, vif: fc.nat(99) })),
    w(2, fc.record({ k: fc.constant('pluginLoad' as const), via, plugin: fc.constantFrom(...PLUGINS), host: fc.option(host, { nil: null }) })),
    w(2, fc.record({ k: fc.constant('pluginUnload' as const), via, plugin: fc.constantFrom(...PLUGINS), host: fc.option(host, { nil: null }) })),
    w(2, fc.record({ k: fc.constant('pluginSwap' as const), via, host })),
    w(1, fc.record({ k: fc.constant('captureStart' as const), via, specs: fc.nat(CAPTURE_SPECS.length - 1), file: outSpot(2) })),
    w(1, fc.record({ k: fc.constant('captureStop' as const), via })),
    w(1, fc.record({ k: fc.constant('traceStart' as const), via, file: outSpot(2) })),
    w(1, fc.record({ k: fc.constant('traceStop' as const), via })),
    w(1, fc.record({ k: fc.constant('link' as const), via, host, up: fc.boolean() })),
    w(1, fc.record({ k: fc.constant('mtu' as const), via, host, mtu: fc.constantFrom(1500, 1500, 1400, 1280, 4000, 50) })),
    w(1, fc.record({ k: fc.constant('reset' as const), via, host })),
    w(3, fc.record({ k: fc.constant('read' as const), via, what: fc.nat(READS.length - 1), pick })),
  );
}

/** A step: one to `max` operations issued at once, each from its own client. */
export function batchArb(max: number): fc.Arbitrary<OpSpec[]> {
  return fc.array(opArb(), { minLength: 1, maxLength: max });
}

/** The spec as a short line (fast-check prints the failing sequence with these). */
export function specText(s: OpSpec): string {
  const { k, via: v, ...rest } = s;
  const args = Object.entries(rest)
    .map(([a, b]) => `${a}=${String(b)}`)
    .join(' ');
  return `${v === 'api' ? 'api:' : ''}${k}${args ? ` ${args}` : ''}`;
}
