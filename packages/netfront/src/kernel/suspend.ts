/**
 * The kernel's suspend and resume (save, restore, migration), as Linux
 * netfront's: suspend drains what the removed backends left on the rings and
 * writes the kernel's record into RAM; resume probes each vif afresh from
 * the record, sends again what the old backend never took, and announces
 * the vif with a gratuitous ARP once it is connected.
 */
import { crossThreadNow, type SuspendRecord } from '@xsim/hypervisor';
import { bufferFrames, readKernelState, stateFrames, writeKernelState, KERNEL_STATE_VERSION, type DeviceState } from '../suspend.ts';
import type { GuestDevice, GuestParts } from './compose.ts';
import { probe } from './probe.ts';

/**
 * Suspend, second half (the toolstack has removed the backends): drain
 * what they left on the rings, write the kernel's record into RAM and stop.
 * The answer says where the record is.
 */
export function suspend(k: GuestParts): SuspendRecord {
  const { clock, core } = k.env;
  const now = clock.now();
  // dom0 has let go of the vifs (their plugins' mappings with them): every plugin frontend gives its DMA pages,
  // grants and ports back now, before the record is laid out, whether or not its "detached" came first.
  for (const d of k.devices) d.accel?.close();
  const devs: DeviceState[] = k.devices.map((d) => {
    const unanswered = d.nf.drainForSuspend();
    return {
      handle: d.nf.handle,
      mac: d.mac,
      ip: d.ip,
      mtu: d.mtu,
      queues: d.queues,
      ...(d.nf.csumOffload ? {} : { csum: false }),
      ...(d.nf.gsoOffload ? {} : { gso: false }),
      counters: d.nf.c,
      endpoint: d.ep.save(),
      unanswered,
      lastRxAt: d.rx.last >= 0 ? crossThreadNow(clock) - (now - d.rx.last) : null,
    };
  });
  const at = writeKernelState(k.mem, k.frames, { v: KERNEL_STATE_VERSION, devices: devs });
  for (const offs of k.unpoll.values()) for (const off of offs) off();
  k.unpoll.clear();
  core.stop();
  k.log(`suspended: record of ${at.len} octets at frame ${at.frame}, ${devs.reduce((n, d) => n + d.unanswered.length, 0)} TX frame(s) to send again`);
  return { ...at, lastRxAt: devs.map((d) => d.lastRxAt), unanswered: devs.map((d) => d.unanswered.length) };
}

/**
 * Resume from a record: the frames it names stay ours until read; each vif
 * is probed afresh (new rings, grants and event channel against whatever
 * backend this host gives it, as Linux netfront's resume), its counters and
 * apps carry on, and once it is connected it sends again what its old
 * backend never took, then announces itself with a gratuitous ARP so
 * bridges and switches learn where it is now.
 */
export function resume(k: GuestParts, at: { frame: number; len: number }): void {
  const st = readKernelState(k.mem, at);
  const held = [...stateFrames(at), ...st.devices.flatMap((d) => d.unanswered.flatMap(bufferFrames))];
  k.frames.take([...new Set(held)]);
  for (const f of stateFrames(at)) k.frames.release(f);
  for (const s of st.devices) {
    const d = probe(k, { handle: s.handle, mac: s.mac, ip: s.ip, mtu: s.mtu, queues: s.queues, csum: s.csum, gso: s.gso });
    Object.assign(d.nf.own, s.counters);
    d.ep.restore(s.endpoint, (id) => k.env.control.replier(id));
    d.rx.armed = true;
    const pending = s.unanswered;
    // Once connected: the untaken TX first (each is sent once: splice empties the list), then the announcement.
    d.nf.onCarrier = (up) => {
      if (!up) return;
      resend(k, d, pending.splice(0));
      announce(d);
    };
  }
  k.log(`resumed: ${st.devices.length} vif(s) probed afresh`);
}

/** Send again the frames the old backend never took; the rest (no room now) are dropped and counted. */
function resend(k: GuestParts, d: GuestDevice, bufs: { addr: number; len: number }[]): void {
  for (const b of bufs) {
    const at = d.nf.txReserve(b.len);
    if (at < 0) {
      d.nf.own.txLostAtResume++;
    } else {
      k.mem.u8.copyWithin(at, b.addr, b.addr + b.len);
      d.nf.txCommit(b.len);
      d.nf.own.txResent++;
    }
    for (const f of bufferFrames(b)) k.frames.release(f);
  }
  d.nf.flush();
}

function announce(d: GuestDevice): void {
  if (d.ep.stack.announce()) d.nf.flush();
}
