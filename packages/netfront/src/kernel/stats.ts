/** A guest's counters, as its stats op answers them. */
import { counterKinds } from '@xsim/hypervisor';
import type { GuestParts } from './compose.ts';

export function guestStats(k: GuestParts) {
  const { env, devices } = k;
  const core = env.core;
  return {
    domid: k.domid,
    name: env.id.name,
    host: env.id.host,
    vifs: devices.map((d) => ({ handle: d.nf.handle, ...d.nf.stats(), accel: d.accel ? d.accel.stats(d.nf.accel !== null) : null })),
    endpoint: devices[0]?.ep.stats() ?? null,
    endpoints: Object.fromEntries(devices.slice(1).map((d) => [`vif${d.nf.handle}`, d.ep.stats()])),
    core: { ...core.c, pcpu: core.pcpu },
    freeFrames: k.frames.available,
    resume: k.resumedAt === null ? null : { at: k.resumedAt, firstRxAt: devices.map((d) => d.rx.firstAfterResume) },
    freeGrants: k.grefs.available,
    kinds: counterKinds(),
  };
}

/**
 * What a guest's stats op answers: the tree above, typed from the code that
 * builds it, and the control channel's refusals (its final answer, at
 * shutdown, has no `control`).
 */
export type GuestStats = ReturnType<typeof guestStats> & { control?: { refused: number } };
