/**
 * A domU kernel's parts: its page and grant allocators, the capture points
 * of its vifs, and its devices (a netfront, a stack and a plugin host per
 * vif). The entry points (probe.ts, hotplug.ts, suspend.ts, control.ts,
 * stats.ts, poweroff.ts) each take these parts.
 */
import {
  CaptureSink,
  FrameAllocator,
  GrantRefAllocator,
  GrantTable,
  GuestMemory,
  captureClock,
  type Addr,
  type DomainEnv,
  type EventChannels,
  type XenstoreClient,
} from '@xsim/hypervisor';
import type { NetEndpoint } from '@xsim/netstack';
import type { Netfront } from '../netfront/xenbus.ts';
import type { AccelHost } from '../accel-host.ts';
import type { NetfrontParams } from '../netfront/features.ts';

export interface GuestConfig {
  mem: SharedArrayBuffer;
  gnttab: SharedArrayBuffer;
  mtu: number;
  /**
   * Each vif; queues: the most queues its netfront asks for (the topology's
   * vif "queues"; absent: 1); csum, gso: false switches its checksum or
   * TCPv4 segmentation offload off (the vif's "offloads": {"csum": false, "gso": false}).
   */
  vifs: { handle: number; mac: string; ip: string; queues?: number; csum?: boolean; gso?: boolean }[];
  /** Bus address of the host's dom0 (the vifs' backend, and the peer of their plugin channels). */
  dom0Uid: Addr;
  /** What its netfront offers (absent: the defaults); another frontend's, in tests of the backend's side. */
  netfront?: NetfrontParams;
  /**
   * Resume instead of a fresh boot (restore, or the destination of a
   * migration): where the suspended kernel left its record in this RAM.
   * The vifs then come from the record.
   */
  resume?: { frame: number; len: number };
}

export interface GuestDevice {
  nf: Netfront;
  ep: NetEndpoint;
  accel: AccelHost | null;
  readonly ip: string;
  readonly mac: string;
  readonly mtu: number;
  /** The most queues its netfront asks for. */
  readonly queues: number;
  /**
   * Frame arrival times, kept only while a migration is under way (one
   * branch per frame otherwise): the last before the suspend, and the first
   * after the resume, for the downtime.
   */
  rx: { armed: boolean; last: number; firstAfterResume: number | null };
}

/** The parts of a running guest kernel an extension may use. */
export interface GuestKernel {
  readonly env: DomainEnv<GuestConfig>;
  readonly mem: GuestMemory;
  readonly frames: FrameAllocator;
  readonly gnttab: GrantTable;
  readonly grefs: GrantRefAllocator;
  readonly evtchn: EventChannels;
  readonly xs: XenstoreClient;
  readonly devices: readonly GuestDevice[];
  log(msg: string): void;
}

/** Every part, for the kernel's own entry points. */
export interface GuestParts extends GuestKernel {
  readonly domid: number;
  readonly devices: GuestDevice[];
  /** Capture points: each vif's frontend side. */
  readonly capture: CaptureSink;
  /** Each device's pollers and timer, by handle, to stop at remove or suspend. */
  readonly unpoll: Map<number, (() => void)[]>;
  /** Cross-thread time this kernel resumed at, if it is a resumed one. */
  resumedAt: number | null;
}

export function composeGuest(env: DomainEnv<GuestConfig>): GuestParts {
  const cfg = env.config;
  const mem = new GuestMemory(cfg.mem);
  const gnttab = new GrantTable(cfg.gnttab);
  return {
    env,
    domid: env.id.domid,
    mem,
    frames: new FrameAllocator(mem),
    gnttab,
    grefs: new GrantRefAllocator(gnttab),
    evtchn: env.evtchn,
    xs: env.xs,
    devices: [],
    log: (m: string): void => env.log(m),
    capture: new CaptureSink(captureClock(env.clock)),
    unpoll: new Map(),
    resumedAt: null,
  };
}
