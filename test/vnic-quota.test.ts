/**
 * vnic's filter quota end to end (issue 19, item 4), deterministically: the
 * toolstack's dev.set (what `xsim dev set host-b/b1 max-filters 2` sends over
 * the control socket) writes limits/max-filters in b1's backend directory,
 * vnic in dom0 sees it and evicts down to it at once; then more flows than
 * the quota stream to b1 one after another, each delivered whole with exact
 * conservation, partly on the fast path (each new flow evicts another's
 * filter) and partly through dom0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MANAGE_OPS,
  Simulation,
  TopologyError,
  defaultTopology,
  dom0Stats,
  fabricStats,
  guestStats,
  validateTopology,
  type DomainRef,
  type StatsTree,
} from '@xsim/toolstack';
import { VNIC_BACKEND_COUNTERS } from '../packages/accel-plugins/src/vnic/backend.ts';
import { SEEDS, conservedStream, pluginCounters, replayOnFailure, vnicVifs } from './helpers.ts';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };
const b2: DomainRef = { host: 'host-b', domain: 'b2' };

/** The default topology with limits: host-b's for all its vifs, b2's vif's own max-filters over them. */
function withLimits(extra: (t: ReturnType<typeof defaultTopology>) => void = () => {}): unknown {
  const t = structuredClone(defaultTopology());
  const hb = t.hosts[1];
  Object.assign(hb, { limits: { maxBufPages: 1024, maxFilters: 32 } });
  Object.assign(hb.domUs[1].vifs[0], { limits: { maxFilters: 5 } });
  extra(t);
  return t;
}
const mode = { name: `deterministic, seed ${SEEDS[0]}`, opts: { deterministic: { seed: SEEDS[0] } }, seed: SEEDS[0] };

