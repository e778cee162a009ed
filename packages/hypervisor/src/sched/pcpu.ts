/**
 * A physical CPU: one worker thread running the vCPUs placed on it, one
 * bounded turn each, round after round. When a whole round finds nothing
 * runnable it spins a few rounds (a cheap wake-up while traffic flows), lets
 * each vCPU publish that it is about to sleep and looks once more, then sleeps
 * in Atomics.wait on its one doorbell until a kick or its next timer. A kick
 * from a domain on another pCPU (an event-channel send, a message) bumps the
 * doorbell and notifies only if the pCPU really sleeps; between domains on
 * the same pCPU a notification is a function call and a flag, no futex.
 *
 * The snapshot is taken before each round, so a kick that lands during the
 * round makes the sleep return at once: no lost wake-ups.
 *
 * A run queue, not a poll of everyone: every input of a domain (an event
 * channel raised, a message arrived, deferred work settled) rings the pCPU's
 * doorbell, locally or from another thread. So a round checks every vCPU
 * only when the doorbell moved since the last full check, a timer is due, or
 * FULL_CHECK_EVERY rounds have passed (a bound on what a missed wake-up could
 * cost); otherwise only the hot vCPUs (busy in their last turn) get a look.
 * With 256 guests on a pCPU and two of them streaming, a round costs two
 * turns, not 256 runnable() checks.
 */
import type { Bus } from '../bus/bus.ts';
import { declareCounters, type Counters } from '../metrics.ts';
import type { WakeWord } from '../wake.ts';
import type { Clock } from './clock.ts';
import type { Vcpu } from './core.ts';
import { pcpuTrack, tracedTurn, tracer } from '../trace/tracer.ts';

export const PCPU_COUNTERS = declareCounters('pCPU', {
  rounds: { kind: 'event', help: 'scheduling rounds run' },
  fullChecks: { kind: 'event', help: 'rounds that checked every vCPU (doorbell moved, a timer due, or the periodic bound); the rest looked at hot vCPUs only' },
  sleeps: { kind: 'event', help: 'times the pCPU blocked in Atomics.wait' },
  sleepMs: { kind: 'gauge', help: 'time blocked in Atomics.wait (ms): the rest of its life the thread was on a core or waiting for one' },
});

export type PcpuCounters = Counters<typeof PCPU_COUNTERS.decls>;

export interface PcpuOptions {
  /** Empty rounds before sleeping. */
  spinRounds?: number;
  /** Upper bound on one sleep (a safety net: every wake-up has a kick). */
  maxSleepMs?: number;
}

/** Bytes of a pCPU's watchdog words. */
export const WATCH_BYTES = 12;

/**
 * Milliseconds on a clock every thread shares (performance.now() has a
 * per-thread origin), folded into 31 bits for an Int32 word; compare with
 * wallMsSince().
 */
export function wallMs(): number {
  return Math.floor(performance.timeOrigin + performance.now()) & 0x7fffffff;
}

/** Milliseconds from a wallMs() reading to now (modulo the 31-bit fold: ~24 days). */
export function wallMsSince(then: number): number {
  return (wallMs() - then) & 0x7fffffff;
}

/** Rounds between full runnable() checks of every vCPU even when the doorbell stays quiet. */
export const FULL_CHECK_EVERY = 64;

export class Pcpu {
  private readonly vcpus: Vcpu[] = [];
  /** Doorbell count at the last full check. */
  private checkedBell = -1;
  private sinceFull = 0;
  /** Earliest timer of any vCPU, as of the last full check and the turns since. */
  private timerAt = -Infinity;
  private stopped = false;
  private readonly spinRounds: number;
  private readonly maxSleepMs: number;
  readonly c: PcpuCounters = PCPU_COUNTERS.zero();

  /**
   * The watchdog words (shared with the toolstack): [0] the uid of the vCPU in
   * its turn (0 between turns), [1] turns begun, [2] when the turn began
   * (wallMs()). A pCPU stuck in one turn (a domain whose code never yields)
   * shows which domain holds it, and since when.
   */
  private readonly watch: Int32Array;

  constructor(
    readonly id: number,
    readonly doorbell: WakeWord,
    private readonly bus: Bus,
    private readonly clock: Clock,
    o: PcpuOptions = {},
    watch?: SharedArrayBuffer,
  ) {
    this.watch = new Int32Array(watch ?? new SharedArrayBuffer(WATCH_BYTES), 0, WATCH_BYTES / 4);
    this.spinRounds = o.spinRounds ?? 32;
    this.maxSleepMs = o.maxSleepMs ?? 1000;
  }

