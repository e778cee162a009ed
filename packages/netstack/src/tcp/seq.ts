/**
 * Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4): sequence numbers
 * wrap, so "a before b" means the signed 32-bit distance from b to a is
 * negative. Valid while the numbers compared are less than 2^31 apart, which
 * the windows (at most 2^30 with scaling, 65535 here) guarantee.
 */

/** a - b as a signed 32-bit distance (negative: a is before b). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** a + n modulo 2^32, as an unsigned number. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** a < b modulo 2^32. */
export function seqLt(a: number, b: number): boolean {
  return seqDiff(a, b) < 0;
}

/** a =< b modulo 2^32. */
export function seqLeq(a: number, b: number): boolean {
  return seqDiff(a, b) <= 0;
}

/** a > b modulo 2^32. */
export function seqGt(a: number, b: number): boolean {
  return seqDiff(a, b) > 0;
}

/** a >= b modulo 2^32. */
export function seqGeq(a: number, b: number): boolean {
  return seqDiff(a, b) >= 0;
}

/** lo =< x < hi modulo 2^32 (an empty range when lo == hi). */
export function seqInRange(x: number, lo: number, hi: number): boolean {
  return seqLeq(lo, x) && seqLt(x, hi);
}

/** The later of two sequence numbers. */
export function seqMax(a: number, b: number): number {
  return seqLt(a, b) ? b : a;
}
