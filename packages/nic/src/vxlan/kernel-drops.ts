/**
 * Datagrams the kernel dropped for a UDP socket before anyone read them (its
 * receive buffer full): Linux's per-socket `drops` column of /proc/net/udp
 * (net/ipv4/udp.c, udp4_format_sock: sk_drops). Read when stats are asked
 * for, never on the datapath; null where there is no such file (not Linux).
 *
 * The file prints a socket's local address as the raw 32-bit word in the
 * machine's byte order and its port in host order, both hex:
 * "0100007F:3A1D" is 127.0.0.1:14877 on a little-endian machine.
 */
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import type { UdpAddr } from './codec.ts';

function hexAddr(a: UdpAddr): string {
  const q = a.addr.split('.').map(Number);
  const word = endianness() === 'LE' ? [q[3], q[2], q[1], q[0]] : q;
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');
  return `${word.map(hex).join('')}:${a.port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Sum of `drops` over the sockets bound to `local` (normally one), or null if /proc/net/udp cannot be read. */
export function udpKernelDrops(local: UdpAddr, file = '/proc/net/udp'): number | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const want = hexAddr(local);
  let drops = 0;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    if (f.length >= 13 && f[1] === want) drops += Number(f[12]) || 0;
  }
  return drops;
}
