/**
 * Time as domains see it. Every timer in the simulation (ARP retransmits,
 * credit timeouts, RTTs, receivers' idle limits, plugin timers) reads a Clock
 * handed to it, never performance.now() directly, so a deterministic run can
 * substitute a virtual clock: same seed, same times, same bytes.
 */
export interface Clock {
  /** Milliseconds, fractional, from an arbitrary origin. */
  now(): number;
}

export const realClock: Clock = { now: () => performance.now() };

/**
 * A clock that moves only when told: by a fixed cost per unit of work the
 * scheduler runs, and by jumps to the next deadline when everything is idle.
 */
export class VirtualClock implements Clock {
  private t = 0;

  now(): number {
    return this.t;
  }

  advance(ms: number): void {
    if (ms > 0) this.t += ms;
  }

  /** Move forward to `t` (never backwards). */
  advanceTo(t: number): void {
    if (t > this.t) this.t = t;
  }
}
