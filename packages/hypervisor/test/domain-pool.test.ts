import { MessageChannel } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { DomainPool, RpcEndpoint, WakeWord, type DomainTask } from '../src/index.ts';

const KERNEL = new URL('./fixtures/echo-kernel.ts', import.meta.url).href;

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
});
