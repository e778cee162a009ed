/**
 * netfront's probe and remove (Linux's xennet_probe / xennet_remove): a vif
 * comes up with its netfront, its stack and its plugin host, polled from
 * then on; a closed vif whose node the toolstack removed gives everything
 * back.
 */
import { ADDR_FABRIC, CH, crossThreadNow } from '@xsim/hypervisor';
import { NetEndpoint, parseMac } from '@xsim/netstack';
import { Netfront } from '../netfront/xenbus.ts';
import { AccelHost } from '../accel-host.ts';
import type { GuestDevice, GuestParts } from './compose.ts';

/** xennet_probe: a netfront, its stack and its plugin host for vif `v`, polled from now on. */
export function probe(k: GuestParts, v: { handle: number; mac: string; ip: string; mtu: number; queues?: number; csum?: boolean; gso?: boolean }): GuestDevice {
  const { env, domid, mem, frames, gnttab, grefs, evtchn, xs, log } = k;
  const { core, clock } = env;
  const tap = k.capture.tap(`${env.id.host}/${env.id.name}/vif${v.handle}`);
  const queues = Math.max(1, v.queues ?? env.config.netfront?.maxQueues ?? 1);
  const params = { ...env.config.netfront, maxQueues: queues, ...(v.csum === false ? { csum: false } : {}), ...(v.gso === false ? { gso: false } : {}) };
  const nf = new Netfront({ domid, handle: v.handle, mem, frames, gnttab, grefs, evtchn, xs, mtu: v.mtu, params, log, tap });
  const transport = {
    ram: mem.u8,
    txReserve: (len: number) => nf.txReserve(len),
    // gsoSize: the stack's MSS for a TCP frame over the MTU (TSO).
    txCommit: (len: number, csumPartial?: boolean, gsoSize?: number) => nf.txCommit(len, csumPartial, gsoSize),
    txAvailable: () => nf.txAvailable(),
    flush: () => nf.flush(),
  };
  const ep = new NetEndpoint({ name: `${env.id.host}/${env.id.name}`, mac: v.mac, ip: v.ip, transport, mtu: v.mtu, clock });
  // xennet_set_features cut the MTU (no scatter-gather at one end): the stack follows.
  nf.onMtu = (mtu) => ep.setMtu(mtu);
  // What the stack may hand down (checksum offload), told at each connect and when switched (xennet_set_features).
  nf.onOffloads = (o) => ep.setOffloads(o);
  ep.setOffloads({ txCsum: nf.csumOffload, tsoMax: nf.tsoMax });
  const rx: GuestDevice['rx'] = { armed: false, last: -1, firstAfterResume: null };
  nf.onReceive = (ram, off, len, flags) => {
    if (rx.armed) {
      rx.last = clock.now();
      if (k.resumedAt !== null && rx.firstAfterResume === null) {
        rx.firstAfterResume = crossThreadNow(clock);
        rx.armed = false;
      }
    }
    ep.receive(ram, off, len, flags);
  };
  const accel = new AccelHost(
    env.channel(CH.accel + v.handle, env.config.dom0Uid),
    nf,
    { domid, backendDomid: 0, mac: parseMac(v.mac), mem, frames, gnttab, grefs, evtchn, mtu: v.mtu, clock, log, kickNic: () => env.kickDevice(ADDR_FABRIC) },
    (p, then, fail) => core.defer(p, then, fail),
  );
  const d: GuestDevice = { nf, ep, accel, ip: v.ip, mac: v.mac, mtu: v.mtu, queues, rx };
  // As Linux netfront when its backend connects (netdev_notify_peers): a gratuitous ARP, so peers that
  // knew this IP at another MAC (a guest destroyed and created again under its name) learn the new one at once.
  nf.onCarrier = (up) => {
    if (up && ep.stack.announce()) nf.flush();
  };
  k.devices.push(d);
  nf.start();
  k.unpoll.set(v.handle, [
    core.add(`accel${v.handle}`, () => accel.poll()),
    core.add(`vif${v.handle}`, () => nf.poll()),
    core.add(`apps${v.handle}`, () => ep.poll()),
    core.timer(() => ep.nextDeadline()),
  ]);
  return d;
}

/** xennet_remove: the toolstack removed a Closed vif's node; its memory goes back to the allocator. */
export function remove(k: GuestParts, d: GuestDevice): void {
  if (!d.nf.release()) return k.log(`vif${d.nf.handle}: node removed while the device is not closed; kept until it is`);
  for (const off of k.unpoll.get(d.nf.handle) ?? []) off();
  k.unpoll.delete(d.nf.handle);
  d.accel?.close();
  k.devices.splice(k.devices.indexOf(d), 1);
  d.nf.tap.release();
  k.log(`vif${d.nf.handle} unplugged`);
}
