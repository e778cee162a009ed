/**
 * netback never trusts a frontend. Five guests on host-a each break the TX
 * protocol in a different way while a1 streams to b1 across the wire; each
 * offender is disconnected alone (counted, logged once, driven to Closed), and
 * dom0 and the a1 -> b1 stream carry on with exact conservation. The hosts run
 * MTU 9000, so the stream's frames span three pages (scatter-gather).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, validateTopology } from '@xsim/cli';
import { conservedStream } from './helpers.ts';

const FAULTS = ['bad-producer', 'bad-gref', 'cross-page', 'zero-size', 'oversize'] as const;

function topology() {
  const nic = (x: string) => ({ vendor: '1924', device: '0803', mac: `00:0f:53:00:0${x}:00`, vis: 8, mtu: 9000 });
  return validateTopology({
    name: 'bad-frontends',
    hosts: [
      {
        name: 'host-a',
        nic: nic('a'),
        dom0: { ip: '10.0.0.1' },
        domUs: [
          { name: 'a1', vifs: [{ mac: '00:16:3e:0a:01:01', ip: '10.0.10.1' }] },
          ...FAULTS.map((_, i) => ({ name: `m${i + 1}`, vifs: [{ mac: `00:16:3e:0a:1${i}:01`, ip: `10.0.10.${20 + i}` }] })),
        ],
      },
      { name: 'host-b', nic: nic('b'), dom0: { ip: '10.0.0.2' }, domUs: [{ name: 'b1', vifs: [{ mac: '00:16:3e:0b:01:01', ip: '10.0.11.1' }] }] },
    ],
    wires: [{ a: 'host-a', b: 'host-b' }],
  });
}

let sim: Simulation;
beforeAll(async () => {
  sim = await Simulation.start(topology());
});
afterAll(async () => {
  await sim?.shutdown();
});

interface VifStats {
  state: number;
  disconnects: number;
  fatalReason: string;
  txPackets: number;
}

describe('a misbehaving frontend', () => {
  it('is disconnected alone while another pair keeps streaming 9000-byte frames', async () => {
    const a1 = { host: 'host-a', domain: 'a1' };
    const b1 = { host: 'host-b', domain: 'b1' };
    // Break the protocol in five ways while the stream runs.
    const { r, after } = await conservedStream(sim, { from: a1, to: b1, count: 10_000, frameSize: 9000, window: 128 }, async () => {
      await Promise.all(FAULTS.map((kind, i) => sim.request({ host: 'host-a', domain: `m${i + 1}` }, 'inject_fault', { kind })));
    });
    expect(r.delivered).toBeGreaterThan(9000);
    expect(r.duplicated + r.reordered).toBe(0);

    const dom0 = after['host-a/dom0'] as { vifs: Record<string, VifStats>; log: string[] };
    const reasons: Record<string, RegExp> = {
      'bad-producer': /impossible TX producer/,
      'bad-gref': /grant copy from TX gref 7 failed: permission_denied/,
      'cross-page': /crosses its page/,
      'zero-size': /smaller than an Ethernet header/,
      'oversize': /exceeds the maximum/,
    };
    FAULTS.forEach((kind, i) => {
      const domid = sim.domain({ host: 'host-a', domain: `m${i + 1}` }).domid;
      const v = dom0.vifs[`vif${domid}.0`];
      expect(v.disconnects, kind).toBe(1);
      expect(v.fatalReason, kind).toMatch(reasons[kind]);
      expect(sim.hosts[0].xenstore.read(0, `/local/domain/0/backend/vif/${domid}/0/state`), kind).toBe('6');
    });
    // Logged once per offender, not once per bad request.
    expect(dom0.log.filter((l) => l.includes('misbehaving')).length).toBe(FAULTS.length);
    // The good vif never noticed.
    expect(dom0.vifs[`vif${sim.domain(a1).domid}.0`].disconnects).toBe(0);
    const a1stats = (await sim.request(a1, 'stats')) as { vifs: { rxFragmented: number }[] };
    expect(a1stats).toBeTruthy();
    const b1stats = (await sim.request(b1, 'stats')) as { vifs: { rxFragmented: number }[] };
    expect(b1stats.vifs[0].rxFragmented).toBeGreaterThanOrEqual(r.delivered);
  });

  it('a frontend closing itself tears down to Closed on both ends', async () => {
    const a1 = { host: 'host-a', domain: 'a1' };
    const domid = sim.domain(a1).domid;
    await sim.request(a1, 'vif_close');
    const xs = sim.hosts[0].xenstore;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (xs.read(0, `/local/domain/${domid}/device/vif/0/state`) !== '6' || xs.read(0, `/local/domain/0/backend/vif/${domid}/0/state`) !== '6')) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(xs.read(0, `/local/domain/${domid}/device/vif/0/state`)).toBe('6');
    expect(xs.read(0, `/local/domain/0/backend/vif/${domid}/0/state`)).toBe('6');
    const dom0 = (await sim.request({ host: 'host-a', domain: 'dom0' }, 'stats')) as { vifs: Record<string, VifStats>; grantFailures: Record<string, number> };
    expect(dom0.vifs[`vif${domid}.0`].disconnects).toBe(0);
  });
});
