/**
 * UDP ping-pong: the client stamps each probe with its own clock and the echo
 * server returns the payload unchanged, so RTT never mixes two workers' clocks.
 */
import type { LatencySummary } from '@xsim/hypervisor';

const PROBE_TIMEOUT_MS = 1000;

/** The round trips' summary: its shape is the ping op's reply (hypervisor's abi/endpoint-ops.ts). */
export type { LatencySummary };

export class LatencyStats {
  private readonly samples: number[] = [];
  lost = 0;

  constructor(private readonly max = 100_000) {}

  add(us: number): void {
    if (this.samples.length < this.max) this.samples.push(us);
  }

  summary(): LatencySummary {
    const s = [...this.samples].sort((a, b) => a - b);
    const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : 0);
    return {
      count: s.length,
      lost: this.lost,
      minUs: s[0] ?? 0,
      p50Us: q(0.5),
      p99Us: q(0.99),
      maxUs: s[s.length - 1] ?? 0,
      meanUs: s.length ? s.reduce((a, b) => a + b, 0) / s.length : 0,
    };
  }
}

export class PingClient {
  readonly stats = new LatencyStats();
  private waiting = -1;
  private sentAt = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** When the probe in flight will be given up, or Infinity. */
  deadline(): number {
    return this.waiting >= 0 ? this.sentAt + PROBE_TIMEOUT_MS : Infinity;
  }

  /** 0 or 1: one probe in flight at a time (ping-pong). A probe unanswered for 1 s is lost. */
  outstanding(): number {
    if (this.waiting >= 0 && this.now() - this.sentAt > PROBE_TIMEOUT_MS) {
      this.waiting = -1;
      this.stats.lost++;
    }
    return this.waiting >= 0 ? 1 : 0;
  }

  fill(buf: Uint8Array, off: number, seq: number, now: number): void {
    const dv = new DataView(buf.buffer, buf.byteOffset + off, 16);
    dv.setUint32(0, seq);
    dv.setFloat64(8, now);
    this.waiting = seq;
    this.sentAt = now;
  }

  onReply(buf: Uint8Array, off: number, len: number, now: number): void {
    if (len < 16) return;
    const dv = new DataView(buf.buffer, buf.byteOffset + off, 16);
    if (dv.getUint32(0) !== this.waiting) return; // a late reply to a probe already counted lost
    this.waiting = -1;
    this.stats.add((now - dv.getFloat64(8)) * 1000);
  }
}

export class PingServer {
  echoed = 0;
  handle(): void {
    this.echoed++;
  }
}
