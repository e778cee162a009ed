/**
 * The operations that act on hosts rather than guests, made concrete as
 * resolve.ts makes the guests' ones: plugins (load, unload, swap), capture and
 * trace, the NIC's link, MTU and reset, and the read-only views.
 */
// Read synchronously: in a deterministic run an awaited read waits for the scheduler's next look at the event loop.
import { readFileSync } from 'node:fs';
import { readPcapng } from '@xsim/hypervisor';
import { devFeatures, devList, devStats, manageRequest, mgmtdevList, pluginList, type Simulation } from '@xsim/toolstack';
import { VIF_ACCELS, type Model, type PluginName } from './model.ts';
import { CAPTURE_SPECS, READS, type OpSpec, type Via } from './ops.ts';
import { expectOf, hostName, outPath, target, type Ctx, type Exec, type Req } from './req.ts';

type PluginSpec = Extract<OpSpec, { k: 'pluginLoad' | 'pluginUnload' | 'pluginSwap' }>;
type ObserverSpec = Extract<OpSpec, { k: 'captureStart' | 'captureStop' | 'traceStart' | 'traceStop' }>;
type NicSpec = Extract<OpSpec, { k: 'link' | 'mtu' | 'reset' }>;

/** firewall vetoes nothing the run sends (port 7): it only makes every frame pass an intercept. */
const ARGS: Record<PluginName, Record<string, unknown> | undefined> = { vnic: undefined, null: undefined, firewall: { rules: [{ proto: 17, dstPort: 7 }] } };
/** Events a trace keeps per thread through the API (the socket's trace.start takes no limit: a million): small, so that stopping one is quick. */
const TRACE_LIMIT = 20_000;
const NO_HOST = /no host "?host-z"? \(hosts: |no management device "host-z" \(have: /;

function pluginCall(x: Exec, via: Via, load: boolean, name: PluginName, host: string | undefined): Promise<unknown> {
  const args = ARGS[name];
  if (via === 'api') return load ? x.sim.loadPlugin(name, { host, ...(args ? { args } : {}) }) : x.sim.unloadPlugin(name, { host });
  const h = host === undefined ? {} : { host };
  return load
    ? manageRequest(x.socket, 'plugin.load', { name, ...h, ...(args ? { args } : {}) }, x.answerMs)
    : manageRequest(x.socket, 'plugin.unload', { name, ...h }, x.answerMs);
}

/** Why `load`ing (or unloading) `name` on `h` must be refused, if it must. */
function pluginRefusal(c: Ctx, m: Model, load: boolean, name: PluginName, h: string): RegExp | undefined {
  if (!c.hosts.includes(h)) return NO_HOST;
  const p = m.plugins.get(h)!;
  if (!load) return p.has(name) ? undefined : new RegExp(`plugin ${name} is not loaded`);
  if (p.has(name)) return new RegExp(`plugin ${name} is already loaded`);
  if (VIF_ACCELS.includes(name) && [...p].some((x) => VIF_ACCELS.includes(x))) return /another vif accelerator is loaded \(/;
  return undefined;
}

function pluginSwap(s: Extract<OpSpec, { k: 'pluginSwap' }>, c: Ctx, m: Model): Req {
  const h = hostName(c, s.host);
  const cur = [...(m.plugins.get(h) ?? [])].find((x) => VIF_ACCELS.includes(x));
  const steps: [boolean, PluginName][] = !c.hosts.includes(h)
    ? [[true, 'vnic']]
    : cur
      ? [
          [false, cur],
          [true, cur === 'vnic' ? 'null' : 'vnic'],
        ]
      : [[true, 'vnic']];
  let done = 0;
  const into = (model: Model, n: number) => {
    for (const [load, name] of steps.slice(0, n)) {
      const set = model.plugins.get(h)!;
      if (load) set.add(name);
      else set.delete(name);
    }
  };
  return {
    kind: 'pluginSwap',
    via: s.via,
    label: `plugin swap on ${h}: ${steps.map(([l, n]) => `${l ? 'load' : 'unload'} ${n}`).join(', then ')}`,
    keys: [`plugin:${h}`],
    expect: c.hosts.includes(h) ? { ok: true } : { refuse: [NO_HOST] },
    async run(x) {
      const out: unknown[] = [];
      for (const [load, name] of steps) {
        out.push(await pluginCall(x, s.via, load, name, h));
        done++;
      }
      return out;
    },
    apply(model) {
      into(model, steps.length);
      return [];
    },
    refused(model) {
      into(model, done);
    },
  };
}

export function resolvePlugin(s: PluginSpec, c: Ctx, m: Model): Req {
  if (s.k === 'pluginSwap') return pluginSwap(s, c, m);
  const load = s.k === 'pluginLoad';
  let hosts = s.host === null ? [...c.hosts] : [hostName(c, s.host)];
  let reasons = hosts.map((h) => pluginRefusal(c, m, load, s.plugin, h));
  let host = s.host === null ? undefined : hosts[0];
  if (!load && host === undefined && reasons.some((r) => r) && reasons.some((r) => !r) && !c.known.has('partialUnload')) {
    // Defect partialUnload: from every host at once, a refusal on one host leaves the plugin unloaded on the hosts
    // before it. Left out unless asked for: the operation names the first host where it can succeed. (A load on
    // every host is all or nothing since ec8d4dd: refused, it leaves no host changed.)
    host = hosts[reasons.findIndex((r) => !r)];
    hosts = [host];
    reasons = hosts.map((h) => pluginRefusal(c, m, load, s.plugin, h));
  }
  return {
    kind: s.k,
    via: s.via,
    label: `plugin ${load ? 'load' : 'unload'} ${s.plugin} on ${host ?? 'every host'}`,
    unloadsAll: !load && host === undefined,
    keys: hosts.map((h) => `plugin:${h}`),
    expect: expectOf(reasons),
    run: (x) => pluginCall(x, s.via, load, s.plugin, host),
    apply(model) {
      for (const h of hosts) {
        if (load) model.plugins.get(h)!.add(s.plugin);
        else model.plugins.get(h)!.delete(s.plugin);
      }
      return [];
    },
  };
}

interface CaptureReply {
  file: string;
  interfaces: { name: string; packets: number }[];
}

export function resolveObserver(s: ObserverSpec, c: Ctx, m: Model): Req {
  const capture = s.k === 'captureStart' || s.k === 'captureStop';
  const what = capture ? 'capture' : 'trace';
  const busy = capture ? m.capture : m.trace;
  if (s.k === 'captureStart' || s.k === 'traceStart') {
    const out = capture ? outPath(c, s.file, 'cap', '.pcapng') : outPath(c, s.file, 'tr', '.json');
    const specs = s.k === 'captureStart' ? CAPTURE_SPECS[s.specs] : [];
    const reasons = [busy === null ? undefined : new RegExp(`${what}: already ${capture ? 'capturing' : 'tracing'} into `), out.refuse];
    if (specs.some((x) => x.startsWith('host-z'))) reasons.push(/capture: no tap point matches "host-z\/\*"/);
    return {
      kind: s.k,
      via: s.via,
      label: `${what} start ${specs.join(',')} into ${out.file}`.replace('  ', ' '),
      keys: [what, `file:${out.file}`],
      expect: expectOf(reasons),
      run: (x) =>
        capture
          ? s.via === 'socket'
            ? manageRequest(x.socket, 'capture.start', { specs, file: out.file, snaplen: 128 }, x.answerMs)
            : x.sim.captureStart(specs, { file: out.file, snaplen: 128 })
          : s.via === 'socket'
            ? manageRequest(x.socket, 'trace.start', { file: out.file, sample: 64 }, x.answerMs)
            : x.sim.traceStart({ file: out.file, sample: 64, limit: TRACE_LIMIT }),
      apply(model, value) {
        if (capture) model.capture = out.file;
        else model.trace = out.file;
        const v = value as { file: string };
        return v.file === out.file ? [] : [`${what} start into ${out.file} answered ${v.file}`];
      },
    };
  }
  return {
    kind: s.k,
    via: s.via,
    label: `${what} stop${busy ? ` (${busy})` : ''}`,
    keys: [what],
    expect: expectOf([busy === null ? new RegExp(`${what}: not ${capture ? 'capturing' : 'tracing'}`) : undefined]),
    run: (x) =>
      capture
        ? s.via === 'socket'
          ? manageRequest(x.socket, 'capture.stop', {}, x.answerMs)
          : x.sim.captureStop()
        : s.via === 'socket'
          ? manageRequest(x.socket, 'trace.stop', {}, x.answerMs)
          : x.sim.traceStop(),
    apply(model, value) {
      // By the file it names: a start of the same step may already have begun the next one.
      const { file } = value as { file: string };
      if (file !== busy) return [`${what} stop finished ${file}, but the model had ${busy ?? 'nothing'} running`];
      if (capture && model.capture === file) model.capture = null;
      if (!capture && model.trace === file) model.trace = null;
      model.finished.add(file);
      return [];
    },
    verify: (value) => (capture ? verifyCapture(value as CaptureReply) : verifyTrace(value as { file: string; events: number })),
  };
}

/** A finished capture is a whole pcapng file: the interfaces and packet counts its summary gave. */
async function verifyCapture(v: CaptureReply): Promise<string[]> {
  try {
    const f = readPcapng(readFileSync(v.file));
    const bad: string[] = [];
    const names = (xs: { name: string }[]) => xs.map((i) => i.name).sort();
    if (JSON.stringify(names(f.interfaces)) !== JSON.stringify(names(v.interfaces)))
      bad.push(`capture ${v.file}: interfaces ${names(f.interfaces).join(',')} in the file, ${names(v.interfaces).join(',')} in the summary`);
    const n = v.interfaces.reduce((a, i) => a + i.packets, 0);
    if (f.packets.length !== n) bad.push(`capture ${v.file}: ${f.packets.length} packets in the file, ${n} in the summary`);
    return bad;
  } catch (e) {
    return [`capture ${v.file} is not a whole pcapng file: ${(e as Error).message}`];
  }
}

/** A finished trace is whole JSON with as many events as its summary says. */
async function verifyTrace(v: { file: string; events: number }): Promise<string[]> {
  try {
    const t = JSON.parse(readFileSync(v.file, 'utf8')) as { traceEvents: unknown[] };
    return t.traceEvents.length === v.events ? [] : [`trace ${v.file}: ${t.traceEvents.length} events in the file, ${v.events} in the summary`];
  } catch (e) {
    return [`trace ${v.file} is not whole JSON: ${(e as Error).message}`];
  }
}

export function resolveNic(s: NicSpec, c: Ctx): Req {
  const h = hostName(c, s.host);
  const reasons = [c.hosts.includes(h) ? undefined : NO_HOST];
  if (s.k === 'mtu' && s.mtu > 1500) reasons.push(new RegExp(`refused MTU ${s.mtu}`));
  if (s.k === 'mtu' && s.mtu < 68) reasons.push(/MTU must be an integer from 68 to 9000/);
  const what = s.k === 'link' ? `link ${s.up ? 'up' : 'down'}` : s.k === 'mtu' ? `mtu ${s.mtu}` : 'reset';
  const call = (sim: Simulation) => (s.k === 'link' ? sim.setLink(h, s.up) : s.k === 'mtu' ? sim.setMtu(h, s.mtu) : sim.nicReset(h));
  const args = s.k === 'link' ? { link: s.up ? ('up' as const) : ('down' as const) } : s.k === 'mtu' ? { mtu: s.mtu } : { reset: true as const };
  return {
    kind: s.k,
    via: s.via,
    label: `mgmtdev set ${h} ${what}`,
    keys: [`nic:${h}`, ...(s.k === 'mtu' ? [`mtu:${h}`] : [])],
    expect: expectOf(reasons),
    run: (x) => (s.via === 'socket' ? manageRequest(x.socket, 'mgmtdev.set', { dev: h, ...args }, x.answerMs) : call(x.sim)),
    apply(model) {
      if (s.k === 'link') model.link.set(h, s.up);
      if (s.k === 'mtu') model.mtu.set(h, s.mtu);
      return [];
    },
  };
}

export function resolveRead(s: Extract<OpSpec, { k: 'read' }>, c: Ctx, m: Model): Req {
  const what = READS[s.what];
  const t = target(c, m, s.pick, true);
  const dev = `${t.host}/${t.name}/vif${t.g?.vifs[0]?.handle ?? 0}`;
  const ofDev = what === 'dev.stats' || what === 'dev.features';
  const noVif = ofDev && t.g !== undefined && t.g.vifs.length === 0;
  const run = (x: Exec): Promise<unknown> => {
    const sock = s.via === 'socket';
    switch (what) {
      case 'domain.list':
        return sock ? manageRequest(x.socket, what, {}, x.answerMs) : x.sim.listDomains();
      case 'dev.list':
        return sock ? manageRequest(x.socket, what, {}, x.answerMs) : devList(x.sim);
      case 'plugin.list':
        return sock ? manageRequest(x.socket, what, {}, x.answerMs) : pluginList(x.sim);
      case 'mgmtdev.list':
        return sock ? manageRequest(x.socket, what, {}, x.answerMs) : mgmtdevList(x.sim);
      case 'capture.list':
        return sock ? manageRequest(x.socket, what, {}, x.answerMs) : x.sim.captureTaps();
      case 'dev.stats':
        return sock ? manageRequest(x.socket, what, { dev }, x.answerMs) : devStats(x.sim, dev);
      case 'dev.features':
        return sock ? manageRequest(x.socket, what, { dev }, x.answerMs) : Promise.resolve(devFeatures(x.sim, dev));
    }
  };
  return {
    kind: 'read',
    via: s.via,
    label: `${what}${ofDev ? ` ${dev}` : ''}`,
    keys: ofDev ? [`guest:${t.host}/${t.name}`] : [],
    expect: noVif ? { either: `${t.host}/${t.name} has no vif` } : expectOf(ofDev ? [t.refuse] : []),
    run,
    apply: () => [],
  };
}
