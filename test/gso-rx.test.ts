/**
 * TCPv4 GSO toward guests end to end (issue 23 item 3, the receive side):
 * a TCP stream a1 -> a2 within host-a, both vifs' gso on, goes from a1's
 * TSO through netback and the bridge to a2's netback, which writes each
 * GSO frame whole into a2's RX ring (a GSO extra-info slot, data over
 * several slots); a2's netfront hands its stack one large segment, which
 * its TCP accepts and ACKs. Every octet is verified by the sink, and every
 * frame is accounted for hop by hop. With a2's gso switched off (xsim dev
 * set ... gso off: its netfront writes feature-gso-tcpv4 = 0 on the
 * reconnect) the same stream reaches a2 as MSS segments, none whole.
 * Deterministic first (seeded), then on real threads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANAGE_OPS, Simulation, defaultTopology, dom0Stats, guestStats, runTcpStream, type DomainRef, type StatsTree } from '@xsim/toolstack';
import { THREADS, replayOnFailure, seededModes } from './helpers.ts';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const a2: DomainRef = { host: 'host-a', domain: 'a2' };
const BYTES = 1_000_000;

type Counted = Record<string, unknown> | null | undefined;
const n = (o: Counted, k: string): number => Number(o?.[k] ?? 0);
const fe = (ref: DomainRef) => (t: StatsTree) => guestStats(t, ref).vifs[0] as unknown as Counted;
const be = (vif: string) => (t: StatsTree) => dom0Stats(t, 'host-a').vifs[vif] as unknown as Counted;
const tcpOf = (ref: DomainRef) => (t: StatsTree) => guestStats(t, ref).endpoint?.stack as unknown as Counted;

type Grew = (pick: (t: StatsTree) => Counted, k: string) => number;
/** a1's TCP frames as they crossed host-a's bridge: TSO frames whole (txGsoWhole) or as the segments netback cut (txGsoSegments). */
const tcpBridged = (g: Grew) => g(tcpOf(a1), 'txTcp') - g(be('vif1.0'), 'txGsoFrames') + g(be('vif1.0'), 'txGsoWhole') + g(be('vif1.0'), 'txGsoSegments');

/** The drop counters of netback's RX toward a guest and of netfront's RX, none of which a clean stream may touch. */
const NETBACK_RX_DROPS = ['rxDropQueueFull', 'rxDropNotConnected', 'rxDropNoSkb', 'rxDropNoSg', 'rxDropFatal', 'rxDropCsum', 'rxErrGrantCopy'];
const NETFRONT_RX_DROPS = [
  'rxBadResponse',
  'rxErrTooManySlots',
  'rxErrTooLong',
  'rxErrExtraType',
  'rxErrExtraMissing',
  'rxErrGsoSize',
  'rxErrGsoType',
  'rxCsumSetupErr',
  'rxErrorStatus',
];

