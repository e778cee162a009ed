/**
 * The serve loop's rounds (streamRounds: what `run --serve` runs between its
 * two ends) against faults, issue 20: a stream whose every frame is vetoed ends
 * and says what it lost (item 13); the sender closing its own vif ends its own
 * stream alone, and no round failure ends the rounds (item 1); the ends are
 * followed across a live migration, and waited for while saved (item 14); and
 * a stop abandons a stalled round at once (item 15). Deterministic over seeds;
 * every wait is on the simulation's clock and bounded.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VIF_KEY, XenbusState, vifFrontendPath } from '@xsim/hypervisor';
import { STREAM_FIRST_FRAME_MS, STREAM_GIVE_UP_MS } from '@xsim/netstack';
import { Simulation, defaultTopology, streamRounds, type DomainRef, type Round } from '@xsim/toolstack';
import { ROUND_BACKOFF } from '../packages/toolstack/src/scenario.ts';
import { afterFrames, conservedStream, replayOnFailure, seededModes } from './helpers.ts';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const a2: DomainRef = { host: 'host-a', domain: 'a2' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };
const b2: DomainRef = { host: 'host-b', domain: 'b2' };
const ENDS = { from: a1, to: b1, count: 20_000, frameSize: 1500, window: 256 };
/** Reports any one test may see before it must have stopped the rounds: every run of them is bounded. */
const MAX_REPORTS = 40;
/** The longest a round whose stream cannot get on may take, in seconds of the simulation's clock. */
const STALLED_ROUND_S = (STREAM_GIVE_UP_MS + STREAM_FIRST_FRAME_MS) / 1000 + 1;

type Kind = Round['kind'];
type Of<K extends Kind> = Extract<Round, { kind: K }>;
const ofKind = <K extends Kind>(ev: Round[], k: K): Of<K>[] => ev.filter((e): e is Of<K> => e.kind === k);

