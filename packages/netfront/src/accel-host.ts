/**
 * The guest end of a vif's accelerator channel. On "attach" it loads the
 * plugin's frontend module (at run time, without stalling the rings), then
 * routes the plugin's messages to it and hooks it into netfront. On "detach"
 * the plugin stops taking frames and drains; once nothing of ours is left in
 * the hardware we say "drained", netfront stops calling the plugin, and every
 * later frame takes the slow path: no frame is lost or sent twice.
 *
 * A plugin frontend that throws is broken: netfront only ever calls it
 * through a guard that then declines every frame (the one in hand goes down
 * the slow path), polls nothing and reports itself drained, and the backend
 * hears "frontend_failed" so it detaches the vif its usual way. The broken
 * frontend is dropped, not cached for a later attachment.
 *
 * Before it loads anything the host checks the attach's plugin API versions
 * against its own (PLUGIN_API_VERSION): netback's must have the same major,
 * the plugin's must be one this guest speaks; and the object createFrontend
 * returns must have the hooks netfront calls and no hook it does not know.
 * Otherwise the host declines the vif, naming the versions or the hooks.
 */
import {
  CHANNEL_OP,
  PLUGIN_API_VERSION,
  apiVersionProblem,
  frontendMessageProblem,
  hookProblems,
  importModule,
  logWarn,
  declareCounters,
  tracer,
  type OpArgs,
  type OpName,
  type RpcEndpoint,
  type ToBackendChannel,
} from '@xsim/hypervisor';
import { ACCEL_FRONTEND_HOOKS, type AccelFrontend, type AccelFrontendContext, type FrontendModule } from './accel-api.ts';
import type { Netfront } from './netfront/xenbus.ts';

type Shared = readonly SharedArrayBuffer[];

export const ACCEL_HOST_COUNTERS = declareCounters('accel frontend host', {
  refused: { kind: 'event', help: 'requests the backend refused (a guest asking for NIC filters)' },
  badBackendMessages: { kind: 'event', help: 'framework messages from the backend that failed their schema (abi/plugin-channel.ts): dropped' },
  attachments: { kind: 'event', help: 'times a plugin frontend was attached' },
  pluginErrors: { kind: 'event', help: 'hook calls into a frontend that threw (each broke that frontend)' },
  txTaken: { kind: 'event', help: 'frames a plugin frontend took (startXmit answered true), every plugin together' },
  txUnaccounted: {
    kind: 'drop',
    help: 'frames a plugin frontend took that it neither put on its hardware (its txPosted) nor counted as dropped (its txDropped): lost inside the plugin',
  },
});

/**
 * What every plugin frontend reports in getStats() so that the frames it takes
 * can be accounted for (accel-api.ts): frames it put on its hardware (or holds
 * to put there), and frames it took and dropped instead, each of those also
 * under a drop counter of its own. Declared here as events: the frames are
 * counted where they end (the NIC, the receiver, the plugin's own drop counter).
 */
export const ACCEL_CONTRACT_COUNTERS = declareCounters('accel frontend contract', {
  txPosted: { kind: 'event', help: 'frames a plugin frontend took and put on its hardware (or holds for it)' },
  txDropped: { kind: 'event', help: 'frames a plugin frontend took and dropped before its hardware (each also under a drop counter of the plugin)' },
});

/** Frames one frontend took, and what it said became of them. */
interface Taken {
  fe: AccelFrontend;
  n: number;
}

/** A frontend's tsoMax(): an answer that is no size in octets is the plugin's bug (it fails). */
function tsoMaxOf(fe: AccelFrontend): number {
  const n = fe.tsoMax?.() ?? 0;
  if (!Number.isInteger(n) || n < 0) throw new Error(`tsoMax() answered ${String(n)}, not a size in octets`);
  return n;
}

export class AccelHost {
  private fe: AccelFrontend | null = null;
  private plugin = '';
  private loading = false;
  private draining = false;
  private readonly queued: [string, Record<string, unknown>, Shared][] = [];
  /** Frontends by plugin, kept across re-attachments (they keep their granted DMA pages). */
  private readonly cache = new Map<string, AccelFrontend>();
  /** refused, attachments, badBackendMessages, pluginErrors: stored where declared (ACCEL_HOST_COUNTERS). */
  readonly c = ACCEL_HOST_COUNTERS.zero();
  private broken: AccelFrontend | null = null;
  /** Bumped by every attach and detach, so a frontend module that finishes loading late knows it is no longer wanted. */
  private attachGen = 0;
  private lastError = '';
  /** What netfront calls: the plugin's hooks behind the guard. */
  private readonly guarded: AccelFrontend;
  /** Frames each frontend ever attached took (the live one's record cached for the per-frame path). */
  private readonly taken: Taken[] = [];
  private takenNow: Taken | null = null;
  /** Frames lost inside frontends that have since broken (their last account, kept). */
  private unaccountedGone = 0;
  /** Plugins already warned about for not reporting txPosted. */
  private readonly unreported = new Set<string>();

