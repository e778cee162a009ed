/**
 * Typed protocols end to end, in process (a deterministic run: every domain
 * and the NIC on this thread): the real dom0, guest and fabric dispatchers
 * refuse a malformed request at the boundary, answer the sender with an
 * RpcError of code 'refused' naming the op and the field, count it (stats:
 * control.refused) and log it; the kernel carries on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology } from '@xsim/toolstack';

const dom0 = { host: 'host-a', domain: 'dom0' };
const a1 = { host: 'host-a', domain: 'a1' };

describe('malformed control requests are refused, counted and logged by the real kernels', () => {
  let sim: Simulation;
  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { deterministic: { seed: 1 }, log: () => {} });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  it('dom0: a wrong field type and an unknown op', async () => {
    await expect(sim.request(dom0, 'guest_remove', { domid: 'a1' } as never)).rejects.toMatchObject({
      code: 'refused',
      message: expect.stringMatching(/dom0 control: guest_remove refused: argument \/domid/),
    });
    const untyped = sim.request.bind(sim) as unknown as (ref: unknown, op: string) => Promise<unknown>;
    await expect(untyped(dom0, 'frobnicate')).rejects.toMatchObject({ code: 'refused', message: expect.stringMatching(/frobnicate refused: unknown op/) });
    const st = await sim.dom0Stats('host-a');
    expect(st.control).toEqual({ refused: 2 });
    expect(st.log.some((l) => /warn: dom0 control: guest_remove refused: argument \/domid/.test(l))).toBe(true);
    // Still serving: a good request is answered.
    expect(Array.isArray(await sim.request(dom0, 'fdb'))).toBe(true);
  });

  it('a guest: its endpoint apps and its own ops', async () => {
    await expect(sim.request(a1, 'stream_recv', { port: '5001', count: 10 } as never)).rejects.toMatchObject({
      code: 'refused',
      message: expect.stringMatching(/stream_recv refused: argument \/port/),
    });
    await expect(sim.request(a1, 'vif_close', { vif: 'vif0' } as never)).rejects.toMatchObject({ code: 'refused' });
    const st = await sim.guestStats(a1);
    expect(st.control).toEqual({ refused: 2 });
    // A request the table allows but the kernel cannot serve is the kernel's answer, not a refusal.
    await expect(sim.request(a1, 'vif_close', { vif: 7 })).rejects.toMatchObject({ code: 'remote', message: expect.stringMatching(/no vif7/) });
    expect((await sim.guestStats(a1)).control).toEqual({ refused: 2 });
  });

  it('the NIC fabric', async () => {
    const ctx = (sim as unknown as { ctx: { fabric(op: string, args: unknown): Promise<unknown> } }).ctx;
    await expect(ctx.fabric('forget_mac', { mac: 'ff:ff:ff:ff:ff:ff' })).rejects.toMatchObject({
      code: 'refused',
      message: expect.stringMatching(/fabric control: forget_mac refused: argument \/mac/),
    });
    await expect(ctx.fabric('forget_mac', { mac: 1 })).resolves.toBe(0);
    const st = await sim.fabricStats();
    expect(st.control).toEqual({ refused: 1, mcdiRefused: [0, 0] });
  });
});