  add(v: Vcpu): void {
    this.vcpus.push(v);
    this.checkedBell = -1;
    v.placed?.(this.id, () => this.doorbell.kick());
    this.doorbell.kick();
  }

  remove(v: Vcpu): void {
    const i = this.vcpus.indexOf(v);
    if (i >= 0) this.vcpus.splice(i, 1);
  }

  get count(): number {
    return this.vcpus.length;
  }

  stop(): void {
    this.stopped = true;
    this.doorbell.kick();
  }

  private anyAwaiting(): boolean {
    for (let i = 0; i < this.vcpus.length; i++) if (this.vcpus[i].awaiting) return true;
    return false;
  }

  /** One round: deliver what arrived, then a turn for every runnable vCPU. */
  round(): number {
    let work = this.bus.pump();
    // After the pump: wake-ups it caused (a message for a domain here) count in this round.
    const bell = this.doorbell.snapshot();
    const now = this.clock.now();
    const full = bell !== this.checkedBell || now >= this.timerAt || ++this.sinceFull >= FULL_CHECK_EVERY;
    if (full) {
      this.checkedBell = bell;
      this.sinceFull = 0;
      this.timerAt = Infinity;
      this.c.fullChecks++;
    }
    const vs = this.vcpus;
    const w = this.watch;
    const tracing = tracer.on;
    for (let i = 0; i < vs.length; i++) {
      const v = vs[i];
      if (full) {
        const t = v.nextTimer();
        if (t < this.timerAt) this.timerAt = t;
      } else if (!v.hot()) continue;
      if (!v.runnable(now)) continue;
      Atomics.store(w, 2, wallMs());
      Atomics.store(w, 0, v.uid ?? 0);
      Atomics.add(w, 1, 1);
      if (tracing) work += tracedTurn(v, now);
      else work += v.turn(now);
      Atomics.store(w, 0, 0);
      // A turn may have set a timer: keep the earliest without waiting for the next full check.
      const t = v.nextTimer();
      if (t < this.timerAt) this.timerAt = t;
    }
    this.c.rounds++;
    return work;
  }

  /** Run until stop(); steps out to the event loop while a vCPU awaits async work (a plugin's import). */
  async run(): Promise<void> {
    while (!this.stopped) {
      this.runSync();
      if (this.stopped) break;
      while (!this.stopped && this.anyAwaiting()) {
        await new Promise<void>((r) => setImmediate(r));
        this.round();
      }
    }
  }

  private runSync(): void {
    let idle = 0;
    while (!this.stopped) {
      if (this.anyAwaiting()) return;
      const seen = this.doorbell.snapshot();
      if (this.round() > 0) {
        idle = 0;
        continue;
      }
      if (++idle < this.spinRounds) continue;
      idle = 0;
      if (this.lateWork()) continue;
      const now = this.clock.now();
      let until = Infinity;
      for (let i = 0; i < this.vcpus.length; i++) until = Math.min(until, this.vcpus[i].nextTimer());
      const ms = Math.max(0, Math.min(this.maxSleepMs, until - now));
      if (ms > 0) {
        this.c.sleeps++;
        const t = performance.now();
        const tt = tracer.on ? tracer.now() : 0;
        this.doorbell.sleep(seen, ms);
        this.c.sleepMs += performance.now() - t;
        if (tracer.on) tracer.span('asleep', tt, null, pcpuTrack(this.id));
      }
      for (let i = 0; i < this.vcpus.length; i++) this.vcpus[i].wakeUp?.();
    }
  }

  /** The doorbell protocol: publish "asleep", then look once more. True if work turned up. */
  private lateWork(): boolean {
    let late = false;
    for (let i = 0; i < this.vcpus.length; i++) if (this.vcpus[i].prepareSleep?.()) late = true;
    if (!late) {
      if (this.bus.pump() > 0) late = true;
      const now = this.clock.now();
      for (let i = 0; i < this.vcpus.length && !late; i++) if (this.vcpus[i].runnable(now)) late = true;
    }
    if (late) for (let i = 0; i < this.vcpus.length; i++) this.vcpus[i].wakeUp?.();
    return late;
  }
}
