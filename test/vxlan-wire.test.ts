/**
 * A wire may be a VXLAN tunnel (issue 24, item 1), end to end in this
 * process: host-a's wire and host-b's wire each end in a tunnel, the two
 * tunnels pointing at each other on 127.0.0.1 (fresh ports per run). A ping
 * and a stream cross the UDP sockets, conserved, every frame counted; a
 * capture sees the tunnel's end as a tap point; datagrams that are not ours
 * (short, a bad header, a runt, another VNI) are each counted once under
 * their own name; a frame too large for the underlay's MTU is counted where
 * it would have been truncated; and what cannot be (a deterministic run, an
 * address not on this machine) is refused naming the wire.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counterKind } from '@xsim/hypervisor';
import { Simulation, defaultTopology, fabricStats, validateTopology, type Topology } from '@xsim/toolstack';
import { conservedStream } from './helpers.ts';

const at = (host: string, domain: string) => ({ host, domain });
const VNI = 4242;
/** Ports for this run's two tunnel ends (and a spare), away from 4789 and from other runs. */
const PORT = 20_000 + Math.floor(Math.random() * 20_000);
const A = `127.0.0.1:${PORT}`;
const B = `127.0.0.1:${PORT + 1}`;

/** The default topology with its one wire cut in two tunnels: host-a to A (sending to B), host-b to B (sending to A). */
function tunnelled(o: { mtuA?: number } = {}): Topology {
  const t = structuredClone(defaultTopology()) as unknown as { name: string; wires: unknown[] };
  t.name = 'vxlan-loopback';
  t.wires = [
    { a: 'host-a', b: { vxlan: { local: A, remote: B, vni: VNI, mtu: o.mtuA ?? 9000 } } },
    { a: { vxlan: { local: B, remote: A, vni: VNI, mtu: 9000 } }, b: 'host-b' },
  ];
  return validateTopology(t);
}

type VxlanStats = NonNullable<ReturnType<typeof fabricStats>['vxlan']>;

async function vxlanStats(sim: Simulation): Promise<VxlanStats> {
  const v = fabricStats(await sim.stats()).vxlan;
  if (!v) throw new Error('the fabric reports no tunnels');
  return v;
}

/** Send one datagram from a socket of the test's own to `port` on loopback. */
async function sendRaw(port: number, bytes: Uint8Array): Promise<void> {
  const s = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => s.send(bytes, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  } finally {
    s.close();
  }
}

