/**
 * Switch-only MAC filters (issue 21): a MAC filter inserted with `local: true`
 * steers frames a function of the same NIC sends (the internal switch) and
 * never frames from the wire, as an mlx5 eswitch's FDB rule matches on the
 * source vport. The table, then each NIC model end to end: a frame from a
 * guest function to a local MAC is switched to its owner (txSwitchedLocal),
 * one from the wire to that MAC keeps its path (flow filters, else function 0).
 */
import { describe, expect, it } from 'vitest';
import { FILTER_MATCH, MCDI_ENOSPC, VirtualClock, type McdiFilterMatch } from '@xsim/hypervisor';
import { Value } from '@sinclair/typebox/value';
import { FilterTable, HwNic, mcdiServer, vdpaServer, VI_RING_PAGES, VqNic } from '../src/index.ts';

const MAC_A2 = 0x00163e000002;
const ADDR = 0x0a000102;

/** A 64-octet frame to `dst` (UDP to ADDR:port when port is given), untagged or tagged `vlan`. */
function frame(dst: number, o: { port?: number; vlan?: number } = {}): Uint8Array {
  const f = new Uint8Array(68);
  for (let i = 0; i < 6; i++) f[i] = Math.floor(dst / 2 ** (8 * (5 - i))) % 256;
  f[11] = 1; // source 00:00:00:00:00:01
  let l2 = 12;
  if (o.vlan !== undefined) {
    f[12] = 0x81;
    f[14] = o.vlan >> 8;
    f[15] = o.vlan & 255;
    l2 = 16;
  }
  f[l2] = 8;
  f[l2 + 2] = 0x45;
  f[l2 + 11] = 17;
  new DataView(f.buffer).setUint32(l2 + 18, ADDR);
  new DataView(f.buffer).setUint16(l2 + 24, o.port ?? 9);
  return f;
}

const local = (mac: number, vlan?: number) => ({ kind: 'mac' as const, mac, local: true, ...(vlan === undefined ? {} : { vlan }) });
const normal = (mac: number, vlan?: number) => ({ kind: 'mac' as const, mac, ...(vlan === undefined ? {} : { vlan }) });

