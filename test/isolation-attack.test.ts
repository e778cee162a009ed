/**
 * Isolation by construction, attacked: a guest (the chaos fixture on host-a/x)
 * writes random bytes at random times into every handle it holds — its RAM and
 * shared rings, its grant table, its VI's rings and doorbell — sends, masks
 * and unmasks random ports, floods the NIC's doorbell and its plugin channel
 * with junk, and writes xenstore where it may and may not, while every other
 * domain streams payloads carrying a canary of its own. Afterwards:
 *
 *   - every honest stream delivered every frame, once, in order, never stalled;
 *   - no honest vif was disconnected, no honest VI faulted, nobody crashed;
 *   - no canary of any other domain is anywhere in the attacker's RAM.
 *
 * On real pCPU threads (real races) and deterministically over several seeds.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, dom0Stats, fabricStats, guestStats, runStream, validateTopology, type DomainRef, type StreamResult } from '@xsim/toolstack';
import { THREADS, replayOnFailure, seededModes } from './helpers.ts';

const CHAOS = new URL('./fixtures/chaos-guest.ts', import.meta.url).href;
const HOSTILE_VNIC = fileURLToPath(new URL('./fixtures/hostile-vnic/', import.meta.url));
const STEPS = 4000;

function topology() {
  const nic = (x: string) => ({ vendor: '1924', device: '0803', mac: `00:0f:53:00:0${x}:00`, vis: 8 });
  const g = (name: string, mac: string, ip: string) => ({ name, vifs: [{ mac, ip }] });
  return validateTopology({
    name: 'isolation-attack',
    hosts: [
      {
        name: 'host-a',
        nic: nic('a'),
        dom0: { ip: '10.0.0.1' },
        domUs: [g('a1', '00:16:3e:0a:01:01', '10.0.10.1'), g('a3', '00:16:3e:0a:03:01', '10.0.10.3'), g('x', '00:16:3e:0a:66:01', '10.0.10.66')],
      },
      {
        name: 'host-b',
        nic: nic('b'),
        dom0: { ip: '10.0.0.2' },
        domUs: [g('b1', '00:16:3e:0b:01:01', '10.0.11.1'), g('b2', '00:16:3e:0b:02:01', '10.0.11.2')],
      },
    ],
    wires: [{ a: 'host-a', b: 'host-b' }],
  });
}

const ref = (host: string, domain: string): DomainRef => ({ host, domain });
/** Every honest domain sends, each with its own canary (16 bytes: a marker no random fill makes). */
const STREAMS = [
  { from: ref('host-a', 'a1'), to: ref('host-b', 'b1'), count: 12_000, canary: 'c4a7a1b1' },
  { from: ref('host-a', 'a3'), to: ref('host-a', 'a1'), count: 6000, canary: 'c4a7a3a1' },
  { from: ref('host-b', 'b2'), to: ref('host-a', 'a3'), count: 6000, canary: 'c4a7b2a3' },
  { from: ref('host-b', 'b1'), to: ref('host-b', 'b2'), count: 6000, canary: 'c4a7b1b2' },
  { from: ref('host-a', 'dom0'), to: ref('host-a', 'a1'), count: 4000, canary: 'c4a7d0a1' },
  { from: ref('host-b', 'dom0'), to: ref('host-a', 'a3'), count: 4000, canary: 'c4a7d0a3' },
].map((s, i) => ({ ...s, pattern: `${s.canary}${'5a17'.repeat(2)}${s.canary}`, srcPort: 45000 + i, port: 6000 + i }));

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
}

/** Offsets where `needle` occurs in `hay`. */
function find(hay: Uint8Array, needle: Uint8Array): number[] {
  const out: number[] = [];
  const first = needle[0];
  for (let i = hay.indexOf(first); i >= 0 && i <= hay.length - needle.length; i = hay.indexOf(first, i + 1)) {
    let k = 1;
    while (k < needle.length && hay[i + k] === needle[k]) k++;
    if (k === needle.length) out.push(i);
  }
  return out;
}

