/**
 * netback never trusts a frontend, end to end with real workers. Hostile
 * guests on host-a (the hostile-guest fixture kernel) break their rings while
 * a1 streams 9000-byte frames to b1 across the wire (scatter-gather):
 *  - malice or a broken ring: each offender is disconnected alone (logged
 *    once, counted, driven to Closed);
 *  - a malformed but harmless frame: answered XEN_NETIF_RSP_ERROR, counted,
 *    and the vif stays connected;
 *  - a broken RX ring or a bad RX buffer: every frame sent to it is counted,
 *    the frame in hand included (E = 0).
 * dom0 and the a1 -> b1 stream carry on with exact conservation. On real pCPU
 * threads (the races are real) and deterministically over several seeds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VifCounters } from '@xsim/netback';
import { Simulation, dom0Stats, guestStats, streamAccount, validateTopology, type DomainRef, type StatsTree } from '@xsim/toolstack';
import { TX_ATTACKS } from './fixtures/hostile-guest.ts';
import { THREADS, conservedStream, replayOnFailure, seededModes } from './helpers.ts';

const HOSTILE = new URL('./fixtures/hostile-guest.ts', import.meta.url).href;
const FATAL = TX_ATTACKS.fatal;
/** f1..f5 each do one fatal TX attack; e1 does every error-tier one; r1, r2 break their RX rings; x1 flips a size. */
const ATTACKERS = [...FATAL.map((_, i) => `f${i + 1}`), 'e1', 'r1', 'r2', 'x1'];