describe.each(seededModes())('the serve loop under faults ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);
  beforeEach(async () => {
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, log: () => {} });
  });
  afterEach(async () => {
    await sim?.shutdown();
  });

  /** The rounds in the background, every report kept, until `until` holds of them (or MAX_REPORTS). */
  function serve(until: (ev: Round[]) => boolean, signal?: AbortSignal) {
    const ev: Round[] = [];
    const done = streamRounds(
      sim,
      { ...ENDS, signal },
      () => until(ev) || ev.length >= MAX_REPORTS,
      (r) => ev.push(r),
    );
    return { ev, done };
  }

  it('item 13: a stream whose every frame is vetoed ends, saying what it lost, and the next round starts', async () => {
    await sim.loadPlugin('firewall', { host: 'host-b', args: { rules: [{ proto: 17, dstPort: 5001 }] } });
    const { ev, done } = serve((ev) => ofKind(ev, 'round').some((r) => r.stream.complete));
    await sim.waitFor('the vetoed round to end', () => ev.length > 0, 60_000);
    await sim.unloadPlugin('firewall', { host: 'host-b' });
    await done;
    const first = ev[0];
    expect(first.kind, JSON.stringify(first)).toBe('round');
    const r = first as Of<'round'>;
    // The sender gave up once its credits stopped coming back; the receiver, with nothing, ended too.
    expect(r.stream.delivered).toBe(0);
    expect(r.stream.sent).toBeGreaterThan(0);
    expect(r.unsent, 'frames never sent').toBe(r.stream.count - r.stream.sent);
    expect(r.unsent).toBeGreaterThan(0);
    expect(r.shortfall).toMatch(/^the sender gave up after \d+ of 20000 frames/);
    expect(r.stream.lost).toBe(r.stream.sent);
    expect(r.dropped, 'every frame sent is in a drop counter').toBeGreaterThanOrEqual(r.stream.sent);
    expect(r.at).toBeLessThan(STALLED_ROUND_S);
    // Once the plugin is gone, a round delivers every frame again.
    const last = ofKind(ev, 'round').at(-1)!;
    expect(last.stream).toMatchObject({ complete: true, delivered: ENDS.count, sent: ENDS.count });
    expect(ofKind(ev, 'failed')).toEqual([]);
  });

  it.each([
    ['Closed', XenbusState.Closed],
    ['99', 99],
  ])('item 1: the sender writing its own vif state %s ends its own stream alone, reported, and the rounds go on', async (_name, state) => {
    const { ev, done } = serve((ev) => ev.length >= 4);
    await afterFrames(sim, b1, 2000);
    const d = sim.domain(a1);
    // As the guest itself would (a connection restricted to its domain): its own frontend's state key.
    sim.host('host-a').xenstore.write(d.domid, `${vifFrontendPath(d.domid, 0)}/${VIF_KEY.state}`, String(state));
    // Everyone else carries on meanwhile: another guest's stream, every frame delivered or counted.
    const other = await conservedStream(sim, { from: a2, to: b2, count: 3000, frameSize: 1500, window: 64, port: 5002, srcPort: 43000 });
    expect(other.r.delivered).toBe(3000);
    await done;
    const r = ev[0] as Of<'round'>;
    expect(r.kind, JSON.stringify(ev[0])).toBe('round');
    // The round in flight ended with what its stream lost: short of its count, every frame sent delivered or counted.
    expect(r.stream.sent).toBeLessThan(ENDS.count);
    expect(r.shortfall).toMatch(/gave up/);
    expect(r.stream.lost).toBe(r.stream.sent - r.stream.delivered);
    expect(r.stream.delivered + r.dropped).toBeGreaterThanOrEqual(r.stream.sent);
    expect(r.at).toBeLessThan(STALLED_ROUND_S);
    // And the rounds went on (each one short, or failed and reported) until told to stop.
    expect(ev).toHaveLength(4);
    for (const e of ev.slice(1)) expect(['round', 'failed']).toContain(e.kind);
    for (const [i, e] of ev.entries()) if (i > 0) expect(e.at - ev[i - 1].at).toBeLessThan(STALLED_ROUND_S);
    expect(ofKind(ev, 'failed').every((f) => f.retryMs <= ROUND_BACKOFF.maxMs)).toBe(true);
  });

  it('item 1: a round whose stream op fails is a round line, and the next round follows after a bounded backoff', async () => {
    // Someone else's receiver on the rounds' port: round 1's stream_recv is refused.
    const squatter = sim.request(b1, 'stream_recv', { port: 5001, count: 10, streamId: 999 }).catch((e: Error) => e);
    const { ev, done } = serve((ev) => ofKind(ev, 'round').length > 0);
    await done;
    expect(ev[0]).toMatchObject({
      kind: 'failed',
      round: 1,
      error: expect.stringMatching(/already being received on port 5001/),
      retryMs: ROUND_BACKOFF.firstMs,
    });
    // The next round waited for the port (the squatter ends idle), no longer than a stalled round.
    expect(ev.slice(1).map((e) => e.kind)).toEqual(['round']);
    expect((ev[1] as Of<'round'>).stream).toMatchObject({ complete: true, delivered: ENDS.count });
    expect(ev[1].at - ev[0].at).toBeLessThan(STALLED_ROUND_S);
    expect(await squatter).toMatchObject({ delivered: 0, idle: true });
  });

  it('item 14: a live-migrated sender is followed, said, and streams from its new host', async () => {
    await sim.loadPlugin('vnic');
    const moved = (ev: Round[]) => ev.findIndex((e) => e.kind === 'moved');
    const { ev, done } = serve((ev) => moved(ev) >= 0 && ofKind(ev.slice(moved(ev)), 'round').length >= 2);
    await afterFrames(sim, b1, 2000);
    await sim.migrateDomain(a1, 'host-b', { live: true });
    await done;
    expect(ofKind(ev, 'moved')).toEqual([{ kind: 'moved', at: expect.any(Number), end: 'from', was: 'host-a/a1', now: 'host-b/a1' }]);
    expect(ofKind(ev, 'failed')).toEqual([]);
    const after = ofKind(ev.slice(moved(ev)), 'round');
    expect(after.at(-1)!.stream).toMatchObject({ from: 'host-b/a1', to: 'host-b/b1', complete: true, delivered: ENDS.count });
  });

  it('item 14: a receiver saved away is said gone, waited for, and followed when restored', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'xsim-serve-')), 'b1.xsav');
    const back = (ev: Round[]) => ev.findIndex((e) => e.kind === 'back');
    const { ev, done } = serve((ev) => back(ev) >= 0 && ofKind(ev.slice(back(ev)), 'round').some((r) => r.stream.complete));
    await sim.waitFor('a first round', () => ev.length > 0, 60_000);
    await sim.saveDomain(b1, file);
    await sim.waitFor('the rounds to see b1 gone', () => ev.some((e) => e.kind === 'gone'), 60_000);
    await sim.restoreDomain(file, 'host-b');
    await done;
    // While it was gone, no round ran.
    expect(
      ev
        .slice(
          ev.findIndex((e) => e.kind === 'gone'),
          back(ev) + 1,
        )
        .map((e) => e.kind),
    ).toEqual(['gone', 'back']);
    expect(ofKind(ev, 'gone')).toEqual([{ kind: 'gone', at: expect.any(Number), end: 'to', was: 'host-b/b1' }]);
    expect(ofKind(ev, 'back')).toEqual([{ kind: 'back', at: expect.any(Number), end: 'to', now: 'host-b/b1' }]);
    expect(ofKind(ev, 'round').at(-1)!.stream).toMatchObject({ to: 'host-b/b1', complete: true });
  });

  it('item 15: a stop abandons a stalled round at once', async () => {
    await sim.loadPlugin('firewall', { host: 'host-b', args: { rules: [{ proto: 17, dstPort: 5001 }] } });
    const stop = new AbortController();
    const { ev, done } = serve(() => false, stop.signal);
    await sim.waitFor('frames vetoed', async () => ((await sim.dom0Stats('host-b')).nic?.vetoedRx ?? 0) > 1000, 60_000);
    const t = sim.clock.now();
    stop.abort(new Error('shutting down'));
    await done;
    // The round in flight was not waited for (it would take seconds more to give up), and not reported.
    expect(sim.clock.now() - t).toBeLessThan(50);
    expect(ev).toEqual([]);
  });
});
