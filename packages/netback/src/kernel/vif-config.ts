/**
 * A vif's backend directory in xenstore, for an accelerator plugin's backend:
 * the keys the toolstack writes there for it (limits/max-filters,
 * limits/max-buf-pages: the 2007 accelerator's quotas), read and watched as
 * its netback read them through xenbus. Only under the vif's own backend
 * directory, and only relative keys.
 *
 * AccelBackendContext declares it as the optional `vifConfig` (AccelVifConfig):
 * dom0 adds it to the context it gives plugins; a plugin copes without it
 * (another host's context, a test rig), as vnic and vdpa do.
 */
import { vifBackendPath, type XsLike } from '@xsim/hypervisor';
import type { AccelVif } from '../accel-api.ts';

export interface VifConfig {
  /** A key under the vif's backend directory (relative: 'limits/max-filters'), or undefined. */
  read(vif: AccelVif, key: string): string | undefined;
  /** Call `changed` whenever something under `dir` of the vif's backend directory changes; returns the unwatch. */
  watch(vif: AccelVif, dir: string, changed: () => void): () => void;
}

const KEY_RE = /^[a-z0-9-]+(\/[a-z0-9-]+)*$/;

export function vifConfig(xs: Pick<XsLike, 'tryRead' | 'watch' | 'unwatch'>, dom0: number): VifConfig {
  let tokens = 0;
  const path = (vif: AccelVif, key: string): string => {
    if (!KEY_RE.test(key)) throw new Error(`vifConfig: "${key}" is not a key under a vif's backend directory`);
    return `${vifBackendPath(dom0, vif.domid, vif.handle)}/${key}`;
  };
  return {
    read: (vif, key) => xs.tryRead(path(vif, key)),
    watch: (vif, dir, changed) => {
      const p = path(vif, dir);
      const token = `accel-vif-config:${++tokens}`;
      let on = true;
      xs.watch(p, token, () => {
        if (on) changed();
      });
      return () => {
        if (!on) return;
        on = false;
        xs.unwatch(p, token);
      };
    },
  };
}

/** dom0's context for plugins with the vif config facility beside what it declares. */
export function withVifConfig<C extends object>(ctx: C, xs: Pick<XsLike, 'tryRead' | 'watch' | 'unwatch'>, dom0: number): C & { vifConfig: VifConfig } {
  return Object.assign(ctx, { vifConfig: vifConfig(xs, dom0) });
}
