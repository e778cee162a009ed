/** Xenstore from a real domain worker: synchronous calls, permissions by connection, watches, conflicts. */
import { MessageChannel } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { DomainPool, RpcEndpoint, WakeWord, XenstoreServer } from '../src/index.ts';

const KERNEL = new URL('./fixtures/xs-kernel.ts', import.meta.url).href;

describe('xenstore client in a domain worker', () => {
  const pool = new DomainPool(1);
  const server = new XenstoreServer();
  afterAll(async () => {
    await pool.destroy();
    server.close();
  });

  it('does sync requests, sees its permissions, gets watch events and EAGAIN on conflict', async () => {
    server.mkdir(0, '/local/domain/7');
    server.setPerms(0, '/local/domain/7', [{ domid: 7, perm: 'n' }]);
    server.write(0, '/shared/counter', '0');
    server.setPerms(0, '/shared', [{ domid: 0, perm: 'r' }]);
    server.setPerms(0, '/shared/counter', [{ domid: 7, perm: 'b' }]);
    const wake = WakeWord.create();
    const { port1, port2 } = new MessageChannel();
    const ctl = new RpcEndpoint(port1, wake, null).listen();
    const done = pool.start({ kernel: KERNEL, name: 'g', host: 'h', domid: 7, control: port2, xenstore: server.connect(7, wake), wake: { sab: wake.sab, offset: 0 }, config: {} });

    expect(await ctl.request('basic', null)).toEqual({ x: '42', dir: ['x', 'y'], committed: true, denied: 'EACCES', missing: null });
    // The guest cannot pretend to be dom0: the server knows it by its connection.
    expect(server.read(0, '/local/domain/0/evil')).toBeUndefined();

    await ctl.request('watch', null);
    server.write(0, '/shared/flag', 'up');
    const deadline = Date.now() + 5000;
    let events: string[] = [];
    while (Date.now() < deadline && events.length < 2) events = (await ctl.request('events', null)) as string[];
    expect(events).toEqual(['/shared/flag', '/shared/flag']);

    expect(await ctl.request('tx-read', null)).toBe('0');
    server.write(0, '/shared/counter', 'dom0 got there first');
    expect(await ctl.request('tx-commit', null)).toBe(false);
    expect(server.read(0, '/shared/counter')).toBe('dom0 got there first');

    await ctl.request('shutdown', null);
    await done;
    ctl.close();
  });
});
