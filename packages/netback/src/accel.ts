/**
 * netback's accelerator plugin manager (one per dom0). Loads plugin backend
 * modules at run time (by URL: the toolstack resolves names), matches them to
 * this host's NIC by alias, registers them with driverlink, attaches every
 * connected vif to a plugin with the "vif" feature, routes each vif's plugin
 * channel, and unloads cleanly: a plugin in use is reference-counted by its
 * attached vifs and only goes once each has detached (the frontend drained and
 * fell back to the slow path).
 *
 * A plugin that throws from any hook is a broken plugin, never a crash of
 * dom0: it is failed as a whole. The manager stops calling it, releases what
 * it held through its context (its VIs, whose teardown makes the NIC count
 * any frame still on them, and its grant mappings), tells each of its vifs'
 * frontends it is detached so they fall back to the slow path, and reports
 * the hook and the error in its stats and log. An unload that a plugin never
 * completes (its detachVif never calls ctx.detached) is bounded the same way:
 * after UNLOAD_DETACH_MS the plugin is removed by force, naming the vifs.
 */
import { importModule, logWarn, tracer, type RpcEndpoint, type RpcValue, type ToFrontendChannel } from '@xsim/hypervisor';
import {
  ACCEL_MIGRATION_ARCS,
  type AccelBackend,
  type AccelBackendContext,
  type AccelMigrationState,
  type AccelVif,
  type BackendModule,
  type PluginManifest,
} from './accel-api.ts';
import { CHANNEL_OP, PLUGIN_API_VERSION, messageProblem } from './plugin-protocol.ts';
import { admitBackend, admitPlugin } from './accel-admit.ts';
import { releaseHeld, trackedContext, type Held } from './accel-held.ts';
import {
  ACCEL_MANAGER_COUNTERS,
  UNLOAD_DETACH_MS,
  type AccelManagerDeps,
  type LoadedPlugin,
  type MigratedOut,
  type PluginFailure,
  type VifChannel,
} from './accel-manager-types.ts';

export { ACCEL_MANAGER_COUNTERS, UNLOAD_DETACH_MS, type AccelManagerDeps, type LoadedPlugin, type MigratedOut, type PluginFailure, type VifChannel };

export class AccelManager {
  readonly plugins = new Map<string, LoadedPlugin>();
  /** Plugins whose backend module is being imported: reserved by name until it loads or fails. */
  private readonly loading = new Set<string>();
  private readonly channels = new Map<string, VifChannel>();
  private readonly connected = new Set<string>();
  private readonly held = new Map<string, Held>();
  readonly failures: PluginFailure[] = [];
  /** Attachments failed by one vif's input, newest last. */
  readonly vifFailureLog: { vif: string; plugin: string; reason: string }[] = [];
  readonly c = ACCEL_MANAGER_COUNTERS.zero();
  /** Vifs in a migration, by key: where they are on the VFIO arcs, and every move (logged). */
  private readonly migration = new Map<
    string,
    { state: AccelMigrationState; restore?: { plugin: string; state: unknown }; left?: (r: MigratedOut) => void; out?: MigratedOut }
  >();
  readonly migrationLog: string[] = [];

  constructor(private readonly d: AccelManagerDeps) {
    d.driverlink.onFailure = (drv, hook, e) => {
      const p = [...this.plugins.values()].find((x) => x.backend === drv);
      if (p) this.fail(p, hook, e);
    };
  }

  private context(name: string): AccelBackendContext {
    const held: Held = { vis: new Set(), handles: new Set(), filters: new Map() };
    this.held.set(name, held);
    return trackedContext(this.d.ctx, name, held, {
      send: (vif, op, args, shared) => this.channels.get(vif.key)?.rpc.event(op, { plugin: name, ...args }, shared),
      detached: (vif) => this.detached(name, vif),
    });
  }

