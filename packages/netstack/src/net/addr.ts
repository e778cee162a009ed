/** MAC addresses as 48-bit numbers and IPv4 addresses as u32 numbers: cheap to compare and hash. */
export function parseMac(s: string): number {
  const parts = s.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new Error(`bad MAC address "${s}"`);
  return parts.reduce((n, p) => n * 256 + Number.parseInt(p, 16), 0);
}

export function formatMac(n: number): string {
  const out: string[] = [];
  for (let i = 5; i >= 0; i--) out.push((Math.floor(n / 2 ** (8 * i)) % 256).toString(16).padStart(2, '0'));
  return out.join(':');
}

export { readMac } from '@xsim/hypervisor';

export function writeMac(b: Uint8Array, o: number, mac: number): void {
  const hi = Math.floor(mac / 2 ** 32);
  const lo = mac >>> 0;
  b[o] = hi >>> 8;
  b[o + 1] = hi & 0xff;
  b[o + 2] = lo >>> 24;
  b[o + 3] = (lo >>> 16) & 0xff;
  b[o + 4] = (lo >>> 8) & 0xff;
  b[o + 5] = lo & 0xff;
}

/**
 * An IPv4 address in canonical dotted-quad form: four decimal octets 0..255,
 * no leading zeros ("10.0.010.1" would be a second spelling of 10.0.10.1).
 * The one spelling the whole project accepts: topology validation, plugin
 * arguments (as a JSON Schema pattern) and parseIp all use it.
 */
export const IPV4_PATTERN = '^(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}$';
const IPV4_RE = new RegExp(IPV4_PATTERN);

export function isIpv4(s: string): boolean {
  return IPV4_RE.test(s);
}

/** A canonical dotted quad as a u32; anything else throws, naming the string. */
export function parseIp(s: string): number {
  if (!IPV4_RE.test(s)) throw new Error(`bad IPv4 address "${s}" (expected a dotted quad such as 10.0.1.2, no leading zeros)`);
  return s.split('.').reduce((n, x) => n * 256 + Number(x), 0) >>> 0;
}

export function formatIp(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export const BROADCAST_MAC = 0xffffffffffff;
