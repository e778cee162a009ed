/**
 * Ethernet addresses as 48-bit numbers (exact in a double, cheap to compare
 * and to use as Map keys). The one reader every layer uses: the bridge, the
 * NIC's switch and filters, the guest stack, the accelerators.
 */
export function readMac(b: Uint8Array, o: number): number {
  return b[o] * 2 ** 40 + b[o + 1] * 2 ** 32 + ((b[o + 2] << 24) >>> 0) + (b[o + 3] << 16) + (b[o + 4] << 8) + b[o + 5];
}
