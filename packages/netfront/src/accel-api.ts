/**
 * The contract between netfront and an accelerator plugin's frontend part,
 * after the Xen netfront accel hooks: netfront offers every outgoing frame to
 * startXmit (true = taken on the fast path, false = declined: netfront sends
 * it on the slow path unchanged) and calls poll from its own poll.
 */
import type { Clock, EventChannels, FrameAllocator, GrantRefAllocator, GrantTable, GuestMemory, HookKind } from '@xsim/hypervisor';

export interface AccelFrontendContext {
  /** The plugin API version this guest's netfront speaks (PLUGIN_API_VERSION): the manifest's `api` or a newer minor of it. */
  readonly apiVersion: string;
  readonly domid: number;
  readonly backendDomid: number;
  readonly mac: number;
  readonly mem: GuestMemory;
  readonly frames: FrameAllocator;
  readonly gnttab: GrantTable;
  readonly grefs: GrantRefAllocator;
  readonly evtchn: EventChannels;
  readonly mtu: number;
  /** The domain's clock (virtual in a deterministic run): plugin timers read this. */
  readonly clock: Clock;
  /** Message the plugin's backend part. */
  send(op: string, args: Record<string, unknown>): void;
  /** Wake the NIC (a doorbell write found it asleep): through the platform, the guest never holds its wake line. */
  kickNic(): void;
  /**
   * Hand a received frame to the guest's stack (valid during the call only).
   * `rxFlags` (plugin API 1.4): NETRXF_data_validated when the NIC checked the
   * frame's TCP or UDP checksum (an older plugin passes none: the stack checks).
   */
  deliver(ram: Uint8Array, off: number, len: number, rxFlags?: number): void;
  log(msg: string): void;
}

export interface AccelFrontend {
  /** The backend offered acceleration: set up and answer it. */
  newDevice(args: Record<string, unknown>, shared: readonly SharedArrayBuffer[]): void;
  onMessage(op: string, args: Record<string, unknown>, shared: readonly SharedArrayBuffer[]): void;
  /**
   * Take the frame (true) or decline it (false: the slow path sends it).
   * `csumPartial` (plugin API 1.4) is true only for a plugin whose
   * csumOffload() said so: the frame's TCP or UDP checksum is partial
   * (CHECKSUM_PARTIAL) and its hardware must complete it. `gsoSize` (plugin
   * API 1.5) is given only to a plugin whose tsoMax() is above 0: the frame
   * is a TCPv4 frame over the MTU (up to tsoMax() octets of IP datagram, its
   * checksum partial) for its hardware to cut into segments of `gsoSize`
   * octets of payload; declined, netback segments it (the slow path).
   */
  startXmit(ram: Uint8Array, off: number, len: number, csumPartial?: boolean, gsoSize?: number): boolean;
  /**
   * Optional (plugin API 1.5): the largest IP datagram startXmit may be
   * offered as one TCPv4 frame to segment (TSO, the NIC's), 0 for none. The
   * guest's stack builds such frames only while netback takes them too (a
   * frame declined goes the slow path). Absent or 0: only MTU-sized frames.
   */
  tsoMax?(): number;
  /**
   * Optional (plugin API 1.4): true while the hardware completes partial
   * checksums of the frames startXmit takes (a NIC's TX checksum offload).
   * Absent or false: netfront completes every partial checksum in software
   * before offering the frame, so an older plugin never sees one.
   */
  csumOffload?(): boolean;
  /**
   * Optional (plugin API 1.3): where the stack may build the next frame, of at
   * most `len` bytes: a byte offset in guest RAM inside the plugin's own DMA
   * memory (the frame's final DMA buffer, so taking it needs no copy), or -1
   * (netfront's own TX buffer is used). The buffer is the plugin's until the
   * next startXmit, which is always called with exactly that offset; a
   * declined frame is copied out of it to the slow path by netfront.
   */
  txBuffer?(len: number): number;
  /**
   * Optional (plugin API 1.3): the end of a burst (netfront's flush, Linux's
   * `xmit_more` false): make the frames taken since visible to the hardware
   * (one doorbell per burst, not per frame). A plugin without it must ring
   * its doorbell in startXmit.
   */
  flush?(): void;
  /** Receive and complete on the fast path; returns work done. */
  poll(budget: number): number;
  /**
   * False only while the fast path would take frames but has no room: netfront
   * then stops its queue (the sender waits) rather than diverting frames to the
   * slow path, which would reorder a flow.
   */
  checkReady(): boolean;
  /**
   * Stop taking frames and drain. Returns true once nothing of ours is left in
   * the hardware (then netfront tells the backend it may tear down).
   */
  remove(): boolean;
  /**
   * Optional: the backend has let go of everything (its grant mappings are
   * gone) and the vif is detached: give back DMA pages, grants and ports. A
   * later newDevice starts afresh.
   */
  release?(): void;
  /**
   * The plugin's counters. Two keys are the framework's (netfront's accel host
   * reads them to account for every frame startXmit took): `txPosted`, frames
   * taken and put on the hardware (or held to be put there), and `txDropped`,
   * frames taken and dropped instead (each also under a drop counter the
   * plugin declared). What neither explains is counted `txUnaccounted`, a drop
   * in conservation; a plugin that reports no `txPosted` cannot be checked
   * and is said so in the log.
   */
  getStats(): Record<string, unknown> & { txPosted?: number; txDropped?: number };
}

/**
 * Every member of AccelFrontend, by kind: the guest declines a frontend object
 * missing a required hook or having a method of a name not here (hookProblems
 * in @xsim/hypervisor). `satisfies` keeps the table and the interface the same.
 */
export const ACCEL_FRONTEND_HOOKS = {
  newDevice: 'required',
  onMessage: 'required',
  startXmit: 'required',
  txBuffer: 'optional',
  csumOffload: 'optional',
  tsoMax: 'optional',
  flush: 'optional',
  poll: 'required',
  checkReady: 'required',
  remove: 'required',
  release: 'optional',
  getStats: 'required',
} as const satisfies Record<keyof AccelFrontend, HookKind>;

export interface FrontendModule {
  createFrontend(ctx: AccelFrontendContext): AccelFrontend;
}
