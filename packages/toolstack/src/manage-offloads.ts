/**
 * `xsim dev set HOST/DOMU[/vifN] csum on|off`: a vif's checksum offload,
 * switched in the guest as `ethtool -K` switches it. Its netfront tells its
 * stack at once and reconnects so its backend reads feature-no-csum-offload
 * again; the toolstack's record of the vif keeps the choice, so a save,
 * restore or migration keeps it (the guest's suspend record does too).
 */
import type { OpArgs } from '@xsim/hypervisor';
import type { ManageProtocol } from './manage-ops.ts';
import type { Simulation } from './simulation.ts';

/** Whether the args switch an offload (dev.set's csum); gso is refused before anything is done. */
export function setsOffloads(a: OpArgs<ManageProtocol, 'dev.set'>): boolean {
  if (a.gso !== undefined) throw new Error("dev.set: gso: xsim's drivers negotiate no segmentation offload yet (feature-gso-tcpv4 0)");
  return a.csum !== undefined;
}

/** Switch the offloads `a` names on vif `vif` of `host/domain`; what they are now. */
export async function devSetOffloads(
  sim: Simulation,
  ref: { host: string; domain: string; vif: number; at: number },
  a: OpArgs<ManageProtocol, 'dev.set'>,
): Promise<{ csum: boolean; changed: boolean }> {
  const r = await sim.request({ host: ref.host, domain: ref.domain }, 'vif_offloads', { vif: ref.vif, csum: a.csum });
  const spec = sim.host(ref.host).spec.domUs.find((u) => u.name === ref.domain)?.vifs[ref.at];
  if (spec) {
    const { csum: _old, ...rest } = spec.offloads ?? {};
    spec.offloads = r.csum ? rest : { ...rest, csum: false };
    if (Object.keys(spec.offloads).length === 0) delete spec.offloads;
  }
  return r;
}
