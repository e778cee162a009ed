/**
 * dom0's bridge in process: learning and forwarding, flooding of broadcast
 * and unknown unicast, and the isolation rules: each vif's MAC pinned to its
 * port (a frame with that source from any other port is dropped and counted,
 * never learnt), no unknown unicast flooded to a vif, an invalid source
 * dropped. One test per rule and per bad input.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Bridge, type BridgePort } from '../src/index.ts';

const MAC = { a: 0x00163e0a0101, b: 0x00163e0a0201, x: 0x00163e0a6601, remote: 0x00163e0b0101, bcast: 0xffffffffffff, mcast: 0x01005e000001 };

function rig() {
  const ram = new Uint8Array(4096);
  const bridge = new Bridge(ram);
  const got = new Map<string, number[]>();
  const port = (name: string): BridgePort => ({
    name,
    deliver: (addr) => {
      const l = got.get(name) ?? [];
      l.push(ram[addr + 14]);
      got.set(name, l);
    },
  });
  const uplink = bridge.addPort(port('uplink'));
  const local = bridge.addPort(port('dom0'));
  const vifA = bridge.addPort(port('vifA'), { unicastFlood: false });
  const vifB = bridge.addPort(port('vifB'), { unicastFlood: false });
  const vifX = bridge.addPort(port('vifX'), { unicastFlood: false });
  bridge.addStatic(MAC.a, vifA);
  bridge.addStatic(MAC.b, vifB);
  bridge.addStatic(MAC.x, vifX);
  let tag = 0;
  /** A frame dst <- src entering on `ingress`; the byte after the header tags it. Returns the ports it reached. */
  const send = (ingress: number, dst: number, src: number): string[] => {
    for (let i = 0; i < 6; i++) {
      ram[i] = Math.floor(dst / 2 ** (8 * (5 - i))) % 256;
      ram[6 + i] = Math.floor(src / 2 ** (8 * (5 - i))) % 256;
    }
    const t = ++tag & 0xff;
    ram[14] = t;
    bridge.forward(ingress, 0, 60, -1);
    return [...got]
      .filter(([, l]) => l.at(-1) === t && l.length > 0)
      .map(([n]) => n)
      .sort();
  };
  return { bridge, send, uplink, local, vifA, vifB, vifX, got };
}

