/**
 * A worker's scheduler: run every poller, and when a whole round finds no
 * work, spin a few rounds (cheap wake-up while traffic is flowing) and then
 * block on the wake word. The snapshot is taken before polling, so a kick that
 * lands while we poll makes the sleep return at once: no lost wake-ups.
 *
 * The spin is short on purpose: the machine has 2 cores and a path has up to
 * five busy workers; a spinning worker steals the core its producer needs.
 */
import type { WakeWord } from '../wake.ts';
import { declareCounters, type Counters } from '../metrics.ts';

/** A source of work; returns how much it did (0 = nothing to do). */
export type Poller = () => number;

export interface LoopOptions {
  /** Empty rounds before sleeping. */
  spinRounds?: number;
  /** Upper bound on one sleep, so timers (ARP retries, deadlines) still run. */
  maxSleepMs?: number;
  /**
   * Called just before sleeping: publish "I am asleep" and look once more
   * (the NIC's doorbell protocol). Return > 0 if work turned up.
   */
  beforeSleep?: () => number;
  /** Called after waking from a sleep. */
  afterWake?: () => void;
}

export const LOOP_COUNTERS = declareCounters('domain loop', {
  rounds: { kind: 'event', help: 'polling rounds run' },
  sleeps: { kind: 'event', help: 'times the worker blocked in Atomics.wait' },
  sleepMs: { kind: 'gauge', help: 'time blocked in Atomics.wait (ms): the rest of its life the worker was on a core or waiting for one' },
});

export type LoopStats = Counters<typeof LOOP_COUNTERS.decls>;

/** How long a domain waits for deferred work (a dynamic import) before giving up on it. */
export const DEFER_TIMEOUT_MS = 15_000;

export class DomainLoop {
  private readonly pollers: { name: string; poll: Poller }[] = [];
  private stopped = false;
  /** Work that needs the event loop (a dynamic import): run() returns so runAsync() can await it. */
  private readonly awaiting: Promise<unknown>[] = [];
  private readonly spinRounds: number;
  private readonly maxSleepMs: number;
  private readonly beforeSleep?: () => number;
  private readonly afterWake?: () => void;
  readonly stats: LoopStats = LOOP_COUNTERS.zero();

  constructor(
    private readonly wake: WakeWord,
    opts: LoopOptions = {},
  ) {
    this.spinRounds = opts.spinRounds ?? 32;
    this.maxSleepMs = opts.maxSleepMs ?? 20;
    this.beforeSleep = opts.beforeSleep;
    this.afterWake = opts.afterWake;
  }

  add(name: string, poll: Poller): () => void {
    const entry = { name, poll };
    this.pollers.push(entry);
    return () => {
      const i = this.pollers.indexOf(entry);
      if (i >= 0) this.pollers.splice(i, 1);
    };
  }

  stop(): void {
    this.stopped = true;
    this.wake.kick();
  }

  get running(): boolean {
    return !this.stopped;
  }

  /**
   * Let `p` settle without blocking the domain: the synchronous loop steps out
   * to the event loop (in runAsync) until it has. `then` runs inside the loop.
   */
  defer<T>(p: Promise<T>, then: (v: T) => void, fail: (e: Error) => void, timeoutMs = DEFER_TIMEOUT_MS): void {
    // Whatever `p` does, the domain stops waiting for it after timeoutMs: a module whose
    // top-level code never settles must not keep the domain stepping out for good.
    let over = false;
    const once = (f: () => void) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      f();
    };
    const asError = (e: unknown) => (e instanceof Error ? e : new Error(String(e)));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        once(() => fail(new Error(`did not settle within ${timeoutMs} ms`)));
        resolve();
      }, timeoutMs);
      p.then(
        (v) => once(() => then(v)),
        (e: unknown) => once(() => fail(asError(e))),
      )
        .catch((e: unknown) => fail(asError(e)))
        .finally(resolve);
    });
    this.awaiting.push(waited);
    this.wake.kick();
  }

  /** run(), stepping out to the event loop whenever deferred work is pending. */
  async runAsync(): Promise<void> {
    for (;;) {
      this.run();
      if (this.awaiting.length === 0) return;
      const pending = this.awaiting.splice(0);
      // Keep the rings moving while we wait: poll, but let the event loop in between.
      let settled = false;
      void Promise.all(pending).then(() => (settled = true));
      while (!settled && !this.stopped) {
        await new Promise<void>((r) => setImmediate(r));
        for (let i = 0; i < this.pollers.length; i++) this.pollers[i].poll();
      }
      if (this.stopped) return;
    }
  }

  /** Run until stop() (or until deferred work needs the event loop); synchronous, as a kernel's idle loop is. */
  run(): void {
    let idle = 0;
    const pollers = this.pollers;
    while (!this.stopped && this.awaiting.length === 0) {
      const seen = this.wake.snapshot();
      let work = 0;
      for (let i = 0; i < pollers.length; i++) work += pollers[i].poll();
      this.stats.rounds++;
      if (work > 0) {
        idle = 0;
        continue;
      }
      if (++idle < this.spinRounds) continue;
      idle = 0;
      if (this.beforeSleep && this.beforeSleep() > 0) {
        this.afterWake?.();
        continue;
      }
      this.stats.sleeps++;
      const t = performance.now();
      this.wake.sleep(seen, this.maxSleepMs);
      this.stats.sleepMs += performance.now() - t;
      this.afterWake?.();
    }
  }
}