describe('the filter table: switch-only MAC filters', () => {
  it('match a frame a function sends (fromLocal), never one from the wire; hits counted only when matched', () => {
    const t = new FilterTable();
    const id = t.insert(3, local(MAC_A2));
    expect(t.lookup(frame(MAC_A2), 0, 64, true)).toBe(3);
    expect(t.lookup(frame(MAC_A2), 0, 64, false)).toBe(-1);
    // The default is the wire's view: a caller that says nothing is not the internal switch.
    expect(t.lookup(frame(MAC_A2), 0, 64)).toBe(-1);
    expect(t.hitsOf([id])).toEqual([1]);
    expect(t.c).toMatchObject({ filterHits: 1, filterMisses: 2 });
    // A tagged frame is not the untagged filter's; a tagged local filter takes it.
    expect(t.lookup(frame(MAC_A2, { vlan: 7 }), 0, 68, true)).toBe(-1);
    t.insert(4, local(MAC_A2, 7));
    expect(t.lookup(frame(MAC_A2, { vlan: 7 }), 0, 68, true)).toBe(4);
    expect(t.lookup(frame(MAC_A2, { vlan: 7 }), 0, 68, false)).toBe(-1);
  });

  it('an IPv4 flow filter still comes first, from the wire and from the switch alike', () => {
    const t = new FilterTable();
    t.insert(3, local(MAC_A2));
    t.insert(3, { kind: 'ipv4', proto: 17, addr: ADDR, port: 5001 });
    expect(t.lookup(frame(MAC_A2, { port: 5001 }), 0, 64, false)).toBe(3);
    expect(t.lookup(frame(MAC_A2, { port: 5001 }), 0, 64, true)).toBe(3);
    expect(t.lookup(frame(MAC_A2, { port: 5002 }), 0, 64, false)).toBe(-1);
  });

  it('refuses a second filter of one kind for a MAC, and one of the other kind to another VI; the same VI may have both', () => {
    const t = new FilterTable();
    t.insert(3, local(MAC_A2));
    expect(() => t.insert(3, local(MAC_A2))).toThrow(`a local filter for MAC ${MAC_A2.toString(16)} exists (VI 3)`);
    expect(() => t.insert(4, local(MAC_A2))).toThrow(`a local filter for MAC ${MAC_A2.toString(16)} exists (VI 3)`);
    // A normal filter to another VI would have the wire and the switch disagree on where the MAC is.
    expect(() => t.insert(4, normal(MAC_A2))).toThrow(`a local filter for MAC ${MAC_A2.toString(16)} exists (VI 3)`);
    const both = t.insert(3, normal(MAC_A2));
    expect(() => t.insert(3, normal(MAC_A2))).toThrow(`a filter for MAC ${MAC_A2.toString(16)} exists (VI 3)`);
    // Both name VI 3: from the wire the normal one matches, from the switch the local one (checked first).
    expect(t.lookup(frame(MAC_A2), 0, 64, false)).toBe(3);
    expect(t.lookup(frame(MAC_A2), 0, 64, true)).toBe(3);
    expect(t.hitsOf([both])).toEqual([1]);
    // The other way round: a normal filter first, then a local one to another VI.
    const u = new FilterTable();
    u.insert(5, normal(MAC_A2, 9));
    expect(() => u.insert(6, local(MAC_A2, 9))).toThrow(`a filter for MAC ${MAC_A2.toString(16)} VLAN 9 exists (VI 5)`);
    expect(u.insert(6, local(MAC_A2))).toBeGreaterThan(0); // untagged: another match
    // A refusal consumes no id and no place.
    expect(u.size).toBe(2);
  });

  it('keeps ids, removal, ENOSPC, aging and list() as for any filter; list() shows local', () => {
    const clock = new VirtualClock();
    const t = new FilterTable({ size: 2, clock });
    const a = t.insert(3, local(MAC_A2), 100);
    const b = t.insert(4, normal(MAC_A2 + 1));
    expect(b).toBe(a + 1);
    expect(() => t.insert(5, local(MAC_A2 + 2))).toThrow(new RegExp(`^${MCDI_ENOSPC}: the filter table is full \\(2 of 2 entries\\)`));
    expect(t.list()).toEqual([
      { id: a, vi: 3, match: { kind: 'mac', mac: MAC_A2, local: true }, hits: 0, ageMs: 100 },
      { id: b, vi: 4, match: { kind: 'mac', mac: MAC_A2 + 1 }, hits: 0, ageMs: 0 },
    ]);
    // Aging removes an idle local filter like any other.
    clock.advance(200);
    expect(t.age()).toBe(1);
    expect(t.lookup(frame(MAC_A2), 0, 64, true)).toBe(-1);
    const c = t.insert(5, local(MAC_A2));
    expect(t.remove(c)).toBe(true);
    expect(t.lookup(frame(MAC_A2), 0, 64, true)).toBe(-1);
    // Once removed, a filter of the other kind may name another VI.
    expect(t.insert(6, normal(MAC_A2))).toBeGreaterThan(c);
    expect(t.removeVi(6)).toBe(1);
    expect(t.size).toBe(1);
  });

  it('is in the ABI: FILTER_MATCH takes local as a boolean, and the table refuses anything else by name', () => {
    expect(Value.Check(FILTER_MATCH, local(MAC_A2))).toBe(true);
    expect(Value.Check(FILTER_MATCH, { kind: 'mac', mac: MAC_A2, local: 1 })).toBe(false);
    const m: McdiFilterMatch = { kind: 'mac', mac: 1, local: false };
    expect(new FilterTable().insert(1, m)).toBe(1);
    expect(() => new FilterTable().insert(1, { kind: 'mac', mac: 1, local: 'yes' } as never)).toThrow('filter match local must be a boolean, got "yes"');
  });
});