  /** Call into a plugin's backend; if it throws, fail the plugin and carry on with `fallback`. */
  private call<T>(p: LoadedPlugin, hook: string, fn: (b: AccelBackend) => T, fallback: T): T {
    if (this.plugins.get(p.manifest.name) !== p) return fallback;
    try {
      return fn(p.backend);
    } catch (e) {
      this.fail(p, hook, e instanceof Error ? e : new Error(String(e)));
      return fallback;
    }
  }

  /** Take a broken plugin out: nothing of it stays in the data path, and its vifs go back to the slow path. */
  private fail(p: LoadedPlugin, hook: string, e: Error): void {
    const name = p.manifest.name;
    if (this.plugins.get(name) !== p) return;
    this.d.ctx.log(logWarn(`accel: plugin ${name} failed in ${hook}: ${e.message}; unloaded, its vifs are back on the slow path`));
    this.drop(p, hook, e.message);
    p.unloading?.done(`plugin ${name} failed in ${hook}: ${e.message}`);
  }

  /** Remove a plugin by force (recorded as a failure in `hook`): off driverlink, what it held released, its vifs told they are detached. Returns the VIs released. */
  private drop(p: LoadedPlugin, hook: string, error: string): number {
    const name = p.manifest.name;
    this.plugins.delete(name);
    this.failures.push({ plugin: name, hook, error });
    if (this.failures.length > 50) this.failures.shift();
    this.d.driverlink.unregister(p.backend);
    const held = this.held.get(name);
    this.held.delete(name);
    const vis = held ? releaseHeld(this.d.ctx, held, name) : 0;
    for (const key of [...p.vifs]) {
      const ch = this.channels.get(key);
      if (ch) this.release(name, ch);
      p.vifs.delete(key);
      this.leftSource(key);
      this.onDetached();
    }
    return vis;
  }

  addChannel(vif: AccelVif, rpc: RpcEndpoint<ToFrontendChannel>): void {
    const ch: VifChannel = { vif, rpc };
    this.channels.set(vif.key, ch);
    rpc.onEvent((op, args, shared) => {
      if (tracer.on) tracer.instant(`accel channel: ${op} (from frontend)`, { vif: vif.key });
      this.fromFrontend(ch, op, (args ?? {}) as Record<string, unknown>, shared);
    });
  }

  channelKeys(): string[] {
    return [...this.channels.keys()];
  }

  /** The vif's domain is gone: its plugin lets go of it (as for a disconnect), and its channel closes. */
  removeChannel(key: string): void {
    this.migration.delete(key);
    const ch = this.channels.get(key);
    if (!ch) return;
    if (this.connected.has(key)) this.vifDisconnected(key);
    if (ch.plugin) this.detached(ch.plugin, ch.vif);
    this.channels.delete(key);
    ch.rpc.close();
  }

  poll(): number {
    let n = 0;
    for (const ch of this.channels.values()) n += ch.rpc.poll();
    // An unload past its bound is forced (a Map's iteration survives the deletion).
    for (const p of this.plugins.values()) if (p.unloading && this.d.clock.now() >= p.unloading.deadline) n += this.forceUnload(p);
    return n;
  }

  /** Unloads in progress: the next one's bound (dom0's clock), or Infinity. dom0 wakes for it. */
  nextDeadline(): number {
    let t = Infinity;
    for (const p of this.plugins.values()) if (p.unloading && p.unloading.deadline < t) t = p.unloading.deadline;
    return t;
  }

  /**
   * The plugin was asked to detach its vifs and, UNLOAD_DETACH_MS later, some
   * are still its: its detachVif never called ctx.detached for them. It is
   * removed by force (as a failed plugin) and the unload fails, naming them.
   */
  private forceUnload(p: LoadedPlugin): number {
    const name = p.manifest.name;
    const vifs = [...p.vifs].map((k) => `vif${k.replace('/', '.')}`).join(', ');
    const vis = this.drop(p, 'detachVif', `never called ctx.detached(vif) for ${vifs} within ${UNLOAD_DETACH_MS} ms of detachVif`);
    const msg =
      `plugin ${name}: unload gave up after ${UNLOAD_DETACH_MS} ms: ${vifs} never detached (detachVif was called for each, and the plugin never ` +
      `called ctx.detached(vif)); removed by force: those vifs are back on the slow path and the ${vis} VI(s) it held are released`;
    this.d.ctx.log(logWarn(`accel: ${msg}`));
    p.unloading?.done(msg);
    return 1;
  }

