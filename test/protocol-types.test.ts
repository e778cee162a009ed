/**
 * Typed protocols at the sender: a misspelt op or a wrong argument shape is a
 * compile error. Each `@ts-expect-error` line below must fail to type-check
 * (`npm run typecheck` compiles this file; an expected error that does not
 * happen is itself an error), and the lines without one must compile. Nothing
 * here is sent: the functions are only compiled.
 */
import { describe, expect, it } from 'vitest';
import type { DomainOps, FabricOps, McdiOps, RpcEndpoint, SchedOps, ToFrontendChannel } from '@xsim/hypervisor';
import type { AccelBackendContext } from '@xsim/netback';
import type { Simulation } from '@xsim/toolstack';

const ref = { host: 'host-a', domain: 'a1' };

/* eslint-disable @typescript-eslint/no-unused-vars */
async function toolstack(sim: Simulation): Promise<void> {
  await sim.request(ref, 'stats');
  await sim.request(ref, 'arp_resolve', { ip: '10.0.0.2' });
  await sim.request(ref, 'vif_close', { vif: 1 });
  await sim.request({ host: 'host-a', domain: 'dom0' }, 'guest_remove', { domid: 3 }, 10_000);
  // @ts-expect-error a misspelt op
  await sim.request(ref, 'stat');
  // @ts-expect-error an op no kernel serves
  await sim.request(ref, 'frobnicate', {});
  // @ts-expect-error a missing argument (arp_resolve needs the address)
  await sim.request(ref, 'arp_resolve');
  // @ts-expect-error a wrong argument type
  await sim.request(ref, 'arp_resolve', { ip: 0x0a000002 });
  // @ts-expect-error a misspelt field
  await sim.request(ref, 'stream_send', { dstIP: '10.0.0.2', dstPort: 5001, count: 1 });
  // @ts-expect-error an argument the op does not take
  await sim.request(ref, 'vif_close', { vif: 1, force: true });
  // The reply is typed: suspend's record has a frame.
  const rec = await sim.request(ref, 'suspend');
  const frame: number = rec.frame;
  // @ts-expect-error and no field it does not have
  const nope: number = rec.framez;
}

function endpoints(mcdi: RpcEndpoint<McdiOps>, fabric: RpcEndpoint<FabricOps>, sched: RpcEndpoint<SchedOps>, dom: RpcEndpoint<DomainOps>): void {
  const base: number = mcdi.requestSync('buffer_table_alloc', { vi: 1, domid: 2, frames: [3] });
  // @ts-expect-error MCDI has no such command
  mcdi.requestSync('buffer_alloc', { vi: 1, domid: 2, frames: [3] });
  // @ts-expect-error frames is a list of frame numbers
  mcdi.requestSync('buffer_table_alloc', { vi: 1, domid: 2, frames: 3 });
  // @ts-expect-error a filter match is a MAC or an IPv4 (proto, addr, port) match
  mcdi.requestSync('filter_insert', { vi: 1, match: { kind: 'vlan', vlan: 5 } });
  void fabric.request('forget_mac', { mac: 1 });
  // @ts-expect-error the fabric's link_set names the NIC
  void fabric.request('link_set', { up: true });
  // @ts-expect-error the pCPU worker has no such op
  void sched.request('migrate', {});
  // @ts-expect-error dom0's vif ops take a domid and a handle
  void dom.request('vif_add', { domid: 1 });
}

function pluginChannel(ch: RpcEndpoint<ToFrontendChannel>, ctx: AccelBackendContext): void {
  ch.event('attach', { plugin: 'vnic', version: '1', api: '1.1', pluginApi: '1.0', frontend: '' });
  // @ts-expect-error attach carries the plugin's version
  ch.event('attach', { plugin: 'vnic', api: '1.1', pluginApi: '1.0', frontend: '' });
  // @ts-expect-error attach carries the plugin API versions
  ch.event('attach', { plugin: 'vnic', version: '1', frontend: '' });
  // A plugin's own messages are its manifest's (checked at the receiver against the manifest's schemas).
  ch.event('offer', { vi: 1 });
  const id: number = ctx.mcdi('filter_insert', { vi: 1, match: { kind: 'mac', mac: 5 } });
  // @ts-expect-error a plugin's MCDI is typed too
  ctx.mcdi('filter_insert', { vi: '1', match: { kind: 'mac', mac: 5 } });
}
/* eslint-enable @typescript-eslint/no-unused-vars */

describe('typed protocols at the sender', () => {
  it('compiles only right ops and arguments (checked by tsc; see the @ts-expect-error lines)', () => {
    expect([toolstack, endpoints, pluginChannel].every((f) => typeof f === 'function')).toBe(true);
  });
});
