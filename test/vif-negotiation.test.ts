/**
 * Feature negotiation end to end (issue 22 item 1 and 3), on a topology of
 * MTU 9000: a1 and b1 run the stock netfront, which takes what netback
 * offers (scatter-gather, split event channels); a2 runs an older frontend
 * (the legacy-frontend fixture kernel: no feature-sg, one event-channel).
 * Jumbo frames reach a1 over several RX slots; none reaches a2, each counted
 * where Linux's bridge would drop it; a2's own MTU is cut to 1500 and it
 * sends and receives standard frames over its single channel. Every stream
 * conserved. On real pCPU threads and deterministically over several seeds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vifBackendPath, vifFrontendPath } from '@xsim/hypervisor';
import { Simulation, dom0Stats, guestStats, runStream, validateTopology, type DomainRef } from '@xsim/toolstack';
import { THREADS, conservedStream, replayOnFailure, seededModes } from './helpers.ts';

const LEGACY = new URL('./fixtures/legacy-frontend.ts', import.meta.url).href;

function topology() {
  const nic = (x: string) => ({ vendor: '1924', device: '0803', mac: `00:0f:53:00:0${x}:00`, vis: 16, mtu: 9000 });
  return validateTopology({
    name: 'negotiation',
    hosts: [
      {
        name: 'host-a',
        nic: nic('a'),
        dom0: { ip: '10.0.0.1' },
        domUs: [
          { name: 'a1', vifs: [{ mac: '00:16:3e:0a:01:01', ip: '10.0.10.1' }] },
          { name: 'a2', vifs: [{ mac: '00:16:3e:0a:02:01', ip: '10.0.10.2' }] },
        ],
      },
      { name: 'host-b', nic: nic('b'), dom0: { ip: '10.0.0.2' }, domUs: [{ name: 'b1', vifs: [{ mac: '00:16:3e:0b:01:01', ip: '10.0.11.1' }] }] },
    ],
    wires: [{ a: 'host-a', b: 'host-b' }],
  });
}

describe.each([THREADS, ...seededModes()])('$name', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);
  beforeAll(async () => {
    sim = await Simulation.start(topology(), { ...mode.opts, kernels: { 'host-a/a2': LEGACY } });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  const a1: DomainRef = { host: 'host-a', domain: 'a1' };
  const a2: DomainRef = { host: 'host-a', domain: 'a2' };
  const b1: DomainRef = { host: 'host-b', domain: 'b1' };
  const vifStats = async (g: DomainRef) => dom0Stats(await sim.stats(), g.host).vifs[`vif${sim.domain(g).domid}.0`];

  it('each end reads the other: split channels and scatter-gather for the stock frontend, neither for the old one', async () => {
    const xs = sim.host('host-a').xenstore;
    const key = (g: DomainRef, k: string) => xs.read(0, `${vifFrontendPath(sim.domain(g).domid, 0)}/${k}`);
    expect(xs.read(0, `${vifBackendPath(0, sim.domain(a1).domid, 0)}/feature-split-event-channels`)).toBe('1');
    expect([key(a1, 'event-channel-tx'), key(a1, 'event-channel-rx'), key(a1, 'event-channel'), key(a1, 'feature-sg')]).toEqual([
      expect.stringMatching(/^\d+$/),
      expect.stringMatching(/^\d+$/),
      undefined,
      '1',
    ]);
    expect([key(a2, 'event-channel-tx'), key(a2, 'event-channel'), key(a2, 'feature-sg')]).toEqual([undefined, expect.stringMatching(/^\d+$/), undefined]);
    const [v1, v2] = [await vifStats(a1), await vifStats(a2)];
    expect([v1.splitEventChannels, v1.frontendFeatures?.canSg]).toEqual([true, true]);
    expect([v2.splitEventChannels, v2.frontendFeatures?.canSg]).toEqual([false, false]);
    const s = await sim.stats();
    expect(guestStats(s, a1).vifs[0].mtu).toBe(9000);
    expect(guestStats(s, a2).vifs[0].mtu).toBe(1500);
  });

  it('jumbo frames reach the frontend with scatter-gather: 1000 of 9000 bytes b1 -> a1, each delivered', async () => {
    const { r, drops } = await conservedStream(sim, { from: b1, to: a1, count: 1000, frameSize: 9000, window: 64 });
    expect(r.delivered).toBe(1000);
    expect([...drops].filter(([, n]) => n > 0)).toEqual([]);
    expect((await vifStats(a1)).rxDropNoSg).toBe(0);
  });

  it('none reaches the frontend without it: 200 of 9000 bytes b1 -> a2, each counted (rxDropNoSg)', async () => {
    const before = (await vifStats(a2)).rxDropNoSg;
    const { r, drops } = await conservedStream(sim, { from: b1, to: a2, count: 200, frameSize: 9000, window: 0 });
    expect(r.delivered).toBe(0);
    expect((await vifStats(a2)).rxDropNoSg - before).toBe(r.sent);
    expect(drops.get(`host-a/dom0.vifs.vif${sim.domain(a2).domid}.0.rxDropNoSg`)).toBe(r.sent);
  });

  it('the old frontend streams standard frames both ways over its one channel, and builds no frame over its cut MTU', async () => {
    const to = await conservedStream(sim, { from: b1, to: a2, count: 2000, frameSize: 1514, window: 64 });
    expect(to.r.delivered).toBe(2000);
    const from = await conservedStream(sim, { from: a2, to: b1, count: 2000, frameSize: 1514, window: 64 });
    expect(from.r.delivered).toBe(2000);
    await expect(runStream(sim, { from: a2, to: b1, count: 10, frameSize: 1515, timeoutMs: 2000 })).rejects.toThrow(/frame size 1515 outside 50\.\.1514/);
  });
});
