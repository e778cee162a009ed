/**
 * The guest end of a vif's accelerator channel. On "attach" it loads the
 * plugin's frontend module (at run time, without stalling the rings), then
 * routes the plugin's messages to it and hooks it into netfront. On "detach"
 * the plugin stops taking frames and drains; once nothing of ours is left in
 * the hardware we say "drained", netfront stops calling the plugin, and every
 * later frame takes the slow path: no frame is lost or sent twice.
 */
import type { RpcEndpoint } from '@xsim/hypervisor';
import type { AccelFrontend, AccelFrontendContext, FrontendModule } from './accel-api.ts';
import type { Netfront } from './netfront.ts';

type Shared = readonly SharedArrayBuffer[];

export class AccelHost {
  private fe: AccelFrontend | null = null;
  private plugin = '';
  private loading = false;
  private draining = false;
  private readonly queued: [string, Record<string, unknown>, Shared][] = [];
  /** Frontends by plugin, kept across re-attachments (they keep their granted DMA pages). */
  private readonly cache = new Map<string, AccelFrontend>();
  refused = 0;
  attachments = 0;

  constructor(
    private readonly rpc: RpcEndpoint,
    private readonly nf: Netfront,
    private readonly base: Omit<AccelFrontendContext, 'send' | 'deliver'>,
    private readonly defer: <T>(p: Promise<T>, then: (v: T) => void, fail: (e: Error) => void) => void,
  ) {
    rpc.onEvent((op, args, shared) => this.onEvent(op, (args ?? {}) as Record<string, unknown>, shared));
  }

  get frontend(): AccelFrontend | null {
    return this.fe;
  }

  get pluginName(): string {
    return this.plugin;
  }

  send(op: string, args: Record<string, unknown>): void {
    this.rpc.event(op, { plugin: this.plugin, ...args });
  }

  private onEvent(op: string, args: Record<string, unknown>, shared: Shared): void {
    if (op === 'attach') return this.attach(String(args.plugin), String(args.frontend ?? ''));
    if (op === 'refused') {
      this.refused++;
      return;
    }
    if (op === 'detached') {
      // The backend has torn the VI down; the plugin is out of our path.
      this.nf.accel = null;
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

  private attach(plugin: string, url: string): void {
    this.plugin = plugin;
    const cached = this.cache.get(plugin);
    if (cached) {
      this.fe = cached;
      return;
    }
    if (!url) {
      this.send('decline', { reason: `plugin ${plugin} has no frontend part` });
      return;
    }
    this.loading = true;
    const ctx: AccelFrontendContext = {
      ...this.base,
      send: (o, a) => this.send(o, a),
      deliver: (ram, off, len) => this.nf.deliverAccelRx(ram, off, len),
    };
    this.defer(
      import(url) as Promise<FrontendModule>,
      (mod) => {
        this.loading = false;
        this.fe = mod.createFrontend(ctx);
        this.cache.set(plugin, this.fe);
        for (const [o, a, s] of this.queued.splice(0)) this.route(o, a, s);
      },
      (e) => {
        this.loading = false;
        this.queued.length = 0;
        this.base.log(`accel: cannot load frontend of ${plugin}: ${e.message}`);
        this.send('decline', { reason: e.message });
      },
    );
  }

  private route(op: string, args: Record<string, unknown>, shared: Shared): void {
    const fe = this.fe;
    if (!fe) return;
    if (op === 'offer') {
      fe.newDevice(args, shared);
      this.nf.accel = fe;
      this.attachments++;
      return;
    }
    fe.onMessage(op, args, shared);
    if (op === 'detach') this.draining = true;
  }

  /**
   * Counters with stable names: `totals` per plugin ever attached (cumulative:
   * a frontend is kept across re-attachments), `current` the live view of the
   * attached one (the same numbers again, so drop accounting skips it).
   */
  stats(attached: boolean): Record<string, unknown> {
    return {
      plugin: attached ? this.plugin : null,
      attachments: this.attachments,
      refused: this.refused,
      current: attached && this.fe ? this.fe.getStats() : null,
      totals: Object.fromEntries([...this.cache].map(([name, fe]) => [name, fe.getStats()])),
    };
  }

  /** Channel traffic, and the end of a drain. */
  poll(): number {
    let n = this.rpc.poll();
    if (this.draining && this.fe && this.fe.remove()) {
      this.draining = false;
      this.nf.accel = null;
      this.send('drained', {});
      n++;
    }
    return n;
  }
}