  /** Load a plugin; `done` is called once it is bound to the NIC and offered to every vif. */
  load(
    name: string,
    backendUrl: string,
    frontendUrl: string | undefined,
    args: Record<string, unknown>,
    done: (result: RpcValue, error?: string) => void,
  ): void {
    if (this.plugins.has(name)) return done(undefined, `plugin ${name} is already loaded`);
    // Reserved across the import: a second load of the same plugin meanwhile is refused in these words, not by driverlink's.
    if (this.loading.has(name)) return done(undefined, `plugin ${name} is already loading`);
    this.loading.add(name);
    this.d.defer(
      importModule(backendUrl) as Promise<BackendModule>,
      (mod) => {
        this.loading.delete(name);
        try {
          const m = admitPlugin({ name, backendUrl, frontendUrl, args }, mod, this.d.driverlink.nic().alias, [...this.plugins.values()]);
          const backend = this.create(name, m, mod, args);
          this.register(name, backend);
          const p: LoadedPlugin = { manifest: m, backend, frontendUrl, vifs: new Set() };
          this.plugins.set(name, p);
          for (const key of this.vifOrder()) this.attach(p, key);
          if (this.plugins.get(name) !== p) throw new Error(this.failures[this.failures.length - 1]?.error ?? `plugin ${name} failed while attaching`);
          done({ name, version: m.version, api: { host: PLUGIN_API_VERSION, plugin: m.api }, vifs: p.vifs.size });
        } catch (e) {
          done(undefined, e instanceof Error ? e.message : String(e));
        }
      },
      (e) => {
        this.loading.delete(name);
        done(undefined, `cannot load plugin ${name} from ${backendUrl}: ${e.message}`);
      },
    );
  }

  /** The plugin's backend object, made through its context and checked; if it is refused, what the plugin took meanwhile is given back. */
  private create(name: string, m: PluginManifest, mod: BackendModule, args: Record<string, unknown>): AccelBackend {
    return this.orGiveBack(name, () => admitBackend(name, m, mod.createBackend(this.context(name), args)));
  }

  /** Register with driverlink (its probe runs now); if that refuses it, what the plugin took in createBackend is given back. */
  private register(name: string, backend: AccelBackend): void {
    this.orGiveBack(name, () => this.d.driverlink.register(backend));
  }

  /** Run a step of a load; if it throws, every VI and mapping the plugin took so far is given back before the error goes on. */
  private orGiveBack<T>(name: string, step: () => T): T {
    try {
      return step();
    } catch (e) {
      const held = this.held.get(name);
      this.held.delete(name);
      if (held) releaseHeld(this.d.ctx, held, name);
      throw e;
    }
  }

  /** Unload: detach every vif (each frontend drains and falls back), then remove; forced after UNLOAD_DETACH_MS. */
  unload(name: string, done: (result: RpcValue, error?: string) => void): void {
    const p = this.plugins.get(name);
    if (!p) return done(undefined, `plugin ${name} is not loaded`);
    if (p.unloading) return done(undefined, `plugin ${name} is already unloading`);
    p.unloading = { done: (err) => (err ? done(undefined, err) : done({ name, unloaded: true })), deadline: this.d.clock.now() + UNLOAD_DETACH_MS };
    if (p.vifs.size === 0) return this.finishUnload(p);
    for (const key of [...p.vifs]) this.detach(p, key);
  }

  private finishUnload(p: LoadedPlugin): void {
    this.plugins.delete(p.manifest.name);
    this.held.delete(p.manifest.name);
    this.d.driverlink.unregister(p.backend);
    p.unloading?.done();
  }

