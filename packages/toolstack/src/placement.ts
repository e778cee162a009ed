/**
 * Where each domain's vCPU runs, as a Xen admin would place it: with enough
 * pCPUs, every dom0 on pCPUs of their own (dom0_max_vcpus and pinning) and
 * the guests spread round-robin over the rest; a topology may pin a domain to
 * a pCPU ("pcpu": N) or put it in a cpupool ("cpupool": NAME, with the pools
 * named at the topology's top level), as `xl vcpu-pin` and `xl cpupool-*` do.
 */
import type { Pinning, Topology } from './topo/index.ts';

export interface Placement {
  /** pCPU of each host's dom0, by host index. */
  dom0: number[];
  /** pCPU of each guest, by host index then guest index. */
  guests: number[][];
  pcpus: number;
  /** How the default was chosen, for the thread accounting. */
  policy: string;
}

export class PlacementError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlacementError';
  }
}

/** The pCPUs a domain may run on: its pin, its pool, or the default pool for its kind. */
function allowed(t: Topology, pcpus: number, where: string, pin: number | undefined, pool: string | undefined, dflt: number[]): number[] {
  if (pin !== undefined) {
    if (pin >= pcpus)
      throw new PlacementError(
        `${where} is pinned to pCPU ${pin}, but the simulation runs ${pcpus} pCPU${pcpus === 1 ? '' : 's'} (0..${pcpus - 1}): run with --pcpus ${pin + 1} or more, or change the pin`,
      );
    return [pin];
  }
  if (pool !== undefined) {
    const p = t.cpupools && Object.hasOwn(t.cpupools, pool) ? t.cpupools[pool] : undefined;
    if (!p) throw new PlacementError(`${where} names cpupool "${pool}", which the topology does not define`);
    const ok = p.filter((c) => c < pcpus);
    if (ok.length === 0) throw new PlacementError(`cpupool "${pool}" (pCPUs ${p.join(', ')}) has none of the ${pcpus} pCPUs this simulation runs`);
    return ok;
  }
  return dflt;
}

/** dom0s apart from guests where there are enough pCPUs: a quarter of them (at least one) for dom0s. */
function pools(pcpus: number): { dom0Pool: number[]; guestPool: number[] } {
  const dom0Pool = pcpus === 1 ? [0] : Array.from({ length: Math.max(1, Math.floor(pcpus / 4)) }, (_, i) => i);
  const guestPool = pcpus === 1 ? [0] : Array.from({ length: pcpus - dom0Pool.length }, (_, i) => dom0Pool.length + i);
  return { dom0Pool, guestPool };
}

export function placeDomains(t: Topology, pcpus: number): Placement {
  if (!(Number.isInteger(pcpus) && pcpus >= 1)) throw new PlacementError(`pCPUs must be a positive integer, got ${pcpus}`);
  const { dom0Pool, guestPool } = pools(pcpus);
  const load = new Array(pcpus).fill(0);
  const pick = (choices: number[]): number => {
    // The least loaded pCPU of those allowed (ties to the lowest): round-robin in effect.
    let best = choices[0];
    for (const c of choices) if (load[c] < load[best]) best = c;
    load[best]++;
    return best;
  };
  const dom0 = t.hosts.map((h, hi) => pick(allowed(t, pcpus, `hosts[${hi}].dom0`, h.dom0.pcpu, h.dom0.cpupool, dom0Pool)));
  const guests = t.hosts.map((h, hi) =>
    h.domUs.map((d, di) => pick(allowed(t, pcpus, `hosts[${hi}].domUs[${di}] (${h.name}/${d.name})`, d.pcpu, d.cpupool, guestPool))),
  );
  const policy =
    pcpus === 1
      ? 'one pCPU: every domain shares it'
      : `dom0s on pCPU${dom0Pool.length > 1 ? `s 0-${dom0Pool.length - 1}` : ' 0'}, guests round-robin on pCPUs ${guestPool[0]}-${guestPool[guestPool.length - 1]} (pins and cpupools from the topology first)`;
  return { dom0, guests, pcpus, policy };
}

/**
 * Where a guest created at run time goes: its pin or pool, else the guest
 * pCPUs; of those, the one running fewest domains now (ties to the lowest).
 */
export function placeNewGuest(t: Topology, pcpus: number, where: string, pin: Pinning, running: readonly { pcpu: number }[]): number {
  const choices = allowed(t, pcpus, where, pin.pcpu, pin.cpupool, pools(pcpus).guestPool);
  const load = new Array(pcpus).fill(0);
  for (const d of running) if (d.pcpu < pcpus) load[d.pcpu]++;
  let best = choices[0];
  for (const c of choices) if (load[c] < load[best]) best = c;
  return best;
}
