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
 */
import type { Bus } from '../bus/bus.ts';
import { declareCounters, type Counters } from '../metrics.ts';
import type { WakeWord } from '../wake.ts';
import type { Clock } from './clock.ts';
import type { Vcpu } from './core.ts';

export const PCPU_COUNTERS = declareCounters('pCPU', {
  rounds: { kind: 'event', help: 'scheduling rounds run' },
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

export class Pcpu {
  private readonly vcpus: Vcpu[] = [];
  private stopped = false;
  private readonly spinRounds: number;
  private readonly maxSleepMs: number;
  readonly c: PcpuCounters = PCPU_COUNTERS.zero();

  /**
   * The watchdog words (shared with the toolstack): [0] the uid of the vCPU in
   * its turn (0 between turns), [1] turns begun. A pCPU stuck in one turn
   * (a domain whose code never yields) shows which domain holds it.
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
    this.watch = new Int32Array(watch ?? new SharedArrayBuffer(8), 0, 2);
    this.spinRounds = o.spinRounds ?? 32;
    this.maxSleepMs = o.maxSleepMs ?? 1000;
  }

  add(v: Vcpu): void {
    this.vcpus.push(v);
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
    const now = this.clock.now();
    const vs = this.vcpus;
    const w = this.watch;
    for (let i = 0; i < vs.length; i++) {
      const v = vs[i];
      if (!v.runnable(now)) continue;
      Atomics.store(w, 0, v.uid ?? 0);
      Atomics.add(w, 1, 1);
      work += v.turn(now);
      Atomics.store(w, 0, 0);
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
        this.doorbell.sleep(seen, ms);
        this.c.sleepMs += performance.now() - t;
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
