/**
 * One simulation under the model test: a control socket served for it,
 * a directory for its files (with a directory, a FIFO and a file that is no
 * save image among them), the background stream, the model, and a step: the
 * operations of one batch issued at once, each answer judged against the
 * model, then the real state compared with the model. Teardown removes
 * everything the run made and checks that nothing is left.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { decodeSaveStream } from '@xsim/hypervisor';
import { Simulation, defaultTopology, devList, mgmtdevList, pluginList, serveControl, validateTopology, type ControlServer } from '@xsim/toolstack';
import type { ModelConfig, RuntimeMode } from './config.ts';
import type { Figures } from './figures.ts';
import { Model, compareWithModel, realInvariants, type PluginName } from './model.ts';
import { specText, type OpSpec } from './ops.ts';
import { refusalReason } from './refusals.ts';
import { resolve } from './resolve.ts';
import type { Ctx, Req } from './req.ts';
import { BackgroundStream } from './stream.ts';
import { diffHoldings, holdings, xenstoreDiff, xenstoreDomains, xenstorePaths, type Holdings } from './holdings.ts';

/** An answer (or none), how long it took, and when it came among its step's (`seq`: 0 first). */
type Outcome = ({ ok: true; value: unknown } | { ok: false; message: string } | { timeout: true }) & { ms?: number; seq?: number };

const FIXTURES = ['adir', 'fifo', 'junk.xsav'];

export class Env {
  readonly model: Model;
  readonly ctx: Ctx;
  private readonly stream: BackgroundStream;
  private baseline: Holdings = {};
  private baselinePaths = new Map<string, Set<string>>();
  private step = 0;
  /** Link operations so far (the stream relaxes its upper bound over a round one overlapped). */
  private linkOps = 0;
  /** The topology's guests other than the stream's ends, as they were: teardown makes them again. */
  private readonly others: { host: string; name: string; mac: string; ip: string; memPages: number }[];

  private constructor(
    readonly sim: Simulation,
    private readonly server: ControlServer,
    private readonly sockDir: string,
    readonly dir: string,
    readonly cfg: ModelConfig,
    private readonly fig: Figures,
    readonly mode: RuntimeMode,
    fifo: boolean,
    /** The simulation's last log lines (shown with a failure). */
    private readonly log: string[],
  ) {
    const t = sim.topology;
    this.model = new Model(
      t.hosts.map((h) => h.name),
      t.hosts.map((h) => h.dom0.ip),
      t.hosts[0].nic.mtu,
    );
    this.ctx = { dir, hosts: this.model.hosts, known: cfg.known, mtu: t.hosts[0].nic.mtu, fifo };
    this.others = t.hosts.flatMap((h) =>
      h.domUs.slice(1).map((d) => ({ host: h.name, name: d.name, mac: d.vifs[0].mac, ip: d.vifs[0].ip, memPages: d.memPages })),
    );
    this.stream = new BackgroundStream(
      sim,
      fig,
      () => [...this.model.link.values()].some((up) => !up),
      () => this.linkOps,
      mode === 'det' ? 0.5 : 50,
    );
  }

  /** A simulation of the default topology whose stream ends (a1, b1) have room for more vifs; the stream warmed up; the baseline taken. */
  static async start(mode: RuntimeMode, seed: number, cfg: ModelConfig, fig: Figures): Promise<Env> {
    const t = structuredClone(defaultTopology());
    for (const h of t.hosts) h.domUs[0].memPages = 4096;
    const lines: string[] = [];
    const log = (l: string) => {
      lines.push(l);
      if (lines.length > 300) lines.splice(0, 100);
    };
    const sim = await Simulation.start(validateTopology(t), { ...(mode === 'det' ? { deterministic: { seed } } : { pcpus: 2 }), log });
    const dir = mkdtempSync(join(tmpdir(), 'xsim-model-'));
    const sockDir = mkdtempSync(join(tmpdir(), 'xsim-model-sock-'));
    mkdirSync(join(dir, 'adir'));
    writeFileSync(join(dir, 'junk.xsav'), 'this is not a save image\n'.repeat(64));
    let fifo = true;
    try {
      execFileSync('mkfifo', [join(dir, 'fifo')]);
    } catch {
      fifo = false;
    }
    const server = await serveControl(sim, join(sockDir, 'ctl.sock'));
    const env = new Env(sim, server, sockDir, dir, cfg, fig, mode, fifo, lines);
    for (const d of await sim.listDomains()) {
      if (d.domid === 0) continue;
      const g = { host: d.host, name: d.name, domid: d.domid, memPages: d.memPages, vifs: d.vifs.map((v) => ({ handle: v.handle, mac: v.mac, ip: v.ip })) };
      env.model.add({ ...g, stable: d.name === 'a1' || d.name === 'b1', nextHandle: 1 }, 'topology');
    }
    // A round each way before the baseline: ARP entries, learnt MACs.
    const [a1, b1] = [
      { host: 'host-a', domain: 'a1' },
      { host: 'host-b', domain: 'b1' },
    ];
    await env.stream.round(a1, b1, 6001);
    await env.stream.round(b1, a1, 6002);
    env.baseline = await holdings(sim, cfg.known.has('probeNodes'));
    env.baselinePaths = xenstorePaths(sim);
    env.stream.start();
    return env;
  }

