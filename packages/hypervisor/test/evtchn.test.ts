/**
 * Event channels as Xen has them, in process: the hypervisor service hands
 * out bindings; each domain's pending and mask state is its own; a binding is
 * memory of its two ends only; closing ends the peer's ability to reach us.
 */
import { describe, expect, it } from 'vitest';
import {
  Bus,
  CH,
  DeviceIrq,
  ECS_INTERDOMAIN,
  ECS_PIRQ,
  ECS_UNBOUND,
  EventChannels,
  EvtchnService,
  NR_EVTCHN_PORTS,
  RpcEndpoint,
  SHARED_INFO_ARCH,
  SHARED_INFO_EVTCHN_MASK,
  SHARED_INFO_EVTCHN_PENDING,
  SHARED_INFO_SIZE,
  SHARED_INFO_WC_VERSION,
  VCPU_INFO_EVTCHN_PENDING_SEL,
  VCPU_INFO_EVTCHN_UPCALL_MASK,
  VCPU_INFO_EVTCHN_UPCALL_PENDING,
  VCPU_INFO_SIZE,
  WakeWord,
  XEN_LEGACY_MAX_VCPUS,
  hostServiceAddr,
} from '../src/index.ts';

const SVC = hostServiceAddr(0);

function host(domids = [0, 5]) {
  const bus = new Bus();
  const svc = new EvtchnService(bus, SVC);
  const doms = domids.map((domid, i) => {
    const uid = 100 + i;
    const bell = WakeWord.create();
    svc.introduce(uid, domid, bell.sab);
    const hv = new RpcEndpoint(bus, uid, SVC, CH.hv);
    const ev = new EventChannels(domid, hv);
    return { domid, uid, bell, ev };
  });
  return { bus, svc, doms };
}

