/**
 * A device doorbell rung across threads (Bus.kick): the platform bumps the
 * device thread's wake word over the direct link it holds, with no envelope;
 * where no such link exists (the device on this thread, or only the hub
 * reaches it) it answers false and the caller sends the CH.kick message.
 */
import { describe, expect, it } from 'vitest';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { Bus, PortLink, WakeWord } from '../src/index.ts';

describe('Bus.kick', () => {
  it("rings the wake word of a device behind a direct link, with no message on the link's port", () => {
    const bus = new Bus();
    const ch = new MessageChannel();
    const wake = WakeWord.create();
    bus.route(77, new PortLink(ch.port1, wake));
    const before = wake.snapshot();
    expect(bus.kick(77)).toBe(true);
    expect(wake.snapshot()).toBe(before + 1);
    expect(bus.stats.kicks).toBe(1);
    expect(bus.stats.sent).toBe(0);
    expect(receiveMessageOnPort(ch.port2)).toBeUndefined();
    ch.port1.close();
  });

  it('answers false for an address with no route, or a link without a wake word: the caller sends a message', () => {
    const bus = new Bus();
    expect(bus.kick(5)).toBe(false);
    const ch = new MessageChannel();
    bus.route(6, new PortLink(ch.port1, null));
    expect(bus.kick(6)).toBe(false);
    expect(bus.stats.kicks).toBe(0);
    ch.port1.close();
  });

  it('a sleeper on the wake word sees the kick (Atomics.wait returns not-equal after it)', () => {
    const bus = new Bus();
    const ch = new MessageChannel();
    const wake = WakeWord.create();
    bus.route(9, new PortLink(ch.port1, wake));
    const seen = wake.snapshot();
    bus.kick(9);
    expect(wake.sleep(seen, 1000)).toBe('not-equal');
    ch.port1.close();
  });
});
