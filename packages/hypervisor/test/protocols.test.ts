/**
 * Typed protocols at the receiver: every channel's table is checked once, at
 * the boundary, by RpcOpServer. A malformed message (wrong field type, a
 * missing field, an op the table does not have) is refused — an error naming
 * the channel, the op and the field, code 'refused' at the sender — counted
 * and logged, and its handler never runs. In process: the real tables, with
 * handlers that only record that they ran.
 */
import { describe, expect, it } from 'vitest';
import {
  Bus,
  CAPTURE_OPS_TABLE,
  CH,
  DOM0_OPS,
  ENDPOINT_OPS,
  FABRIC_OPS,
  GUEST_OPS,
  MCDI_OPS,
  RpcEndpoint,
  RpcError,
  RpcOpServer,
  SCHED_EVENTS,
  SCHED_OPS,
  TO_BACKEND,
  TO_FRONTEND,
  TRACE_OPS,
  frontendMessageProblem,
  messageProblem,
  traceOp,
  type OpHandlers,
  type OpTable,
} from '../src/index.ts';

/** A handler per op that records its call and answers `true`. */
function recording<T extends OpTable>(table: T): { handlers: OpHandlers<T>; ran: string[] } {
  const ran: string[] = [];
  const handlers = Object.fromEntries(Object.keys(table).map((op) => [op, () => (ran.push(op), true)])) as unknown as OpHandlers<T>;
  return { handlers, ran };
}

/** Each channel, a well-formed message and a malformed one (and the field the refusal must name). */
const CHANNELS: { name: string; table: OpTable; op: string; good: unknown; bad: unknown; field: string }[] = [
  { name: 'dom0 control', table: DOM0_OPS, op: 'guest_remove', good: { domid: 3 }, bad: { domid: '3' }, field: '/domid' },
  { name: 'dom0 control (nic admin)', table: DOM0_OPS, op: 'link_set', good: { up: true }, bad: { up: 'yes' }, field: '/up' },
  { name: 'guest control', table: GUEST_OPS, op: 'vif_close', good: { vif: 1 }, bad: { vif: 'eth0' }, field: '/vif' },
  {
    name: 'endpoint apps',
    table: ENDPOINT_OPS,
    op: 'stream_send',
    good: { dstIp: '10.0.0.2', dstPort: 5001, count: 10 },
    bad: { dstIp: '10.0.0.2', count: 10 },
    field: '/dstPort',
  },
  { name: 'capture', table: CAPTURE_OPS_TABLE, op: 'capture_start', good: { specs: ['*'] }, bad: { specs: ['*'], offsetNs: '1e9' }, field: '/offsetNs' },
  { name: 'fabric control', table: FABRIC_OPS, op: 'forget_mac', good: { mac: 1 }, bad: { mac: null }, field: '/mac' },
  {
    name: 'MCDI',
    table: MCDI_OPS,
    op: 'filter_insert',
    good: { vi: 1, match: { kind: 'mac', mac: 5 } },
    bad: { vi: 1, match: { kind: 'vlan', vlan: 5 } },
    field: '/match',
  },
  {
    name: 'MCDI (frames)',
    table: MCDI_OPS,
    op: 'buffer_table_alloc',
    good: { vi: 1, domid: 2, frames: [1] },
    bad: { vi: 1, domid: 2, frames: [] },
    field: '/frames',
  },
  { name: 'pCPU sched', table: SCHED_OPS, op: 'route', good: { addr: 5, via: 0 }, bad: { addr: 5 }, field: '/via' },
  { name: 'tracer', table: TRACE_OPS, op: 'trace_start', good: { sample: 10 }, bad: { sample: 'often' }, field: '/sample' },
  { name: 'pCPU events', table: SCHED_EVENTS, op: 'crashed', good: { uid: 9, error: 'boom' }, bad: { uid: 9 }, field: '/error' },
  {
    name: 'plugin channel (to frontend)',
    table: TO_FRONTEND,
    op: 'attach',
    good: { plugin: 'p', version: '1', api: '1.1', pluginApi: '1.0', frontend: '' },
    bad: { plugin: 'p', version: 1, api: '1.1', pluginApi: '1.0', frontend: '' },
    field: '/version',
  },
  { name: 'plugin channel (to backend)', table: TO_BACKEND, op: 'decline', good: { reason: 'no' }, bad: { reason: 'x'.repeat(2000) }, field: '/reason' },
];