describe(`vnic filter quota (${mode.name})`, () => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(validateTopology(withLimits()), mode.opts);
    await sim.loadPlugin('vnic');
    await sim.waitFor('vnic to attach a1 and b1', async () => {
      const s = await sim.stats();
      return guestStats(s, a1).vifs[0].accel?.current?.ready === true && guestStats(s, b1).vifs[0].accel?.current?.ready === true;
    });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  const b1Vif = (s: StatsTree) => vnicVifs(dom0Stats(s, 'host-b').accel.plugins.vnic).find((v) => v.vif === `${sim.domain(b1).domid}/0`);
  /** b1's quota as vnic shows it (a level vnic adds to its vif entries: VNIC_VIF_GAUGES). */
  const quotaB1 = (s: StatsTree) => (b1Vif(s) as { maxFilters?: unknown } | undefined)?.maxFilters;
  const vnicB = (s: StatsTree) => pluginCounters(VNIC_BACKEND_COUNTERS, dom0Stats(s, 'host-b').accel.plugins.vnic);
  const nicB = (s: StatsTree) => fabricStats(s).nics.find((n) => n.name === 'host-b-nic')!;
  /** One flow to b1's UDP port `port`, from one sender port so the credits back to a1 are one flow too. */
  const stream = (port: number, count: number) => conservedStream(sim, { from: a1, to: b1, count, frameSize: 1500, window: 64, port, srcPort: 41000 });

  it("the topology's limits reach the vif's backend directory and vnic; bad ones are refused naming the field", async () => {
    const t = validateTopology(withLimits());
    expect(t.hosts[1].domUs.map((d) => d.vifs[0].limits)).toEqual([
      { maxBufPages: 1024, maxFilters: 32 },
      { maxBufPages: 1024, maxFilters: 5 },
    ]);
    expect(t.hosts[0].domUs[0].vifs[0].limits).toBeUndefined();
    let err: unknown;
    try {
      validateTopology(
        withLimits((x) => {
          Object.assign(x.hosts[0], { limits: { maxFilters: -1, maxPages: 3 } });
          Object.assign(x.hosts[0].nic, { filters: 0 });
        }),
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TopologyError);
    expect((err as TopologyError).issues.map((i) => i.path).sort()).toEqual(['hosts[0].limits.maxFilters', 'hosts[0].limits.maxPages', 'hosts[0].nic.filters']);
    const s = await sim.stats();
    const vifOf = (d: DomainRef) =>
      vnicVifs(dom0Stats(s, 'host-b').accel.plugins.vnic).find((v) => v.vif === `${sim.domain(d).domid}/0`) as
        { maxFilters?: unknown; maxBufPages?: unknown } | undefined;
    expect(vifOf(b2)).toMatchObject({ maxFilters: 5, maxBufPages: 1024 });
    expect(vifOf(b1)).toMatchObject({ maxFilters: 32, maxBufPages: 1024 });
  });

  it('dev set max-filters lowers the limit through xenstore, and vnic evicts down to it at once', async () => {
    for (let port = 5101; port <= 5106; port++) {
      const { r } = await stream(port, 300);
      expect(r.delivered).toBe(r.sent);
    }
    const before = await sim.stats();
    expect(b1Vif(before)?.filters).toBeGreaterThanOrEqual(6);
    expect(quotaB1(before)).toBe(32);
    const reply = await MANAGE_OPS['dev.set'](sim, { dev: 'host-b/b1', maxFilters: 2 });
    expect(reply).toEqual({
      dev: 'host-b/b1/vif0',
      backendPath: `/local/domain/0/backend/vif/${sim.domain(b1).domid}/0`,
      limits: { maxFilters: 2, maxBufPages: 1024 },
      rate: null,
    });
    await sim.waitFor("vnic to apply b1's new limit", async () => quotaB1(await sim.stats()) === 2);
    const after = await sim.stats();
    expect(b1Vif(after)?.filters).toBe(2);
    expect(vnicB(after).limitChanges - vnicB(before).limitChanges).toBe(1);
    const evicted = vnicB(after).filtersEvicted - vnicB(before).filtersEvicted;
    expect(evicted).toBe(b1Vif(before)!.filters - 2);
    // The NIC's table lost exactly those filters.
    expect(nicB(before).filters - nicB(after).filters).toBe(evicted);
    // A vif that does not exist is refused by name.
    await expect(MANAGE_OPS['dev.set'](sim, { dev: 'host-b/b1/vif3', maxFilters: 1 })).rejects.toThrow(/host-b\/b1 has no vif3/);
  });

  it('five flows cycling over a quota of 2 are all delivered, conservation exact, part on the fast path, the quota kept', async () => {
    const before = await sim.stats();
    let sent = 0;
    for (let round = 0; round < 2; round++)
      for (let port = 6001; port <= 6005; port++) {
        const { r } = await stream(port, 1000);
        expect(r.delivered, `round ${round}, port ${port}`).toBe(r.sent);
        sent += r.sent;
      }
    const after = await sim.stats();
    expect(sent).toBe(10_000);
    expect(b1Vif(after)?.filters).toBeLessThanOrEqual(2);
    // Each new flow found the quota full and evicted a learnt filter.
    expect(vnicB(after).filtersEvicted - vnicB(before).filtersEvicted).toBeGreaterThanOrEqual(9);
    expect(vnicB(after).filterCapReached - vnicB(before).filterCapReached).toBe(0);
    const fast = guestStats(after, b1).vifs[0].rxAccel - guestStats(before, b1).vifs[0].rxAccel;
    const id = sim.domain(b1).domid;
    const slow = dom0Stats(after, 'host-b').vifs[`vif${id}.0`].rxPackets - dom0Stats(before, 'host-b').vifs[`vif${id}.0`].rxPackets;
    // Every frame came one way or the other (slow also carries the odd ARP); most came fast.
    expect(fast + slow).toBeGreaterThanOrEqual(10_000);
    expect(fast).toBeGreaterThan(5_000);
    expect(slow).toBeGreaterThan(0);
  });
});