function topology() {
  const nic = (x: string) => ({ vendor: '1924', device: '0803', mac: `00:0f:53:00:0${x}:00`, vis: 16, mtu: 9000 });
  return validateTopology({
    name: 'bad-frontends',
    hosts: [
      {
        name: 'host-a',
        nic: nic('a'),
        dom0: { ip: '10.0.0.1' },
        domUs: [
          { name: 'a1', vifs: [{ mac: '00:16:3e:0a:01:01', ip: '10.0.10.1' }] },
          ...ATTACKERS.map((name, i) => ({ name, vifs: [{ mac: `00:16:3e:0a:1${i.toString(16)}:01`, ip: `10.0.10.${20 + i}` }] })),
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
    sim = await Simulation.start(topology(), { ...mode.opts, kernels: Object.fromEntries(ATTACKERS.map((n) => [`host-a/${n}`, HOSTILE])) });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  const a1: DomainRef = { host: 'host-a', domain: 'a1' };
  const b1: DomainRef = { host: 'host-b', domain: 'b1' };
  const ref = (domain: string): DomainRef => ({ host: 'host-a', domain });
  const domid = (name: string) => sim.domain(ref(name)).domid;
  const vifOf = (s: StatsTree, name: string) => dom0Stats(s, 'host-a').vifs[`vif${domid(name)}.0`];
  /** Counters of the attackers' own vifs are theirs, not the honest stream's. */
  const attackers = () => ATTACKERS.map((n) => `vif${domid(n)}.0`);
  const notAttackers = (k: string) => !attackers().some((v) => k.includes(`.${v}.`)) && !ATTACKERS.some((n) => k.startsWith(`host-a/${n}.`));

  describe('a misbehaving frontend, end to end', () => {
    it('malice or a broken ring: each offender is disconnected alone while another pair keeps streaming', async () => {
      const { r } = await conservedStream(
        sim,
        { from: a1, to: b1, count: 10_000, frameSize: 9000, window: 128 },
        async () => {
          await Promise.all(FATAL.map((kind, i) => sim.request(ref(`f${i + 1}`), 'tx_attack', { kind })));
        },
        notAttackers,
      );
      expect(r.delivered).toBeGreaterThan(9000);
      expect(r.duplicated + r.reordered).toBe(0);
      const reasons: Record<string, RegExp> = {
        'bad-producer': /impossible number of TX requests/,
        'cross-page': /crosses its page/,
        'fatal-slots': /more than 20 slots/,
        'chain-past-prod': /needs more than the 1 published/,
        'extra-info': /extra-info/,
      };
      await sim.waitFor('every offender disconnected', async () => {
        const s = await sim.stats();
        return FATAL.every((_, i) => vifOf(s, `f${i + 1}`).state === 6);
      });
      const s = await sim.stats();
      FATAL.forEach((kind, i) => {
        const v = vifOf(s, `f${i + 1}`);
        expect(v.disconnects, kind).toBe(1);
        expect(v.fatalReason, kind).toMatch(reasons[kind]);
        expect(v.history.join(' | '), kind).toMatch(/Connected->Closing \(fatal: .*\) \| Closing->Closed \(frontend Closed\)/);
      });
      // Logged once per offender, not once per bad request.
      expect(dom0Stats(s, 'host-a').log.filter((l) => l.includes('misbehaving')).length).toBe(FATAL.length);
      expect(vifOf(s, 'a1').disconnects).toBe(0);
      expect(guestStats(s, b1).vifs[0].rxFragmented).toBeGreaterThanOrEqual(r.delivered);
    });

    it('malformed but harmless frames: each answered XEN_NETIF_RSP_ERROR, counted, and the vif stays connected', async () => {
      const counters: Record<string, keyof VifCounters> = {
        'bad-gref': 'txErrGrantCopy',
        runt: 'txErrRunt',
        'zero-size': 'txErrRunt',
        'over-mtu': 'txErrOversize',
        'slot-size': 'txErrSlotSize',
        'too-many-slots': 'txErrTooManySlots',
      };
      for (const kind of TX_ATTACKS.error) {
        const before = vifOf(await sim.stats(), 'e1');
        await sim.request(ref('e1'), 'tx_attack', { kind });
        await sim.waitFor(`${kind} counted`, async () => vifOf(await sim.stats(), 'e1')[counters[kind]] === before[counters[kind]] + 1);
        const v = vifOf(await sim.stats(), 'e1');
        expect(v.state, kind).toBe(4);
        expect(v.disconnects, kind).toBe(0);
        expect(v.txErrResponses - before.txErrResponses, kind).toBeGreaterThan(0);
      }
    });

    /**
     * `guest` breaks its RX ring (`kind`), then a1 sends it `count` frames that reach no
     * receiver: wait until every one is in a drop counter, and return the snapshots around.
     */
    async function sendAtAttackedRx(guest: string, kind: string, count: number): Promise<{ before: StatsTree; after: StatsTree; drops: Map<string, number> }> {
      const g = ref(guest);
      await sim.request(a1, 'arp_resolve', { ip: sim.domain(g).ip });
      await sim.request(g, 'rx_attack', { kind });
      const before = await sim.stats();
      const r = await sim.request(a1, 'stream_send', { dstIp: sim.domain(g).ip, dstPort: 5001, count, frameSize: 1500, window: 0 });
      const res = { sent: r.sent, delivered: 0, duplicated: 0 };
      await sim.waitFor('every frame counted', async () => streamAccount(before, await sim.stats(), res).conserved);
      const after = await sim.stats();
      return { before, after, drops: streamAccount(before, after, res).drops };
    }

    it('a broken RX ring: the frame in hand and every later one are counted (E = 0)', async () => {
      const { after, drops } = await sendAtAttackedRx('r1', 'bad-producer', 50);
      expect(drops.get(`host-a/dom0.vifs.vif${domid('r1')}.0.rxDropFatal`)).toBe(1);
      expect(vifOf(after, 'r1').fatalReason).toMatch(/impossible RX producer/);
    });

    it('RX buffers the guest does not own: each frame fails alone, counted, the vif stays up', async () => {
      const { before, after } = await sendAtAttackedRx('r2', 'bad-gref', 20);
      expect(vifOf(after, 'r2').rxErrGrantCopy - vifOf(before, 'r2').rxErrGrantCopy).toBeGreaterThan(0);
      expect(vifOf(after, 'r2').state).toBe(4);
    });

    it('a size rewritten in a tight loop while dom0 reads it: one frame, one size, one answer', async () => {
      const x1 = ref('x1');
      const before = await sim.stats();
      const { flips } = (await sim.request(x1, 'flip_tx', { size: 4096 })) as { flips: number };
      expect(flips).toBeGreaterThan(0);
      await sim.waitFor('the frame taken', async () => {
        const v = vifOf(await sim.stats(), 'x1');
        return v.txPackets + v.txErrOversize > vifOf(before, 'x1').txPackets + vifOf(before, 'x1').txErrOversize;
      });
      const v = vifOf(await sim.stats(), 'x1');
      const b = vifOf(before, 'x1');
      expect(v.txPackets - b.txPackets).toBe(1);
      expect([1000, 4096]).toContain(v.txBytes - b.txBytes);
      expect(v.state).toBe(4);
      expect((await sim.stats())['host-a/dom0']).not.toHaveProperty('crashed');
    });

    it('a frontend closing itself tears down to Closed on both ends', async () => {
      const id = domid('a1');
      await sim.request(a1, 'vif_close');
      const xs = sim.hosts[0].xenstore;
      await sim.waitFor(
        'both ends Closed',
        async () => xs.read(0, `/local/domain/${id}/device/vif/0/state`) === '6' && xs.read(0, `/local/domain/0/backend/vif/${id}/0/state`) === '6',
      );
      const dom0 = await sim.dom0Stats('host-a');
      expect(dom0.vifs[`vif${id}.0`].disconnects).toBe(0);
      expect(dom0.vifs[`vif${id}.0`].history).toEqual(expect.arrayContaining(['Connected->Closing (frontend Closing)', 'Closing->Closed (frontend Closed)']));
    });
  });
});
