import type { XsLike } from './vif/common.ts';

/** directory() that treats a missing node as empty (it may not exist yet). */
export function listOrEmpty(xs: XsLike, path: string): string[] {
  const v = xs.tryRead(path);
  if (v === undefined) return [];
  return xs.directory(path);
}
