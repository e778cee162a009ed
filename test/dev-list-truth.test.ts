/**
 * `dev list` shows what dom0 knows (issue 20, smaller items): a guest may
 * write whatever it likes in its own frontend directory, including the
 * `backend` key that names its backend, but its row keeps its own backend
 * path, state and accelerator; only what the guest itself publishes (its
 * state, event channel, ring refs) is shown as the guest says it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, devList } from '@xsim/toolstack';
import { VIF_KEY, vifBackendPath, vifFrontendPath } from '@xsim/hypervisor';

describe('dev list reads dom0 truth', () => {
  let sim: Simulation;
  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { deterministic: { seed: 5 }, log: () => {} });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  it("a guest pointing its backend key at another vif's backend does not change its row", async () => {
    const a1 = sim.domain({ host: 'host-a', domain: 'a1' });
    const a2 = sim.domain({ host: 'host-a', domain: 'a2' });
    const xs = sim.host('host-a').xenstore;
    const before = (await devList(sim)).find((d) => d.dev === 'host-a/a1/vif0')!;
    expect(before.backendPath).toBe(vifBackendPath(0, a1.domid, 0));
    // As the guest itself (domain a1), in its own directory: allowed, and a lie.
    xs.write(a1.domid, `${vifFrontendPath(a1.domid, 0)}/${VIF_KEY.backend}`, vifBackendPath(0, a2.domid, 0));
    xs.write(a1.domid, `${vifFrontendPath(a1.domid, 0)}/${VIF_KEY.backendId}`, '7');
    const after = (await devList(sim)).find((d) => d.dev === 'host-a/a1/vif0')!;
    expect(after.backendPath).toBe(vifBackendPath(0, a1.domid, 0));
    expect(after.backendId).toBe(0);
    expect(after.accel).toBe(before.accel);
    // Each guest's row is its own: on each host, every row names a different backend.
    const rows = await devList(sim);
    expect(new Set(rows.map((r) => `${r.dev.split('/')[0]} ${r.backendPath}`)).size).toBe(rows.length);
  });
});