describe.each([...seededModes(), THREADS])('GSO toward a guest on the same host ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, logLevel: 'warn' });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  /**
   * Stats once the frames between a1 and a2 are all counted at both ends of each hop: two snapshots in a row
   * alike (a frame in flight, an ARP announcement say, moves some counter between them). Bounded.
   */
  async function quiet(): Promise<StatsTree> {
    const key = (t: StatsTree) =>
      [n(fe(a1)(t), 'txPackets'), n(be('vif1.0')(t), 'txPackets'), n(fe(a2)(t), 'rxPackets'), n(be('vif2.0')(t), 'rxPackets'), n(tcpOf(a2)(t), 'rxTcp')].join();
    let last = await sim.stats();
    for (let i = 0; i < 100; i++) {
      const t = await sim.stats();
      if (key(t) === key(last)) return t;
      last = t;
    }
    throw new Error(`host-a's a1 and a2 never went quiet: ${key(last)}`);
  }

  /** A verified a1 -> a2 stream and how much each counter grew over it. */
  async function stream(): Promise<Grew> {
    const before = await quiet();
    const r = await runTcpStream(sim, { from: a1, to: a2, bytes: BYTES, verify: true });
    expect(r).toMatchObject({ bytes: BYTES, corrupt: 0, complete: true });
    // The stream is complete at the sink; the last frames (a2's final ACKs, a1's taking them) may still be in a ring: wait for the ends to agree.
    let after = before;
    const g = (pick: (t: StatsTree) => Counted, k: string) => n(pick(after), k) - n(pick(before), k);
    await sim
      .waitFor('every frame netback took or delivered handled at both netfronts', async () => {
        after = await sim.stats();
        return (
          g(fe(a2), 'rxPackets') === g(be('vif2.0'), 'rxPackets') &&
          g(fe(a1), 'txPackets') === g(be('vif1.0'), 'txPackets') &&
          g(tcpOf(a2), 'rxTcp') === tcpBridged(g)
        );
      })
      .catch(() => {}); // what did not settle, the assertions below name
    // Conservation, hop by hop: every frame netback delivered into a2 reached a2's stack (and a1's netfront sent what netback took).
    for (const k of NETBACK_RX_DROPS) expect(g(be('vif2.0'), k), `netback vif2.0 ${k}`).toBe(0);
    for (const k of NETFRONT_RX_DROPS) expect(g(fe(a2), k), `a2 netfront ${k}`).toBe(0);
    expect(g(fe(a2), 'rxPackets')).toBe(g(be('vif2.0'), 'rxPackets'));
    expect(g(fe(a1), 'txPackets')).toBe(g(be('vif1.0'), 'txPackets'));
    // TCP frames, end to end: what a1's stack sent (a TSO frame once) as the bridge carried it (whole, or as its
    // segments) is what a2's stack was handed, frame for frame (a1 and a2 exchange no other TCP).
    const parts = ['txTcp', 'txGsoFrames', 'txGsoWhole', 'txGsoSegments'].map((k) => `${k} ${g(k === 'txTcp' ? tcpOf(a1) : be('vif1.0'), k)}`);
    expect(g(tcpOf(a2), 'rxTcp'), `a2 rxTcp against a1 ${parts.join(', ')}`).toBe(tcpBridged(g));
    // a2's TCP took every segment handed to it, large ones included, and its ACKs let a1 finish.
    expect(g(tcpOf(a2), 'tcpRxBadChecksum')).toBe(0);
    expect(g(tcpOf(a2), 'tcpRxOutOfWindow')).toBe(0);
    expect(g(tcpOf(a1), 'tcpRxBadAck')).toBe(0);
    return g;
  }

  it('both vifs’ gso on: a1’s TSO frames reach a2 whole (rxGsoFrames, rxGso), a2’s TCP takes them as large segments', async () => {
    const g = await stream();
    const whole = g(be('vif1.0'), 'txGsoWhole');
    expect(whole).toBeGreaterThan(5);
    expect(g(be('vif1.0'), 'txGsoSegments')).toBe(0);
    expect(g(be('vif2.0'), 'rxGsoFrames')).toBe(whole);
    expect(g(fe(a2), 'rxGso')).toBe(whole);
    // Fewer segments than MSS-sized pieces of the stream: the large ones were counted once each.
    expect(g(tcpOf(a2), 'tcpRxSegments')).toBeLessThan(BYTES / 1448);
  });

  it('a2’s gso switched off (dev set): its vif reconnects with feature-gso-tcpv4 0 and the same stream reaches it segmented, none whole', async () => {
    const r = await MANAGE_OPS['dev.set'](sim, { dev: 'host-a/a2', gso: false });
    expect(r.offloads).toMatchObject({ gso: false, changed: true });
    await sim.waitFor('a2 reconnected without GSO', async () => {
      const v = guestStats(await sim.stats(), a2).vifs[0];
      return v.state === 4 && v.backendState === 4 && dom0Stats(await sim.stats(), 'host-a').vifs['vif2.0'].frontendFeatures?.gsoTcpv4 === false;
    });
    const g = await stream();
    expect(g(be('vif1.0'), 'txGsoFrames')).toBeGreaterThan(5);
    expect(g(be('vif1.0'), 'txGsoWhole')).toBe(0);
    expect(g(be('vif1.0'), 'txGsoSegments')).toBeGreaterThan(2 * g(be('vif1.0'), 'txGsoFrames'));
    expect(g(be('vif2.0'), 'rxGsoFrames')).toBe(0);
    expect(g(fe(a2), 'rxGso')).toBe(0);
  });
});