  get socket(): string {
    return this.server.path;
  }

  /** Answers within the real-time limit, or a timeout. */
  private answer(req: Req, order: { n: number }): Promise<Outcome> {
    const t0 = Date.now();
    return new Promise((res) => {
      const t = setTimeout(() => res({ timeout: true }), this.cfg.answerMs);
      // A handler that throws at once (before any await) is an answer too.
      Promise.resolve()
        .then(() => req.run({ sim: this.sim, socket: this.socket, answerMs: this.cfg.answerMs }))
        .then(
          (value) => {
            clearTimeout(t);
            res({ ok: true, value, ms: Date.now() - t0, seq: order.n++ });
          },
          (e: unknown) => {
            clearTimeout(t);
            res({ ok: false, message: e instanceof Error ? e.message : String(e), ms: Date.now() - t0, seq: order.n++ });
          },
        );
    });
  }

  /** One step: the operations at once, each judged, then the real state against the model. */
  async run(specs: OpSpec[]): Promise<void> {
    this.step++;
    this.fig.steps++;
    // A deterministic run goes through the API unless told otherwise (see config.ts detSocket).
    const viaApi = this.mode === 'det' && !this.cfg.detSocket;
    const reqs = specs.map((s) => resolve(viaApi ? { ...s, via: 'api' } : s, this.ctx, this.model));
    this.leaveOut(reqs);
    const uses = new Map<string, number>();
    for (const r of reqs) for (const k of new Set(r.keys)) uses.set(k, (uses.get(k) ?? 0) + 1);
    const contended = reqs.map((r) => r.keys.some((k) => (uses.get(k) ?? 0) > 1));
    const t0 = Date.now();
    const links = reqs.some((r) => r.kind === 'link' || r.kind === 'reset');
    if (links) this.linkOps++;
    const answered = { n: 0 };
    const outcomes = await Promise.all(reqs.map((r) => this.answer(r, answered)));
    if (links) this.linkOps++;
    const bad: string[] = [];
    const verified: Promise<string[]>[] = [];
    const saved = new Set<string>();
    // Into the model in the order the answers came: what one saw of another (a stop that made room for a start,
    // a save whose image a restore read, a vif added before a save) was done before it answered.
    const order = reqs.map((_r, i) => i).sort((a, b) => (outcomes[a].seq ?? Infinity) - (outcomes[b].seq ?? Infinity));
    for (const i of order) {
      const r = reqs[i];
      const o = outcomes[i];
      const strict = !contended[i] && !('either' in r.expect);
      if (contended[i]) this.fig.contended++;
      const where = `${r.via === 'api' ? 'api' : 'socket'}: ${r.label}`;
      if ('timeout' in o) {
        this.fig.op(r.kind, r.via, 'unanswered');
        bad.push(`${where}: no answer within ${this.cfg.answerMs} ms`);
      } else if (o.ok) {
        this.fig.op(r.kind, r.via, 'ok');
        if (strict && 'refuse' in r.expect) bad.push(`${where}: succeeded, but the model expected a refusal (${r.expect.refuse.map(String).join(' or ')})`);
        try {
          bad.push(...r.apply(this.model, o.value, strict).map((b) => `${where}: ${b}`));
        } catch (e) {
          bad.push(`${where}: ${(e as Error).message}`);
        }
        if (r.verify) verified.push(r.verify(o.value));
        if (r.kind === 'save') saved.add((o.value as { file: string }).file);
      } else {
        const reason = refusalReason(o.message);
        this.fig.op(r.kind, r.via, reason ? 'refused' : 'unclear', reason);
        if (!reason) bad.push(`${where}: failed without a clear refusal: ${o.message}`);
        else if (strict && 'ok' in r.expect) bad.push(`${where}: refused (${o.message}), but the model expected success`);
        else if (strict && 'refuse' in r.expect && !r.expect.refuse.some((re) => re.test(o.message)))
          bad.push(`${where}: refused for another reason than ${r.expect.refuse.map(String).join(' or ')}: ${o.message}`);
        r.refused?.(this.model, o.message);
      }
    }
    // An operation that did not answer may have left the simulation unable to answer anything (a deterministic
    // run stands still while a hold is pending): the step has failed, and the state is not asked for.
    if (outcomes.some((o) => 'timeout' in o)) throw new Error(this.failure(`step ${this.step}`, reqs, outcomes, bad));
    for (const v of await Promise.all(verified)) bad.push(...v);
    bad.push(...this.readImages(saved));
    const t1 = Date.now();
    bad.push(...(await this.sync()));
    if (this.cfg.verbose)
      console.log(
        `[${this.mode} step ${this.step}] ${Date.now() - t0} ms (sync ${Date.now() - t1} ms): ${reqs.map((r, i) => `${r.label} -> ${describe(outcomes[i])}`).join(' | ')}`,
      );
    if (bad.length) throw new Error(this.failure(`step ${this.step}`, reqs, outcomes, bad));
  }