describe('typed protocols: the receiver checks each message once', () => {
  for (const c of CHANNELS) {
    it(`${c.name}: a malformed ${c.op} is refused, counted and logged, naming the field; a good one is served`, () => {
      const { handlers, ran } = recording(c.table);
      const log: string[] = [];
      const server = new RpcOpServer(c.name, c.table, handlers, { log: (l) => log.push(l) });
      let err: unknown;
      try {
        server.call(c.op, c.bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RpcError);
      expect((err as RpcError).code).toBe('refused');
      expect((err as RpcError).message).toContain(`${c.name}: ${c.op} refused`);
      expect((err as RpcError).message).toContain(c.field);
      expect(server.refused).toBe(1);
      expect(ran).toEqual([]);
      expect(log).toHaveLength(1);
      expect(log[0]).toContain(c.field);

      expect(server.call(c.op, c.good)).toBe(true);
      expect(ran).toEqual([c.op]);
      expect(server.refused).toBe(1);
    });
  }

  it('an op the table does not have is refused and counted (never reaches a handler)', () => {
    const { handlers, ran } = recording(DOM0_OPS);
    const server = new RpcOpServer('dom0 control', DOM0_OPS, handlers);
    for (const op of ['stat', '__proto__', 'constructor']) expect(() => server.call(op, {})).toThrow(/unknown op/);
    expect(server.refused).toBe(3);
    expect(ran).toEqual([]);
  });

  it('an event that fails its schema is dropped and counted: nobody to answer, nothing thrown', () => {
    const seen: unknown[] = [];
    const server = new RpcOpServer('pCPU events', SCHED_EVENTS, { crashed: (a) => (seen.push(a), undefined) });
    server.handleEvent('crashed', { uid: 'nine' }, []);
    server.handleEvent('crashed', { uid: 9, error: 'boom' }, []);
    expect(server.refused).toBe(1);
    expect(seen).toEqual([{ uid: 9, error: 'boom' }]);
  });

  it('across the bus: the sender gets RpcError code "refused" naming the op and the field; the receiver counts it', async () => {
    const bus = new Bus();
    const { handlers, ran } = recording(FABRIC_OPS);
    const server = new RpcOpServer('fabric control', FABRIC_OPS, handlers);
    new RpcEndpoint(bus, 2, 1, CH.control).listen().onRequest(server.handle);
    const ctl = new RpcEndpoint<typeof FABRIC_OPS>(bus, 1, 2, CH.control).listen();
    const bad = ctl.request('remove_domain', { nic: 0, domid: 'x' } as never, 1000);
    await expect(bad).rejects.toMatchObject({ code: 'refused', op: 'remove_domain' });
    await expect(bad).rejects.toThrow(/remove_domain refused: argument \/domid/);
    expect(server.refused).toBe(1);
    await expect(ctl.request('remove_domain', { nic: 0, domid: 3 }, 1000)).resolves.toBe(true);
    expect(ran).toEqual(['remove_domain']);
    // A handler's own error is the peer's answer, not a refusal.
    const failing = new RpcOpServer('fabric control', FABRIC_OPS, {
      ...handlers,
      stats: () => {
        throw new Error('no stats today');
      },
    });
    const bus2 = new Bus();
    new RpcEndpoint(bus2, 2, 1, CH.control).listen().onRequest(failing.handle);
    const ctl2 = new RpcEndpoint<typeof FABRIC_OPS>(bus2, 1, 2, CH.control).listen();
    await expect(ctl2.request('stats', {}, 1000)).rejects.toMatchObject({ code: 'remote' });
    expect(failing.refused).toBe(0);
  });

  it('the tracer checks its own ops the same way', () => {
    expect(() => traceOp('trace_start', { limit: 'lots' } as never, { now: () => 0 })).toThrow(/trace: trace_start refused: argument \/limit/);
  });

  it('the plugin channel: each end checks the framework messages it receives', () => {
    expect(frontendMessageProblem('attach', { plugin: 'vnic', version: '1.0', api: '1.1', pluginApi: '1.1', frontend: 'file:///x.ts' })).toBeUndefined();
    expect(frontendMessageProblem('attach', { plugin: 'vnic', api: '1.1', pluginApi: '1.1', frontend: 'file:///x.ts' })).toMatch(/attach\/version/);
    expect(frontendMessageProblem('attach', { plugin: 'vnic', version: '1.0', frontend: 'file:///x.ts' })).toMatch(/attach\/api/);
    expect(frontendMessageProblem('detached', { plugin: 7 })).toMatch(/detached\/plugin/);
    // A plugin's own messages are its manifest's to judge, not the framework's.
    expect(frontendMessageProblem('offer', { anything: true })).toBeUndefined();
    expect(messageProblem({}, 'drained', { plugin: 3 })).toMatch(/drained\/plugin/);
    expect(messageProblem({}, 'nonsense', {})).toMatch(/is not a message this plugin accepts/);
  });
});
