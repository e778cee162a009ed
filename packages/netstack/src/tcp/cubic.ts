/**
 * CUBIC (RFC 9438), Linux's default congestion control, behind cc.ts's
 * interface. In congestion avoidance the window follows, in segments and
 * seconds since the epoch began (the first ACK in congestion avoidance
 * after a loss, or after a restart),
 *
 *     W_cubic(t) = C * (t - K)^3 + W_max,   K = cbrt((W_max - cwnd_epoch) / C)
 *
 * with C = 0.4: concave up to the W_max where the last loss was, a plateau
 * there, convex beyond (§4.2). Each ACK moves cwnd toward the target
 * W_cubic(t + RTT), clamped to [cwnd, 1.5 * cwnd], by (target - cwnd) / cwnd
 * per segment ACKed. The Reno-friendly region (§4.3): W_est grows by
 * α_cubic = 3(1 - β)/(1 + β) segments per window ACKed (1 once it passes the
 * window the last loss cut), and cwnd takes W_est while W_cubic(t) is below
 * it. A loss (§4.6) sets ssthresh = max(FlightSize * β, 2 * SMSS) with
 * β = 0.7; W_max is the window at the loss, or with fast convergence (§4.7)
 * cwnd * (1 + β) / 2 when the window is below the previous W_max. A timeout
 * (§4.8) lowers ssthresh and W_max the same way, cwnd to one segment. Time
 * is the caller's `now` (ms); the RTT is the smoothed one.
 */
import { CcBase } from './cc.ts';

export const CUBIC_C = 0.4;
export const CUBIC_BETA = 0.7;
/** α_cubic of §4.3: the Reno-friendly increase per RTT, in segments. */
export const CUBIC_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

export class Cubic extends CcBase {
  readonly name = 'cubic' as const;
  /** W_max (octets): the window before the last reduction (or as fast convergence left it); 0 before any loss. */
  wMax = 0;
  /** K (s): when W_cubic reaches W_max again. */
  k = 0;
  /** W_est (octets): the Reno-friendly estimate. */
  wEst = 0;
  /** When the current epoch began (ms), or -1: it begins with the next ACK in congestion avoidance. */
  private epochStart = -1;
  /** cwnd when ssthresh was last set (α_cubic turns 1 once W_est reaches it). */
  private cwndPrior = 0;
  /** Growth below one octet, carried to the next ACK. */
  private frac = 0;

  override init(iw: number, now: number): void {
    super.init(iw, now);
    this.epochStart = -1;
    this.frac = 0;
  }

  protected decrease(flight: number, smss: number): number {
    const cwnd = this.cwnd;
    this.wMax = cwnd < this.wMax ? (cwnd * (1 + CUBIC_BETA)) / 2 : cwnd;
    this.cwndPrior = cwnd;
    this.epochStart = -1;
    this.frac = 0;
    return Math.max(Math.floor(flight * CUBIC_BETA), 2 * smss);
  }

  /** W_cubic at `t` seconds into the epoch (octets). */
  private wCubic(t: number, smss: number): number {
    return (CUBIC_C * (t - this.k) ** 3 + this.wMax / smss) * smss;
  }

  protected avoid(acked: number, smss: number, now: number, srtt: number): void {
    const cwnd = this.cwnd;
    if (this.epochStart < 0) {
      this.epochStart = now;
      this.wEst = cwnd;
      if (cwnd < this.wMax) this.k = Math.cbrt((this.wMax - cwnd) / smss / CUBIC_C);
      else {
        this.k = 0;
        this.wMax = cwnd;
      }
    }
    const t = (now - this.epochStart) / 1000;
    let target = this.wCubic(t + srtt / 1000, smss);
    target = Math.min(Math.max(target, cwnd), 1.5 * cwnd);
    const alpha = this.wEst >= this.cwndPrior ? 1 : CUBIC_ALPHA;
    this.wEst += (alpha * smss * acked) / cwnd;
    const inc = this.wCubic(t, smss) < this.wEst ? Math.max(this.wEst - cwnd, 0) : ((target - cwnd) * acked) / cwnd;
    this.frac += inc;
    const whole = Math.floor(this.frac);
    this.cwnd += whole;
    this.frac -= whole;
  }
}
