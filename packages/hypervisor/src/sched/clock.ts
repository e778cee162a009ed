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

/**
 * Milliseconds comparable between threads. Each worker's performance.now()
 * counts from that worker's own start; the epoch (timeOrigin + now) is the
 * same line for all. A virtual clock is one clock for everyone already.
 * What a domain hands to another thread (a saved kernel's timers, the time
 * of its last frame) goes through this.
 */
export function crossThreadNow(c: Clock): number {
  return c === realClock ? performance.timeOrigin + performance.now() : c.now();
}