describe('event channels', () => {
  it("binds interdomain and delivers sends both ways, ringing the peer's doorbell", () => {
    const { doms } = host();
    const [d0, g] = doms;
    const p = g.ev.allocUnbound(0);
    expect(g.ev.status(p).state).toBe(ECS_UNBOUND);
    const q = d0.ev.bindInterdomain(5, p);
    g.ev.poll(); // the hypervisor's notice that the port is bound
    expect(g.ev.status(p).state).toBe(ECS_INTERDOMAIN);
    const seen: number[] = [];
    g.ev.bindHandler(p, (port) => seen.push(port));
    const before = g.bell.snapshot();
    expect(d0.ev.send(q)).toBe(true);
    expect(g.bell.snapshot()).not.toBe(before);
    expect(g.ev.hasPending()).toBe(true);
    expect(g.ev.dispatch()).toBe(1);
    expect(seen).toEqual([p]);
    expect(g.ev.dispatch()).toBe(0);
    const got: number[] = [];
    d0.ev.bindHandler(q, (port) => got.push(port));
    g.ev.send(p);
    d0.ev.dispatch();
    expect(got).toEqual([q]);
  });

  it('refuses a bind the port was not offered for', () => {
    const { doms } = host([0, 5, 6]);
    const [d0, g, other] = doms;
    const p = g.ev.allocUnbound(0);
    expect(() => other.ev.bindInterdomain(5, p)).toThrow(/not unbound for domain 6/);
    expect(() => d0.ev.bindInterdomain(9, 1)).toThrow(/no domain 9/);
  });

  it('holds events while masked (the handler does not run) and delivers them on unmask', () => {
    const { doms } = host();
    const [d0, g] = doms;
    const p = g.ev.allocUnbound(0);
    const q = d0.ev.bindInterdomain(5, p);
    g.ev.poll();
    let runs = 0;
    g.ev.bindHandler(p, () => runs++);
    g.ev.mask(p);
    d0.ev.send(q);
    expect(g.ev.dispatch()).toBe(0);
    expect(g.ev.isPending(p)).toBe(true);
    expect(runs).toBe(0);
    g.ev.unmask(p);
    expect(g.ev.dispatch()).toBe(1);
    expect(runs).toBe(1);
  });

  it("closing ends the sender's ability to reach us; the peer reverts to unbound", () => {
    const { doms } = host();
    const [d0, g] = doms;
    const p = g.ev.allocUnbound(0);
    const q = d0.ev.bindInterdomain(5, p);
    g.ev.poll();
    g.ev.close(p);
    d0.ev.poll();
    expect(d0.ev.status(q).state).toBe(ECS_UNBOUND);
    expect(d0.ev.send(q)).toBe(false);
    expect(g.ev.hasPending()).toBe(false);
  });

  it('a domain released by the toolstack closes every port: its peers revert and are told', () => {
    const { svc, doms } = host();
    const [d0, g] = doms;
    const q = d0.ev.bindInterdomain(5, g.ev.allocUnbound(0));
    expect(svc.portsOf(5)).toBe(1);
    expect(svc.release(g.uid)).toBe(1);
    d0.ev.poll();
    expect(d0.ev.status(q).state).toBe(ECS_UNBOUND);
    expect(svc.portsOf(5)).toBe(0);
  });

  it("device interrupts: only the privileged domain may hand a guest's binding to a device, which can raise that one port", () => {
    const { doms } = host();
    const [d0, g] = doms;
    const p = g.ev.allocPirq();
    expect(g.ev.status(p).state).toBe(ECS_PIRQ);
    expect(() => g.ev.deviceIrq(5, p)).toThrow(/may not hand interrupts to devices/);
    expect(() => d0.ev.deviceIrq(5, p + 1)).toThrow(/is not a device interrupt/);
    const { binding, doorbell } = d0.ev.deviceIrq(5, p);
    const irq = new DeviceIrq(binding, doorbell);
    let runs = 0;
    g.ev.bindHandler(p, () => runs++);
    const before = g.bell.snapshot();
    irq.raise();
    expect(g.bell.snapshot()).not.toBe(before);
    g.ev.dispatch();
    expect(runs).toBe(1);
  });

  it("a domain holds no other domain's event state: what it can reach of the implementation is its own", () => {
    const { doms } = host([0, 5, 6]);
    const [d0, g5, g6] = doms;
    const q5 = d0.ev.bindInterdomain(5, g5.ev.allocUnbound(0));
    const q6 = d0.ev.bindInterdomain(6, g6.ev.allocUnbound(0));
    g5.ev.poll();
    g6.ev.poll();
    // Nothing of EventChannels is reachable as a SharedArrayBuffer: its state is in private fields.
    const reachable = (o: object) => Object.values(o).filter((v) => v instanceof SharedArrayBuffer || ArrayBuffer.isView(v));
    expect(reachable(g5.ev)).toEqual([]);
    // g5 sending as hard as it can reaches dom0's binding with g5 only.
    let d0runs5 = 0;
    let d0runs6 = 0;
    d0.ev.bindHandler(q5, () => d0runs5++);
    d0.ev.bindHandler(q6, () => d0runs6++);
    for (let i = 0; i < 1000; i++) {
      g5.ev.send(1);
      d0.ev.dispatch();
    }
    expect(d0runs5).toBe(1000);
    expect(d0runs6).toBe(0);
    // and g6's channel still works.
    g6.ev.send(1);
    d0.ev.dispatch();
    expect(d0runs6).toBe(1);
  });

  it("keeps its shared_info in Xen's x86_64 layout: pending and mask bitmaps of 64-bit words, vCPU 0's selector and upcall flag", () => {
    // sizeof and offsetof from public/xen.h (x86_64), as gcc gives them for libxen-dev 4.17.
    expect([SHARED_INFO_SIZE, SHARED_INFO_EVTCHN_PENDING, SHARED_INFO_EVTCHN_MASK, SHARED_INFO_WC_VERSION, SHARED_INFO_ARCH]).toEqual([
      3136, 2048, 2560, 3072, 3088,
    ]);
    expect([VCPU_INFO_SIZE, VCPU_INFO_EVTCHN_UPCALL_PENDING, VCPU_INFO_EVTCHN_UPCALL_MASK, VCPU_INFO_EVTCHN_PENDING_SEL, XEN_LEGACY_MAX_VCPUS]).toEqual([
      64, 0, 1, 8, 32,
    ]);
    expect(NR_EVTCHN_PORTS).toBe(4096);
    const { doms } = host();
    const g = doms[1].ev;
    const view = () => Buffer.from(g.sharedInfo());
    const bit = (b: Buffer, base: number, port: number) => (b.readBigUInt64LE(base + (port >> 6) * 8) >> BigInt(port & 63)) & 1n;
    const sel = (b: Buffer) => b.readBigUInt64LE(VCPU_INFO_EVTCHN_PENDING_SEL);
    expect(view().length).toBe(3136);
    const seen: number[] = [];
    for (const p of [70, 1000, 4000]) g.bindHandler(p, (port) => seen.push(port));
    g.mask(1000);
    g.raiseLocal(70);
    g.raiseLocal(1000);
    g.raiseLocal(4000);
    let b = view();
    expect([bit(b, 2048, 70), bit(b, 2048, 1000), bit(b, 2048, 4000)]).toEqual([1n, 1n, 1n]);
    expect(bit(b, 2560, 1000)).toBe(1n);
    // Selector bits of words 70/64 = 1 and 4000/64 = 62; none for masked 1000 (word 15). evtchn_upcall_pending set.
    expect(sel(b)).toBe((1n << 1n) | (1n << 62n));
    expect(b[0]).toBe(1);
    expect(g.hasPending()).toBe(true);
    expect(g.dispatch()).toBe(2);
    expect(seen.sort((x, y) => x - y)).toEqual([70, 4000]);
    b = view();
    expect([b[0], sel(b), bit(b, 2048, 70), bit(b, 2048, 4000), bit(b, 2048, 1000)]).toEqual([0, 0n, 0n, 0n, 1n]);
    expect(g.hasPending()).toBe(false);
    g.unmask(1000);
    b = view();
    expect([b[0], sel(b), bit(b, 2560, 1000)]).toEqual([1, 1n << 15n, 0n]);
    expect(g.dispatch()).toBe(1);
    expect(seen).toContain(1000);
  });
});
