/**
 * Plain data with shared memory inside (a domain's config holds its RAM, its
 * grant table, bindings...) travels as a msgpack body with the buffers beside
 * it: each SharedArrayBuffer is replaced by {$sab: i}, i its index in the list.
 */
export interface SharedPacked {
  value: unknown;
  shared: SharedArrayBuffer[];
}

export function packShared(v: unknown): SharedPacked {
  const shared: SharedArrayBuffer[] = [];
  const walk = (x: unknown): unknown => {
    if (x instanceof SharedArrayBuffer) {
      let i = shared.indexOf(x);
      if (i < 0) i = shared.push(x) - 1;
      return { $sab: i };
    }
    if (Array.isArray(x)) return x.map(walk);
    if (x !== null && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, walk(y)]));
    return x;
  };
  return { value: walk(v), shared };
}

export function unpackShared<T>(v: unknown, shared: readonly SharedArrayBuffer[]): T {
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk);
    if (x !== null && typeof x === 'object') {
      const o = x as Record<string, unknown>;
      if (typeof o.$sab === 'number' && Object.keys(o).length === 1) {
        const s = shared[o.$sab];
        if (!(s instanceof SharedArrayBuffer)) throw new Error(`config refers to shared buffer ${o.$sab}, which did not come with it`);
        return s;
      }
      return Object.fromEntries(Object.entries(o).map(([k, y]) => [k, walk(y)]));
    }
    return x;
  };
  return walk(v) as T;
}
