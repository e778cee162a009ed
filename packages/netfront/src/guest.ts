/**
 * A domU's kernel: its page allocator and grant table, the netfront driver for
 * each vif, a tiny IP stack per vif and the traffic apps, all run from one
 * polling loop that sleeps on the domain's wake word.
 */
import {
  DomainLoop,
  EventChannels,
  FrameAllocator,
  GrantRefAllocator,
  GrantTable,
  GuestMemory,
  RpcEndpoint,
  XenstoreClient,
  type DomainTask,
} from '@xsim/hypervisor';
import { NetEndpoint } from './endpoint.ts';
import { parseMac } from './net/addr.ts';
import { Netfront } from './netfront.ts';
import { AccelHost } from './accel-host.ts';
import { EventChannelBus } from '@xsim/hypervisor';

export interface GuestConfig {
  mem: SharedArrayBuffer;
  gnttab: SharedArrayBuffer;
  evtchn: SharedArrayBuffer;
  mtu: number;
  vifs: { handle: number; mac: string; ip: string }[];
  spinRounds?: number;
}

export async function boot(task: DomainTask<GuestConfig>): Promise<unknown> {
  const cfg = task.config;
  const mem = new GuestMemory(cfg.mem);
  const frames = new FrameAllocator(mem);
  const gnttab = new GrantTable(cfg.gnttab);
  const grefs = new GrantRefAllocator(gnttab);
  const evtchn = new EventChannels(cfg.evtchn, task.domid);
  const wake = evtchn.wake;
  const xs = new XenstoreClient(task.xenstore!, wake);
  const loop = new DomainLoop(wake, { spinRounds: cfg.spinRounds });

  const dom0Wake = EventChannelBus.wakeOf(cfg.evtchn, 0);
  const devices = cfg.vifs.map((v, i) => {
    const nf = new Netfront({ domid: task.domid, handle: v.handle, mem, frames, gnttab, grefs, evtchn, xs, mtu: cfg.mtu });
    const transport = {
      ram: mem.u8,
      txReserve: (len: number) => nf.txReserve(len),
      txCommit: (len: number) => nf.txCommit(len),
      txAvailable: () => nf.txAvailable(),
      flush: () => nf.flush(),
    };
    const ep = new NetEndpoint({ name: `${task.host}/${task.name}`, mac: v.mac, ip: v.ip, transport, mtu: cfg.mtu });
    nf.onReceive = (ram, off, len) => ep.receive(ram, off, len);
    const port = task.ports?.[i];
    const accel = port
      ? new AccelHost(
          new RpcEndpoint(port, dom0Wake, wake),
          nf,
          { domid: task.domid, backendDomid: 0, mac: parseMac(v.mac), mem, frames, gnttab, grefs, evtchn, mtu: cfg.mtu, log: (m) => console.error(`[${task.host}/${task.name}] ${m}`) },
          (p, then, fail) => loop.defer(p, then, fail),
        )
      : null;
    return { nf, ep, accel };
  });
  const primary = devices[0];

  const stats = (): Record<string, unknown> => ({
    domid: task.domid,
    name: task.name,
    host: task.host,
    vifs: devices.map((d) => ({ handle: d.nf.handle, ...d.nf.stats, accel: d.accel ? d.accel.stats(d.nf.accel !== null) : null })),
    endpoint: primary.ep.stats(),
    loop: { ...loop.stats },
    freeFrames: frames.available,
    freeGrants: grefs.available,
  });

  const control = new RpcEndpoint(task.control, null, wake).onRequest((op, args, later) => {
    if (op === 'stats') return stats();
    if (op === 'shutdown') {
      loop.stop();
      return true;
    }
    if (op === 'vif_close') {
      primary.nf.close();
      return true;
    }
    if (op === 'accel_inject') {
      const fe = primary.accel?.frontend as { inject?: (k: string) => void } | null | undefined;
      if (!fe?.inject) throw new Error('no accelerator with fault injection is attached');
      fe.inject(String((args as { kind?: string }).kind));
      return true;
    }
    if (op === 'accel_filter_request') {
      // A guest asking dom0 to steer traffic to it: must be refused.
      primary.accel?.send('filter_request', { match: { kind: 'mac', mac: 0xffffffffffff } });
      return true;
    }
    if (op === 'inject_fault') {
      primary.nf.injectFault(String((args as { kind?: string }).kind) as Parameters<Netfront['injectFault']>[0]);
      return true;
    }
    return primary.ep.control(op, args, later);
  });

  for (const d of devices) d.nf.start();
  loop.add('control', () => control.poll() + xs.pump());
  loop.add('evtchn', () => {
    evtchn.dispatch();
    return 0;
  });
  for (const d of devices) {
    if (d.accel) loop.add(`accel${d.nf.handle}`, () => d.accel!.poll());
    loop.add(`vif${d.nf.handle}`, () => d.nf.poll());
    loop.add(`apps${d.nf.handle}`, () => d.ep.poll());
  }
  await loop.runAsync();
  const final = stats();
  control.close();
  return final;
}
