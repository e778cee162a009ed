/**
 * A vif's offloads in a topology (`"offloads": {"csum": false, "gso": false}`),
 * as `ethtool -K` would set them in the guest: each on unless switched off.
 * csum: checksum offload through netif (netfront writes
 * feature-no-csum-offload = 1 and its stack completes its own checksums when
 * off). gso: TCPv4 segmentation offload (netfront writes feature-gso-tcpv4
 * 0 and its stack hands down no frame over the MTU when off).
 */

export interface VifOffloads {
  csum?: boolean;
  gso?: boolean;
}

export const OFFLOAD_NAMES = ['csum', 'gso'] as const;
export type OffloadName = (typeof OFFLOAD_NAMES)[number];

/** The offloads object at `path`, checked (unknown keys and non-booleans each a failure), or undefined if absent. */
export function offloadsOf(v: unknown, path: string, fail: (path: string, message: string) => void): VifOffloads | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    fail(path, `must be an object like {"csum": false, "gso": false}, got ${JSON.stringify(v)}`);
    return undefined;
  }
  const out: VifOffloads = {};
  for (const [k, x] of Object.entries(v)) {
    if (!(OFFLOAD_NAMES as readonly string[]).includes(k)) fail(`${path}.${k}`, `unknown offload (offloads: ${OFFLOAD_NAMES.join(', ')})`);
    else if (typeof x !== 'boolean') fail(`${path}.${k}`, `must be true or false, got ${JSON.stringify(x)}`);
    else out[k as OffloadName] = x;
  }
  return out;
}