  private attach(p: LoadedPlugin, key: string): void {
    if (this.plugins.get(p.manifest.name) !== p) return; // failed while attaching an earlier vif
    // A plugin being unloaded takes no new vif (one that connects meanwhile, or a NIC reset's re-attach): its unload would never end.
    if (p.unloading) return;
    const ch = this.channels.get(key);
    if (!ch || !p.manifest.features.includes('vif') || ch.plugin || !p.backend.attachVif) return;
    const mig = this.migration.get(key);
    // A vif leaving this host is not accelerated again here.
    if (mig && mig.state !== 'resuming') return;
    ch.plugin = p.manifest.name;
    p.vifs.add(key);
    this.d.writeAccelKey(ch.vif, p.manifest.name);
    const { name, version, api } = p.manifest;
    ch.rpc.event(CHANNEL_OP.attach, { plugin: name, version, api: PLUGIN_API_VERSION, pluginApi: api, frontend: p.frontendUrl ?? '' });
    if (mig?.restore && mig.restore.plugin === p.manifest.name && p.backend.restoreState) {
      const saved = mig.restore.state;
      this.call(p, 'restoreState', (b) => b.restoreState!(ch.vif, saved), undefined);
    }
    if (mig)
      this.migrate(
        key,
        'running',
        mig.restore
          ? `re-accelerated by ${p.manifest.name}${mig.restore.plugin === p.manifest.name && p.backend.restoreState ? ', saved state restored' : ' (saved state was for ' + mig.restore.plugin + ')'}`
          : `accelerated by ${p.manifest.name}`,
      );
    this.call(p, 'attachVif', (b) => b.attachVif!(ch.vif), undefined);
  }

  /** Move a migrating vif along the VFIO arcs; every move is logged. */
  private migrate(key: string, to: AccelMigrationState, why: string): void {
    const m = this.migration.get(key);
    const from = m?.state ?? 'running';
    if (m && !ACCEL_MIGRATION_ARCS[from].includes(to)) throw new Error(`accel migration of ${key}: no arc ${from} -> ${to}`);
    const line = `${key}: ${from.toUpperCase()} -> ${to.toUpperCase()} (${why})`;
    this.migrationLog.push(line);
    if (this.migrationLog.length > 64) this.migrationLog.shift();
    this.d.ctx.log(`accel migration ${line}`);
    if (to === 'running' && m?.state === 'resuming') this.migration.delete(key);
    else if (m) m.state = to;
    else this.migration.set(key, { state: to });
  }

  /**
   * Source side of a migration, for one vif: PRE_COPY, then STOP_COPY (the
   * plugin saves the vif's state), then the usual detach (filters first; the
   * frontend drains its VI and falls back to the slow path). `done` gets the
   * saved state once the vif is detached, or at once if no plugin has it.
   */
  migrateOut(key: string, done: (r: MigratedOut) => void): void {
    const ch = this.channels.get(key);
    if (!ch) return done({ plugin: null, state: undefined });
    // A vif that arrived by migration and no plugin took here runs all the same: it may leave again.
    if (this.migration.get(key)?.state === 'resuming') this.migrate(key, 'running', 'never accelerated here');
    this.migrate(key, 'pre_copy', 'migration started');
    const name = ch.plugin;
    const p = name ? this.plugins.get(name) : undefined;
    const state = p?.backend.saveState ? this.call(p, 'saveState', (b) => b.saveState!(ch.vif), undefined) : undefined;
    this.migrate(key, 'stop_copy', p ? `${name} saved ${state === undefined ? 'nothing' : 'its state'}` : 'not accelerated');
    const out: MigratedOut = { plugin: p ? name! : null, state };
    if (!p || !ch.plugin) return done(out);
    const m = this.migration.get(key)!;
    m.out = out;
    m.left = done;
    this.detach(p, key);
  }

  /** A vif migrating out is off its plugin (detached, or the plugin failed): its saved state goes on. */
  private leftSource(key: string): void {
    const mig = this.migration.get(key);
    if (!mig?.left) return;
    const left = mig.left;
    mig.left = undefined;
    left(mig.out!);
  }