describe('the bridge', () => {
  it('tells who watches where a MAC was and is: learnt, moved, pinned by an arriving vif, forgotten', () => {
    const r = rig();
    const heard: string[] = [];
    r.bridge.onLearn = (mac, port, from) => heard.push(`learn ${mac === MAC.remote ? 'remote' : mac} ${port} from ${from ?? '-'}`);
    r.bridge.onForget = (mac, port) => heard.push(`forget ${mac === MAC.remote ? 'remote' : mac} ${port}`);
    r.send(r.uplink, MAC.a, MAC.remote); // learnt behind the uplink
    r.send(r.uplink, MAC.a, MAC.remote); // already known there: nothing
    // The remote guest migrates onto this host: its vif pins its MAC (it was behind the uplink).
    const arrived = r.bridge.addPort({ name: 'vifR', deliver: () => {} }, { unicastFlood: false });
    r.bridge.addStatic(MAC.remote, arrived);
    r.bridge.addStatic(MAC.remote, arrived); // pinned again where it is: nothing
    expect(r.bridge.forget(MAC.remote)).toBe(false); // pinned: not forgotten
    r.send(r.uplink, MAC.a, 0x00163e0c0101);
    expect(r.bridge.forget(0x00163e0c0101)).toBe(true);
    expect(r.bridge.forget(0x00163e0c0101)).toBe(false); // gone already: nothing told
    expect(heard).toEqual([
      `learn remote ${r.uplink} from -`,
      `learn remote ${arrived} from ${r.uplink}`,
      `learn ${0x00163e0c0101} ${r.uplink} from -`,
      `forget ${0x00163e0c0101} ${r.uplink}`,
    ]);
  });

  it('forwards to the port a destination was learnt or pinned on', () => {
    const r = rig();
    expect(r.send(r.vifA, MAC.b, MAC.a)).toEqual(['vifB']);
    expect(r.send(r.uplink, MAC.a, MAC.remote)).toEqual(['vifA']);
    expect(r.send(r.vifA, MAC.remote, MAC.a)).toEqual(['uplink']);
    expect(r.bridge.stats.forwarded).toBe(3);
  });

  it('floods broadcast and multicast to every other port, guests included', () => {
    const r = rig();
    expect(r.send(r.vifA, MAC.bcast, MAC.a)).toEqual(['dom0', 'uplink', 'vifB', 'vifX']);
    expect(r.send(r.uplink, MAC.mcast, MAC.remote)).toEqual(['dom0', 'vifA', 'vifB', 'vifX']);
    expect(r.bridge.stats.floodCopies).toBe(6);
  });

  it('floods unknown unicast only to ports that take it: never to a guest', () => {
    const r = rig();
    expect(r.send(r.vifA, MAC.remote, MAC.a)).toEqual(['dom0', 'uplink']);
    expect(r.send(r.uplink, 0x00163e0c0c0c, MAC.remote)).toEqual(['dom0']);
  });

  it("a guest's MAC as source from another port is dropped, counted, and never moves it", () => {
    const r = rig();
    expect(r.send(r.vifX, MAC.bcast, MAC.a)).toEqual([]);
    expect(r.send(r.uplink, MAC.b, MAC.a)).toEqual([]);
    expect(r.bridge.stats.dropStaticSource).toBe(2);
    // Traffic for a still reaches a, and only a.
    expect(r.send(r.vifB, MAC.a, MAC.b)).toEqual(['vifA']);
    expect(r.bridge.fdbEntries().find((e) => e.mac === MAC.a)).toEqual({ mac: MAC.a, port: 'vifA', static: true });
  });

  it('a multicast or broadcast source is dropped and counted', () => {
    const r = rig();
    expect(r.send(r.uplink, MAC.a, MAC.mcast)).toEqual([]);
    expect(r.send(r.uplink, MAC.a, MAC.bcast)).toEqual([]);
    expect(r.bridge.stats.dropBadSource).toBe(2);
  });

  it('a frame for the port it came from is dropped and counted', () => {
    const r = rig();
    r.send(r.uplink, MAC.bcast, MAC.remote);
    expect(r.send(r.uplink, MAC.remote, 0x00163e0b0202)).toEqual([]);
    expect(r.bridge.stats.dropSamePort).toBe(1);
  });

  it('a port removed takes its learnt and static entries with it', () => {
    const r = rig();
    r.bridge.removePort(r.vifA);
    expect(r.bridge.lookup(MAC.a)).toBe(-1);
    // Its MAC is free to be learnt elsewhere now (a guest that moved).
    expect(r.send(r.vifB, MAC.bcast, MAC.a).length).toBeGreaterThan(0);
    expect(r.bridge.lookup(MAC.a)).toBe(r.vifB);
  });

  it('no sequence of frames from any port moves a pinned MAC or gives a guest a unicast frame for another (property; vifs send as netback lets them: with their own source MAC)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            port: fc.constantFrom('uplink', 'local', 'vifA', 'vifB', 'vifX'),
            dst: fc.constantFrom(...Object.values(MAC), 0x00163e0c0c0c),
            src: fc.constantFrom(...Object.values(MAC), 0x00163e0c0c0c),
          }),
          { maxLength: 40 },
        ),
        (frames) => {
          const r = rig();
          const ids: Record<string, number> = { uplink: r.uplink, local: r.local, vifA: r.vifA, vifB: r.vifB, vifX: r.vifX };
          const own: Record<string, number> = { vifA: MAC.a, vifB: MAC.b, vifX: MAC.x };
          for (const f of frames) {
            // A vif's frames carry its own MAC as source: netback drops any other before the bridge (txDropSpoof).
            const src = own[f.port] ?? f.src;
            const reached = r.send(ids[f.port], f.dst, src);
            for (const p of reached)
              if (own[p] !== undefined && (Math.floor(f.dst / 2 ** 40) & 1) === 0) expect(f.dst, `${p} got unicast for someone else`).toBe(own[p]);
          }
          expect(r.bridge.lookup(MAC.a)).toBe(r.vifA);
          expect(r.bridge.lookup(MAC.b)).toBe(r.vifB);
          expect(r.bridge.lookup(MAC.x)).toBe(r.vifX);
        },
      ),
      { numRuns: 500 },
    );
  });
});
