/**
 * A guest kernel's suspend record: what a kernel keeps outside its rings
 * (each vif's address, counters, apps and the TX frames its backend never
 * took), written into its own RAM at suspend, so that a save image or a
 * migration carries the guest whole in its pages, as a real kernel's memory
 * carries its state. The resumed kernel reads it back from the same frames
 * of its new RAM.
 *
 * In RAM: msgpack of KernelState at frame `frame`, `len` octets, in
 * contiguous frames taken from the top of the kernel's own allocator, and
 * the untaken TX frames copied up beside it (a page-aligned copy each). The
 * resumed kernel holds those frames until it has read them, and sets up its
 * own rings and buffers from the bottom meanwhile: what it holds must not
 * sit where its netfront (and, after it, a plugin's contiguous DMA area)
 * would go, or the held frames split the free RAM for good.
 */
import { pack, unpack } from 'msgpackr';
import { PAGE_SIZE, type FrameAllocator, type GuestMemory } from '@xsim/hypervisor';
import type { EndpointState } from '@xsim/netstack';

export const KERNEL_STATE_VERSION = 1;

export interface DeviceState {
  handle: number;
  mac: string;
  ip: string;
  mtu: number;
  /** The most queues the vif may ask for (absent in records before multi-queue: 1). */
  queues?: number;
  /** false: its checksum or segmentation offload was off (absent in older records: on). */
  csum?: boolean;
  gso?: boolean;
  counters: Record<string, number>;
  endpoint: EndpointState;
  /** TX frames the backend never took, oldest first: where they lie in RAM. */
  unanswered: { addr: number; len: number }[];
  /** Cross-thread time of the last frame received before the suspend (while a migration was armed), or null. */
  lastRxAt: number | null;
}

export interface KernelState {
  v: number;
  devices: DeviceState[];
}

/**
 * Write the state into fresh contiguous frames at the top of the kernel's
 * RAM; where it went. Each untaken TX frame is first copied up there too (its
 * entry then names the copy); one that finds no room stays where it is.
 */
export function writeKernelState(mem: GuestMemory, frames: FrameAllocator, st: KernelState): { frame: number; len: number } {
  const devices = st.devices.map((d) => ({ ...d, unanswered: d.unanswered.map((b) => moveUp(mem, frames, b)) }));
  const bytes = pack({ ...st, devices });
  const n = Math.ceil(bytes.length / PAGE_SIZE);
  const frame = frames.allocRangeHigh(n);
  mem.u8.set(bytes, mem.frameOffset(frame));
  return { frame, len: bytes.length };
}

/** A TX frame's bytes copied to page-aligned frames at the top of RAM (or left where they are if none are free). */
function moveUp(mem: GuestMemory, frames: FrameAllocator, b: { addr: number; len: number }): { addr: number; len: number } {
  let to: number;
  try {
    to = frames.allocRangeHigh(Math.ceil(b.len / PAGE_SIZE)) * PAGE_SIZE;
  } catch {
    return b;
  }
  mem.u8.copyWithin(to, b.addr, b.addr + b.len);
  return { addr: to, len: b.len };
}

/** The frames a state of `len` octets at `frame` occupies. */
export function stateFrames(at: { frame: number; len: number }): number[] {
  return Array.from({ length: Math.ceil(at.len / PAGE_SIZE) }, (_v, i) => at.frame + i);
}

/** The frames a frame of `len` octets at byte `addr` lies in. */
export function bufferFrames(b: { addr: number; len: number }): number[] {
  const first = Math.floor(b.addr / PAGE_SIZE);
  const last = Math.floor((b.addr + Math.max(b.len, 1) - 1) / PAGE_SIZE);
  return Array.from({ length: last - first + 1 }, (_v, i) => first + i);
}

/** Read a suspend record back; its shape is checked (a save image is a file anyone may have edited). */
export function readKernelState(mem: GuestMemory, at: { frame: number; len: number }): KernelState {
  const start = mem.frameOffset(at.frame);
  if (!(at.len > 0) || start + at.len > mem.u8.length) throw new Error(`suspend record of ${at.len} octets at frame ${at.frame} runs past the domain's RAM`);
  let st: Partial<KernelState>;
  try {
    st = unpack(mem.u8.slice(start, start + at.len)) as Partial<KernelState>;
  } catch (e) {
    throw new Error(`suspend record at frame ${at.frame} does not decode: ${(e as Error).message}`);
  }
  if (!st || st.v !== KERNEL_STATE_VERSION || !Array.isArray(st.devices))
    throw new Error(`suspend record at frame ${at.frame} is not version ${KERNEL_STATE_VERSION}`);
  for (const d of st.devices) {
    if (
      !d ||
      !Number.isInteger(d.handle) ||
      typeof d.mac !== 'string' ||
      typeof d.ip !== 'string' ||
      !Number.isInteger(d.mtu) ||
      (d.queues !== undefined && !(Number.isInteger(d.queues) && d.queues >= 1 && d.queues <= 64)) ||
      (d.csum !== undefined && typeof d.csum !== 'boolean') ||
      (d.gso !== undefined && typeof d.gso !== 'boolean') ||
      !d.endpoint ||
      !Array.isArray(d.unanswered)
    ) {
      throw new Error(`suspend record at frame ${at.frame}: a device entry is malformed`);
    }
    for (const b of d.unanswered)
      if (!(Number.isInteger(b.addr) && Number.isInteger(b.len) && b.len > 0 && b.len <= d.mtu + 18 && b.addr >= 0 && b.addr + b.len <= mem.u8.length))
        throw new Error(`suspend record: a TX frame of vif${d.handle} lies outside RAM`);
  }
  // The resumed kernel holds each frame named here once and gives each back once: none may be named twice.
  const held = new Set(stateFrames(at));
  for (const d of st.devices as DeviceState[])
    for (const b of d.unanswered)
      for (const f of bufferFrames(b)) {
        if (held.has(f)) throw new Error(`suspend record: a TX frame of vif${d.handle} shares frame ${f} with the record or another TX frame`);
        held.add(f);
      }
  return st as KernelState;
}
