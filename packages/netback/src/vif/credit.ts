/**
 * A vif's TX rate limit, after Linux xen-netback (netback.c: tx_add_credit,
 * tx_credit_exceeded, xenvif_tx_credit_callback; xenbus.c: xen_net_read_rate,
 * xen_net_rate_changed). The backend's `rate` node gives BYTES of credit
 * every USEC microseconds. Each frame the guest sends costs its length (the
 * size of its first TX slot); a frame that does not fit the credit left stays
 * on the TX ring, unanswered, until the credit timer refills it: the guest is
 * held back by its full ring, nothing is dropped.
 *
 * Refill: when a window of USEC has passed since the window started, one
 * BYTES of credit is added (never more than one per check, whatever the
 * time idle), up to max(128 KiB, BYTES): the burst allowance that lets a
 * 64 KiB frame through whatever the rate, and caps what an idle guest saves.
 * Time is the domain's clock (virtual in a deterministic run), in ms: the
 * window is USEC / 1000 ms, as Linux's msecs_to_jiffies at HZ=1000.
 */
import type { Clock } from '@xsim/hypervisor';

/** tx_add_credit's floor on the burst: "big enough to transmit a jumbo packet of up to 128kB". */
export const CREDIT_MAX_BURST = 131072;
/**
 * One jiffy at HZ=1000. A credit timer Linux arms for a time already past
 * (mod_timer) fires at the next tick: the same bound keeps a vif whose rate
 * gives no credit (BYTES 0) from spinning its domain.
 */
const JIFFY_MS = 1;

/** A limit read from the `rate` node: BYTES every USEC. */
export interface Rate {
  bytes: number;
  usec: number;
}

/**
 * xen_net_read_rate: "BYTES,USEC", two decimal numbers as simple_strtoul
 * reads them (digits only, no sign, no space; wrapping at 2^64). Absent:
 * unlimited. Anything else: unlimited too, with the reason (Linux warns
 * "Failed to parse network rate limit. Traffic unlimited.").
 */
export function parseRate(v: string | undefined): { rate: Rate | null; error?: string } {
  if (v === undefined) return { rate: null };
  const m = /^(\d+),(\d+)$/.exec(v);
  if (!m) return { rate: null, error: `rate ${JSON.stringify(v)} is not BYTES,USEC: traffic unlimited` };
  const u64 = (s: string) => Number(BigInt(s) % 0x1_0000_0000_0000_0000n);
  return { rate: { bytes: u64(m[1]), usec: u64(m[2]) } };
}

/**
 * The backend's rate node as a vif holds it (xen_net_read_rate): the limit in
 * force, and a malformed node warned about once per value (its watch fires
 * as it is set, too).
 */
export class RateNode {
  rate: Rate | null = null;
  private bad: string | undefined;

  constructor(private readonly warn: (reason: string) => void) {}

  /** Read the node's value (undefined: absent); null is unlimited. */
  read(node: string | undefined): Rate | null {
    const { rate, error } = parseRate(node);
    if (error && node !== this.bad) this.warn(error);
    this.bad = error ? node : undefined;
    this.rate = rate;
    return rate;
  }

  /** The limit, as the rate node spells it ("BYTES,USEC"), or null when unlimited. */
  get text(): string | null {
    return this.rate ? `${this.rate.bytes},${this.rate.usec}` : null;
  }
}

/** One queue's credit (a xenvif_queue's credit_* fields and its credit timer). */
export class TxCredit {
  /** credit_bytes: Infinity when unlimited (Linux's ~0UL). */
  bytes = Infinity;
  /** credit_usec */
  usec = 0;
  /** remaining_credit */
  remaining = Infinity;
  /** When the credit timer fires; Infinity while it is not pending. */
  timerAt = Infinity;
  /** rate_limited: TX stopped for credit, the timer will restart it. */
  limited = false;
  private windowStart: number;

  constructor(private readonly clock: Clock) {
    this.windowStart = clock.now();
  }

  /** connect(): the rate read then (null: unlimited); a fresh window. */
  start(rate: Rate | null): void {
    this.bytes = rate ? rate.bytes : Infinity;
    this.usec = rate ? rate.usec : 0;
    this.remaining = this.bytes;
    this.windowStart = this.clock.now();
    this.timerAt = Infinity;
    this.limited = false;
  }

  get unlimited(): boolean {
    return this.bytes === Infinity;
  }

  /** The window, ms: msecs_to_jiffies(credit_usec / 1000) at HZ=1000. */
  private get windowMs(): number {
    return Math.floor(this.usec / 1000);
  }

  /** tx_add_credit: one window's worth, capped at the burst allowance. */
  private add(): void {
    const maxBurst = Math.max(CREDIT_MAX_BURST, this.bytes);
    this.remaining = Math.min(this.remaining + this.bytes, maxBurst);
    this.limited = false;
  }

  /** xenvif_tx_credit_callback, if the timer is due: refill. True if it fired. */
  fire(now = this.clock.now()): boolean {
    if (this.timerAt > now) return false;
    this.timerAt = Infinity;
    this.add();
    return true;
  }

  /**
   * tx_credit_exceeded, asked only when a frame of `size` bytes is more than
   * the credit left: refill if a window has passed; if it still does not
   * fit, arm the timer for the next window and say so (TX stops there).
   */
  exceeded(size: number): boolean {
    const now = this.clock.now();
    if (this.timerAt !== Infinity) {
      this.limited = true;
      return true;
    }
    const next = this.windowStart + this.windowMs;
    if (now >= next) {
      this.windowStart = now;
      this.add();
    }
    if (size > this.remaining) {
      this.timerAt = Math.max(next, now + JIFFY_MS);
      this.windowStart = next;
      this.limited = true;
      return true;
    }
    return false;
  }

  /** A frame of `size` bytes may go: take its credit. False (nothing taken) if TX must wait for the timer. */
  take(size: number): boolean {
    if (size > this.remaining && this.exceeded(size)) return false;
    this.remaining -= size;
    return true;
  }

  /** Give back a frame's credit: it was taken, then the frame stayed in the ring (dom0 had no skb for it). */
  refund(size: number): void {
    this.remaining += size;
  }

  /**
   * xen_net_rate_changed: the new rate applies at once. A pending timer is
   * made due now (mod_timer_pending to jiffies: it refills at the new rate);
   * otherwise credit above the new BYTES is cut to it.
   */
  change(rate: Rate | null): void {
    this.bytes = rate ? rate.bytes : Infinity;
    this.usec = rate ? rate.usec : 0;
    if (this.timerAt !== Infinity) this.timerAt = this.clock.now();
    else if (this.remaining > this.bytes) this.remaining = this.bytes;
  }
}
