/**
 * `xsim mgmtdev|dev|plugin ...`: manage a simulation that `xsim run --serve`
 * keeps running, over its control socket. Human-readable tables by default,
 * -j for JSON, -p to pretty-print it.
 */
import { controlRequest, defaultSocketPath } from '@xsim/toolstack';
import type { Dev, MgmtDev, PluginView } from '@xsim/toolstack';
import { STATE_NAMES } from '@xsim/hypervisor';
import { resolve } from 'node:path';
import { intFlag, parseArgs } from '../args.ts';
import type { CaptureSummary } from '@xsim/toolstack';
import type { TraceSummary } from '@xsim/toolstack';
import { table } from '@xsim/toolstack';
import { DOMAIN_USAGE, domainCommand, migrationText } from './domain.ts';
import type { MigrationReport } from '@xsim/toolstack';

type Json = Record<string, unknown>;

const USAGE = `  mgmtdev list | show [NAME]          the NICs: alias, MAC, MTU, link, VIs in use, filters
  mgmtdev set DEV link up|down | mtu N | reset
                                      act on a NIC (DEV = its name or its host) as ip link / ethtool -r do
  dev list | show [DEV]               the guests' vifs (DEV = HOST/DOMAIN[/vifN]), as xl network-list: handle,
                                      backend, state, event channel, ring refs, backend path, accelerator
  dev stats show DEV                  a vif's counters, from netfront and from netback
  dev features show DEV               the feature-* keys both ends published in xenstore
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

/**
 * JSON as iproute2's vdpa prints it: one object keyed by the object type, each
 * device keyed by its name, snake_case attributes, states by name and number.
 */
export function vdpaMgmtdevs(list: MgmtDev[]): { mgmtdev: Record<string, Json> } {
  const o: Record<string, Json> = {};
  for (const m of list) o[m.name] = { host: m.host, alias: m.alias, mac: m.mac, mtu: m.mtu, link: m.link, max_vis: m.vis, vis_in_use: m.visInUse, vifs: m.vifs, vifs_free: m.vifsFree, filters: m.filters };
  return { mgmtdev: o };
}

export function vdpaDevs(list: Dev[]): { dev: Record<string, Json> } {
  const o: Record<string, Json> = {};
  for (const d of list)
    o[d.dev] = {
      domid: d.domid,
      handle: d.handle,
      backend_id: d.backendId,
      mac: d.mac,
      ip: d.ip,
      state: STATE_NAMES[d.state] ?? 'Unknown',
      state_num: d.state,
      backend_state: STATE_NAMES[d.backendState] ?? 'Unknown',
      backend_state_num: d.backendState,
      event_channel: d.evtchn,
      tx_ring_ref: d.txRingRef,
      rx_ring_ref: d.rxRingRef,
      backend_path: d.backendPath,
      accel: d.accel,
    };
  return { dev: o };
}

function flat(o: Json, prefix = ''): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) out.push(...flat(v as Json, key));
    else out.push([key, Array.isArray(v) ? JSON.stringify(v) : String(v)]);
  }
  return out;
}

/** Run one management command; returns what to print. */
export async function manageCommand(object: string, argv: string[]): Promise<string> {
  const p = parseArgs(argv, ['socket', 'host', 'args', 'mac', 'ip', 'mem', 'pcpu', 'to', 'file', 'snaplen', 'sample'], ['j', 'json', 'p', 'pretty', 'live']);
  const socket = typeof p.flags.get('socket') === 'string' ? String(p.flags.get('socket')) : defaultSocketPath();
  const json = p.flags.has('j') || p.flags.has('json') || p.flags.has('p') || p.flags.has('pretty');
  const pretty = p.flags.has('p') || p.flags.has('pretty');
  const [verb, ...rest] = p.positional;
  const call = (op: string, args: Json = {}) => controlRequest(socket, op, args);
  const out = (value: unknown, human: () => string) => (json ? JSON.stringify(value, null, pretty ? 2 : 0) : human());
  const host = typeof p.flags.get('host') === 'string' ? String(p.flags.get('host')) : undefined;

  if (object === 'domain') return domainCommand(verb, rest, p, call, out);
  if (object === 'migrate') {
    // xl migrate DOM HOST: here `xsim migrate HOST/NAME --to HOST2 [--live]`.
    const m = verb ? /^([^/]+)\/([^/]+)$/.exec(verb) : null;
    const to = p.flags.get('to');
    if (!m || typeof to !== 'string' || rest.length > 0) throw new Error('usage: xsim migrate HOST/NAME --to HOST2 [--live]');
    const r = (await call('domain.migrate', { host: m[1], domain: m[2], to, live: p.flags.has('live') })) as MigrationReport;
    return out(r, () => migrationText(r));
  }
  const key = `${object} ${verb ?? ''}`.trim();
  switch (key) {
    case 'mgmtdev list':
    case 'mgmtdev show': {
      const all = (await call('mgmtdev.list')) as MgmtDev[];
      const list = rest[0] ? all.filter((m) => m.name === rest[0] || m.host === rest[0]) : all;
      if (rest[0] && list.length === 0) throw new Error(`no management device "${rest[0]}" (have: ${all.map((m) => m.name).join(', ')})`);
      return out(vdpaMgmtdevs(list), () => table(['mgmtdev', 'host', 'alias', 'mac', 'mtu', 'link', 'VIs used', 'vifs', 'vifs free', 'filters'], list.map((m) => [m.name, m.host, m.alias, m.mac, m.mtu, m.link, `${m.visInUse}/${m.vis}`, m.vifs, m.vifsFree, m.filters])));
    }
    case 'mgmtdev set': {
      // vdpa dev set / ip link set style: mgmtdev set DEV link up|down | mtu N | reset
      const [name, attr, value, ...extra] = rest;
      const usage = 'usage: xsim mgmtdev set DEV link up|down | mtu N | reset';
      if (!name || !attr || extra.length > 0) throw new Error(usage);
      let args: Json;
      if (attr === 'link') {
        if (value !== 'up' && value !== 'down') throw new Error(`mgmtdev set: link is "up" or "down", got ${value === undefined ? 'nothing' : `"${value}"`}`);
        args = { dev: name, link: value };
      } else if (attr === 'mtu') {
        if (value === undefined || !/^\d+$/.test(value)) throw new Error(`mgmtdev set: mtu needs a number, got ${value === undefined ? 'nothing' : `"${value}"`}`);
        args = { dev: name, mtu: Number(value) };
      } else if (attr === 'reset') {
        if (value !== undefined) throw new Error(usage);
        args = { dev: name, reset: true };
      } else throw new Error(`mgmtdev set: unknown attribute "${attr}" (attributes: link, mtu, reset)`);
      const v = (await call('mgmtdev.set', args)) as { mgmtdev: string; host: string; done: string };
      return out(v, () => `${v.mgmtdev} (${v.host}): ${v.done}`);
    }
    case 'dev list':
    case 'dev show': {
      const all = (await call('dev.list')) as Dev[];
      const list = rest[0] ? all.filter((d) => d.dev === rest[0] || d.dev.startsWith(`${rest[0]}/`)) : all;
      if (rest[0] && list.length === 0) throw new Error(`no device "${rest[0]}" (have: ${all.map((d) => d.dev).join(', ')})`);
      // xl network-list's columns (Idx BE Mac state evt-ch tx-/rx-ring-ref BE-path), with the domain and accelerator.
      const st = (n: number) => STATE_NAMES[n] ?? String(n);
      return out(vdpaDevs(list), () =>
        table(
          ['dev', 'domid', 'Idx', 'BE', 'mac', 'ip', 'state', 'BE state', 'evt-ch', 'tx-/rx-ring-ref', 'BE-path', 'accel'],
          list.map((d) => [d.dev, d.domid, d.handle, d.backendId, d.mac, d.ip, `${d.state} ${st(d.state)}`, `${d.backendState} ${st(d.backendState)}`, d.evtchn ?? '-', `${d.txRingRef ?? '-'}/${d.rxRingRef ?? '-'}`, d.backendPath, d.accel ?? '-']),
        ),
      );
    }
    case 'dev stats':
    case 'dev features': {
      if (rest[0] !== 'show' || !rest[1]) throw new Error(`usage: xsim dev ${verb} show DEV`);
      const v = (await call(`dev.${verb}`, { dev: rest[1] })) as { dev: string; frontend: Json; backend: Json };
      return out(v, () => {
        const rows = [...flat(v.frontend).map(([k, x]) => ['netfront', k, x]), ...flat(v.backend).map(([k, x]) => ['netback', k, x])];
        return `${v.dev}\n` + table(['end', verb === 'stats' ? 'counter' : 'feature', 'value'], rows);
      });
    }
    case 'dev add': {
      // vdpa style: dev add HOST/DOMU [name vifN] [mac M] [ip A] [mtu N]
      const [target, ...kv] = rest;
      if (!target) throw new Error('usage: xsim dev add HOST/DOMU [name vifN] [mac M] [ip A] [mtu N]');
      const args: Json = { dev: target };
      for (let k = 0; k < kv.length; k += 2) {
        const key = kv[k];
        const value = kv[k + 1];
        if (!['name', 'mac', 'ip', 'mtu'].includes(key)) throw new Error(`dev add: unknown attribute "${key}" (attributes: name, mac, ip, mtu)`);
        if (value === undefined) throw new Error(`dev add: ${key} needs a value`);
        if (key === 'mtu') {
          if (!/^\d+$/.test(value)) throw new Error(`dev add: mtu "${value}" is not a number`);
          args.mtu = Number(value);
        } else args[key] = value;
      }
      const v = (await call('dev.add', args)) as { dev: string; mac: string; ip: string; mtu: number };
      return out(v, () => `${v.dev} added: mac ${v.mac} ip ${v.ip} mtu ${v.mtu}, connected`);
    }
    case 'dev del': {
      if (!rest[0]) throw new Error('usage: xsim dev del HOST/DOMU/vifN');
      const v = (await call('dev.del', { dev: rest[0] })) as { dev: string; forced: boolean };
      return out(v, () => `${v.dev} deleted${v.forced ? ' (its frontend did not close in time: forced)' : ''}`);
    }
    case 'plugin list': {
      const list = (await call('plugin.list')) as PluginView[];
      return out(list, () => (list.length ? table(['host', 'plugin', 'version', 'vifs', 'unloading'], list.map((x) => [x.host, x.name, x.version, x.vifs, x.unloading ? 'yes' : 'no'])) : 'no plugins loaded'));
    }
    case 'plugin load':
    case 'plugin unload': {
      if (!rest[0]) throw new Error(`usage: xsim plugin ${verb} NAME [--host H]`);
      let args: Json = {};
      const a = p.flags.get('args');
      if (typeof a === 'string') {
        try {
          args = JSON.parse(a) as Json;
        } catch (e) {
          throw new Error(`--args is not JSON: ${(e as Error).message}`);
        }
      }
      const v = await call(`plugin.${verb}`, verb === 'load' ? { name: rest[0], host, args } : { name: rest[0], host });
      return out(v, () => `plugin ${rest[0]} ${verb === 'load' ? 'loaded' : 'unloaded'}${host ? ` on ${host}` : ' on every host'}`);
    }
    case 'capture list': {
      const taps = (await call('capture.list')) as string[];
      return out(taps, () => taps.join('\n'));
    }
    case 'capture start': {
      if (!rest[0] || rest.length > 1) throw new Error('usage: xsim capture start SPEC[,SPEC...] [--file F] [--snaplen N]');
      // The simulation writes the file: a relative name is the caller's, made absolute here.
      const file = resolve(typeof p.flags.get('file') === 'string' ? String(p.flags.get('file')) : 'xsim.pcapng');
      const v = (await call('capture.start', { specs: rest[0].split(','), file, ...(p.flags.has('snaplen') ? { snaplen: intFlag(p, 'snaplen', 262_144, 14, 262_144) } : {}) })) as { file: string; interfaces: string[] };
      return out(v, () => `capturing at ${v.interfaces.length} tap point(s) into ${v.file}: ${v.interfaces.join(', ')}`);
    }
    case 'capture stop': {
      const v = (await call('capture.stop')) as CaptureSummary;
      return out(v, () => `${v.file}: ${v.bytes} octets\n` + table(['tap point', 'frames', 'of them drops', 'not kept (buffer full)'], v.interfaces.map((f) => [f.name, f.packets, f.drops, f.lost])));
    }
    case 'trace start': {
      if (rest.length) throw new Error('usage: xsim trace start [--file F] [--sample N]');
      const file = resolve(typeof p.flags.get('file') === 'string' ? String(p.flags.get('file')) : 'xsim-trace.json');
      const v = (await call('trace.start', { file, ...(p.flags.has('sample') ? { sample: intFlag(p, 'sample', 1024, 1, 1 << 30) } : {}) })) as { file: string };
      return out(v, () => `tracing every thread into ${v.file}`);
    }
    case 'trace stop': {
      const v = (await call('trace.stop')) as TraceSummary;
      return out(v, () => `${v.file}: ${v.events} events, ${v.frames} frame journeys (${v.hops} hops)${v.dropped ? `, ${v.dropped} events not kept` : ''}, ${v.bytes} octets; open it at ui.perfetto.dev`);
    }
    case 'shutdown':
      return out(await call('shutdown'), () => 'shutting down');
    default:
      throw new Error(`unknown command "xsim ${key}"\n${USAGE}`);
  }
}
