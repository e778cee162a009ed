/**
 * What a plugin may ask of the NIC through its context: the commands about
 * its own VIs (or virtio functions) and the filters it inserted, and the
 * NIC's read-only views. Not the device-wide administration dom0 keeps for
 * itself (link, MTU, reset: `xsim mgmtdev set`, through driverlink so every
 * secondary driver hears of it), not another plugin's VIs, not filters it
 * did not insert: a buggy plugin must not take the link down under every
 * guest or reset VIs it was never given. Each refusal names the plugin, the
 * call and what it may do instead.
 */
/** What the scope needs to know of a plugin: its VIs (ctx.allocVi) and the filters it inserted (id -> VI). */
export interface Scope {
  name: string;
  vis: ReadonlySet<number>;
  filters: Map<number, number>;
}

/** dom0's own: device-wide changes, made through xsim mgmtdev set (driverlink tells every secondary driver). */
const ADMIN_ONLY = new Set<string>(['link_set', 'mtu_set', 'nic_reset', 'dev_reset']);

/** Commands about one VI (MCDI) or function (vDPA), by the argument that names it. */
const PER_VI: Record<string, 'vi' | 'fn'> = {
  vi_init: 'vi',
  vi_fini: 'vi',
  buffer_table_alloc: 'vi',
  buffer_table_free: 'vi',
  filter_insert: 'vi',
  vi_stats: 'vi',
  iotlb_map: 'fn',
  iotlb_unmap: 'fn',
  fn_start: 'fn',
  fn_stop: 'fn',
  steer_add: 'fn',
  fn_stats: 'fn',
};

/** Commands that remove one filter by id. */
const BY_FILTER = new Set<string>(['filter_remove', 'steer_del']);

/** Commands that insert a filter (their reply is its id, recorded as the plugin's). */
const INSERTS = new Set<string>(['filter_insert', 'steer_add']);

/** Check a plugin's command before it goes to the NIC; throws naming what is wrong. */
export function checkScope(s: Scope, call: 'mcdi' | 'vdpa', op: string, args: Record<string, unknown>): void {
  const what = `plugin ${s.name}: ctx.${call}('${op}')`;
  if (ADMIN_ONLY.has(op))
    throw new Error(
      `${what} is dom0's NIC administration (xsim mgmtdev set), not a plugin's: refused (a plugin hears of link, MTU and reset through its driverlink hooks)`,
    );
  const key = PER_VI[op];
  if (key !== undefined) {
    const vi = args[key];
    if (typeof vi !== 'number' || !s.vis.has(vi))
      throw new Error(
        `${what}: ${key === 'vi' ? 'VI' : 'function'} ${String(vi)} is not one it was given (ctx.allocVi gave it ${[...s.vis].join(', ') || 'none'}): refused`,
      );
  }
  if (BY_FILTER.has(op)) {
    const id = args.id;
    if (typeof id !== 'number' || !s.filters.has(id)) throw new Error(`${what}: filter ${String(id)} is not one it inserted: refused`);
  }
}

/** Commands after which the NIC holds no filter of the VI they name. */
const ENDS_VI = new Set<string>(['vi_fini', 'fn_stop']);

/** After a command went through: record the filters it inserted, forget those it removed or its VI's end took. */
export function recordScope(s: Scope, op: string, args: Record<string, unknown>, reply: unknown): void {
  const key = PER_VI[op];
  if (INSERTS.has(op) && typeof reply === 'number' && key !== undefined) s.filters.set(reply, Number(args[key]));
  if (BY_FILTER.has(op) && typeof args.id === 'number') s.filters.delete(args.id);
  if (ENDS_VI.has(op) && key !== undefined) for (const [id, vi] of s.filters) if (vi === args[key]) s.filters.delete(id);
}