  /** What an open defect keeps out of a step (config.ts KNOWN_DEFECTS): such an operation becomes a read. */
  private leaveOut(reqs: Req[]): void {
    const known = this.cfg.known;
    const others = (i: number, p: (o: Req) => boolean) => reqs.some((o, j) => j !== i && p(o));
    reqs.forEach((r, i) => {
      const out =
        // captureLeaving: a capture start beside an operation that takes a guest away.
        (!known.has('captureLeaving') && r.kind === 'captureStart' && others(i, (o) => o.takesAway === true)) ||
        // partialUnload: an unload from every host beside another plugin operation.
        (!known.has('partialUnload') && r.unloadsAll === true && others(i, (o) => o.keys.some((k) => k.startsWith('plugin:'))));
      if (out) reqs[i] = resolve({ k: 'read', via: r.via, what: 0, pick: 0 }, this.ctx, this.model);
    });
  }

  private failure(what: string, reqs: Req[], outcomes: Outcome[], bad: string[]): string {
    return [
      `${what} (${this.mode}) broke the model:`,
      ...bad.map((b) => `  - ${b}`),
      'operations of the step (issued at once):',
      ...reqs.map((r, i) => `  ${r.via}: ${r.label} -> ${describe(outcomes[i])}`),
      'last log lines:',
      ...this.log.slice(-25).map((l) => `  ${l}`),
    ].join('\n');
  }

  /** Images written this step, read back: whole, and holding the guest the model says (two saves to one file: the last rename won). */
  private readImages(files: Set<string>): string[] {
    const bad: string[] = [];
    for (const f of files) {
      try {
        const { dom } = decodeSaveStream(readFileSync(f), 1 << 20);
        const vifs = dom.vifs.map((v) => ({ handle: v.handle, mac: v.mac, ip: v.ip }));
        this.model.images.set(f, { name: dom.name, host: dom.from.host, memPages: dom.memPages, vifs, mtu: Math.max(0, ...dom.vifs.map((v) => v.mtu)) });
      } catch (e) {
        bad.push(`save image ${f} is not whole: ${(e as Error).message}`);
        this.model.images.delete(f);
      }
    }
    return bad;
  }