  /** Destination side: the vif arrives with what its source plugin saved; RESUMING until a plugin takes it. */
  migrateIn(key: string, saved: { plugin: string; state: unknown } | null): void {
    this.migration.set(key, { state: 'resuming', ...(saved ? { restore: saved } : {}) });
    this.migrationLog.push(`${key}: -> RESUMING (${saved ? `${saved.plugin} state carried` : 'was on the slow path'})`);
  }

  private detach(p: LoadedPlugin, key: string): void {
    const ch = this.channels.get(key);
    if (!ch) return;
    if (p.backend.detachVif) this.call(p, 'detachVif', (b) => b.detachVif!(ch.vif), undefined);
    else this.detached(p.manifest.name, ch.vif);
  }

  /** Detach then re-attach every vif of every plugin (NIC reset: suspend, reset, resume). */
  detachAll(done: () => void): void {
    const waiting = [...this.plugins.values()].filter((p) => p.vifs.size > 0);
    if (waiting.length === 0) return done();
    let left = waiting.reduce((n, p) => n + p.vifs.size, 0);
    const prev = this.onDetached;
    this.onDetached = () => {
      if (--left === 0) {
        this.onDetached = prev;
        done();
      }
    };
    for (const p of waiting) for (const key of [...p.vifs]) this.detach(p, key);
  }

  attachAll(): void {
    for (const p of this.plugins.values()) for (const key of this.vifOrder()) this.attach(p, key);
  }

  private onDetached: () => void = () => {};

  /** The vif's channel no longer belongs to `name`: the frontend stops calling the plugin. */
  private release(name: string, ch: VifChannel): void {
    if (ch.plugin !== name) return;
    ch.plugin = undefined;
    this.d.writeAccelKey(ch.vif, null);
    ch.rpc.event(CHANNEL_OP.detached, { plugin: name });
  }

  private detached(name: string, vif: AccelVif): void {
    const p = this.plugins.get(name);
    const ch = this.channels.get(vif.key);
    if (ch) this.release(name, ch);
    this.leftSource(vif.key);
    if (!p || !p.vifs.delete(vif.key)) return;
    this.onDetached();
    if (p.unloading && p.vifs.size === 0) this.finishUnload(p);
  }

