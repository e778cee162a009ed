/**
 * dom0's entry points for guests and their vifs, named as Linux's xenbus
 * backend driver names its own: a guest handed to dom0 (add) or gone
 * (remove), a vif hotplugged (probe: its plugin channel, before its xenstore
 * nodes appear), closed by the backend (unplug) and removed (remove). The
 * xenbus handshake itself (otherend_changed) is each VifBackend's, watched by
 * VifBackends.
 */
import { CH, GrantTable, GuestMemory, type ToFrontendChannel } from '@xsim/hypervisor';
import type { Dom0Guest } from './config.ts';
import type { Dom0Kernel } from './compose.ts';

/** A vif's plugin channel to its guest. */
export function addChannel(k: Dom0Kernel, domid: number, handle: number): void {
  k.accel.addChannel({ key: `${domid}/${handle}`, domid, handle, mac: 0, ip: 0 }, k.env.channel<ToFrontendChannel>(CH.accel + handle, k.guestUids.get(domid)!));
}

/** A guest of this host: its memory for grant operations, a plugin channel per vif. */
export function addGuest(k: Dom0Kernel, g: Dom0Guest): void {
  k.guests.set(g.domid, { domid: g.domid, mem: new GuestMemory(g.mem), gnttab: GrantTable.hypervisorView(g.gnttab) });
  k.guestUids.set(g.domid, g.uid);
  for (const handle of g.vifs) addChannel(k, g.domid, handle);
}

/**
 * The guest is gone (shut down, destroyed or crashed): its vifs are removed
 * now, counting what was queued for them, its plugin channels close, and no
 * grant operation can reach its memory. Answers every removed vif of the
 * guest by handle, however it went (this request, the watch on its removed
 * node first, or an earlier hotplug): the toolstack knows which were still
 * its own.
 */
export function removeGuest(k: Dom0Kernel, gid: number): { removed: number[]; grantMappings: number } {
  k.backends.dropDomain(gid);
  for (const key of k.accel.channelKeys()) if (key.split('/')[0] === String(gid)) k.accel.removeChannel(key);
  k.guests.delete(gid);
  const removed = [...k.backends.removed.values()].filter((v) => String(v.key).split('/')[0] === String(gid)).map((v) => Number(String(v.key).split('/')[1]));
  return { removed, grantMappings: k.ops.activeMappings };
}

/** A vif op's guest and handle, checked. */
export function vifRef(k: Dom0Kernel, op: string, a: { domid: number; handle: number }): { domid: number; handle: number; key: string } {
  const { domid, handle } = a;
  if (!k.guests.has(domid)) throw new Error(`${op}: domain ${String(a.domid)} is not a guest of this host`);
  if (!Number.isInteger(handle) || handle < 0 || handle > 255) throw new Error(`${op}: handle ${String(a.handle)} is not a vif handle`);
  return { domid, handle, key: `${domid}/${handle}` };
}

/** Hotplug (xl network-attach): the vif's plugin channel, before its xenstore nodes appear. */
export function probeVif(k: Dom0Kernel, v: { domid: number; handle: number; key: string }): true {
  if (k.accel.channelKeys().includes(v.key)) throw new Error(`vif_add: vif${v.domid}.${v.handle} exists`);
  addChannel(k, v.domid, v.handle);
  return true;
}

/** xl network-detach: the backend closes first; the frontend follows it to Closed. */
export function unplugVif(k: Dom0Kernel, v: { domid: number; handle: number; key: string }): true {
  const vif = k.backends.vifs.get(v.key);
  if (!vif) throw new Error(`vif_unplug: no vif${v.domid}.${v.handle}`);
  vif.close();
  return true;
}

/** Both ends closed and the nodes removed: nothing of the vif stays (its counters do). */
export function removeVif(k: Dom0Kernel, v: { domid: number; handle: number; key: string }): boolean {
  k.backends.dropVif(v.key);
  k.accel.removeChannel(v.key);
  return k.backends.removed.has(`vif${v.domid}.${v.handle}`);
}
