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
import { Simulation, defaultTopology, fabricStats, runStream, type DomainRef, type GuestStats } from '@xsim/toolstack';

import { THREADS, afterFrames, conservedStream, replayOnFailure, seededModes } from './helpers.ts';

const at = (host: string, domain: string): DomainRef => ({ host, domain });
const other = (host: string): string => (host === 'host-a' ? 'host-b' : 'host-a');
/** A guest on the other host to stream to (cross-host, so the fast path carries it). */
const peerOf = (host: string): DomainRef => (host === 'host-a' ? at('host-b', 'b1') : at('host-a', 'a2'));

const vif0 = (g: GuestStats) => g.vifs[0];

async function accelerated(sim: Simulation, ref: DomainRef): Promise<GuestStats> {
  await sim.waitAccelerated([ref], { plugin: 'vnic' });
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

describe.each([...seededModes(), THREADS])('vnic through link, MTU and reset events ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);
  const a1 = at('host-a', 'a1');
  const b1 = at('host-b', 'b1');

  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, log: () => {} });
    await sim.loadPlugin('vnic');
    await accelerated(sim, a1);
    await accelerated(sim, b1);
    // So host-a's bridge has seen b1 behind its uplink and a1's frontend counts b1 as a fast-path destination.
    await runStream(sim, { from: a1, to: b1, count: 500, frameSize: 1500, window: 64 });
  });

  afterAll(async () => {
    await sim?.shutdown();
  });

  /** What a1's frontend believes of the link (its vnic stats), or null with no frontend attached. */
  const frontendLink = async (): Promise<unknown> => vif0(await sim.guestStats(a1)).accel?.current?.linkUp ?? null;
  const linkDownDrops = async (): Promise<number> => fabricStats(await sim.stats()).nics[0].linkDownDrops;

  /** After an event: a whole stream a1 -> b1, every frame of it on the fast path. */
  async function fastPathCarries(why: string): Promise<void> {
    const before = vif0(await accelerated(sim, a1)).txAccel;
    const { r } = await conservedStream(sim, { from: a1, to: b1, count: 5000, frameSize: 1500, window: 256 });
    expect(r.delivered, why).toBe(5000);
    expect(vif0(await sim.guestStats(a1)).txAccel - before, `fast-path frames ${why}`).toBe(5000);
  }

  it('link down then up mid-stream: what the downtime lost is counted, and the fast path then carries a whole stream', async () => {
    await fastPathCarries('before the flap');
    // (b1's credits back to a1 die at host-b's port, whose peer is down: not the stream's frames, left out of its account.)
    const notCredits = (path: string) => path !== 'fabric.nics.1.linkDownDrops';
    const flap = async () => {
      await afterFrames(sim, b1, 3000);
      const down0 = await linkDownDrops();
      await sim.setLink('host-a', false);
      await sim.waitFor('a1 to hear the link is down', async () => (await frontendLink()) === false, 5000);
      // Down for a while of the stream's own progress, not a guessed delay: until frames die on the link.
      await sim.waitFor('frames to be dropped on the down link', async () => (await linkDownDrops()) >= down0 + 256, 5000);
      await sim.setLink('host-a', true);
      await sim.waitFor('a1 to hear the link is up', async () => (await frontendLink()) === true, 5000);
    };
    const { r, drops } = await conservedStream(sim, { from: a1, to: b1, count: 20_000, frameSize: 1500, window: 256 }, flap, notCredits);
    // conservedStream checked that every frame not delivered is in a drop counter: here, the link's.
    expect(r.sent - r.delivered).toBeGreaterThan(0);
    expect(drops.get('fabric.nics.0.linkDownDrops') ?? 0).toBeGreaterThan(0);
    await fastPathCarries('after link up');
  });

  it("MTU below the stream's frames and back: the frames that no longer fit are counted, then the fast path carries a whole stream", async () => {
    await sim.setMtu('host-a', 1400);
    try {
      const { r, drops } = await conservedStream(sim, { from: a1, to: b1, count: 300, frameSize: 1500, window: 0, timeoutMs: 1500 });
      expect(r.delivered).toBe(0);
      // Each died at host-a's NIC, too long for its MTU (on a1's VI: the fast path took them).
      const oversize = [...drops].filter(([k]) => /^fabric\.nics\.0\.vis\.[1-9]\d*\.txOversize$/.test(k)).reduce((n, [, v]) => n + v, 0);
      expect(oversize, JSON.stringify([...drops])).toBe(300);
    } finally {
      await sim.setMtu('host-a', 1500);
    }
    await fastPathCarries('after the MTU came back');
  });

  it('a NIC reset mid-stream: the vifs fall back and come back, and the fast path then carries a whole stream', async () => {
    const { r } = await conservedStream(sim, { from: a1, to: b1, count: 20_000, frameSize: 1500, window: 256 }, async () => {
      await afterFrames(sim, b1, 3000);
      await sim.nicReset('host-a');
    });
    expect(r.delivered).toBeGreaterThan(0);
    await fastPathCarries('after the reset');
  });

  it('an attachment made while the link is down, or kept across a change it missed, learns the link as it is', async () => {
    await sim.setLink('host-a', false);
    await sim.waitFor('a1 to hear the link is down', async () => (await frontendLink()) === false, 5000);
    // Detached while down; the link comes up while no plugin is there to say so.
    await sim.unloadPlugin('vnic', { host: 'host-a' });
    await sim.setLink('host-a', true);
    await sim.loadPlugin('vnic', { host: 'host-a' });
    await accelerated(sim, a1);
    expect(await frontendLink()).toBe(true);
    // And the other way round: attached while the link is down.
    await sim.unloadPlugin('vnic', { host: 'host-a' });
    await sim.setLink('host-a', false);
    try {
      await sim.loadPlugin('vnic', { host: 'host-a' });
      await accelerated(sim, a1);
      expect(await frontendLink()).toBe(false);
    } finally {
      await sim.setLink('host-a', true);
    }
    await sim.waitFor('a1 to hear the link is up', async () => (await frontendLink()) === true, 5000);
    await fastPathCarries('after the plugin came back');
  });
});
