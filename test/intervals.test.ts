/**
 * iperf3-style interval reports while a stream runs: the intervals tile the
 * stream (each starts where the last ended), their frames add up to what was
 * delivered and their losses to what was lost; `xsim run --interval S -j`
 * returns them as "intervals". Deterministic, over seeds.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, runStream, type DomainRef, type IntervalSample } from '@xsim/toolstack';
import { replayOnFailure, seededModes } from './helpers.ts';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };
const root = new URL('..', import.meta.url).pathname;

describe.each(seededModes())('stream intervals ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);
  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, log: () => {} });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  it.each([
    ['paced', 256],
    ['unpaced (losses land in the intervals)', 0],
  ])('%s: the intervals tile the stream and add up to its counts', async (_what, window) => {
    const xs: IntervalSample[] = [];
    const r = await runStream(sim, { from: a1, to: b1, count: 30_000, frameSize: 1000, window, interval: { ms: 10, each: (x) => xs.push(x) } });
    expect(xs.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < xs.length; i++) expect(xs[i].start).toBe(xs[i - 1].end);
    expect(xs[0].start).toBe(0);
    expect(xs.reduce((n, x) => n + x.frames, 0)).toBe(r.delivered);
    expect(xs.reduce((n, x) => n + x.lost, 0)).toBe(r.lost);
    for (const x of xs) if (x.end > x.start) expect(x.gbps).toBeCloseTo((x.frames * 1000 * 8) / (x.end - x.start) / 1e9, 6);
  });
});

describe('xsim run --interval', () => {
  it('prints a line per interval, and -j gives them as "intervals"', async () => {
    const run = promisify(execFile);
    const { stdout } = await run('npx', ['xsim', 'run', '--deterministic', '--count', '20000', '--interval', '0.02', '-j'], { cwd: root, timeout: 60_000 });
    const out = JSON.parse(stdout) as { stream: { delivered: number }; intervals: IntervalSample[] };
    expect(out.intervals.length).toBeGreaterThanOrEqual(2);
    expect(out.intervals.reduce((n, x) => n + x.frames, 0)).toBe(out.stream.delivered);
    const text = (await run('npx', ['xsim', 'run', '--deterministic', '--count', '20000', '--interval', '0.02'], { cwd: root, timeout: 60_000 })).stdout;
    expect(text).toMatch(/^\[ interval s \] +frames +Gbit\/s +lost$/m);
    expect(text).toMatch(/^\[ +0\.00- +0\.02 \] +\d+ +\d+\.\d{3} +\d+$/m);
  });
});
