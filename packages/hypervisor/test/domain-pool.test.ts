import { MessageChannel } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { DomainPool, RpcEndpoint, WakeWord, type DomainTask } from '../src/index.ts';
import { PINGPONG_BYTES } from './fixtures/pingpong-kernel.ts';

const KERNEL = new URL('./fixtures/echo-kernel.ts', import.meta.url).href;
const PINGPONG = new URL('./fixtures/pingpong-kernel.ts', import.meta.url).href;

function task(domid: number, config: { crash?: boolean } = {}) {
  const wake = WakeWord.create();
  const { port1, port2 } = new MessageChannel();
  const t: DomainTask = { kernel: KERNEL, name: `d${domid}`, host: 'h', domid, control: port2, wake: { sab: wake.sab, offset: 0 }, config };
  return { t, ctl: new RpcEndpoint(port1, wake, null).listen() };
}

describe('domains as piscina workers', () => {
  const pool = new DomainPool(2);
  afterAll(() => pool.destroy());

  it('runs a kernel as one long task that settles with its stats on shutdown', async () => {
    const { t, ctl } = task(3);
    const done = pool.start<{ domid: number; requests: number }>(t);
    expect(await ctl.request('echo', { x: [1, 2, 3] })).toEqual({ x: [1, 2, 3] });
    expect(await ctl.request('shutdown', null)).toBe('bye');
    const stats = await done;
    ctl.close();
    expect(stats.domid).toBe(3);
    expect(stats.requests).toBe(2);
  });

  it('rejects when the kernel crashes, and a handler error is a clean RPC error', async () => {
    const a = task(4, { crash: true });
    await expect(pool.start(a.t)).rejects.toThrow(/kernel panic/);
    a.ctl.close();
    const b = task(5);
    const done = pool.start(b.t);
    await expect(b.ctl.request('bogus', null)).rejects.toThrow(/unknown op bogus/);
    await b.ctl.request('shutdown', null);
    await done;
    b.ctl.close();
  });

  it('wake words lose no wake-up: two workers bounce a ball 20,000 times, sleeping between turns', async () => {
    // Different spins put the kick before, during and after the sleeper's flag and wait.
    for (const spin of [0, 3, 50]) {
      const sab = new SharedArrayBuffer(PINGPONG_BYTES);
      const run = (role: 0 | 1) =>
        pool.start<{ timeouts: number; sleeps: number }>({
          kernel: PINGPONG,
          name: `pp${role}`,
          host: 'h',
          domid: 10 + role,
          control: new MessageChannel().port2,
          wake: { sab, offset: role * 8 },
          config: { sab, role, turns: 20_000, spin },
        });
      const [a, b] = await Promise.all([run(0), run(1)]);
      expect(a.timeouts + b.timeouts, `spin ${spin}`).toBe(0);
      expect(new Int32Array(sab)[4]).toBe(40_000);
      // Without spinning every turn the ball is not already there sleeps: the wake path is what runs.
      if (spin === 0) expect(a.sleeps + b.sleeps, 'the sleeping path was exercised').toBeGreaterThan(0);
    }
  });
});

