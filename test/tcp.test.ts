/**
 * TCP between guests end to end (issue 23): the stack's TCP under the
 * netperf-like workloads, over the slow path (netfront, netback, bridges,
 * NICs, wire) and over vnic's fast path, on real pCPU threads and on a seeded
 * run. Every octet arrives once and in order (the sink checks each against
 * the stream's pattern), every flow closes in order, and the stacks' TCP
 * counters account for every segment handed in (accepted or one drop reason).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, guestStats, runTcpRr, runTcpStream, type DomainRef, type TcpDelta } from '@xsim/toolstack';
import { THREADS, replayOnFailure, seededModes } from './helpers.ts';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };
const a2: DomainRef = { host: 'host-a', domain: 'a2' };

/** Every segment handed to a TCB was accepted or dropped for exactly one reason (the drop counters' sum). */
function accounted(d: TcpDelta): void {
  const drops = Object.entries(d)
    .filter(([k]) => /^tcpRx/.test(k) && !['tcpRxSegments', 'tcpRxAccepted', 'tcpRxOutOfOrder', 'tcpRxSackBlocks'].includes(k))
    .reduce((s, [, v]) => s + v, 0);
  expect((d.tcpRxAccepted ?? 0) + drops, JSON.stringify(d)).toBe(d.tcpRxSegments ?? 0);
}

describe.each([THREADS, seededModes()[0]])('TCP between guests ($name)', (mode) => {
  let sim: Simulation;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, logLevel: 'warn' });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  it('streams 2 MB over 2 flows host to host on the slow path: every octet once, in order, both flows closed', async () => {
    const r = await runTcpStream(sim, { from: a1, to: b1, bytes: 2_000_000, flows: 2, verify: true });
    expect(r).toMatchObject({ flows: 2, bytes: 2_000_000, sentBytes: 2_000_000, corrupt: 0, complete: true, failed: {} });
    expect(r.gbps).toBeGreaterThan(0);
    accounted(r.sender);
    accounted(r.receiver);
    expect(r.sender.tcpActiveOpens).toBe(2);
    expect(r.receiver.tcpPassiveOpens).toBe(2);
  });

  it('streams between two guests of one host (through its bridge only)', async () => {
    const r = await runTcpStream(sim, { from: a1, to: a2, bytes: 500_000, verify: true });
    expect(r).toMatchObject({ bytes: 500_000, corrupt: 0, complete: true });
    accounted(r.receiver);
  });

  it('answers 300 request/response transactions of 64/1024 octets, each timed', async () => {
    const r = await runTcpRr(sim, { from: b1, to: a1, count: 300, reqSize: 64, rspSize: 1024 });
    expect(r).toMatchObject({ transactions: 300, complete: true, failed: {} });
    expect(r.p50Us).toBeGreaterThan(0);
    expect(r.p99Us).toBeGreaterThanOrEqual(r.p50Us);
    expect(r.tps).toBeGreaterThan(0);
  });

  it('a connect to a port nobody listens on is refused by the peer’s RST, not hung', async () => {
    const before = (await sim.domainStats(b1)).endpoint?.tcp as Record<string, number>;
    const dstIp = sim.domain(b1).ip;
    const r = await sim.request(a1, 'tcp_stream', { dstIp, dstPort: 6000, bytes: 1000, timeoutMs: 10_000 });
    expect(r).toMatchObject({ bytes: 0, failed: { refused: 1 } });
    const after = (await sim.domainStats(b1)).endpoint?.tcp as Record<string, number>;
    expect(after.tcpRxNoSocket - before.tcpRxNoSocket).toBe(1);
  });

  it('carries a stream over vnic’s fast path once loaded, past both dom0s', async () => {
    await sim.loadPlugin('vnic');
    await sim.waitAccelerated([a1, b1], { plugin: 'vnic' });
    // Learning: the first stream teaches dom0 the flow both ways; the second goes past dom0.
    await runTcpStream(sim, { from: a1, to: b1, bytes: 300_000 });
    const before = guestStats(await sim.stats(), a1);
    const r = await runTcpStream(sim, { from: a1, to: b1, bytes: 2_000_000, verify: true });
    const after = guestStats(await sim.stats(), a1);
    expect(r).toMatchObject({ bytes: 2_000_000, corrupt: 0, complete: true });
    const txAccel = after.vifs[0].txAccel - before.vifs[0].txAccel;
    const tx = after.endpoint!.stack.txFrames - before.endpoint!.stack.txFrames;
    expect(txAccel).toBeGreaterThan(0);
    // Nearly every segment took the fast path (the SYN's ARP-free first frames may still be learnt on the slow one).
    expect(txAccel / tx).toBeGreaterThan(0.95);
    await sim.unloadPlugin('vnic');
  });
});