  /** The real state against the model, and the invariants that hold whatever the model says. */
  async sync(): Promise<string[]> {
    const m = this.model;
    const list = await this.sim.listDomains();
    const bad = [...realInvariants(list, m.dom0Ips), ...compareWithModel(m, list), ...this.stream.take()];
    const plugins = await pluginList(this.sim);
    for (const h of m.hosts) {
      const real = plugins
        .filter((p) => p.host === h)
        .map((p) => p.name)
        .sort();
      const want = [...m.plugins.get(h)!].sort();
      if (real.join() !== want.join()) bad.push(`${h} has plugins [${real.join(', ')}], the model says [${want.join(', ')}]`);
      m.plugins.set(h, new Set(real as PluginName[]));
    }
    for (const n of await mgmtdevList(this.sim)) {
      if ((n.link === 'up') !== m.link.get(n.host)) bad.push(`${n.host}'s link is ${n.link}, the model says ${m.link.get(n.host) ? 'up' : 'down'}`);
      if (n.mtu !== m.mtu.get(n.host)) bad.push(`${n.host}'s MTU is ${n.mtu}, the model says ${m.mtu.get(n.host)}`);
    }
    bad.push(...this.files(), ...xenstoreDomains(this.sim), ...(await this.devices()), ...(await this.ownViews()));
    return bad;
  }

  /** Each guest as it sees itself (its kernel's name, host, domid) and as xenstore has it (name, each vif's MAC): the model's. */
  private async ownViews(): Promise<string[]> {
    const bad: string[] = [];
    const tree = await this.sim.stats();
    for (const g of this.model.guests) {
      const at = `${g.host}/${g.name}`;
      const xs = this.sim.host(g.host).xenstore;
      const name = xs.read(0, `/local/domain/${g.domid}/name`);
      if (name !== g.name) bad.push(`${at} (domain ${g.domid}) is named ${JSON.stringify(name)} in xenstore`);
      for (const v of g.vifs) {
        const mac = xs.read(0, `/local/domain/${g.domid}/device/vif/${v.handle}/mac`);
        if (mac !== v.mac) bad.push(`${at}/vif${v.handle} has MAC ${v.mac}, but xenstore gives its frontend ${JSON.stringify(mac)}`);
      }
      const own = tree[`${g.host}/${g.name}`];
      if (own === undefined || 'error' in own || 'crashed' in own || 'hung' in own) bad.push(`${at} gave no counters: ${JSON.stringify(own)?.slice(0, 200)}`);
      else if (!('bridge' in own) && (own.name !== g.name || own.host !== g.host || own.domid !== g.domid))
        bad.push(`${at} (domain ${g.domid}) believes it is ${own.host}/${own.name} (domain ${own.domid})`);
    }
    return bad;
  }

  /** `dev list` (the guests' own view of their vifs, and xenstore's) names exactly the model's vifs, connected. */
  private async devices(): Promise<string[]> {
    const want = new Map<string, string>(
      this.model.guests.flatMap((g) => g.vifs.map((v): [string, string] => [`${g.host}/${g.name}/vif${v.handle}`, `${v.mac} ${v.ip}`])),
    );
    const bad: string[] = [];
    for (const d of await devList(this.sim)) {
      const w = want.get(d.dev);
      if (w === undefined) bad.push(`dev list shows ${d.dev} (${d.mac} ${d.ip}, state ${d.state}), which the model does not have`);
      else if (w !== `${d.mac} ${d.ip}`) bad.push(`dev list shows ${d.dev} as ${d.mac} ${d.ip}, the model says ${w}`);
      else if (d.state !== 4 || d.backendState !== 4) bad.push(`dev list shows ${d.dev} in state ${d.state}/${d.backendState}, not Connected`);
      want.delete(d.dev);
    }
    for (const dev of want.keys()) bad.push(`dev list does not show ${dev}`);
    return bad;
  }

  /** The directory holds the fixtures, the images and finished files the model knows, and a running capture's temporary file: nothing else. */
  private files(): string[] {
    const m = this.model;
    const want = new Set([...FIXTURES, ...[...m.images.keys(), ...m.finished].map((f) => basename(f))]);
    const bad: string[] = [];
    const have = new Set(readdirSync(this.dir));
    for (const f of have) {
      if (want.has(f)) continue;
      if (m.capture && f === `.${basename(m.capture)}.${process.pid}.partial`) continue;
      bad.push(`unexpected file ${join(this.dir, f)}`);
    }
    for (const f of want) if (!have.has(f) && !(f === 'fifo' && !this.ctx.fifo)) bad.push(`${join(this.dir, f)} is gone`);
    const inDir = readdirSync(join(this.dir, 'adir'));
    if (inDir.length) bad.push(`${this.dir}/adir now holds ${inDir.join(', ')}`);
    return bad;
  }