describe('a wire that is a VXLAN tunnel (two tunnels on loopback)', () => {
  let sim: Simulation;
  const dir = mkdtempSync(join(tmpdir(), 'xsim-vxlan-'));

  beforeAll(async () => {
    sim = await Simulation.start(tunnelled(), { pcpus: 2, log: () => {} });
  });

  afterAll(async () => {
    await sim?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the tunnels are up, their I/O thread in the thread accounting', async () => {
    const v = await vxlanStats(sim);
    expect(v.ioThread).toBe(true);
    expect(v.sockets.map((s) => [s.local, s.bound])).toEqual([
      [A, true],
      [B, true],
    ]);
    expect(v.tunnels.map((t) => [t.wire, t.remote, t.vni, t.up])).toEqual([
      ['wires[0].b.vxlan', B, VNI, true],
      ['wires[1].a.vxlan', A, VNI, true],
    ]);
    expect(sim.threads()).toMatchObject({ io: 1 });
    expect(sim.threads().model).toMatch(/1 VXLAN I\/O thread/);
    // Every number the tunnels report is a declared counter (drop accounting sees it), but the VNI, an identity.
    const numbers = [...v.sockets, ...v.tunnels].flatMap((o) => Object.entries(o).filter(([k, x]) => typeof x === 'number' && k !== 'vni'));
    expect(numbers.filter(([k]) => counterKind(k) === undefined)).toEqual([]);
    expect(numbers.length).toBeGreaterThan(15);
  });

  it('a ping crosses, captured at the tunnel ends', async () => {
    const c = await sim.captureStart(['vxlan'], { file: join(dir, 'vx.pcapng') });
    expect(c.interfaces).toEqual(['vxlan/wire0', 'vxlan/wire1']);
    const p = await sim.request(at('host-a', 'a1'), 'ping', { dstIp: sim.domain(at('host-b', 'b1')).ip, count: 20 });
    expect(p).toMatchObject({ sent: 20, count: 20, lost: 0 });
    const s = await sim.captureStop();
    // Each echo and reply passes both tunnel ends: out of one, in at the other.
    for (const f of s.interfaces) expect(f.packets, f.name).toBeGreaterThanOrEqual(40);
    expect(readFileSync(join(dir, 'vx.pcapng')).length).toBeGreaterThan(0);
  });

  it('a stream crosses conserved: every frame the tunnel took was sent, received and delivered', async () => {
    const before = await vxlanStats(sim);
    const { r } = await conservedStream(sim, { from: at('host-a', 'a1'), to: at('host-b', 'b1'), count: 5000, frameSize: 1500, window: 128 });
    const after = await vxlanStats(sim);
    const [ta, tb] = after.tunnels;
    const grew = (x: number, y: number) => x - y;
    // a -> b: every frame into the tunnel went out of the socket and came out of b's tunnel, unless a counter says why not.
    const into = grew(ta.vxlanTxFrames, before.tunnels[0].vxlanTxFrames);
    const sent = grew(ta.vxlanTxSent, before.tunnels[0].vxlanTxSent);
    const out = grew(tb.vxlanRxFrames, before.tunnels[1].vxlanRxFrames);
    const rxDrops =
      grew(after.sockets[1].vxlanRxKernelDrops, before.sockets[1].vxlanRxKernelDrops) +
      grew(after.sockets[1].vxlanRxRingFull, before.sockets[1].vxlanRxRingFull);
    expect(into).toBeGreaterThanOrEqual(r.sent);
    expect(sent + ta.vxlanTxSendErrors - before.tunnels[0].vxlanTxSendErrors).toBe(into);
    expect(out + rxDrops).toBe(sent);
    expect(ta.vxlanTxQueued).toBe(0);
  });

  it('datagrams that are not ours are each counted under their own name and go no further', async () => {
    const before = (await vxlanStats(sim)).sockets[1];
    const frame = new Uint8Array(60);
    const header = (b0: number, vni: number, b7 = 0) => Uint8Array.of(b0, 0, 0, 0, (vni >> 16) & 0xff, (vni >> 8) & 0xff, vni & 0xff, b7);
    const cat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));
    await sendRaw(PORT + 1, Uint8Array.of(8, 0, 0)); // short
    await sendRaw(PORT + 1, cat(header(0x0c, VNI), frame)); // a flag beside I
    await sendRaw(PORT + 1, cat(header(0x08, VNI, 1), frame)); // the reserved octet set
    await sendRaw(PORT + 1, cat(header(0x08, VNI), new Uint8Array(10))); // runt
    await sendRaw(PORT + 1, cat(header(0x08, VNI + 1), frame)); // another VNI
    await sim.waitFor('five datagrams counted', async () => (await vxlanStats(sim)).sockets[1].vxlanRxDatagrams - before.vxlanRxDatagrams >= 5, 10_000);
    const after = (await vxlanStats(sim)).sockets[1];
    expect({
      short: after.vxlanRxShort - before.vxlanRxShort,
      badHeader: after.vxlanRxBadHeader - before.vxlanRxBadHeader,
      runt: after.vxlanRxRunt - before.vxlanRxRunt,
      unknownVni: after.vxlanRxUnknownVni - before.vxlanRxUnknownVni,
    }).toEqual({ short: 1, badHeader: 2, runt: 1, unknownVni: 1 });
  });
});

describe('what a tunnel refuses', () => {
  it('a frame too large for the underlay MTU is counted at the tunnel, not truncated', async () => {
    // Underlay IP MTU 1100: an inner frame of at most 1064 octets.
    const sim = await Simulation.start(tunnelled({ mtuA: 1100 }), { pcpus: 2, log: () => {} });
    try {
      const dstIp = sim.domain(at('host-b', 'b1')).ip;
      expect(await sim.request(at('host-a', 'a1'), 'ping', { dstIp, count: 3, size: 1000 })).toMatchObject({ lost: 0 });
      const before = (await vxlanStats(sim)).tunnels[0].vxlanTxOversize;
      // 1200 data octets: a frame of 14 + 20 + 8 + 1200 = 1242 > 1064. A probe unanswered for 1 s is lost.
      const p = await sim.request(at('host-a', 'a1'), 'ping', { dstIp, count: 2, size: 1200, timeoutMs: 10_000 });
      expect(p).toMatchObject({ sent: 2, lost: 2 });
      expect((await vxlanStats(sim)).tunnels[0].vxlanTxOversize - before).toBe(2);
    } finally {
      await sim.shutdown();
    }
  });

  it('a deterministic run refuses a tunnel wire, naming it', async () => {
    await expect(Simulation.start(tunnelled(), { deterministic: { seed: 1 }, log: () => {} })).rejects.toThrow(
      /wires\[0\]\.b: a VXLAN wire cannot be part of a deterministic run/,
    );
  });

  it("a local address that is not this machine's fails the start, naming the wire", async () => {
    const t = structuredClone(tunnelled()) as unknown as { wires: { a: unknown; b: { vxlan: { local: string } } }[] };
    // TEST-NET-1 (RFC 5737): never an address of this machine.
    t.wires[0].b.vxlan.local = `192.0.2.1:${PORT + 2}`;
    await expect(Simulation.start(t as unknown as Topology, { pcpus: 2, log: () => {} })).rejects.toThrow(
      /wires\[0\]\.b\.vxlan\.local: cannot bind UDP 192\.0\.2\.1/,
    );
  });
});
