/**
 * A wire with a line rate, end to end (issue 21): with "gbps" on the wire
 * between two hosts, a stream on the fast path and one on the slow path are
 * both held to the line: in a deterministic run (the virtual clock) the
 * goodput is what 1500-octet frames can carry on it, (1500 / (1500 + 24)) x
 * the rate, the NIC waited for its FIFO rather than drop, and every frame is
 * delivered. On real threads the same run is conserved (rates there are the
 * bench's business, not a test's).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, fabricStats, validateTopology } from '@xsim/toolstack';
import { THREADS, conservedStream, replayOnFailure, seededModes } from './helpers.ts';

const GBPS = 1;
const at = (host: string, domain: string) => ({ host, domain });

function topology() {
  const t = structuredClone(defaultTopology()) as unknown as { wires: { a: string; b: string; gbps?: number }[] };
  t.wires[0].gbps = GBPS;
  return validateTopology(t);
}

describe.each([seededModes()[0], THREADS])('a 1 Gbit/s wire ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);
  const deterministic = 'deterministic' in mode.opts;

  beforeAll(async () => {
    sim = await Simulation.start(topology(), { ...mode.opts, log: () => {} });
  });

  afterAll(async () => {
    await sim?.shutdown();
  });

  it.each(['slow path', 'vnic'])('holds a stream on the %s to the line rate, none dropped', async (path) => {
    if (path === 'vnic') {
      await sim.loadPlugin('vnic');
      await sim.waitAccelerated([at('host-a', 'a1'), at('host-b', 'b1')], { plugin: 'vnic' });
    }
    const waits = fabricStats(await sim.stats()).nics[0].lineWaits;
    const { r } = await conservedStream(sim, { from: at('host-a', 'a1'), to: at('host-b', 'b1'), count: 20_000, frameSize: 1500, window: 256, srcPort: 42100 });
    expect(r.delivered).toBe(20_000);
    const nic = fabricStats(await sim.stats()).nics[0];
    expect(nic.line).toMatchObject({ gbps: GBPS, queued: 0 });
    if (deterministic) {
      // On the virtual clock: what the line carries, to within 1% (the stream's clock starts at its first frame).
      const max = (GBPS * 1500) / (1500 + 24);
      expect(r.gbps, `${path}: ${r.gbps} Gbit/s on a ${GBPS} Gbit/s line`).toBeGreaterThan(0.99 * max);
      expect(r.gbps).toBeLessThan(1.01 * max);
      expect(nic.lineWaits - waits, 'the NIC waited for its FIFO').toBeGreaterThan(0);
    }
  });
});
