/**
 * What eviction buys (issue 19, item 4): the share of a guest's received
 * frames that reach its VI straight from the wire (the fast path) when it has
 * more flows than its filter quota, with each eviction policy. In process, on
 * quota-rig.ts (vnic's backend over a real NIC's filter table; a flow is
 * learnt the moment its first slow frame arrives), deterministic. The table
 * is printed:
 *
 *   npx vitest run packages/accel-plugins/test/vnic-quota-effect.test.ts
 */
import { describe, expect, it } from 'vitest';
import type { EvictionPolicy } from '../src/vnic/quota.ts';
import { rig } from './quota-rig.ts';

/** A workload: the flows (UDP ports) of each frame, in order. */
type Workload = { name: string; quota: number; frames: number[] };

/** A small deterministic generator (xorshift32), so every run measures the same frames. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

/** `flows` flows visited round robin, `burst` frames per visit. */
function cyclic(flows: number, quota: number, burst: number, frames: number): Workload {
  const out: number[] = [];
  for (let i = 0; out.length < frames; i++) for (let k = 0; k < burst && out.length < frames; k++) out.push(1000 + (i % flows));
  return { name: `${flows} flows round robin, bursts of ${burst}, quota ${quota}`, quota, frames: out };
}

/** `hot` flows carry `share` of the frames, `cold` others the rest, each frame's flow drawn at random. */
function skewed(hot: number, cold: number, share: number, quota: number, frames: number): Workload {
  const r = rng(19);
  const out: number[] = [];
  for (let i = 0; i < frames; i++) out.push(r() < share ? 1000 + Math.floor(r() * hot) : 2000 + Math.floor(r() * cold));
  return { name: `${hot} hot flows (${share * 100}% of frames) + ${cold} cold, quota ${quota}`, quota, frames: out };
}

/** As skewed, after `first` one-frame flows that never come back (a scan, a burst of short requests) took the quota. */
function coldFirst(first: number, hot: number, cold: number, share: number, quota: number, frames: number): Workload {
  const w = skewed(hot, cold, share, quota, frames - first);
  const scan = Array.from({ length: first }, (_, i) => 3000 + i);
  return { name: `${first} one-frame flows first, then ${w.name}`, quota, frames: [...scan, ...w.frames] };
}

/** The working set moves: `flows` flows for a while, then `flows` others. */
function phases(flows: number, quota: number, perPhase: number): Workload {
  const r = rng(7);
  const out: number[] = [];
  for (let p = 0; p < 2; p++) for (let i = 0; i < perPhase; i++) out.push(1000 + p * 100 + Math.floor(r() * flows));
  return { name: `${flows} flows, then ${flows} others, quota ${quota}`, quota, frames: out };
}

function fastShare(w: Workload, eviction: EvictionPolicy): number {
  const r = rig({ eviction, maxFilters: w.quota, filterIdleMs: 0 }, { config: false });
  let fast = 0;
  for (const port of w.frames) if (r.frame(port)) fast++;
  return fast / w.frames.length;
}

const WORKLOADS: Workload[] = [
  cyclic(8, 4, 1, 40_000),
  cyclic(8, 4, 32, 40_000),
  cyclic(64, 16, 64, 40_000),
  skewed(4, 200, 0.8, 8, 40_000),
  skewed(16, 1000, 0.9, 32, 40_000),
  coldFirst(8, 4, 200, 0.8, 8, 40_000),
  phases(8, 8, 20_000),
];

describe('the effect of the eviction policy', () => {
  it('fraction of frames on the fast path, per workload and policy', () => {
    const rows = WORKLOADS.map((w) => ({ w, none: fastShare(w, 'none'), fifo: fastShare(w, 'fifo'), clock: fastShare(w, 'clock') }));
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`.padStart(7);
    const width = Math.max(...rows.map((r) => r.w.name.length));
    const lines = [
      `${'workload'.padEnd(width)}   none    fifo   clock`,
      ...rows.map((r) => `${r.w.name.padEnd(width)} ${pct(r.none)} ${pct(r.fifo)} ${pct(r.clock)}`),
    ];
    console.log(`fast-path share of received frames (vnic quota, in process):\n${lines.join('\n')}`);
    const [rr1, rr32, rr64, hot4, hot16, scanned, moved] = rows;
    // Round robin one frame at a time over twice the quota: every frame finds its filter evicted (LRU's worst case); without eviction the first 4 flows keep theirs.
    expect(rr1.none).toBeCloseTo(0.5, 2);
    expect(rr1.fifo).toBe(0);
    expect(rr1.clock).toBe(0);
    // Bursts: with eviction all but a burst's first frame are fast.
    expect(rr32.clock).toBeCloseTo(31 / 32, 2);
    expect(rr32.fifo).toBeCloseTo(31 / 32, 2);
    expect(rr64.clock).toBeGreaterThan(rr64.none + 0.5);
    // Skewed: CLOCK keeps the hot flows, FIFO evicts them as often as the cold ones.
    expect(hot4.clock).toBeGreaterThan(hot4.fifo);
    expect(hot16.clock).toBeGreaterThan(hot16.fifo);
    // Without eviction, whatever came first keeps the quota: here flows that never come back.
    expect(scanned.none).toBeLessThan(0.01);
    expect(scanned.clock).toBeGreaterThan(scanned.fifo);
    expect(scanned.clock).toBeGreaterThan(0.75);
    // A moved working set: without eviction the second half gets nothing.
    expect(moved.none).toBeLessThan(0.51);
    expect(moved.clock).toBeGreaterThan(0.99);
  });
});
