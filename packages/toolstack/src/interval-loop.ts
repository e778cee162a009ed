/**
 * iperf3's interval lines for any workload: every `ms` of the simulation's
 * clock a sample of the stream's progress, and each interval reported from
 * the sample before to this one; at the end, the last (partial) interval
 * from the stream's own result. The UDP stream (traffic.ts) and the TCP
 * stream (traffic-tcp.ts) say what a sample is and how an interval reads.
 */
import type { Simulation } from './simulation.ts';

/** A stream's progress at time `t` (the simulation's clock, ms). */
export interface Sample {
  t: number;
}

export interface IntervalSource<S extends Sample> {
  /** The stream's progress now, or null when it cannot be read now (no interval then). */
  sample(): Promise<S | null>;
  /** The interval from `from` to `to`, `t0` the stream's start: told to the caller. */
  report(from: S, to: S, t0: number): void;
}

export class IntervalLoop<S extends Sample> {
  readonly t0: number;
  private last: S | null = null;
  private finished = false;
  private readonly loop: Promise<void>;

  /**
   * Where the first interval starts: `start.at(t0)`, a sample of the
   * stream's start known beforehand, or `start.from(first, t0)`, made from
   * the first sample taken (counts the stream does not own, such as a
   * domain's retransmissions so far, are read then).
   */
  constructor(
    private readonly sim: Simulation,
    private readonly ms: number,
    private readonly src: IntervalSource<S>,
    private readonly start: { at: (t0: number) => S } | { from: (first: S, t0: number) => S },
  ) {
    this.t0 = sim.clock.now();
    if ('at' in start) this.last = start.at(this.t0);
    this.loop = this.run();
  }

  /** The sample the next interval starts from (null before the first). */
  get previous(): S | null {
    return this.last;
  }

  private async run(): Promise<void> {
    const { sim } = this;
    if ('from' in this.start) {
      const first = await this.src.sample();
      if (first) this.last = this.start.from(first, this.t0);
    }
    while (!this.finished) {
      const until = sim.clock.now() + this.ms;
      while (!this.finished && sim.clock.now() < until) await sim.sleep(Math.min(5, until - sim.clock.now()));
      if (this.finished) return;
      const x = await this.src.sample();
      if (x && !this.finished) this.emit(x);
    }
  }

  /** Report the interval up to `x` (from the stream's start if nothing was sampled before). */
  emit(x: S): void {
    if (this.last) this.src.report(this.last, x, this.t0);
    this.last = x;
  }

  /** The stream is over: stop sampling, and wait for a sample in flight unless `abandon` (the stream failed). */
  async finish(abandon = false): Promise<void> {
    this.finished = true;
    if (!abandon) await this.loop;
  }
}