describe.each([THREADS, ...seededModes()])('a guest attacking through every handle it holds ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(topology(), { ...mode.opts, kernels: { 'host-a/x': CHAOS } });
    await sim.loadPlugin(HOSTILE_VNIC);
    await sim.waitFor('every guest accelerated', async () => {
      const s = await sim.stats();
      return [ref('host-a', 'a1'), ref('host-a', 'a3'), ref('host-a', 'x'), ref('host-b', 'b1'), ref('host-b', 'b2')].every(
        (d) => guestStats(s, d).vifs[0].accel?.current?.ready === true,
      );
    });
    // Every flow resolved and learnt first (ARP, and vnic's filters for the flows it
    // accelerates): the measured streams then run on settled paths.
    for (const s of STREAMS) await runStream(sim, { from: s.from, to: s.to, count: 500, frameSize: 1500, window: 64, srcPort: s.srcPort, port: s.port });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  it(`${STEPS} attack steps: every other domain's traffic, memory and event state untouched`, async () => {
    const x = ref('host-a', 'x');
    const before = await sim.stats();
    const chaos = sim.request(x, 'chaos', { seed: mode.seed ?? 99, steps: STEPS, perTurn: 6 }, 120_000) as Promise<{
      steps: number;
      refused: number;
      tally: Record<string, number>;
    }>;
    const results: StreamResult[] = await Promise.all(
      STREAMS.map((s) =>
        runStream(sim, { from: s.from, to: s.to, count: s.count, frameSize: 1500, window: 128, srcPort: s.srcPort, port: s.port, pattern: s.pattern }),
      ),
    );
    const tally = await chaos;
    const after = await sim.stats();

    // The attack ran in full, every kind of step many times.
    expect(tally.steps).toBe(STEPS);
    for (const [kind, n] of Object.entries(tally.tally)) expect(n, kind).toBeGreaterThan(STEPS / 16);

    // Every honest stream: all delivered, once, in order; deterministically also never stalled
    // (on threads a sender may wait 50 ms for credit on a loaded 2-core machine: timing, not loss).
    for (const [i, r] of results.entries()) {
      expect(
        {
          stream: `${r.from} -> ${r.to}`,
          delivered: r.delivered,
          lost: r.lost,
          dup: r.duplicated,
          reord: r.reordered,
          stalled: mode.seed !== undefined && r.stalls > 0,
        },
        `stream ${i}`,
      ).toEqual({
        stream: `${r.from} -> ${r.to}`,
        delivered: STREAMS[i].count,
        lost: 0,
        dup: 0,
        reord: 0,
        stalled: false,
      });
    }

    // Nobody else was disconnected, faulted or crashed.
    for (const d of ['host-a/dom0', 'host-b/dom0', 'host-a/a1', 'host-a/a3', 'host-b/b1', 'host-b/b2'] as const) {
      expect(after[d], d).not.toHaveProperty('crashed');
      expect(after[d], d).not.toHaveProperty('hung');
    }
    for (const [host, names] of [
      ['host-a', ['a1', 'a3']],
      ['host-b', ['b1', 'b2']],
    ] as const) {
      for (const n of names) {
        const vif = dom0Stats(after, host).vifs[`vif${sim.domain(ref(host, n)).domid}.0`];
        expect(vif.disconnects - dom0Stats(before, host).vifs[`vif${sim.domain(ref(host, n)).domid}.0`].disconnects, `${host}/${n} vif`).toBe(0);
        expect(vif.state, `${host}/${n} vif state`).toBe(4);
      }
    }
    const xid = sim.domain(x).domid;
    const vis = fabricStats(after).nics.flatMap((n, ni) => Object.entries(n.vis).map(([vi, v]) => ({ ...v, at: `nic${ni}/vi${vi}`, nic: ni })));
    // The VIs honest domains hold now (x's own VI may have faulted, been failed and freed).
    const honestVis = vis.filter((v) => v.running && !(v.nic === 0 && v.domid === xid));
    expect(honestVis.length).toBe(6);
    for (const v of honestVis) expect(v.faults, v.at).toBe(0);

    // No canary of anyone else's is anywhere in the attacker's RAM.
    const ram = new Uint8Array(sim.host('host-a').domUs.find((d) => d.name === 'x')!.mem.sab);
    for (const s of STREAMS) expect(find(ram, hex(s.pattern)), `${s.from.host}/${s.from.domain}'s canary in x's RAM`).toEqual([]);
    // ...while receivers still hold the last frames sent to them: the scan finds what is there.
    const ramOf = (r: DomainRef) =>
      new Uint8Array((r.domain === 'dom0' ? sim.host(r.host).dom0 : sim.host(r.host).domUs.find((d) => d.name === r.domain)!).mem.sab);
    const seen = STREAMS.filter((st) => find(ramOf(st.to), hex(st.pattern)).length > 0);
    expect(seen.length, 'canaries found in their own receivers').toBeGreaterThanOrEqual(3);
  });
});
