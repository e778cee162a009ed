/**
 * `--trace`: a Chrome / Perfetto JSON trace of a simulation, from boot through
 * a slow-path stream, a plugin load and a fast-path stream, on real pCPU
 * threads and on a seeded run. The file is checked as the Perfetto UI reads
 * it (Trace Event Format: every event placed on a named track, slices with a
 * duration, flow arrows bound to slices on their tracks), and for what a user
 * looks for: a track per domain, busy and asleep spans, the boot's xenbus
 * handshakes, ring pushes, notifications, grant copies, accelerator channel
 * messages, filter insertions, and sampled frames' journeys hop by hop on the
 * slow path and on the fast one.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tracer } from '@xsim/hypervisor';
import { Simulation, defaultTopology, runStream, type DomainRef, type GuestStats } from '@xsim/toolstack';
import { THREADS, replayOnFailure, seededModes } from './helpers.ts';

interface Ev {
  ph: string;
  name: string;
  cat?: string;
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  id?: number;
  bp?: string;
  args?: Record<string, unknown>;
}

/** Map.groupBy, which Node 20 lacks. */
function groupBy<T, K>(xs: readonly T[], key: (x: T) => K): Map<K, T[]> {
  const m = new Map<K, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return m;
}

const vif0Accel = (g: GuestStats): Record<string, unknown> => g.vifs[0].accel?.current ?? {};
const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };

