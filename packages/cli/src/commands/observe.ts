/** `xsim capture list|start|stop` and `xsim trace start|stop`: pcapng capture and Perfetto traces of a running simulation. */
import { resolve } from 'node:path';
import { table } from '@xsim/toolstack';
import { intFlag } from '../args.ts';
import type { ManageVerb } from './manage-verb.ts';

const captureList: ManageVerb = async ({ call, out }) => {
  const taps = await call('capture.list');
  return out(taps, () => taps.join('\n'));
};

const captureStart: ManageVerb = async ({ p, rest, call, out }) => {
  if (!rest[0] || rest.length > 1) throw new Error('usage: xsim capture start SPEC[,SPEC...] [--file F] [--snaplen N]');
  // The simulation writes the file: a relative name is the caller's, made absolute here.
  const file = resolve(typeof p.flags.get('file') === 'string' ? String(p.flags.get('file')) : 'xsim.pcapng');
  const v = (await call('capture.start', {
    specs: rest[0].split(','),
    file,
    ...(p.flags.has('snaplen') ? { snaplen: intFlag(p, 'snaplen', 262_144, 14, 262_144) } : {}),
  })) as { file: string; interfaces: string[] };
  return out(v, () => `capturing at ${v.interfaces.length} tap point(s) into ${v.file}: ${v.interfaces.join(', ')}`);
};

const captureStop: ManageVerb = async ({ call, out }) => {
  const v = await call('capture.stop');
  return out(
    v,
    () =>
      `${v.file}: ${v.bytes} octets\n` +
      table(
        ['tap point', 'frames', 'of them drops', 'not kept (buffer full)'],
        v.interfaces.map((f) => [f.name, f.packets, f.drops, f.lost]),
      ),
  );
};

const traceStart: ManageVerb = async ({ p, rest, call, out }) => {
  if (rest.length) throw new Error('usage: xsim trace start [--file F] [--sample N]');
  const file = resolve(typeof p.flags.get('file') === 'string' ? String(p.flags.get('file')) : 'xsim-trace.json');
  const v = await call('trace.start', { file, ...(p.flags.has('sample') ? { sample: intFlag(p, 'sample', 1024, 1, 1 << 30) } : {}) });
  return out(v, () => `tracing every thread into ${v.file}`);
};

const traceStop: ManageVerb = async ({ call, out }) => {
  const v = await call('trace.stop');
  return out(
    v,
    () =>
      `${v.file}: ${v.events} events, ${v.frames} frame journeys (${v.hops} hops)${v.dropped ? `, ${v.dropped} events not kept` : ''}, ${v.bytes} octets; open it at ui.perfetto.dev`,
  );
};

/** capture VERB -> its handler. */
export const CAPTURE_VERBS: Record<string, ManageVerb> = {
  list: captureList,
  start: captureStart,
  stop: captureStop,
};

/** trace VERB -> its handler. */
export const TRACE_VERBS: Record<string, ManageVerb> = {
  start: traceStart,
  stop: traceStop,
};
