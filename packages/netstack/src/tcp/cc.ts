/**
 * Congestion control (RFC 5681) behind a small interface, so that the TCB's
 * loss recovery (fast retransmit, NewReno or SACK recovery: the sender's
 * business) stays the same whichever algorithm sets the windows.
 *
 *  - cwnd and ssthresh in octets; ssthresh starts "arbitrarily high".
 *  - The initial window of RFC 6928: min(10*SMSS, max(2*SMSS, 14600)) (ten
 *    segments for an SMSS up to 1460), one segment when the SYN or SYN,ACK
 *    had to be sent again (RFC 5681 §3.1).
 *  - Slow start while cwnd < ssthresh: cwnd += min(N, L) per ACK of N new
 *    octets, with L = 2*SMSS (RFC 3465 §2.2, so that delayed ACKs do not
 *    halve the growth; Linux counts every segment ACKed).
 *  - Congestion avoidance: NewReno's is appropriate byte counting (RFC 5681
 *    §3.1, RFC 3465): one SMSS each time a cwnd's worth of octets is ACKed;
 *    CUBIC's (cubic.ts) follows W_cubic.
 *  - Both grow only while the window is used (RFC 7661's idea, Linux's
 *    tcp_is_cwnd_limited): an application-limited sender does not inflate cwnd.
 *  - Loss by duplicate ACKs or SACK: ssthresh = max(FlightSize * beta,
 *    2*SMSS), beta 1/2 for NewReno (RFC 5681 eq. 4), 0.7 for CUBIC.
 *  - Loss by the retransmission timer: ssthresh the same (only on the first
 *    expiry for a segment), cwnd = the loss window, one SMSS.
 *  - After an idle period longer than the RTO, cwnd = min(cwnd, IW)
 *    (RFC 5681 §4.1, Linux's tcp_slow_start_after_idle).
 * Time is the caller's `now` (ms).
 */
export type CcName = 'newreno' | 'cubic';

/** ssthresh before any loss: "arbitrarily high" (Linux's TCP_INFINITE_SSTHRESH). */
export const SSTHRESH_INITIAL = 0x7fffffff;

/** RFC 6928's initial window for a sender MSS of `smss`. */
export function initialWindow(smss: number): number {
  return Math.min(10 * smss, Math.max(2 * smss, 14600));
}

export interface CongestionControl {
  readonly name: CcName;
  /** The congestion window (octets). */
  cwnd: number;
  /** The slow-start threshold (octets). */
  ssthresh: number;
  /** Start (the handshake done) or restart after idle: cwnd = `iw`. */
  init(iw: number, now: number): void;
  /** `acked` octets newly ACKed outside recovery; `limited`: the flight used the window. */
  onAck(acked: number, smss: number, limited: boolean, now: number, srtt: number): void;
  /** Loss found by duplicate ACKs or SACK with `flight` octets outstanding: lower ssthresh (the recovery sets cwnd). */
  onLoss(flight: number, smss: number, now: number): void;
  /** The retransmission timer expired; `first`: the first expiry for this segment. */
  onTimeout(flight: number, smss: number, first: boolean, now: number): void;
  /** Recovery ended (all data outstanding at its start ACKed). */
  onRecoveryEnd(now: number): void;
}

/** What NewReno and CUBIC share: slow start, the timeout, and the loss window. */
export abstract class CcBase implements CongestionControl {
  abstract readonly name: CcName;
  cwnd = 0;
  ssthresh = SSTHRESH_INITIAL;
  /** Octets ACKed toward the next SMSS of growth in congestion avoidance. */
  protected bytesAcked = 0;

  init(iw: number, _now: number): void {
    this.cwnd = iw;
    this.bytesAcked = 0;
  }

  onAck(acked: number, smss: number, limited: boolean, now: number, srtt: number): void {
    if (!limited || acked <= 0) return;
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(acked, 2 * smss);
      return;
    }
    this.avoid(acked, smss, now, srtt);
  }

  /** Congestion avoidance for `acked` new octets. */
  protected abstract avoid(acked: number, smss: number, now: number, srtt: number): void;

  /** The multiplicative decrease: the new ssthresh for a loss with `flight` outstanding. */
  protected abstract decrease(flight: number, smss: number, now: number): number;

  onLoss(flight: number, smss: number, now: number): void {
    this.ssthresh = this.decrease(flight, smss, now);
    this.bytesAcked = 0;
  }

  onTimeout(flight: number, smss: number, first: boolean, now: number): void {
    if (first) this.ssthresh = this.decrease(flight, smss, now);
    this.cwnd = smss;
    this.bytesAcked = 0;
  }

  onRecoveryEnd(_now: number): void {
    this.bytesAcked = 0;
  }
}

/** RFC 5681 / RFC 6582's congestion control (Linux's "reno"). */
export class NewReno extends CcBase {
  readonly name = 'newreno' as const;

  protected avoid(acked: number, smss: number): void {
    this.bytesAcked += acked;
    if (this.bytesAcked >= this.cwnd) {
      this.bytesAcked -= this.cwnd;
      this.cwnd += smss;
    }
  }

  protected decrease(flight: number, smss: number): number {
    return Math.max(Math.floor(flight / 2), 2 * smss);
  }
}
