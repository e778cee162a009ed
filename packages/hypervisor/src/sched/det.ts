/**
 * The deterministic scheduler: every domain and the NIC as vCPUs of one
 * thread, run in an order drawn from a seeded PRNG each round, against a
 * virtual clock that moves by a cost per round and per unit of work done,
 * and jumps to the next deadline when everything is idle. The toolstack's own timers (request
 * deadlines, sleeps) are on the same clock. Same seed, same topology, same
 * commands: same counters, same bytes. Different seeds: different
 * interleavings of the same protocols.
 *
 * It runs on demand: rounds go on while anything is runnable, a timer is
 * pending or the toolstack waits for something; between rounds it yields to
 * pending promise continuations only (microtasks), which run in the same
 * order on every run. Real asynchrony (a plugin's dynamic import in a domain,
 * the toolstack vetting a plugin in a worker) freezes the whole simulation —
 * no rounds, no virtual time — until it settles: it takes no virtual time, so
 * how long it really took never shows in the outcome.
 */
import type { Bus } from '../bus/bus.ts';
import type { SetTimer } from '../rpc.ts';
import { VirtualClock } from './clock.ts';
import type { Vcpu } from './core.ts';
import { tracedTurn, tracer } from '../trace/tracer.ts';
import { SeededRng } from './rng.ts';

export interface DetOptions {
  seed: number;
  /** Virtual time a round costs (ms; default 2 us), plus workMs per unit of work its turns report (default 0.5 us). */
  roundMs?: number;
  workMs?: number;
  /**
   * Yield to the event loop (macrotasks: sockets, real timers) every this
   * many busy rounds (default 4096): a control socket stays served and a
   * test's own timeout can still fire if the simulation never goes idle. At
   * a fixed round count, so the points where outside input may enter are the
   * same on every run.
   */
  ioEvery?: number;
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  live: boolean;
}

export class DetScheduler {
  readonly clock = new VirtualClock();
  readonly rng: SeededRng;
  private readonly vcpus: Vcpu[] = [];
  private timers: Timer[] = [];
  private seq = 0;
  private stopped = false;
  private looping = false;
  private idle: (() => void) | null = null;
  /** Real asynchrony in flight that the simulation must not run past (see hold()). */
  private holds = 0;
  private readonly roundMs: number;
  private readonly workMs: number;
  private readonly ioEvery: number;
  rounds = 0;

  constructor(
    private readonly bus: Bus,
    o: DetOptions,
  ) {
    this.rng = new SeededRng(o.seed);
    this.roundMs = o.roundMs ?? 0.002;
    this.workMs = o.workMs ?? 0.0005;
    this.ioEvery = o.ioEvery ?? 4096;
  }

  add(v: Vcpu): void {
    this.vcpus.push(v);
    v.placed?.(0, () => this.poke());
    this.poke();
  }

  remove(v: Vcpu): void {
    const i = this.vcpus.indexOf(v);
    if (i >= 0) this.vcpus.splice(i, 1);
  }

  /** Something may have become runnable: make sure the loop runs. */
  poke(): void {
    const r = this.idle;
    this.idle = null;
    r?.();
    if (!this.looping && !this.stopped) void this.loop();
  }

  /** A timer on the virtual clock (for the toolstack's request deadlines). */
  readonly setTimer: SetTimer = (fn, ms) => {
    const t: Timer = { at: this.clock.now() + Math.max(0, ms), seq: this.seq++, fn, live: true };
    this.timers.push(t);
    this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
    this.poke();
    return {
      cancel: () => {
        t.live = false;
      },
    };
  };

  /**
   * Freeze the simulation until `p` settles: for real asynchrony of the
   * toolstack's (a worker, a file) whose duration must not decide how far
   * the domains got meanwhile.
   */
  hold<T>(p: Promise<T>): Promise<T> {
    this.holds++;
    const release = () => {
      this.holds--;
      this.poke();
    };
    p.then(release, release);
    return p;
  }

  /** Resolve after `ms` of virtual time. */
  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.setTimer(r, ms));
  }

  stop(): void {
    this.stopped = true;
    this.poke();
  }

  private fireDue(): boolean {
    const now = this.clock.now();
    let fired = false;
    while (this.timers.length > 0 && this.timers[0].at <= now) {
      const t = this.timers.shift()!;
      if (t.live) {
        fired = true;
        t.fn();
      }
    }
    return fired;
  }

  private nextDeadline(): number {
    this.timers = this.timers.filter((t) => t.live);
    let t = this.timers[0]?.at ?? Infinity;
    for (const v of this.vcpus) t = Math.min(t, v.nextTimer());
    return t;
  }

  /** One round in seeded order. Returns work done. */
  round(): number {
    let work = this.bus.pump();
    const now = this.clock.now();
    const order = this.rng.shuffle([...this.vcpus]);
    const tracing = tracer.on;
    for (const v of order) if (v.runnable(now)) work += tracing ? tracedTurn(v, now) : v.turn(now);
    this.rounds++;
    return work;
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      while (!this.stopped) {
        if (this.holds > 0 || this.vcpus.some((v) => v.awaiting)) {
          // Real asynchrony (an import, a vetting worker): everything stands still until it settles.
          await new Promise<void>((r) => setImmediate(r));
          continue;
        }
        const work = this.round();
        if (work > 0) {
          // Time moves with the work done (frames, messages), so rates and timeouts on the
          // virtual clock keep the proportions of a real run, if not its figures.
          this.clock.advance(this.roundMs + this.workMs * work);
          // The toolstack's timers (its sleeps, request deadlines) run on this clock too: busy or not.
          this.fireDue();
          if (this.ioEvery > 0 && this.rounds % this.ioEvery === 0) await new Promise<void>((r) => setImmediate(r));
          else await Promise.resolve();
          continue;
        }
        if (this.fireDue()) {
          await Promise.resolve();
          continue;
        }
        // Let continuations of what just happened run; they may post more.
        await Promise.resolve();
        await Promise.resolve();
        const now = this.clock.now();
        if (this.vcpus.some((v) => v.runnable(now))) {
          // Runnable yet idle (a timer due whose code waits for time to move past it): a round
          // of spinning costs time as a busy one does, or the virtual clock would never get there.
          this.clock.advance(this.roundMs);
          if (this.ioEvery > 0 && this.rounds % this.ioEvery === 0) await new Promise<void>((r) => setImmediate(r));
          continue;
        }
        const next = this.nextDeadline();
        if (next < Infinity) {
          this.clock.advanceTo(next);
          continue;
        }
        // Nothing at all to do: wait for the toolstack.
        await new Promise<void>((r) => (this.idle = r));
      }
    } finally {
      this.looping = false;
    }
  }
}
