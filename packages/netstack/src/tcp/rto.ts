/**
 * The retransmission timeout of RFC 6298: SRTT and RTTVAR from round-trip
 * samples (α = 1/8, β = 1/4, K = 4), an initial RTO of 1 s (§2.1), a floor of
 * 200 ms as Linux's TCP_RTO_MIN (the RFC's 1 s is "SHOULD"), a ceiling of
 * 120 s as Linux's TCP_RTO_MAX, and doubling on each expiry (§5.5). Samples
 * come only from segments not retransmitted (Karn's rule), which the TCB
 * enforces by timing one never-retransmitted segment at a time.
 */
export const RTO_INITIAL = 1000;
export const RTO_MIN = 200;
export const RTO_MAX = 120_000;
/** §5.7: the RTO once established when the SYN had to be retransmitted and no sample exists. */
export const RTO_AFTER_SYN_LOSS = 3000;
/** The clock granularity G (ms). */
export const CLOCK_G = 1;

export class RtoEstimator {
  srtt = 0;
  rttvar = 0;
  /** Has any sample been taken yet? */
  sampled = false;
  /** The current RTO, backed off included (ms). */
  rto = RTO_INITIAL;

  /**
   * A round-trip sample `r` (ms) from a segment sent once (§2.2, §2.3), or
   * from a timestamp echo; `perRtt`: the samples expected per RTT (RFC 7323
   * Appendix G's ExpectedSamples), which divides α and β.
   */
  sample(r: number, perRtt = 1): void {
    if (!this.sampled) {
      this.srtt = r;
      this.rttvar = r / 2;
      this.sampled = true;
    } else {
      const beta = 0.25 / perRtt;
      const alpha = 0.125 / perRtt;
      this.rttvar = (1 - beta) * this.rttvar + beta * Math.abs(this.srtt - r);
      this.srtt = (1 - alpha) * this.srtt + alpha * r;
    }
    this.rto = clamp(this.srtt + Math.max(CLOCK_G, 4 * this.rttvar));
  }

  /** The timer expired: back off (§5.5). */
  backoff(): void {
    this.rto = clamp(this.rto * 2);
  }

  /** §5.7: the SYN was retransmitted and the handshake gave no sample. */
  afterSynLoss(): void {
    if (!this.sampled) this.rto = RTO_AFTER_SYN_LOSS;
  }
}

function clamp(rto: number): number {
  return Math.min(RTO_MAX, Math.max(RTO_MIN, rto));
}
