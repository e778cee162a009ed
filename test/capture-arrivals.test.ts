/**
 * A capture takes in guests that come up while it runs (created, or arrived
 * by migration) and takes a leaving guest's last records before it goes.
 * (Written while finding that every control message after a large one
 * carried that large one's buffer across threads: see PortLink.)
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPcapng } from '@xsim/hypervisor';
import { Simulation, defaultTopology, runStream } from '@xsim/toolstack';
import { THREADS, replayOnFailure, seededModes } from './helpers.ts';

const at = (host: string, domain: string) => ({ host, domain });

describe.each([THREADS, seededModes()[0]])('capture of guests that arrive while it runs ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, logLevel: 'warn' });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  it('takes in a guest created, and one migrated, after the start', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'xsim-cap-')), 'arrive.pcapng');
    // '*b1*' selects host-b/b1/vif0 now and host-a/b1/vif0 once b1 arrives there; 'host-b' every point of
    // host-b, web's once it exists. (A spec that selects nothing at the start is refused: a typo, most likely.)
    await sim.captureStart(['*b1*', 'host-b'], { file });
    await sim.createDomain('host-b', 'web', { mac: '00:16:3e:0b:99:02', ip: '10.0.11.98' });
    const toWeb = await runStream(sim, { from: at('host-a', 'a1'), to: at('host-b', 'web'), count: 300, frameSize: 600, window: 64 });
    await sim.migrateDomain(at('host-b', 'b1'), 'host-a', { live: false });
    const toB1 = await runStream(sim, { from: at('host-a', 'a2'), to: at('host-a', 'b1'), count: 300, frameSize: 600, window: 64 });
    const s = await sim.captureStop();
    expect([toWeb.delivered, toB1.delivered]).toEqual([300, 300]);
    const f = readPcapng(readFileSync(file));
    const per = new Map<string, number>();
    for (const p of f.packets) per.set(f.interfaces[p.ifId].name, (per.get(f.interfaces[p.ifId].name) ?? 0) + 1);
    // The arrivals' frontends saw their streams (and the credits they sent back).
    expect(per.get('host-b/web/vif0') ?? 0).toBeGreaterThanOrEqual(300);
    expect(per.get('host-a/b1/vif0') ?? 0).toBeGreaterThanOrEqual(300);
    expect(s.interfaces.map((i) => i.name)).toEqual(expect.arrayContaining(['host-b/b1/vif0', 'host-b/web/vif0', 'host-a/b1/vif0']));
    // The file holds what the summary counted, every batch as a sink wrote it.
    expect(s.badBatches).toBeUndefined();
    expect(s.interfaces.reduce((n, i) => n + i.packets, 0)).toBe(f.packets.length);
  });
});
