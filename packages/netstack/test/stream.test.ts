/**
 * Neither end of a stream waits forever (issue 20, item 13): a windowed
 * sender whose credits never come back, or any sender that cannot send,
 * gives up after STREAM_GIVE_UP_MS and says how far it got; a receiver that
 * gets no frame at all ends after STREAM_FIRST_FRAME_MS. Driven on a clock
 * the test moves, in process.
 */
import { describe, expect, it } from 'vitest';
import type { RpcReply, RpcValue } from '@xsim/hypervisor';
import { NetEndpoint, type FrameTransport } from '../src/endpoint.ts';
import { STREAM_FIRST_FRAME_MS, STREAM_GIVE_UP_MS, StreamSender } from '../src/traffic/index.ts';

/** Drive a sender the way the endpoint does, 1 ms a turn, for at most `ms`: `send` says whether the transport took a frame. */
function drive(s: StreamSender, clock: { t: number }, ms: number, send: () => boolean, credit?: (t: number) => number | undefined): number {
  const t0 = clock.t;
  while (!s.done() && clock.t - t0 < ms) {
    clock.t += 1;
    const c = credit?.(clock.t);
    if (c !== undefined) s.onCredit(c);
    for (let n = 0; n < 64 && !s.giveUpIfStuck() && s.canSend(); n++) {
      if (!send()) break;
      s.commit();
    }
  }
  return clock.t - t0;
}

describe('a stream sender that cannot get on', () => {
  it('windowed, no credit ever comes back: sends a window a stall, then gives up and says how far it got', () => {
    const clock = { t: 1000 };
    const s = new StreamSender({ count: 1_000_000, streamId: 1, window: 256, now: () => clock.t });
    const took = drive(s, clock, 60_000, () => true);
    expect(s.gaveUp).toBe(true);
    expect(s.done()).toBe(true);
    expect(took).toBeGreaterThan(STREAM_GIVE_UP_MS);
    expect(took).toBeLessThanOrEqual(STREAM_GIVE_UP_MS + 2);
    // The stall rule kept it sending meanwhile: a window at first and one per stall.
    expect(s.sent).toBe(256 * (s.stalls + 1));
    expect(s.sent).toBeLessThan(s.count);
    expect(s.canSend()).toBe(false);
    expect(s.deadline()).toBe(Infinity);
  });

  it('windowed, credits flowing: never gives up, however long the stream', () => {
    const clock = { t: 0 };
    const s = new StreamSender({ count: 100_000, streamId: 1, window: 256, now: () => clock.t });
    // The receiver credits what was sent 5 ms ago, every 10 ms: slower than the sender, never silent.
    const sentAt: number[] = [];
    let seen = -1;
    const credit = (t: number) => {
      if (t % 10 !== 0) return undefined;
      while (seen + 1 < sentAt.length && sentAt[seen + 1] <= t - 5) seen++;
      return seen;
    };
    const took = drive(s, clock, 1_000_000, () => (sentAt.push(clock.t), true), credit);
    expect(s.gaveUp).toBe(false);
    expect(s.sent).toBe(100_000);
    expect(took).toBeGreaterThan(STREAM_GIVE_UP_MS);
  });

  it('unpaced, the transport never takes a frame (a closed vif): gives up', () => {
    const clock = { t: 0 };
    const s = new StreamSender({ count: 100, streamId: 1, now: () => clock.t });
    let open = 10;
    const took = drive(s, clock, 60_000, () => open-- > 0);
    expect(s.sent).toBe(10);
    expect(s.gaveUp).toBe(true);
    expect(took).toBeLessThanOrEqual(STREAM_GIVE_UP_MS + 2);
  });

  it('what it waited so far moves with a saved sender onto the restoring clock (a blackout is not a stall)', () => {
    const clock = { t: 0 };
    const s = new StreamSender({ count: 1000, streamId: 1, window: 16, now: () => clock.t });
    drive(s, clock, STREAM_GIVE_UP_MS - 100, () => true);
    expect(s.gaveUp).toBe(false);
    const later = { t: 1_000_000 };
    const r = StreamSender.restore(s.save(), later.t - clock.t, () => later.t);
    expect(r.giveUpIfStuck()).toBe(false);
    later.t += 101;
    expect(r.giveUpIfStuck()).toBe(true);
    expect(r.sent).toBe(s.sent);
  });
});

describe('an endpoint whose stream never comes', () => {
  /** An endpoint on a clock the test moves, its transport taking and discarding every frame. */
  function endpoint() {
    const clock = { t: 0 };
    const ram = new Uint8Array(4096);
    const transport: FrameTransport = { ram, txReserve: () => 0, txCommit: () => {}, txAvailable: () => 64, flush: () => {} };
    const ep = new NetEndpoint({ name: 'test', mac: '00:16:3e:00:00:01', ip: '10.0.0.1', mtu: 1500, transport, clock: { now: () => clock.t } });
    const replies: { value: RpcValue; error?: string }[] = [];
    const later = (): RpcReply => Object.assign((value: RpcValue, error?: string) => void replies.push({ value, error }), { id: 1 });
    return { clock, ep, replies, later };
  }

  it('a receiver that gets no frame at all ends after STREAM_FIRST_FRAME_MS, idle, everything lost', () => {
    const { clock, ep, replies, later } = endpoint();
    ep.handlers().stream_recv({ port: 5001, count: 1000, idleMs: 500, timeoutMs: 120_000 }, { op: 'stream_recv', later, shared: [] });
    let turns = 0;
    while (replies.length === 0 && turns++ < 100_000) {
      clock.t += 1;
      ep.poll();
    }
    expect(clock.t).toBeGreaterThan(STREAM_FIRST_FRAME_MS);
    expect(clock.t).toBeLessThan(STREAM_FIRST_FRAME_MS + 50);
    expect(replies).toHaveLength(1);
    expect(replies[0].value).toMatchObject({ delivered: 0, lost: 1000, complete: false, idle: true, timedOut: false });
  });

  it('a sender whose credits never come back answers with what it sent, short of its count', () => {
    const { clock, ep, replies, later } = endpoint();
    // 10.0.0.2 answers no ARP: the stack never learns it, so no frame goes out and nothing moves.
    ep.handlers().stream_send({ dstIp: '10.0.0.2', dstPort: 5001, count: 1000, window: 64 }, { op: 'stream_send', later, shared: [] });
    let turns = 0;
    while (replies.length === 0 && turns++ < 100_000) {
      clock.t += 1;
      ep.poll();
    }
    expect(clock.t).toBeGreaterThan(STREAM_GIVE_UP_MS);
    expect(clock.t).toBeLessThan(STREAM_GIVE_UP_MS + 50);
    expect(replies[0].error).toBeUndefined();
    expect(replies[0].value).toMatchObject({ sent: 0 });
  });
});
