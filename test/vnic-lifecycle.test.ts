/**
 * vnic across a guest's life and the NIC's (issue 20, items 8 and 15): a
 * guest that moves between hosts again and again (live, mid-stream as a
 * sender, stopped first, saved and restored) gets its fast path back every
 * time, with the same free RAM each time; and a NIC whose link goes down and
 * up, whose MTU drops below the stream's frames and comes back, or which is
 * reset, carries every frame it can (what it cannot is a counted drop) and
 * then carries a whole stream on the fast path again. Deterministic over
 * seeds, and on real pCPU threads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Simulation, defaultTopology, runStream, type DomainRef, type GuestStats } from '@xsim/toolstack';

import { THREADS, afterFrames, replayOnFailure, seededModes } from './helpers.ts';

const at = (host: string, domain: string): DomainRef => ({ host, domain });
const other = (host: string): string => (host === 'host-a' ? 'host-b' : 'host-a');
/** A guest on the other host to stream to (cross-host, so the fast path carries it). */
const peerOf = (host: string): DomainRef => (host === 'host-a' ? at('host-b', 'b1') : at('host-a', 'a2'));

const vif0 = (g: GuestStats) => g.vifs[0];

async function accelerated(sim: Simulation, ref: DomainRef): Promise<GuestStats> {
  await sim.waitFor(`${ref.host}/${ref.domain} accelerated by vnic`, async () => vif0(await sim.guestStats(ref)).accel?.current?.ready === true, 5000);
  return sim.guestStats(ref);
}

describe.each([...seededModes(), THREADS])('vnic across a guest that moves ($name)', (mode) => {
  let sim: Simulation;
  let dir: string;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xsim-vnic-life-'));
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, log: () => {} });
    await sim.loadPlugin('vnic');
    await sim.waitFor('vnic on every vif', async () => (await sim.listDomains()).every((d) => d.domid === 0 || d.vifs.every((v) => v.accel === 'vnic')));
  });

  afterAll(async () => {
    await sim?.shutdown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('b2 moves seven times (live, live mid-stream as a sender, stopped, saved and restored): the fast path is back after each, with the same free RAM', async () => {
    let host = 'host-b';
    let first: { frames: number; grants: number } | null = null;
    const moves: ((ref: DomainRef, to: string) => Promise<unknown>)[] = [
      (ref, to) => sim.migrateDomain(ref, to, { live: true }),
      async (ref, to) => {
        // A sender moved mid-stream: its kernel leaves TX frames the old backend never took, to send again.
        const p = runStream(sim, { from: ref, to: peerOf(ref.host), count: 20_000, frameSize: 1000, window: 256, timeoutMs: 20_000 });
        await afterFrames(sim, peerOf(ref.host), 1500);
        await sim.migrateDomain(ref, to, { live: true });
        expect((await p).duplicated).toBe(0);
      },
      (ref, to) => sim.migrateDomain(ref, to),
      async (ref, to) => {
        const file = join(dir, `b2-${to}.xsav`);
        await sim.saveDomain(ref, file);
        await sim.restoreDomain(file, to);
      },
      (ref, to) => sim.migrateDomain(ref, to, { live: true }),
      async (ref, to) => {
        const file = join(dir, `b2-${to}-again.xsav`);
        await sim.saveDomain(ref, file);
        await sim.restoreDomain(file, to);
      },
      (ref, to) => sim.migrateDomain(ref, to),
    ];
    for (const [i, move] of [undefined, ...moves].entries()) {
      if (move) {
        await move(at(host, 'b2'), other(host));
        host = other(host);
      }
      const ref = at(host, 'b2');
      const g = await accelerated(sim, ref);
      const why = `after move ${i}, on ${host}: ${JSON.stringify(vif0(g).accel)}`;
      expect(vif0(g).accel?.lastError ?? null, why).toBeNull();
      expect(vif0(g).accel?.pluginErrors, why).toBe(0);
      // The same free frames and grant refs with the fast path up, every time: nothing of an earlier attachment is held.
      const held = { frames: g.freeFrames, grants: g.freeGrants };
      first ??= held;
      expect(held, why).toEqual(first);
      const r = await runStream(sim, { from: ref, to: peerOf(host), count: 500, frameSize: 1000, window: 64 });
      const after = await sim.guestStats(ref);
      expect(r.delivered, why).toBe(500);
      expect(vif0(after).txAccel - vif0(g).txAccel, `fast-path frames ${why}`).toBeGreaterThan(0);
    }
  });
});