  /** A reader blocked on the FIFO fixture (defect restoreFifo) gets end of file, so the simulation can go down. */
  private releaseFifo(): void {
    if (!this.ctx.fifo) return;
    try {
      closeSync(openSync(join(this.dir, 'fifo'), constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: nobody is reading it.
    }
  }

  /** Everything the run made goes; then nothing may be left of it. */
  async teardown(): Promise<void> {
    const sim = this.sim;
    const m = this.model;
    const bad = await this.stream.stop();
    const must = async (what: string, p: Promise<unknown>) => {
      await p.catch((e: Error) => bad.push(`teardown: ${what} failed: ${e.message}`));
    };
    for (const f of [m.capture, m.trace]) if (f) m.finished.add(f);
    if (m.capture) await must('capture stop', sim.captureStop());
    if (m.trace) await must('trace stop', sim.traceStop());
    for (const h of m.hosts) {
      if (!m.link.get(h)) await must(`link up on ${h}`, sim.setLink(h, true));
      if (m.mtu.get(h) !== this.ctx.mtu) await must(`MTU ${this.ctx.mtu} on ${h}`, sim.setMtu(h, this.ctx.mtu));
    }
    for (const g of m.pool()) await must(`destroy ${g.host}/${g.name}`, sim.destroyDomain({ host: g.host, domain: g.name }));
    for (const g of m.all().filter((x) => x.stable))
      for (const v of g.vifs.filter((x) => x.handle !== 0))
        await must(`dev del ${g.host}/${g.name}/vif${v.handle}`, sim.delVif({ host: g.host, domain: g.name }, v.handle));
    for (const p of await pluginList(sim)) await must(`unload ${p.name} on ${p.host}`, sim.unloadPlugin(p.name, { host: p.host }));
    // The topology's other two guests again, as they were, so that everything counts as at the start.
    for (const d of this.others) await must(`create ${d.host}/${d.name}`, sim.createDomain(d.host, d.name, { mac: d.mac, ip: d.ip, memPages: d.memPages }));
    await sim.sleep(300);
    const list = await sim.listDomains();
    const names = list.filter((d) => d.domid !== 0).map((d) => `${d.host}/${d.name}`);
    if (names.sort().join() !== 'host-a/a1,host-a/a2,host-b/b1,host-b/b2') bad.push(`teardown: left running: ${names.join(', ')}`);
    const leaks = diffHoldings(this.baseline, await holdings(sim, this.cfg.known.has('probeNodes'))).map((d) => `leak: ${d}`);
    bad.push(...leaks);
    // Name what xenstore holds more (or less) than at the start.
    if (leaks.some((l) => l.includes('xenstore')))
      bad.push(
        ...xenstoreDiff(this.baselinePaths, xenstorePaths(sim))
          .slice(0, 12)
          .map((d) => `xenstore ${d}`),
      );
    bad.push(...xenstoreDomains(sim));
    for (const f of [...m.images.keys(), ...m.finished]) rmSync(f, { force: true });
    const left = readdirSync(this.dir).filter((f) => !FIXTURES.includes(f));
    if (left.length) bad.push(`files left: ${left.join(', ')}`);
    this.fig.leakChecks.runs++;
    if (bad.length) throw new Error(this.failure('teardown', [], [], bad));
    this.fig.leakChecks.clean++;
  }

  async close(): Promise<void> {
    this.stream.abandon();
    this.releaseFifo();
    await this.server.close().catch(() => {});
    await this.sim.shutdown().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.sockDir, { recursive: true, force: true });
  }
}

function describe(o: Outcome): string {
  const ms = o.ms === undefined ? '' : ` (${o.ms} ms)`;
  if ('timeout' in o) return 'NO ANSWER';
  if (o.ok) return `ok${ms}`;
  return `refused${ms}: ${o.message.split('\n').join(' ').slice(0, 160)}`;
}

export { specText };