  constructor(
    private readonly rpc: RpcEndpoint<ToBackendChannel>,
    private readonly nf: Netfront,
    private readonly base: Omit<AccelFrontendContext, 'send' | 'deliver' | 'apiVersion'>,
    private readonly defer: <T>(p: Promise<T>, then: (v: T) => void, fail: (e: Error) => void) => void,
  ) {
    rpc.onEvent((op, args, shared) => {
      if (tracer.on)
        tracer.instant(`accel channel: ${op} (from backend)`, { plugin: this.plugin || String((args as { plugin?: unknown } | null)?.plugin ?? '') });
      this.onEvent(op, (args ?? {}) as Record<string, unknown>, shared);
    });
    this.guarded = this.guard();
  }

  private fail(fe: AccelFrontend, hook: string, e: unknown): void {
    this.c.pluginErrors++;
    if (this.broken === fe) return;
    this.broken = fe;
    this.retire(fe);
    this.lastError = `${hook}: ${e instanceof Error ? e.message : String(e)}`;
    this.cache.delete(this.plugin);
    this.base.log(logWarn(`accel: ${this.plugin} frontend failed in ${this.lastError}; back to the slow path`));
    this.send(CHANNEL_OP.frontendFailed, { reason: this.lastError });
  }

  /** Give a detached frontend's memory back (a broken one too, if it still can). */
  private releaseFrontend(fe: AccelFrontend): void {
    try {
      fe.release?.();
    } catch (e) {
      this.c.pluginErrors++;
      this.base.log(logWarn(`accel: ${this.plugin} frontend failed in release: ${e instanceof Error ? e.message : String(e)}; its pages stay allocated`));
    }
  }

  /** The hooks netfront calls, each behind a try: a throw breaks the frontend, never the guest. */
  private guard(): AccelFrontend {
    const live = (): AccelFrontend | null => (this.fe && this.fe !== this.broken ? this.fe : null);
    const call = <T>(hook: string, fallback: T, fn: (fe: AccelFrontend) => T): T => {
      const fe = live();
      if (!fe) return fallback;
      try {
        return fn(fe);
      } catch (e) {
        this.fail(fe, hook, e);
        return fallback;
      }
    };
    return {
      newDevice: (args, shared) => call('newDevice', undefined, (fe) => fe.newDevice(args, shared)),
      onMessage: (op, args, shared) => call('onMessage', undefined, (fe) => fe.onMessage(op, args, shared)),
      // The per-frame and per-round hooks are guarded inline (no closure per call).
      // Declined is the safe answer: the frame takes the slow path.
      startXmit: (ram, off, len, csumPartial, gsoSize) => {
        const fe = live();
        if (!fe) return false;
        try {
          const taken = gsoSize ? fe.startXmit(ram, off, len, true, gsoSize) : csumPartial ? fe.startXmit(ram, off, len, true) : fe.startXmit(ram, off, len);
          if (!taken) return false;
          let t = this.takenNow;
          if (t === null || t.fe !== fe) t = this.takenBy(fe);
          t.n++;
          this.c.txTaken++;
          return true;
        } catch (e) {
          this.fail(fe, 'startXmit', e);
          return false;
        }
      },
      txBuffer: (len) => {
        const fe = live();
        if (!fe?.txBuffer) return -1;
        try {
          const at = fe.txBuffer(len);
          // An offset the stack cannot write a frame at is the plugin's bug: it fails, the frame takes the slow path.
          if (at === -1) return -1;
          if (!Number.isInteger(at) || at < 0 || at + len > this.base.mem.u8.byteLength)
            throw new Error(`txBuffer(${len}) answered ${String(at)}, not a buffer inside guest RAM (${this.base.mem.u8.byteLength} bytes)`);
          return at;
        } catch (e) {
          this.fail(fe, 'txBuffer', e);
          return -1;
        }
      },
      // Once per frame with a partial checksum: false (netfront completes it) is the safe answer.
      csumOffload: () => call('csumOffload', false, (fe) => fe.csumOffload?.() === true),
      // 0 (no TSO frame offered) is the safe answer.
      tsoMax: () => call('tsoMax', 0, tsoMaxOf),
      flush: () => {
        const fe = live();
        if (!fe?.flush) return;
        try {
          fe.flush();
        } catch (e) {
          this.fail(fe, 'flush', e);
        }
      },
      poll: (budget) => {
        const fe = live();
        if (!fe) return 0;
        try {
          return fe.poll(budget);
        } catch (e) {
          this.fail(fe, 'poll', e);
          return 0;
        }
      },
      checkReady: () => {
        const fe = live();
        if (!fe) return true;
        try {
          return fe.checkReady();
        } catch (e) {
          this.fail(fe, 'checkReady', e);
          return true;
        }
      },
      // A broken frontend has nothing we can drain: the NIC counts what it left on the VI.
      remove: () => call('remove', true, (fe) => fe.remove()),
      getStats: () => call('getStats', {}, (fe) => fe.getStats()),
    };
  }