/** A NIC of either model with guest functions 1 and 2 running, each allowed to send from its own MAC: what a plugin sets up. */
function twoGuests(model: 'vi' | 'virtio') {
  const clock = new VirtualClock();
  const ram = new Uint8Array(new SharedArrayBuffer(64 * 4096));
  const rams = new Map([[0, ram]]);
  const spec = { name: 'nic-a', host: 'host-a', mac: 0x000f53000000, mtu: 1500, vis: 4 };
  const sent: Uint8Array[] = [];
  if (model === 'vi') {
    const nic = new HwNic({ ...spec, vendor: '1924', device: '0803' }, rams, clock);
    const mcdi = mcdiServer(nic);
    for (const vi of [1, 2]) {
      const rings = mcdi.call('buffer_table_alloc', { vi, domid: 0, frames: Array.from({ length: VI_RING_PAGES }, (_, i) => vi * 16 + i) }) as number;
      mcdi.call('vi_init', { vi, domid: 0, rings, macs: [vi] });
    }
    nic.wire = (r, a, l) => void sent.push(r.slice(a, a + l));
    return { nic, sent, steer: (vi: number, match: McdiFilterMatch) => mcdi.call('filter_insert', { vi, match }) as number };
  }
  const nic = new VqNic({ ...spec, vendor: '1af4', device: '1041' }, rams, clock);
  const adm = vdpaServer(nic);
  for (const fn of [1, 2]) {
    adm.call('iotlb_map', { fn, domid: 0, iova: 0, frames: Array.from({ length: 6 }, (_, i) => fn * 16 + i) });
    const q = (p: number) => ({ size: 256, desc: p * 4096, avail: (p + 1) * 4096, used: (p + 2) * 4096 });
    adm.call('fn_start', { fn, domid: 0, rx: q(0), tx: q(3), macs: [fn] });
  }
  nic.wire = (r, a, l) => void sent.push(r.slice(a, a + l));
  return { nic, sent, steer: (fn: number, match: McdiFilterMatch) => adm.call('steer_add', { fn, match }) as number };
}

/** What the port engine does with one frame a function sends (NicPort.transmit, reached as each model's TX engine reaches it). */
function send(nic: HwNic | VqNic, fn: number, f: Uint8Array): void {
  const t = (nic as unknown as { transmit(f: unknown, macs: Set<number> | null, ram: Uint8Array, addr: number, len: number): void }).transmit;
  const fns = (nic as unknown as { fns: unknown[] }).fns;
  t.call(nic, fns[fn], new Set([fn]), f, 0, f.length);
}

/** What the port does with one frame from the wire. */
function fromWire(nic: HwNic | VqNic, f: Uint8Array): void {
  nic.fromWire(f, 0, f.length);
}

describe.each(['vi', 'virtio'] as const)('the %s NIC: a local MAC filter is the internal switch only', (model) => {
  it('a frame from function 1 to function 2 is switched locally; from the wire the same MAC goes to function 0', () => {
    const { nic, sent, steer } = twoGuests(model);
    const f1 = frame(MAC_A2);
    f1[11] = 1; // function 1's own MAC: anti-spoofing passes it
    // No filter yet: a guest's unicast goes to the wire.
    send(nic, 1, f1);
    expect(sent.length).toBe(1);
    steer(2, local(MAC_A2));
    send(nic, 1, f1);
    const s = nic.stats();
    expect(s.vis['1'].txSwitchedLocal).toBe(1);
    expect(sent.length).toBe(1);
    // From the wire, the local filter is not looked at: function 0 gets it (rxDefault).
    const before = nic.stats().rxDefault;
    fromWire(nic, frame(MAC_A2));
    expect(nic.stats().rxDefault).toBe(before + 1);
    // Anti-spoofing still applies on the switch: function 1 cannot send from function 2's MAC.
    const spoof = frame(MAC_A2);
    spoof[11] = 2;
    send(nic, 1, spoof);
    expect(nic.stats().vis['1']).toMatchObject({ txSpoofDrops: 1, txSwitchedLocal: 1 });
    // A guest never steers to itself: its own frame to its own MAC goes to the wire, not back to it.
    const self = frame(MAC_A2);
    self[11] = 2;
    send(nic, 2, self);
    expect(nic.stats().vis['2'].txSwitchedLocal).toBe(0);
    expect(sent.length).toBe(2);
  });

  it('the admin command refuses a local filter where a MAC filter names another function', () => {
    const { steer } = twoGuests(model);
    steer(1, normal(MAC_A2));
    expect(() => steer(2, local(MAC_A2))).toThrow(`a filter for MAC ${MAC_A2.toString(16)} exists (VI 1)`);
    expect(steer(1, local(MAC_A2))).toBeGreaterThan(0);
  });
});
