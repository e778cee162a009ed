/**
 * What a plugin takes through its context (VIs, grant mappings), recorded so
 * that a plugin the manager has to drop (it failed, its backend object was
 * refused, or its unload was forced) can be cleaned up after: each VI is
 * finalised and freed, each mapping undone.
 */
import { logWarn } from '@xsim/hypervisor';
import { VIRTIO_NIC_ALIAS } from '@xsim/nic';
import type { AccelBackendContext } from './accel-api.ts';
import { PLUGIN_API_VERSION } from './plugin-protocol.ts';
import { checkScope, recordScope, type Scope } from './accel-scope.ts';

/** A reply, or the value of a reply that came with shared memory ({value, shared}). */
function unwrap(r: unknown): unknown {
  return r !== null && typeof r === 'object' && 'value' in r && 'shared' in r ? (r as { value: unknown }).value : r;
}

/** What the host gives every plugin (less what the manager adds per plugin). */
export type HostContext = Omit<AccelBackendContext, 'send' | 'detached' | 'apiVersion'>;

export interface Held {
  vis: Set<number>;
  handles: Set<number>;
  /** Filters the plugin inserted, by id, with their VI (accel-scope.ts: it may remove only these). */
  filters: Map<number, number>;
}

/**
 * A plugin's context: the host's, its VIs and mappings recorded in `held`,
 * its NIC commands kept to its own VIs and filters (accel-scope.ts), and the
 * manager's send and detached.
 */
export function trackedContext(c: HostContext, name: string, held: Held, own: Pick<AccelBackendContext, 'send' | 'detached'>): AccelBackendContext {
  const scope: Scope = { name, vis: held.vis, filters: held.filters };
  const scoped = <R>(call: 'mcdi' | 'vdpa', op: string, args: object, send: () => R): R => {
    const a = args as Record<string, unknown>;
    checkScope(scope, call, op, a);
    const r = send();
    recordScope(scope, op, a, unwrap(r));
    return r;
  };
  return {
    ...c,
    apiVersion: PLUGIN_API_VERSION,
    mcdi: (op, args) => scoped('mcdi', op, args, () => c.mcdi(op, args)),
    mcdiShared: (op, args, shared) => scoped('mcdi', op, args, () => c.mcdiShared(op, args, shared)),
    vdpa: (op, args) => scoped('vdpa', op, args, () => c.vdpa(op, args)),
    vdpaShared: (op, args, shared) => scoped('vdpa', op, args, () => c.vdpaShared(op, args, shared)),
    allocVi: () => {
      const v = c.allocVi();
      if (v !== null) held.vis.add(v);
      return v;
    },
    freeVi: (vi) => {
      held.vis.delete(vi);
      c.freeVi(vi);
    },
    mapGrants: (domid, grefs) => {
      const m = c.mapGrants(domid, grefs);
      if (typeof m !== 'string') for (const h of m.handles) held.handles.add(h);
      return m;
    },
    unmapGrants: (handles) => {
      for (const h of handles) held.handles.delete(h);
      c.unmapGrants(handles);
    },
    ...own,
  };
}

/**
 * Give back what a dropped plugin held: its VIs finalised (vi_fini; on the
 * virtio NIC its functions stopped, fn_stop), without counting: the guests'
 * frontends see the reset; then freed, and its mappings undone.
 */
export function releaseHeld(c: HostContext, held: Held, name: string): number {
  const vis = held.vis.size;
  const virtio = held.vis.size > 0 && c.nic().alias === VIRTIO_NIC_ALIAS;
  for (const vi of held.vis) {
    try {
      // count: false: the guests' frontends are alive, see the VI reset and account for what was on it.
      if (virtio) c.vdpa('fn_stop', { fn: vi, count: false });
      else c.mcdi('vi_fini', { vi, count: false });
    } catch (err) {
      c.log(logWarn(`accel: ${virtio ? 'fn_stop' : 'vi_fini'} ${vi} after ${name} failed: ${(err as Error).message}`));
    }
    c.freeVi(vi);
  }
  c.unmapGrants([...held.handles]);
  held.vis.clear();
  held.handles.clear();
  held.filters.clear();
  return vis;
}
