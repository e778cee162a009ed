/**
 * A domain as a vCPU: the pollers its kernel registered (rings, control
 * channels, apps), run one bounded turn at a time by whichever scheduler the
 * domain is placed on (a pCPU worker, or the deterministic scheduler).
 *
 * A domain is runnable when it did work in its last turn (it is busy), when
 * an input has something for it (an event-channel binding raised, a message
 * arrived), when deferred async work settled, or when one of its timers is
 * due. Otherwise its pCPU does not even look at its rings.
 */
import { declareCounters, type Counters } from '../metrics.ts';
import type { Clock } from './clock.ts';

/** A source of work; returns how much it did (0 = nothing to do). */
export type Poller = () => number;

/** What a scheduler needs of a vCPU. */
export interface Vcpu {
  readonly name: string;
  /** Bus address of the domain (0 for the scheduler's own work): what a watchdog reports. */
  readonly uid?: number;
  /** Something to do now? */
  runnable(now: number): boolean;
  /**
   * Runnable for a reason no doorbell announces: it did work in its last turn
   * (it polls on), or deferred work settled. A scheduler that skips the full
   * runnable() check of idle vCPUs while its doorbell is quiet must still look
   * at these every round.
   */
  hot(): boolean;
  /** One bounded turn. Returns work done. */
  turn(now: number): number;
  /** Absolute time (ms, the scheduler's clock) of this vCPU's next timer, or Infinity. */
  nextTimer(): number;
  /** Deferred async work outstanding (the scheduler must let the event loop run). */
  readonly awaiting: boolean;
  /** Before the pCPU sleeps: publish "asleep" where peers look for it; true if work turned up meanwhile. */
  prepareSleep?(): boolean;
  /** After the pCPU woke. */
  wakeUp?(): void;
  /** Told which pCPU runs it, and how to wake that pCPU. */
  placed?(pcpu: number, wake: () => void): void;
}

export const CORE_COUNTERS = declareCounters('domain vCPU', {
  turns: { kind: 'event', help: 'turns the domain was given' },
  busyTurns: { kind: 'event', help: 'turns in which it did work' },
  runMs: { kind: 'gauge', help: 'time spent in its turns (ms, the scheduler clock): the CPU it used' },
});

export type CoreCounters = Counters<typeof CORE_COUNTERS.decls>;

/** How long a domain waits for deferred work (a dynamic import) before giving up on it. */
export const DEFER_TIMEOUT_MS = 15_000;

export class DomainCore implements Vcpu {
  private readonly pollers: { name: string; poll: Poller }[] = [];
  private readonly inputs: (() => boolean)[] = [];
  private readonly timers: (() => number)[] = [];
  private readonly settled: (() => void)[] = [];
  private pendingDefers = 0;
  private busy = true;
  private stopped = false;
  private wakeFn: () => void = () => {};
  /** The pCPU this domain runs on (-1 until placed). */
  pcpu = -1;
  readonly c: CoreCounters = CORE_COUNTERS.zero();
  /** Set when a turn threw: the domain is crashed and runs no more (its scheduler reports it). */
  crash: Error | null = null;
  onCrash: (e: Error) => void = () => {};

  constructor(
    readonly name: string,
    readonly clock: Clock,
    readonly uid = 0,
  ) {}

  /**
   * Hooks around the pCPU's sleep (the NIC's doorbell protocol): `prepare`
   * publishes "asleep" where drivers look and says whether work turned up
   * meanwhile; `wake` takes it back.
   */
  sleepHooks: { prepare(): boolean; wake(): void } | null = null;

  prepareSleep(): boolean {
    return this.sleepHooks?.prepare() ?? false;
  }

  wakeUp(): void {
    this.sleepHooks?.wake();
  }

  placed(pcpu: number, wake: () => void): void {
    this.pcpu = pcpu;
    this.wakeFn = wake;
  }

  /** Ask the scheduler to look at this domain (something arrived for it). */
  wake(): void {
    this.wakeFn();
  }

  add(name: string, poll: Poller): () => void {
    const entry = { name, poll };
    this.pollers.push(entry);
    return () => {
      const i = this.pollers.indexOf(entry);
      if (i >= 0) this.pollers.splice(i, 1);
    };
  }

  /** An input the scheduler checks between turns (cheap: e.g. an event-channel binding word). */
  wakeOn(hasWork: () => boolean): void {
    this.inputs.push(hasWork);
  }

  /** A timer source: returns the absolute time of its next deadline (or Infinity). */
  timer(next: () => number): () => void {
    this.timers.push(next);
    return () => {
      const i = this.timers.indexOf(next);
      if (i >= 0) this.timers.splice(i, 1);
    };
  }

  stop(): void {
    this.stopped = true;
    this.wakeFn();
  }

  get running(): boolean {
    return !this.stopped && this.crash === null;
  }

  get awaiting(): boolean {
    return this.pendingDefers > 0 && this.running;
  }

  nextTimer(): number {
    let t = Infinity;
    for (let i = 0; i < this.timers.length; i++) {
      const x = this.timers[i]();
      if (x < t) t = x;
    }
    return t;
  }

  hot(): boolean {
    return this.running && (this.busy || this.settled.length > 0);
  }

  runnable(now: number): boolean {
    if (!this.running) return false;
    if (this.busy || this.settled.length > 0) return true;
    for (let i = 0; i < this.inputs.length; i++) if (this.inputs[i]()) return true;
    return this.nextTimer() <= now;
  }

  turn(_now: number): number {
    if (!this.running) return 0;
    // The turn's own start: `_now` is the round's, and earlier turns of the round are not ours.
    const start = this.clock.now();
    this.c.turns++;
    let work = 0;
    try {
      while (this.settled.length > 0) {
        this.settled.shift()!();
        work++;
      }
      const pollers = this.pollers;
      for (let i = 0; i < pollers.length; i++) work += pollers[i].poll();
    } catch (e) {
      // A kernel that throws is a crashed domain: it stops here; the rest of the pCPU carries on.
      this.crash = e instanceof Error ? e : new Error(String(e));
      this.onCrash(this.crash);
      return 0;
    }
    this.busy = work > 0;
    if (this.busy) this.c.busyTurns++;
    this.c.runMs += this.clock.now() - start;
    return work;
  }

  /**
   * Let `p` settle without blocking the domain: `then` (or `fail`) runs inside a
   * later turn. The domain stops waiting after timeoutMs: a module whose
   * top-level code never settles must not hold it for good.
   */
  defer<T>(p: Promise<T>, then: (v: T) => void, fail: (e: Error) => void, timeoutMs = DEFER_TIMEOUT_MS): void {
    let over = false;
    this.pendingDefers++;
    const finish = (f: () => void) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      this.pendingDefers--;
      this.settled.push(f);
      this.wakeFn();
    };
    const asError = (e: unknown) => (e instanceof Error ? e : new Error(String(e)));
    const timer = setTimeout(() => finish(() => fail(new Error(`did not settle within ${timeoutMs} ms`))), timeoutMs);
    p.then(
      (v) => finish(() => then(v)),
      (e: unknown) => finish(() => fail(asError(e))),
    );
  }
}