  private fromFrontend(ch: VifChannel, op: string, args: Record<string, unknown>, shared: readonly SharedArrayBuffer[]): void {
    void shared;
    if (op === CHANNEL_OP.filterRequest) {
      // Steering is dom0's decision alone: a guest asking for a filter is refused and counted.
      this.c.refusedFilterRequests++;
      ch.rpc.event(CHANNEL_OP.refused, { op, reason: 'guests cannot insert NIC filters' });
      return;
    }
    const name = ch.plugin;
    const p = name ? this.plugins.get(name) : undefined;
    // A message for a plugin this vif is not attached to (a late one after a detach) has no one to go to.
    if (!p || (typeof args.plugin === 'string' && args.plugin !== name)) return;
    const problem = messageProblem(p.manifest.messages, op, args);
    if (problem) {
      this.c.badFrontendMessages++;
      return this.failVif(p, ch, `bad message from the guest: ${problem}`);
    }
    if (op === CHANNEL_OP.frontendFailed) {
      // The guest's part broke and stopped taking frames: detach the vif the plugin's own way.
      this.c.frontendFailures++;
      this.d.ctx.log(logWarn(`accel: ${ch.vif.key}: ${name} frontend failed (${String(args.reason)}); detaching`));
      this.detach(p, ch.vif.key);
      return;
    }
    if (this.plugins.get(p.manifest.name) !== p || !p.backend.onFrontendMessage) return;
    try {
      p.backend.onFrontendMessage(ch.vif, op, args);
    } catch (e) {
      // Thrown while handling one guest's message: that guest's attachment fails, not the plugin.
      this.failVif(p, ch, `${p.manifest.name} threw handling ${op}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * One vif's input broke its attachment: the plugin drops that vif as if it
   * vanished (vifGone: its VI, grants and filters go), the guest is told it is
   * detached and falls back to the slow path, and the plugin serves the others.
   * A plugin that throws even dropping the vif is failed as a whole.
   */
  private failVif(p: LoadedPlugin, ch: VifChannel, reason: string): void {
    const name = p.manifest.name;
    this.c.vifFailures++;
    this.vifFailureLog.push({ vif: ch.vif.key, plugin: name, reason });
    if (this.vifFailureLog.length > 50) this.vifFailureLog.shift();
    this.d.ctx.log(logWarn(`accel: ${ch.vif.key}: ${reason}; the vif is back on the slow path (${name} serves the others)`));
    this.call(p, 'vifGone', (b) => b.vifGone?.(ch.vif), undefined);
    this.detached(name, ch.vif);
  }

  /**
   * Connected vifs in domid, handle order: plugins are offered vifs (and hand
   * out VIs) in an order that does not depend on which vif happened to
   * connect first.
   */
  private vifOrder(): string[] {
    const n = (k: string) => k.split('/').map(Number);
    return [...this.connected].sort((a, b) => n(a)[0] - n(b)[0] || n(a)[1] - n(b)[1]);
  }

  /** Fill in what only the connected backend knows (the guest's MAC and IP). */
  refreshVif(vif: AccelVif): void {
    const ch = this.channels.get(vif.key);
    if (ch) ch.vif = vif;
  }

  /** The vif's frontend and backend are Connected: offer it to the loaded accelerator. */
  vifConnected(key: string): void {
    this.connected.add(key);
    for (const p of this.plugins.values()) this.attach(p, key);
  }

  /** The vif went away: its plugin drops it without a handshake. */
  vifDisconnected(key: string): void {
    this.connected.delete(key);
    const ch = this.channels.get(key);
    if (!ch?.plugin) return;
    const p = this.plugins.get(ch.plugin);
    if (p) this.call(p, 'vifGone', (b) => b.vifGone?.(ch.vif), undefined);
    this.detached(ch.plugin, ch.vif);
  }

  slowPathRx(key: string, ram: Uint8Array, off: number, len: number): void {
    const ch = this.channels.get(key);
    if (!ch?.plugin) return;
    const p = this.plugins.get(ch.plugin);
    if (!p?.backend.onSlowPathRx) return;
    // Per frame: no closure, so the guard is inline.
    try {
      p.backend.onSlowPathRx(ch.vif, ram, off, len);
    } catch (e) {
      this.fail(p, 'onSlowPathRx', e instanceof Error ? e : new Error(String(e)));
    }
  }

  uplinkLearned(mac: number): void {
    for (const p of [...this.plugins.values()]) this.call(p, 'onUplinkLearn', (b) => b.onUplinkLearn?.(mac), undefined);
  }

  /** A MAC is no longer behind the uplink (its guest arrived on this host, or left the network): no fast path to it. */
  uplinkLost(mac: number): void {
    for (const p of [...this.plugins.values()]) this.call(p, 'onUplinkForget', (b) => b.onUplinkForget?.(mac), undefined);
  }

  stats() {
    return {
      // Typed as what it is: the plugin's own stats are spread last, so they may replace the
      // framework's version, vifs (vnic's is its list of vifs, not the count) and unloading.
      plugins: Object.fromEntries(
        [...this.plugins].map(([n, p]): [string, Record<string, unknown>] => [
          n,
          { version: p.manifest.version, vifs: p.vifs.size, unloading: !!p.unloading, ...this.call(p, 'stats', (b) => b.stats(), {}) },
        ]),
      ),
      vifs: Object.fromEntries([...this.channels].map(([k, c]) => [k, c.plugin ?? null])),
      ...this.c,
      driverErrors: this.d.driverlink.c.driverErrors,
      failures: this.failures,
      vifFailureLog: this.vifFailureLog,
      migrating: Object.fromEntries([...this.migration].map(([k, m]) => [k, m.state])),
      migrationLog: this.migrationLog,
    };
  }
}
