/**
 * A vif's rate limit in xl's syntax (xl-network-configuration(5): rate=RATE,
 * tools/libs/util/libxlu_vif.c: xlu_vif_parse_rate), and the backend node
 * libxl writes from it: `rate` = "BYTES,USEC", BYTES of credit every USEC
 * microseconds, which netback reads and watches.
 *
 *   RATE      = AMOUNT[@INTERVAL]       10Mb/s@20ms, 1GB/s, 1000000B/s@50us
 *   AMOUNT    = digits [G|M|K] (B|b) /s  B bytes, b bits; G, M, K powers of 1000
 *   INTERVAL  = digits [m|u] [s]         s (or nothing) seconds, m ms, u us; default 50ms
 *
 * As xl reads them, numbers are C literals (strtoull base 0: a leading 0 is
 * octal), neither may be 0 or over 2^32 - 1, and the interval must fit 2^32 - 1
 * microseconds. BYTES = bytes per second * USEC / 10^6, rounded down.
 */

/** What libxl writes: BYTES every USEC. */
export interface XlRate {
  bytesPerInterval: number;
  intervalUsecs: number;
}

const AMOUNT_RE = /^[0-9]+[GMK]?[Bb]\/s$/;
const INTERVAL_RE = /^[0-9]+[mu]?s?$/;
const UINT32_MAX = 0xffff_ffffn;
const UINT64_MAX = 0xffff_ffff_ffff_ffffn;
/** libxlu_vif.c's default: "Default to 50ms". */
export const XL_RATE_DEFAULT_INTERVAL_US = 50_000;

/** strtoull(s, &end, 0) on a string of digits and then letters: the value and where it stopped. */
function strtoull0(s: string): { n: bigint; end: number } {
  const octal = s.length > 1 && s[0] === '0';
  const m = (octal ? /^[0-7]+/ : /^[0-9]+/).exec(s);
  if (!m) return { n: 0n, end: 0 };
  return { n: octal ? BigInt(`0o${m[0]}`) : BigInt(m[0]), end: m[0].length };
}

function bytesPerSecond(amount: string, whole: string): bigint {
  if (!AMOUNT_RE.test(amount)) throw new Error(`invalid rate in \`${amount}'`);
  const { n, end } = strtoull0(amount);
  if (n === 0n || n > UINT32_MAX) throw new Error(`rate overflow in \`${amount}'${amount === whole ? '' : ` (of \`${whole}')`}`);
  const unit = amount[end];
  let b = n * (unit === 'G' ? 1_000_000_000n : unit === 'M' ? 1_000_000n : unit === 'K' ? 1000n : 1n);
  if (unit === 'b' || amount[end + 1] === 'b') b /= 8n;
  return b;
}

function intervalUsecs(interval: string): bigint {
  if (!INTERVAL_RE.test(interval)) throw new Error(`invalid replenishment interval in \`${interval}'`);
  const { n, end } = strtoull0(interval);
  if (n === 0n || n > UINT32_MAX) throw new Error(`replenishment interval overflow in \`${interval}'`);
  const unit = interval[end];
  const us = unit === 's' || unit === undefined ? n * 1_000_000n : unit === 'm' ? n * 1000n : n;
  if (us > UINT32_MAX) throw new Error(`replenishment interval overflow in \`${interval}'`);
  return us;
}

/** xlu_vif_parse_rate: RATE as xl reads it, or an Error with xl's message ("invalid rate in `10Mbit'"). */
export function parseXlRate(rate: string): XlRate {
  const at = rate.indexOf('@');
  const amount = at < 0 ? rate : rate.slice(0, at);
  if (amount === '') throw new Error(`no rate specified in \`${rate}'`);
  const bps = bytesPerSecond(amount, rate);
  const us = at < 0 ? BigInt(XL_RATE_DEFAULT_INTERVAL_US) : intervalUsecs(rate.slice(at + 1));
  if (bps > UINT64_MAX / us) throw new Error(`rate overflow in \`${rate}'`);
  return { bytesPerInterval: Number((bps * us) / 1_000_000n), intervalUsecs: Number(us) };
}

/** The backend node's value libxl writes: "BYTES,USEC". */
export function rateNode(r: XlRate): string {
  return `${r.bytesPerInterval},${r.intervalUsecs}`;
}

/** "BYTES,USEC" in words: "25000 bytes every 20000 us (10.0 Mbit/s)". */
export function describeRateNode(node: string): string {
  const m = /^(\d+),(\d+)$/.exec(node);
  if (!m) return node;
  const [bytes, us] = [Number(m[1]), Number(m[2])];
  const mbit = us > 0 ? (bytes * 8) / us : Infinity;
  return `${bytes} bytes every ${us} us (${mbit >= 1 ? `${mbit.toFixed(1)} Mbit/s` : `${(mbit * 1000).toFixed(1)} kbit/s`})`;
}
