/**
 * `xsim mgmtdev|dev|domain|migrate|plugin|capture|trace|shutdown ...`: manage a
 * simulation that `xsim run --serve` keeps running, over its control socket.
 * One table maps OBJECT and VERB to a handler (as xl_cmdtable.c does); each
 * handler parses what is left, calls the toolstack's op, and formats.
 * Human-readable tables by default, -j for JSON, -p to pretty-print it.
 */
import { defaultSocketPath, manageRequest } from '@xsim/toolstack';
import { parseArgs } from '../args.ts';
import { DEV_VERBS } from './dev.ts';
import { DOMAIN_USAGE, DOMAIN_VERBS, migrationText } from './domain.ts';
import type { ManageVerb } from './manage-verb.ts';
import { MGMTDEV_VERBS } from './mgmtdev.ts';
import { CAPTURE_VERBS, TRACE_VERBS } from './observe.ts';
import { PLUGIN_VERBS } from './plugin.ts';

const USAGE = `  mgmtdev list | show [NAME]          the NICs: alias, MAC, MTU, link, VIs in use, filters
  mgmtdev set DEV link up|down | mtu N | reset
                                      act on a NIC (DEV = its name or its host) as ip link / ethtool -r do
  dev list | show [DEV]               the guests' vifs (DEV = HOST/DOMAIN[/vifN]), as xl network-list: handle,
                                      backend, state, event channel, ring refs, backend path, accelerator
  dev stats show DEV [qidx N]         a vif's counters, from netfront and from netback; with qidx, queue N's own
                                      (as vdpa dev vstats show ... qidx N)
  dev features show DEV               the feature-* keys both ends published in xenstore
  dev set DEV [rate RATE|unlimited] [max-filters N] [max-buf-pages N] [csum on|off] [gso on|off]
                                      a vif's rate limit (xl's rate=, e.g. 10Mb/s@20ms: netback applies it at once),
                                      accelerator limits (xenstore limits/*: vnic applies them at once) and
                                      checksum and TCP segmentation offloads (as ethtool -K in the guest:
                                      the vif reconnects)
  dev add HOST/DOMU [name vifN] [mac M] [ip A] [mtu N]
                                      hotplug a vif: the full xenbus handshake, connected when it returns
  dev del HOST/DOMU/vifN              unplug it: the backend closes, the frontend follows, the vif is gone
${DOMAIN_USAGE}
  capture list                        the tap points a capture can name
  capture start SPEC[,SPEC...] [--file F] [--snaplen N]
                                      capture there into one pcapng file (default xsim.pcapng): a tap
                                      point, a glob (host-a/*) or a host; points that appear later too
  capture stop                        finish the file: frames per tap point, drops, frames not kept
  trace start [--file F] [--sample N] trace every thread into a Chrome/Perfetto JSON file (default
                                      xsim-trace.json), with every Nth frame's journey (default 1024)
  trace stop                          write it: events, frame journeys, events not kept
  plugin list                         accelerator plugins loaded, per host
  plugin load NAME [--host H] [--args JSON]
  plugin unload NAME [--host H]
      --socket PATH                   the simulation's control socket (default $XSIM_SOCKET or ${defaultSocketPath()})
      -j, -p                          JSON output (-p: pretty)`;

export const MANAGE_USAGE = USAGE;

/** xl migrate DOM HOST: here `xsim migrate HOST/NAME --to HOST2 [--live]`. */
const migrate: ManageVerb = async ({ p, verb, rest, call, out }) => {
  const m = verb ? /^([^/]+)\/([^/]+)$/.exec(verb) : null;
  const to = p.flags.get('to');
  if (!m || typeof to !== 'string' || rest.length > 0) throw new Error('usage: xsim migrate HOST/NAME --to HOST2 [--live]');
  const r = await call('domain.migrate', { host: m[1], domain: m[2], to, live: p.flags.has('live') });
  return out(r, () => migrationText(r));
};

const shutdown: ManageVerb = async ({ call, out }) => out(await call('shutdown'), () => 'shutting down');

/**
 * OBJECT -> its verbs, or (for commands with no verb: `migrate`, `shutdown`) one
 * handler that takes the first positional as its argument.
 */
const OBJECTS: Record<string, Record<string, ManageVerb> | ManageVerb> = {
  mgmtdev: MGMTDEV_VERBS,
  dev: DEV_VERBS,
  domain: DOMAIN_VERBS,
  migrate,
  plugin: PLUGIN_VERBS,
  capture: CAPTURE_VERBS,
  trace: TRACE_VERBS,
  shutdown,
};

/** The objects `xsim` hands to manageCommand. */
export const MANAGE_OBJECTS: readonly string[] = Object.keys(OBJECTS);

const VALUED = ['socket', 'host', 'args', 'mac', 'ip', 'mem', 'pcpu', 'to', 'file', 'snaplen', 'sample'];
const BOOLEANS = ['j', 'json', 'p', 'pretty', 'live'];

/** Run one management command; returns what to print. */
export async function manageCommand(object: string, argv: string[]): Promise<string> {
  const p = parseArgs(argv, VALUED, BOOLEANS);
  const socket = typeof p.flags.get('socket') === 'string' ? String(p.flags.get('socket')) : defaultSocketPath();
  const json = p.flags.has('j') || p.flags.has('json') || p.flags.has('p') || p.flags.has('pretty');
  const pretty = p.flags.has('p') || p.flags.has('pretty');
  const [verb = '', ...rest] = p.positional;
  const entry = OBJECTS[object];
  const handler = typeof entry === 'function' ? entry : entry?.[verb];
  if (!handler) {
    const usage = object === 'domain' ? DOMAIN_USAGE : USAGE;
    throw new Error(`unknown command "xsim ${`${object} ${verb}`.trim()}"\n${usage}`);
  }
  return handler({
    p,
    verb,
    rest,
    call: (op, ...args) => manageRequest(socket, op, args[0] ?? ({} as never)),
    out: (value: unknown, human: () => string) => (json ? JSON.stringify(value, null, pretty ? 2 : 0) : human()),
    host: typeof p.flags.get('host') === 'string' ? String(p.flags.get('host')) : undefined,
  });
}
