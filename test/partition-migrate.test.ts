/**
 * Migration between partitions (issue 24, item 3): the two partitions of
 * test/fixtures/partitions-2.json run as two Simulations of this process,
 * joined only by their VXLAN tunnel and the migration's TCP connection, as
 * two processes would be. A guest moves to the other partition and back
 * (stop-and-copy, then live), keeps its traffic, and leaves nothing behind;
 * a destination that refuses or goes away before `go` leaves the guest
 * running where it was; one that goes silent after `go` leaves its image in
 * a file that restores it.
 */
import net from 'node:net';
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MigrateConn,
  Simulation,
  partitionAddrs,
  partitionEndpoints,
  partitionNet,
  partitionTopology,
  validateTopology,
  type PartitionNet,
  type Topology,
} from '@xsim/toolstack';

const full = validateTopology(JSON.parse(readFileSync(new URL('./fixtures/partitions-2.json', import.meta.url), 'utf8')) as unknown);
/** Ports for this run's partitions (UDP tunnels and TCP migrations share the numbers), away from other runs. */
const BASE = 21_000 + Math.floor(Math.random() * 20_000);
const at = (host: string, domain: string) => ({ host, domain });

/** A server standing in for a partition that misbehaves: `script` runs on each connection. */
async function fakePartition(script: (c: MigrateConn) => Promise<void>): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer((s) => void script(new MigrateConn(s, 'the source')).catch(() => s.destroy()));
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function ping(sim: Simulation, from: { host: string; domain: string }, ip: string): Promise<number> {
  await sim.request(from, 'arp_resolve', { ip });
  const r = await sim.request(from, 'ping', { dstIp: ip, count: 5, size: 64 });
  return r.count - r.lost;
}

