/**
 * The sender's SACK scoreboard (RFC 2018, RFC 6675 §3): the ranges of
 * sequence space above SND.UNA the peer reported holding, merged and sorted,
 * so that loss recovery retransmits the holes between them first, skips what
 * is SACKed, and estimates the pipe. Bounded: at most MAX_RANGES ranges (a
 * block that would make more is dropped; SACK is advisory, RFC 2018 §8).
 */
import { seqDiff, seqGeq, seqGt, seqLeq, seqLt, seqMax } from './seq.ts';

export const SACK_MAX_RANGES = 64;

export class Scoreboard {
  /** [left, right) pairs, sorted, disjoint, not adjacent. */
  private readonly r: number[] = [];

  get ranges(): number {
    return this.r.length / 2;
  }

  /** Octets SACKed. */
  get sacked(): number {
    let n = 0;
    for (let i = 0; i < this.r.length; i += 2) n += seqDiff(this.r[i + 1], this.r[i]);
    return n;
  }

  /** The end of the highest SACKed range, or `una` when none. */
  highest(una: number): number {
    return this.r.length ? seqMax(this.r[this.r.length - 1], una) : una;
  }

  /** Take the block [l, r); true if it SACKed octets not SACKed before. */
  add(l: number, r: number): boolean {
    const before = this.sacked;
    let i = 0;
    while (i < this.r.length && seqLt(this.r[i + 1], l)) i += 2;
    // Merge every range touching [l, r).
    let j = i;
    while (j < this.r.length && seqLeq(this.r[j], r)) {
      if (seqLt(this.r[j], l)) l = this.r[j];
      if (seqGt(this.r[j + 1], r)) r = this.r[j + 1];
      j += 2;
    }
    if (j === i && this.r.length >= 2 * SACK_MAX_RANGES) return false;
    this.r.splice(i, j - i, l, r);
    return this.sacked > before;
  }

  /** SND.UNA moved to `una`: forget what is below it. */
  ackTo(una: number): void {
    let k = 0;
    while (k < this.r.length && seqLeq(this.r[k + 1], una)) k += 2;
    if (k) this.r.splice(0, k);
    if (this.r.length && seqLt(this.r[0], una)) this.r[0] = una;
  }

  clear(): void {
    this.r.length = 0;
  }

  /** If `seq` is SACKed, the end of its range; else -1. */
  sackedEnd(seq: number): number {
    for (let i = 0; i < this.r.length; i += 2) if (seqLeq(this.r[i], seq) && seqLt(seq, this.r[i + 1])) return this.r[i + 1];
    return -1;
  }

  /** The start of the first SACKed range after `seq`, or -1. */
  nextSacked(seq: number): number {
    for (let i = 0; i < this.r.length; i += 2) if (seqGt(this.r[i], seq)) return this.r[i];
    return -1;
  }

  /** The first hole at or after `from` below the highest SACKed octet: [start, end) into `out`; false if none. */
  hole(from: number, out: [number, number]): boolean {
    for (let i = 0; i < this.r.length; i += 2) {
      if (seqGeq(from, this.r[i + 1])) continue;
      if (seqLt(from, this.r[i])) {
        out[0] = from;
        out[1] = this.r[i];
        return true;
      }
      from = this.r[i + 1];
    }
    return false;
  }

  /** Octets not SACKed in [from, to). */
  unsackedIn(from: number, to: number): number {
    let n = Math.max(0, seqDiff(to, from));
    for (let i = 0; i < this.r.length; i += 2) {
      const l = seqMax(this.r[i], from);
      const r = seqLt(this.r[i + 1], to) ? this.r[i + 1] : to;
      if (seqLt(l, r)) n -= seqDiff(r, l);
    }
    return n;
  }
}
