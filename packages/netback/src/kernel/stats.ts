/** dom0's counters, as its stats op answers them. */
import { counterKinds } from '@xsim/hypervisor';
import type { Dom0Kernel } from './compose.ts';

export function dom0Stats(k: Dom0Kernel) {
  const { env, bridge, backends, uplink, driver, accel, driverlink, local, skbs, ops, endpoint } = k;
  const core = env.core;
  return {
    domid: k.domid,
    name: env.id.name,
    host: env.id.host,
    bridge: { ...bridge.stats, ports: bridge.portCount, fdb: bridge.fdbEntries() },
    vifs: { ...Object.fromEntries(backends.removed), ...Object.fromEntries([...backends.vifs].map(([key, v]) => [v.name, { ...v.stats(), key }])) },
    uplink: uplink ? { ...uplink.stats, backlog: uplink.backlogLength() } : null,
    nic: driver ? driver.stats() : null,
    accel: accel.stats(),
    driverlink: driverlink.events.log.slice(-20),
    local: { ...local.c },
    skbsFree: skbs.available,
    grantFailures: Object.fromEntries(ops.failures),
    grantMappings: ops.activeMappings,
    endpoint: endpoint.stats(),
    core: { ...core.c, pcpu: core.pcpu },
    log: [...k.log.lines],
    kinds: counterKinds(),
  };
}

/**
 * What dom0's stats op answers: the tree above, typed from the code that
 * builds it, and the control channel's refusals (its final answer, at
 * shutdown, has no `control`).
 */
export type Dom0Stats = ReturnType<typeof dom0Stats> & { control?: { refused: number } };