describe('migration between partitions (two partitions, one process)', () => {
  const sims: Record<string, Simulation> = {};
  const fakes: { port: number; close: () => Promise<void> }[] = [];
  const net0: Record<string, PartitionNet> = {};

  beforeAll(async () => {
    const endpoints = partitionEndpoints(full, { basePort: BASE });
    const addrs = partitionAddrs(full, { basePort: BASE });
    for (const p of ['p0', 'p1']) {
      net0[p] = partitionNet(full, p, endpoints);
      const topo: Topology = partitionTopology(full, p, addrs);
      sims[p] = await Simulation.start(topo, { pcpus: 1, log: () => {}, partition: net0[p] });
    }
  });

  afterAll(async () => {
    for (const f of fakes) await f.close();
    for (const s of Object.values(sims)) await s.shutdown();
  });

  it('each partition takes migrations on its own address, at its tunnels port number (TCP)', () => {
    expect(sims.p0.migrations).toMatchObject({ address: '127.0.0.1', port: BASE });
    expect(sims.p1.migrations).toMatchObject({ address: '127.0.0.1', port: BASE + 1 });
    expect(net0.p0.peers['host-b']).toEqual({ partition: 'p1', address: '127.0.0.1', port: BASE + 1 });
  });

  it('a guest moves to the other partition (stop and copy), answers there, and is gone from here', async () => {
    expect(await ping(sims.p0, at('host-a', 'a2'), '10.0.10.1')).toBe(5);
    const r = await sims.p0.migrateDomain(at('host-a', 'a1'), 'host-b');
    expect(r).toMatchObject({ domain: 'a1', from: { host: 'host-a' }, to: { host: 'host-b' }, live: false, memPages: 1024 });
    expect(r.rounds).toHaveLength(1);
    expect(r.pagesSent).toBeGreaterThan(0);
    expect(r.blackoutMs).toBeGreaterThan(0);
    expect(r.lostTotal).toBe(0);
    expect((await sims.p0.listDomains()).map((d) => d.name)).not.toContain('a1');
    const there = (await sims.p1.listDomains()).find((d) => d.name === 'a1');
    expect(there).toMatchObject({ host: 'host-b', domid: r.to.domid });
    // From its old neighbour, across the tunnel, and from its new one.
    expect(await ping(sims.p0, at('host-a', 'a2'), '10.0.10.1')).toBe(5);
    expect(await ping(sims.p1, at('host-b', 'b1'), '10.0.10.1')).toBe(5);
  });

  it('and comes back live: pre-copy rounds over the connection, then the stop', async () => {
    const r = await sims.p1.migrateDomain(at('host-b', 'a1'), 'host-a', { live: true });
    expect(r.live).toBe(true);
    expect(r.rounds.length).toBeGreaterThanOrEqual(2);
    expect(r.rounds.at(-1)?.stop).toBe(true);
    expect(r.to.host).toBe('host-a');
    expect((await sims.p1.listDomains()).map((d) => d.name)).not.toContain('a1');
    expect(await ping(sims.p0, at('host-a', 'a2'), '10.0.10.1')).toBe(5);
    expect(await ping(sims.p1, at('host-b', 'b1'), '10.0.10.1')).toBe(5);
  });

  it('a destination that refuses the guest (its name is taken there) leaves it untouched', async () => {
    // Ask p1's listener directly, as a source would, for a guest it must refuse.
    const hello = async (host: string, name: string, ip: string) => {
      const c = await MigrateConn.connect('127.0.0.1', BASE + 1, 'p1', 5000);
      try {
        c.send({ op: 'hello', v: 1, host, name, from: 'host-a', memPages: 1024, live: false, vifs: [{ handle: 0, mac: '00:16:3e:0a:09:01', ip, mtu: 1500 }] });
        return await c.next(5000, 'the answer');
      } finally {
        c.close();
      }
    };
    // b1 is p1's: a guest called b1 cannot land on host-b.
    const a = await hello('host-b', 'b1', '10.0.10.9');
    expect(a.op === 'refuse' && a.error).toMatch(/b1/);
    // A host no partition has: refused before anything is sent.
    const b = await hello('host-z', 'zz', '10.0.10.8');
    expect(b.op === 'refuse' && b.error).toMatch(/host-z/);
  });

  it('a destination that goes away in the middle of the stream: the guest resumes where it was', async () => {
    const fake = await fakePartition(async (c) => {
      await c.next(5000, 'hello');
      c.send({ op: 'accept' });
      await new Promise((r) => setTimeout(r, 50)); // let some of the stream come, then hang up
      c.close();
    });
    fakes.push(fake);
    const sim = await startWithFake('host-x', fake.port);
    try {
      await expect(sim.migrateDomain(at('host-a', 'a1'), 'host-x')).rejects.toThrow(/was resumed on host-a/);
      expect((await sim.listDomains()).find((d) => d.name === 'a1')).toMatchObject({ host: 'host-a' });
      expect(await ping(sim, at('host-a', 'a2'), '10.0.10.1')).toBe(5);
    } finally {
      await sim.shutdown();
    }
  });

  it('a destination that goes silent after go: not resumed (it may run there), its image kept in a file that restores it', async () => {
    const fake = await fakePartition(async (c) => {
      const h = await c.next(5000, 'hello');
      c.send({ op: 'accept' });
      const { SaveStreamReader } = await import('@xsim/hypervisor');
      await c.readStream(new SaveStreamReader({ maxPages: 1 << 20, memPages: h.op === 'hello' ? h.memPages : 1 }), 10_000);
      c.send({ op: 'ready' });
      await c.next(5000, 'go');
      c.close();
    });
    fakes.push(fake);
    const sim = await startWithFake('host-x', fake.port);
    let file: string | undefined;
    try {
      let err = '';
      await sim.migrateDomain(at('host-a', 'a1'), 'host-x').catch((e: Error) => (err = e.message));
      expect(err).toMatch(/whether it runs on host-x is unknown: it was not resumed on host-a/);
      file = /image is kept in (\S+)/.exec(err)?.[1];
      expect(file).toBeTruthy();
      expect((await sim.listDomains()).map((d) => d.name)).not.toContain('a1');
      const back = await sim.restoreDomain(file!, 'host-a');
      expect(back.domain).toBe('host-a/a1');
      expect(await ping(sim, at('host-a', 'a2'), '10.0.10.1')).toBe(5);
    } finally {
      if (file) rmSync(file, { force: true });
      await sim.shutdown();
    }
  });

  /** p0's topology run again on its own (its tunnel to nowhere), with `host` of a fake partition on `port`. */
  async function startWithFake(host: string, port: number): Promise<Simulation> {
    const topo = partitionTopology(full, 'p0', partitionAddrs(full, { basePort: BASE + 2 }));
    const own = partitionNet(full, 'p0', partitionEndpoints(full, { basePort: BASE + 2 }));
    return Simulation.start(topo, {
      pcpus: 1,
      log: () => {},
      partition: { ...own, listen: undefined, peers: { [host]: { partition: 'fake', address: '127.0.0.1', port } } },
    });
  }
});
