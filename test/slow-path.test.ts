/**
 * The unaccelerated path end to end: xenbus handshake, ARP, and 10,000-frame
 * sequenced streams on one host and across hosts, where every frame is
 * delivered exactly once or counted in a named drop counter. Run on real
 * pCPU worker threads (integration: real parallelism, real shared memory
 * between threads) and deterministically over several seeds (reproducible
 * interleavings).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, type StreamOptions, type StreamResult } from '@xsim/toolstack';
import { THREADS, conservedStream, replayOnFailure, seededModes } from './helpers.ts';

describe.each([THREADS, ...seededModes()])('slow path ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), mode.opts);
  });

  afterAll(async () => {
    await sim?.shutdown();
  });

  async function conserved(o: StreamOptions): Promise<{ r: StreamResult; drops: Map<string, number> }> {
    // ARP first, outside the measured interval (conservedStream does it): its broadcasts are filtered by every bystander.
    const { r, drops } = await conservedStream(sim, o);
    expect(r.tooOld).toBe(0);
    expect(r.delivered + r.lost).toBe(r.count);
    return { r, drops };
  }

  describe('xenbus handshake', () => {
    it('reaches Connected on both ends with rings, event channel and features published', () => {
      for (const h of sim.hosts) {
        for (const d of h.domUs) {
          const fe = `/local/domain/${d.domid}/device/vif/0`;
          const be = `/local/domain/0/backend/vif/${d.domid}/0`;
          expect(h.xenstore.read(0, `${fe}/state`)).toBe('4');
          expect(h.xenstore.read(0, `${be}/state`)).toBe('4');
          expect(Number(h.xenstore.read(0, `${fe}/tx-ring-ref`))).toBeGreaterThanOrEqual(8);
          expect(Number(h.xenstore.read(0, `${fe}/rx-ring-ref`))).toBeGreaterThanOrEqual(8);
          // Split event channels, as Linux's netback offers and its netfront takes: a TX and an RX port.
          expect(Number(h.xenstore.read(0, `${fe}/event-channel-tx`))).toBeGreaterThan(0);
          expect(Number(h.xenstore.read(0, `${fe}/event-channel-rx`))).toBeGreaterThan(0);
          expect(h.xenstore.read(0, `${be}/feature-split-event-channels`)).toBe('1');
          expect(h.xenstore.read(0, `${fe}/request-rx-copy`)).toBe('1');
          expect(h.xenstore.read(0, `${be}/feature-sg`)).toBe('1');
          expect(h.xenstore.read(0, `${be}/feature-rx-copy`)).toBe('1');
        }
      }
    });
  });

  describe('domU to domU streams', () => {
    it('resolves ARP before the stream (guest learns the peer, dom0 bridges the broadcast)', async () => {
      const dst = sim.domain({ host: 'host-b', domain: 'b2' });
      const r = (await sim.request({ host: 'host-a', domain: 'a2' }, 'arp_resolve', { ip: dst.ip })) as { resolved: boolean; mac: number };
      expect(r.resolved).toBe(true);
      expect(r.mac).toBe(0x00163e0b0201);
      const st = await sim.guestStats({ host: 'host-b', domain: 'b2' });
      expect(st.endpoint!.stack.rxArp).toBeGreaterThan(0);
      expect(st.endpoint!.stack.txArp).toBeGreaterThan(0);
    });

    it('same host: 10,000 frames a1 -> a2, each delivered once or counted', async () => {
      const { r } = await conserved({
        from: { host: 'host-a', domain: 'a1' },
        to: { host: 'host-a', domain: 'a2' },
        count: 10_000,
        frameSize: 1500,
        window: 256,
      });
      expect(r.delivered).toBeGreaterThan(0);
      expect(r.reordered).toBe(0);
    });

    it('cross host: 10,000 frames a1 -> b1 through both bridges, NICs and the wire', async () => {
      const before = await sim.fabricStats();
      const { r } = await conserved({
        from: { host: 'host-a', domain: 'a1' },
        to: { host: 'host-b', domain: 'b1' },
        count: 10_000,
        frameSize: 1500,
        window: 256,
      });
      const after = await sim.fabricStats();
      expect(r.delivered).toBeGreaterThan(9000);
      expect(r.reordered).toBe(0);
      expect(after.nics[0].wireTx - before.nics[0].wireTx).toBeGreaterThanOrEqual(r.delivered);
    });

    it('cross host without flow control: overload drops are all counted, in order', async () => {
      const { r, drops } = await conserved({
        from: { host: 'host-a', domain: 'a2' },
        to: { host: 'host-b', domain: 'b2' },
        count: 10_000,
        frameSize: 1500,
        window: 0,
      });
      expect(r.reordered).toBe(0);
      // Whatever was lost sits in named counters (typically the receiving NIC's rxNoDesc).
      for (const k of drops.keys()) expect(k).toMatch(/\.(rxNoDesc|rxDrop\w+|txDrop\w+|rxErrors)$/);
    });

    it('the other direction with the largest frame the 1500 MTU allows', async () => {
      const { r } = await conserved({
        from: { host: 'host-b', domain: 'b1' },
        to: { host: 'host-a', domain: 'a1' },
        count: 2000,
        frameSize: 1514,
        window: 256,
      });
      expect(r.delivered).toBeGreaterThan(1900);
    });
  });
});