describe.each([THREADS, seededModes()[0]])('trace ($name)', (mode) => {
  let sim: Simulation;
  let events: Ev[];
  /** a1's vnic frontend counters over the last stream (what declined a frame, if one was). */
  let lastStream = '';
  const track = new Map<string, string>();
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'xsim-trace-')), 'trace.json');
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, logLevel: 'warn', trace: { file, sample: 64 } });
    await runStream(sim, { from: a1, to: b1, count: 2000, frameSize: 800, window: 64, srcPort: 41000 });
    await sim.loadPlugin('vnic');
    // The load returns once both dom0s have vnic; a1's and b1's frontends attach after that (on a
    // loaded machine, after a whole warm-up stream went by: 26 of 32 sampled frames once, 2 another
    // time, left on the slow path): the fast path is up when their frontends say `ready`.
    await sim.waitAccelerated([a1, b1], { plugin: 'vnic' });
    // Learning: vnic steers a flow to b1's VI once dom0-b has seen it and inserted its filter. A
    // warm-up stream on the measured stream's port teaches it.
    await runStream(sim, { from: a1, to: b1, count: 500, frameSize: 800, window: 64, srcPort: 41001 });
    const before = vif0Accel(await sim.guestStats(a1));
    await runStream(sim, { from: a1, to: b1, count: 2000, frameSize: 800, window: 64, srcPort: 41001 });
    const after = vif0Accel(await sim.guestStats(a1));
    lastStream = JSON.stringify(
      Object.fromEntries(Object.keys(after).map((k) => [k, typeof after[k] === 'number' ? (after[k] as number) - ((before[k] as number) ?? 0) : after[k]])),
    );
    const s = await sim.traceStop();
    expect(s.dropped).toBe(0);
    const json = JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: Ev[]; displayTimeUnit: string };
    expect(json.displayTimeUnit).toBe('ns');
    events = json.traceEvents;
    for (const e of events)
      if (e.ph === 'M' && e.name === 'thread_name')
        track.set(
          `${e.pid}/${e.tid}`,
          `${events.find((p) => p.ph === 'M' && p.name === 'process_name' && p.pid === e.pid)?.args?.name}/${String(e.args?.name)}`,
        );
  });

  afterAll(async () => {
    await sim?.shutdown();
  });

  const on = (e: Ev) => track.get(`${e.pid}/${e.tid}`) ?? '?';

  it('is in the Trace Event Format: every event on a named track, slices with durations, flows bound to slices', () => {
    const body = events.filter((e) => e.ph !== 'M');
    expect(body.length).toBeGreaterThan(100);
    for (const e of body) {
      expect(['X', 'i', 's', 't', 'f'], e.name).toContain(e.ph);
      expect(Number.isFinite(e.ts) && e.ts >= 0, e.name).toBe(true);
      expect(track.has(`${e.pid}/${e.tid}`), `${e.name} on ${e.pid}/${e.tid}`).toBe(true);
      if (e.ph === 'X') expect(e.dur! >= 0, e.name).toBe(true);
    }
    // Each flow step sits on a hop slice of its own track at its own time ("bp": "e" binds it there).
    const slices = new Set(body.filter((e) => e.ph === 'X' && e.cat === 'frame').map((e) => `${e.pid}/${e.tid}@${e.ts}`));
    const flows = body.filter((e) => e.ph === 's' || e.ph === 't' || e.ph === 'f');
    for (const f of flows) expect(slices.has(`${f.pid}/${f.tid}@${f.ts}`), `flow ${f.id} at ${f.ts}`).toBe(true);
    const byId = groupBy(flows, (f) => f.id);
    for (const [id, fs] of byId) expect(fs.map((f) => f.ph).join(''), `flow ${id}`).toMatch(/^st*f$/);
  });

  it("has a track per domain with its busy spans, and (on threads) each pCPU's sleeps", () => {
    const tracks = new Set(events.filter((e) => e.ph === 'X' && e.name === 'run').map(on));
    for (const t of ['host-a/dom0', 'host-b/dom0', 'host-a/a1 (domain 1)', 'host-b/b1 (domain 1)', 'NIC hardware/NICs and switches'])
      expect(tracks, t).toContain(t);
    const asleep = new Set(events.filter((e) => e.name === 'asleep').map(on));
    if (mode.seed === undefined) expect([...asleep].sort()).toEqual(['pCPUs/NIC thread: asleep', 'pCPUs/pCPU 0: asleep', 'pCPUs/pCPU 1: asleep']);
    else expect(asleep.size).toBe(0); // one thread, a virtual clock: nothing ever blocks
  });

  it("shows the boot's xenbus handshakes, ring pushes, notifications, grant copies, channel messages and filter insertions", () => {
    const names = (re: RegExp) => events.filter((e) => re.test(e.name)).map((e) => `${on(e)}: ${e.name}`);
    expect(names(/^xenbus vif1\.0 backend: Connected$/)).toEqual(
      expect.arrayContaining(['host-a/dom0: xenbus vif1.0 backend: Connected', 'host-b/dom0: xenbus vif1.0 backend: Connected']),
    );
    expect(names(/^xenbus vif0 frontend: Connected$/)).toContain('host-a/a1 (domain 1): xenbus vif0 frontend: Connected');
    expect(names(/^ring push: netfront tx requests$/)).toContain('host-a/a1 (domain 1): ring push: netfront tx requests');
    expect(names(/^ring push: vif1\.0 tx responses$/)).toContain('host-a/dom0: ring push: vif1.0 tx responses');
    expect(names(/^ring push: vif1\.0 rx responses$/)).toContain('host-b/dom0: ring push: vif1.0 rx responses');
    expect(names(/^evtchn send$/).length).toBeGreaterThan(0);
    const copies = events.filter((e) => e.name === 'grant copy (tx)' && on(e) === 'host-a/dom0');
    expect(copies.length).toBeGreaterThan(0);
    expect(copies.every((e) => (e.args?.frames as number) > 0)).toBe(true);
    expect(names(/^accel channel: /).some((n) => n.startsWith('host-a/a1 (domain 1): accel channel: attach (from backend)'))).toBe(true);
    expect(names(/^accel channel: .*\(from frontend\)$/).some((n) => n.startsWith('host-a/dom0:'))).toBe(true);
    expect(events.filter((e) => e.name.startsWith('filter insert: VI ')).length).toBeGreaterThan(0);
    // The fast path's notifications: the NIC interrupting a guest's VI.
    expect(names(/^VI [1-9]\d* interrupt$/).some((n) => n.startsWith('NIC hardware/'))).toBe(true);
  });

  it('follows sampled frames hop by hop: through both dom0s on the slow path, past them on the fast one', () => {
    const hops = events.filter((e) => e.ph === 'X' && e.cat === 'frame');
    const journeys = groupBy(hops, (e) => String(e.args?.frame));
    const path = (j: Ev[]) => j.sort((x, y) => x.ts - y.ts).map((e) => String(e.args?.tap));
    const all = [...journeys.values()].map(path);
    const slow = all.filter((p) => p.includes('host-a/vif1.0'));
    const fast = all.filter((p) => p[0] === 'host-a/a1/vif0' && !p.includes('host-a/vif1.0') && p.some((t) => /^host-a\/nic\/vi[1-9]/.test(t)));
    // Every 64th frame of each stream (seq 0, 64, ...): 32 for each 2000-frame stream, 8 for the
    // warm-up between them. The first stream's went through dom0-a; the warm-up's and the last
    // stream's past it (a1's fast path was up before the warm-up began).
    expect(slow.length).toBe(32);
    const odd = [...journeys.values()]
      .map((j) => ({ frame: String(j[0].args?.frame), path: path(j) }))
      .filter((j) => !fast.includes(j.path) && !j.path.includes('host-a/uplink'));
    expect(fast.length, `a1's vnic frontend over the last stream: ${lastStream}; neither path: ${JSON.stringify(odd)}`).toBe(40);
    expect(slow.length + fast.length).toBe(72);
    expect(slow[0]).toEqual([
      'host-a/a1/vif0',
      'host-a/vif1.0',
      'host-a/uplink',
      'host-a/nic/vi0',
      'host-a/nic/wire',
      'host-b/nic/wire',
      'host-b/nic/vi0',
      'host-b/uplink',
      'host-b/vif1.0',
      'host-b/b1/vif0',
    ]);
    expect(fast[0][0]).toBe('host-a/a1/vif0');
    expect(fast[0].at(-1)).toBe('host-b/b1/vif0');
    expect(fast[0]).toEqual(expect.arrayContaining(['host-a/nic/wire', 'host-b/nic/wire']));
  });

  it('costs nothing once stopped: the tracer is off', () => {
    expect(tracer.on).toBe(false);
  });
});