  get frontend(): AccelFrontend | null {
    return this.fe;
  }

  /** The vif was unplugged (it is Closed, so the plugin already detached): give every frontend's memory back, close the channel. */
  close(): void {
    for (const fe of new Set([...this.cache.values(), ...(this.fe ? [this.fe] : [])])) this.releaseFrontend(fe);
    this.cache.clear();
    this.fe = null;
    this.rpc.close();
  }

  get pluginName(): string {
    return this.plugin;
  }

  /** A message to the backend, from the plugin attached now: the framework's typed (abi/plugin-channel.ts), a plugin's own by its manifest. */
  send<K extends OpName<ToBackendChannel>>(op: K, args: Omit<OpArgs<ToBackendChannel, K>, 'plugin'>): void {
    this.rpc.event(op, { plugin: this.plugin, ...args } as OpArgs<ToBackendChannel, K>);
  }

  private onEvent(op: string, args: Record<string, unknown>, shared: Shared): void {
    // The framework's own messages are checked once, here (netfront trusts its backend no more than netback trusts it).
    const problem = frontendMessageProblem(op, args);
    if (problem) {
      this.c.badBackendMessages++;
      this.base.log(logWarn(`accel: refused a message from the backend: ${problem}`));
      return;
    }
    if (op === CHANNEL_OP.attach) return this.attach(String(args.plugin), String(args.frontend), { host: String(args.api), plugin: String(args.pluginApi) });
    if (op === CHANNEL_OP.refused) {
      this.c.refused++;
      return;
    }
    if (op === CHANNEL_OP.detached) {
      // The backend has torn the VI down; the plugin is out of our path (a load in flight is abandoned).
      this.attachGen++;
      this.loading = false;
      this.queued.length = 0;
      this.nf.accel = null;
      if (this.fe) this.releaseFrontend(this.fe);
      this.fe = null;
      this.draining = false;
      return;
    }
    if (this.loading) {
      this.queued.push([op, args, shared]);
      return;
    }
    this.route(op, args, shared);
  }

  /** Decline the vif: its plugin cannot run here (the reason is logged and goes to the backend). */
  private decline(reason: string): void {
    this.queued.length = 0;
    this.base.log(logWarn(`accel: ${reason}`));
    this.send(CHANNEL_OP.decline, { reason: reason.slice(0, 1024) });
  }

  private attach(plugin: string, url: string, api: { host: string; plugin: string }): void {
    const gen = ++this.attachGen;
    this.plugin = plugin;
    const mismatch = versionMismatch(plugin, api);
    if (mismatch) return this.decline(mismatch);
    const cached = this.cache.get(plugin);
    if (cached) {
      this.fe = cached;
      return;
    }
    if (!url) {
      this.send(CHANNEL_OP.decline, { reason: `plugin ${plugin} has no frontend part` });
      return;
    }
    this.loading = true;
    const ctx: AccelFrontendContext = {
      ...this.base,
      apiVersion: PLUGIN_API_VERSION,
      send: (o, a) => this.send(o, a),
      deliver: (ram, off, len, rxFlags) => this.nf.deliverAccelRx(ram, off, len, rxFlags),
    };
    this.defer(
      importModule(url) as Promise<FrontendModule>,
      (mod) => {
        // Detached (or attached elsewhere) while the module loaded: that attachment is over.
        if (gen !== this.attachGen) return;
        this.loading = false;
        let fe: unknown;
        try {
          fe = mod.createFrontend(ctx);
        } catch (e) {
          this.queued.length = 0;
          this.base.log(logWarn(`accel: frontend of ${plugin} failed to start: ${(e as Error).message}`));
          this.send(CHANNEL_OP.decline, { reason: (e as Error).message });
          return;
        }
        const problems = hookProblems(fe, ACCEL_FRONTEND_HOOKS, 'frontend');
        if (problems.length) return this.decline(`plugin ${plugin}: createFrontend returned what netfront cannot use: ${problems.join('; ')}: declined`);
        this.fe = fe as AccelFrontend;
        this.cache.set(plugin, this.fe);
        for (const [o, a, s] of this.queued.splice(0)) this.route(o, a, s);
      },
      (e) => {
        if (gen !== this.attachGen) return;
        this.loading = false;
        this.queued.length = 0;
        this.base.log(logWarn(`accel: cannot load frontend of ${plugin}: ${e.message}`));
        this.send(CHANNEL_OP.decline, { reason: e.message });
      },
    );
  }

