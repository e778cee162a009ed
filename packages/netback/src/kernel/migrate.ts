/**
 * dom0's side of a guest's migration, per vif (the accelerator's suspend and
 * resume, on the VFIO migration arcs): out, each vif goes PRE_COPY ->
 * STOP_COPY (its plugin saves what it learnt) and is detached (its frontend
 * drains its VI and falls back); in, what the source plugin saved waits for
 * a plugin to attach the vif here.
 */
import type { AccelMigratedVif, RpcReply, RpcValue } from '@xsim/hypervisor';
import type { Dom0Kernel } from './compose.ts';

/** Suspend: every vif of guest `gid` off its plugin; `reply` once all are, with what each plugin saved. */
export function migrateOut(k: Dom0Kernel, gid: number, reply: RpcReply): void {
  const keys = k.accel.channelKeys().filter((key) => key.split('/')[0] === String(gid));
  const out: AccelMigratedVif[] = [];
  if (keys.length === 0) reply([]);
  for (const key of keys) {
    k.accel.migrateOut(key, (r) => {
      out.push({ handle: Number(key.split('/')[1]), plugin: r.plugin, state: r.state as RpcValue });
      if (out.length === keys.length) reply(out.sort((x, y) => x.handle - y.handle) as RpcValue);
    });
  }
}

/** Resume: a migrated guest's vif arrives here with what its source plugin saved (if it had one). */
export function migrateIn(k: Dom0Kernel, v: { domid: number; handle: number; key: string }, a: { plugin?: string; state?: unknown }): true {
  if (!k.accel.channelKeys().includes(v.key)) throw new Error(`accel_migrate_in: no vif${v.domid}.${v.handle}`);
  const saved = typeof a.plugin === 'string' ? { plugin: a.plugin, state: a.state } : null;
  k.accel.migrateIn(v.key, saved);
  return true;
}
