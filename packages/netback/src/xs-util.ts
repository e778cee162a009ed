import type { XenstoreClient } from '@xsim/hypervisor';

/** directory() that treats a missing node as empty (it may not exist yet). */
export function listOrEmpty(xs: XenstoreClient, path: string): string[] {
  const v = xs.tryRead(path);
  if (v === undefined) return [];
  return xs.directory(path);
}