  private route(op: string, args: Record<string, unknown>, shared: Shared): void {
    const fe = this.fe;
    if (!fe) return;
    if (op === CHANNEL_OP.offer) {
      this.guarded.newDevice(args, shared);
      this.nf.accel = this.guarded;
      this.c.attachments++;
      return;
    }
    this.guarded.onMessage(op, args, shared);
    if (op === CHANNEL_OP.detach) this.draining = true;
  }

  /**
   * Counters with stable names: `totals` per plugin ever attached (cumulative:
   * a frontend is kept across re-attachments), `current` the live view of the
   * attached one (the same numbers again, so drop accounting skips it).
   */
  stats(attached: boolean) {
    return {
      plugin: attached ? this.plugin : null,
      txTaken: this.c.txTaken,
      txUnaccounted: this.unaccounted(),
      attachments: this.c.attachments,
      refused: this.c.refused,
      badBackendMessages: this.c.badBackendMessages,
      current: attached && this.fe ? this.guarded.getStats() : null,
      totals: Object.fromEntries([...this.cache].map(([name, fe]) => [name, fe === this.fe ? this.guarded.getStats() : safeStats(fe)])),
      pluginErrors: this.c.pluginErrors,
      lastError: this.lastError || null,
    };
  }

  private takenBy(fe: AccelFrontend): Taken {
    this.takenNow = takenRecord(this.taken, fe);
    return this.takenNow;
  }

  /**
   * Frames frontends took and did not account for: taken - txPosted - txDropped,
   * from each frontend's own report (conservation's drop accounting includes
   * it). A plugin that reports no txPosted cannot be checked: it is said once.
   */
  private unaccounted(): number {
    let n = this.unaccountedGone;
    for (const t of this.taken) n += this.lostIn(t);
    return n;
  }

  private lostIn(t: Taken): number {
    const st = safeStats(t.fe);
    if (typeof st.txPosted !== 'number') {
      const name = [...this.cache].find(([, fe]) => fe === t.fe)?.[0] ?? this.plugin;
      if (t.n > 0 && !this.unreported.has(name)) {
        this.unreported.add(name);
        this.base.log(logWarn(`accel: ${name} frontend reports no txPosted: the ${t.n} frame(s) it took cannot be accounted for`));
      }
      return 0;
    }
    const dropped = typeof st.txDropped === 'number' ? st.txDropped : 0;
    return Math.max(0, t.n - st.txPosted - dropped);
  }

  /** A frontend that broke answers no more: its account is closed with what it last said. */
  private retire(fe: AccelFrontend): void {
    const i = this.taken.findIndex((t) => t.fe === fe);
    if (i < 0) return;
    this.unaccountedGone += this.lostIn(this.taken[i]);
    this.taken.splice(i, 1);
    if (this.takenNow?.fe === fe) this.takenNow = null;
  }

  /** Channel traffic, and the end of a drain. */
  poll(): number {
    let n = this.rpc.poll();
    if (this.draining && this.fe && this.guarded.remove()) {
      this.draining = false;
      this.nf.accel = null;
      this.send(CHANNEL_OP.drained, {});
      n++;
    }
    return n;
  }
}

/**
 * Why this guest cannot run the plugin an attach names, or undefined: dom0's
 * netback must speak this guest's major plugin API version, and the plugin
 * must be written for one this guest speaks (the same major, a minor no newer).
 */
function versionMismatch(plugin: string, api: { host: string; plugin: string }): string | undefined {
  const ours = PLUGIN_API_VERSION;
  if (apiVersionProblem(api.host, api.host) !== undefined || api.host.split('.')[0] !== ours.split('.')[0])
    return `plugin ${plugin}: dom0's netback speaks plugin API ${api.host} and this guest's netfront ${ours}: another major version is incompatible (EPROTO): declined`;
  const problem = apiVersionProblem(api.plugin, ours, "this guest's netfront");
  return problem && `plugin ${plugin}: ${problem}: declined`;
}

/** The record of frames `fe` took, made on its first frame. */
function takenRecord(list: Taken[], fe: AccelFrontend): Taken {
  let t = list.find((x) => x.fe === fe);
  if (!t) list.push((t = { fe, n: 0 }));
  return t;
}

/** A detached frontend's counters; one that throws even here has none worth showing. */
function safeStats(fe: AccelFrontend): Record<string, unknown> {
  try {
    return fe.getStats();
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}
