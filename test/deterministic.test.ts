/**
 * Deterministic runs: every domain and the NIC on one thread, a seeded
 * scheduling order, a virtual clock. The same seed and topology give the same
 * output byte for byte, through the CLI and through the API, even with a
 * plugin swapped mid-stream (real asynchrony, an import and a vetting worker,
 * freezes the simulation instead of racing it); different seeds give
 * different interleavings of the same protocols, each conserved.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, type DomainRef, type StatsTree } from '@xsim/toolstack';
import { SEEDS, afterFrames, conservedStream, type Json } from './helpers.ts';

const root = new URL('..', import.meta.url).pathname;
const xsim = (...args: string[]) => execFileSync('npx', ['xsim', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }).toString();

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };

/** Stream with a swap in the middle, then every counter of every domain and the NIC. */
async function scenario(seed: number): Promise<{ stats: StatsTree; delivered: number }> {
  const sim = await Simulation.start(defaultTopology(), { deterministic: { seed }, log: () => {} });
  try {
    await sim.loadPlugin('vnic');
    const { r } = await conservedStream(sim, { from: a1, to: b1, count: 8000, frameSize: 1500, window: 256, srcPort: 40000 }, async () => {
      await afterFrames(sim, b1, 2000);
      await sim.unloadPlugin('vnic');
      await sim.loadPlugin('null');
    });
    return { stats: await sim.stats(), delivered: r.delivered };
  } finally {
    await sim.shutdown();
  }
}

describe('deterministic runs', () => {
  it('xsim run --deterministic: the same seed prints the same bytes, text and JSON', () => {
    const args = ['run', '--deterministic', '--seed', '5', '--count', '3000'];
    const first = xsim(...args);
    expect(xsim(...args)).toBe(first);
    expect(first).toMatch(/virtual clock/);
    const json = xsim(...args, '-j');
    expect(xsim(...args, '-j')).toBe(json);
    expect((JSON.parse(json) as Json).stream.delivered).toBe(3000);
  });

  it('different seeds interleave differently (and each is conserved)', () => {
    const turns = (out: string) =>
      JSON.stringify(Object.fromEntries(Object.entries((JSON.parse(out) as Json).stats).map(([k, v]) => [k, (v as Json).core?.busyTurns])));
    const outs = [11, 12, 13].map((seed) => xsim('run', '--deterministic', '--seed', String(seed), '--count', '3000', '-j'));
    for (const o of outs) expect((JSON.parse(o) as Json).stream).toMatchObject({ delivered: 3000, lost: 0, duplicated: 0 });
    expect(new Set(outs.map(turns)).size).toBeGreaterThan(1);
  });

  it.each(SEEDS)('seed %i: a plugin swap mid-stream replays to the same counters, everywhere', async (seed) => {
    const a = await scenario(seed);
    const b = await scenario(seed);
    expect(a.delivered).toBe(8000);
    expect(b.stats).toEqual(a.stats);
  });
});
