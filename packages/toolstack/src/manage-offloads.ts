/**
 * `xsim dev set HOST/DOMU[/vifN] csum on|off gso on|off`: a vif's checksum
 * and TCPv4 segmentation offloads, switched in the guest as `ethtool -K`
 * switches them. Its netfront tells its stack at once and reconnects so its
 * backend reads feature-no-csum-offload and feature-gso-tcpv4 again; the
 * toolstack's record of the vif keeps the choice, so a save, restore or
 * migration keeps it (the guest's suspend record does too).
 */
import type { OpArgs } from '@xsim/hypervisor';
import type { ManageProtocol } from './manage-ops.ts';
import type { Simulation } from './simulation.ts';

/** Whether the args switch an offload (dev.set's csum, gso). */
export function setsOffloads(a: OpArgs<ManageProtocol, 'dev.set'>): boolean {
  return a.csum !== undefined || a.gso !== undefined;
}

/** Switch the offloads `a` names on vif `vif` of `host/domain`; what they are now. */
export async function devSetOffloads(
  sim: Simulation,
  ref: { host: string; domain: string; vif: number; at: number },
  a: OpArgs<ManageProtocol, 'dev.set'>,
): Promise<{ csum: boolean; gso: boolean; changed: boolean }> {
  const r = await sim.request({ host: ref.host, domain: ref.domain }, 'vif_offloads', { vif: ref.vif, csum: a.csum, gso: a.gso });
  const spec = sim.host(ref.host).spec.domUs.find((u) => u.name === ref.domain)?.vifs[ref.at];
  if (spec) {
    const offloads = { ...(r.csum ? {} : { csum: false }), ...(r.gso ? {} : { gso: false }) };
    if (Object.keys(offloads).length === 0) delete spec.offloads;
    else spec.offloads = offloads;
  }
  return r;
}
