import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { DeviceInterrupts, ECS_INTERDOMAIN, ECS_UNBOUND, EventChannelBus, EventChannels } from '../src/index.ts';

function host() {
  const sab = EventChannelBus.create();
  EventChannelBus.addDomain(sab, 0);
  EventChannelBus.addDomain(sab, 5);
  return { sab, dom0: new EventChannels(sab, 0), guest: new EventChannels(sab, 5) };
}

describe('event channels', () => {
  it('binds interdomain and delivers sends both ways', () => {
    const { dom0, guest } = host();
    const p = guest.allocUnbound(0);
    expect(guest.status(p).state).toBe(ECS_UNBOUND);
    const q = dom0.bindInterdomain(5, p);
    expect(guest.status(p)).toEqual({ state: ECS_INTERDOMAIN, remoteDomid: 0, remotePort: q });
    const seen: number[] = [];
    guest.bindHandler(p, (port) => seen.push(port));
    const before = guest.wake.snapshot();
    expect(dom0.send(q)).toBe(true);
    expect(guest.wake.snapshot()).not.toBe(before);
    expect(guest.dispatch()).toBe(1);
    expect(seen).toEqual([p]);
    expect(guest.dispatch()).toBe(0);
    const got: number[] = [];
    dom0.bindHandler(q, (port) => got.push(port));
    guest.send(p);
    dom0.dispatch();
    expect(got).toEqual([q]);
  });

  it('refuses a bind the port was not offered for', () => {
    const { sab, dom0, guest } = host();
    EventChannelBus.addDomain(sab, 6);
    const other = new EventChannels(sab, 6);
    const p = guest.allocUnbound(0);
    expect(() => other.bindInterdomain(5, p)).toThrow(/not unbound for domain 6/);
    expect(() => dom0.bindInterdomain(9, 1)).toThrow(/no domain 9/);
  });

  it('holds events while masked and delivers them on unmask', () => {
    const { dom0, guest } = host();
    const p = guest.allocUnbound(0);
    const q = dom0.bindInterdomain(5, p);
    guest.mask(p);
    const before = guest.wake.snapshot();
    dom0.send(q);
    expect(guest.wake.snapshot()).toBe(before); // masked: no wake-up
    expect(guest.dispatch()).toBe(0);
    expect(guest.isPending(p)).toBe(true);
    guest.unmask(p);
    expect(guest.wake.snapshot()).not.toBe(before);
    expect(guest.dispatch()).toBe(1);
  });

  it('close reverts the peer to unbound; sending then fails', () => {
    const { dom0, guest } = host();
    const p = guest.allocUnbound(0);
    const q = dom0.bindInterdomain(5, p);
    guest.close(p);
    expect(dom0.status(q).state).toBe(ECS_UNBOUND);
    expect(dom0.send(q)).toBe(false);
  });

  it('lets a device raise only PIRQ ports', () => {
    const { sab, guest } = host();
    const irq = guest.allocPirq();
    const plain = guest.allocUnbound(0);
    const dev = new DeviceInterrupts(sab);
    expect(dev.raise(5, irq)).toBe(true);
    expect(dev.raise(5, plain)).toBe(false);
    expect(dev.raise(77, irq)).toBe(false);
    expect(guest.dispatch()).toBe(1);
  });

  it('wakes a worker blocked in Atomics.wait (no lost wake-up)', async () => {
    const { sab, dom0, guest } = host();
    const p = guest.allocUnbound(0);
    const q = dom0.bindInterdomain(5, p);
    const off = EventChannelBus.wakeOffset(sab, 5);
    // The worker sleeps on the guest's wake word as WakeWord.sleep does (raise the asleep
    // flag, then wait on the counter) until the event arrives, then reports.
    const w = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const i32 = new Int32Array(workerData.sab, workerData.off, 2);
       const seen = Atomics.load(i32, 0);
       parentPort.postMessage('ready');
       Atomics.store(i32, 1, 1);
       const r = Atomics.wait(i32, 0, seen, 10000);
       parentPort.postMessage(r);`,
      { eval: true, workerData: { sab, off } },
    );
    await new Promise((r) => w.once('message', r));
    const result = new Promise((r) => w.once('message', r));
    dom0.send(q);
    expect(['ok', 'not-equal']).toContain(await result);
    await w.terminate();
    expect(guest.dispatch()).toBe(1);
  });

  it('an event sent while the receiver is awake bumps its wake word, so its next sleep returns at once', () => {
    const { dom0, guest } = host();
    const p = guest.allocUnbound(0);
    const q = dom0.bindInterdomain(5, p);
    const seen = guest.wake.snapshot();
    dom0.send(q); // the receiver is "polling": no asleep flag, so no notify, but the counter moved
    expect(guest.wake.sleep(seen, 5000)).toBe('not-equal');
    expect(guest.dispatch()).toBe(1);
  });
});
