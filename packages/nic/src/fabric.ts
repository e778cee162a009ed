/**
 * The NIC hardware of the whole topology, and the wires and switches between
 * hosts, as one device kernel: it runs on a thread of its own (stated in the
 * thread accounting) or, in a deterministic run, as a vCPU beside the domains.
 *
 * Each NIC answers MCDI only from its own host's dom0 (an endpoint made for
 * that dom0's bus address: nobody else's message reaches it). Before the NIC
 * sleeps it marks every attached VI's doorbell "asleep" and looks once more
 * at the TX rings; a driver that rings a doorbell marked asleep wakes the
 * NIC too: dom0 (privileged) on the NIC's wake line, a guest through the
 * platform, never holding the wake line itself: its pCPU rings the NIC's wake
 * word for it (pCPU bus stats `kicks`), or, where the NIC runs on the same
 * thread (a deterministic run), sends it a CH.kick message.
 */
import {
  CH,
  CaptureSink,
  FABRIC_OPS,
  RpcOpServer,
  captureClock,
  captureHandlers,
  declareCounters,
  type Addr,
  type DeviceEnv,
  type CoreCounters,
  type FabricOps,
} from '@xsim/hypervisor';
import { HwNic } from './hw-nic.ts';
import type { NicSpec, WireEnd } from './nic-spec.ts';
import { mcdiServer } from './mcdi.ts';
import type { NicFunction, NicPort } from './nic-port.ts';
import { nicModel } from './resources.ts';
import { vdpaServer } from './vdpa-admin.ts';
import { VqNic } from './vq-nic.ts';
import { L2Switch } from './switch.ts';
import { VxlanIo } from './vxlan/io.ts';
import type { VxlanEnd } from './vxlan/tunnel.ts';

export const kind = 'device';

export interface FabricNicConfig extends NicSpec {
  /** The bus address of this NIC's dom0: the only sender its MCDI listens to. */
  dom0Uid: Addr;
  /** RAM of every domain of the host, for DMA (always through the buffer table). */
  domainRam: Record<number, SharedArrayBuffer>;
}

/** One end of a wire: a NIC (by index), a switch's port, or a VXLAN tunnel (vxlan/: the I/O thread's UDP socket). */
export type WireRef = { nic: number } | { switch: string; port: number } | { vxlan: VxlanEnd };

export interface FabricConfig {
  nics: FabricNicConfig[];
  switches: { name: string; ports: number }[];
  /** gbps: the wire's line rate (each NIC end serialises what it sends at it); absent, frames cross at once. */
  wires: { a: WireRef; b: WireRef; gbps?: number }[];
  /** The fabric thread's doorbell, for the VXLAN I/O thread to ring when datagrams arrive (needed with a tunnel wire). */
  wake?: SharedArrayBuffer;
}

/** A NIC of the model its PCI ids name (resources.ts: nicModel). */
type AnyNic = NicPort<NicFunction>;

function makeNic(n: FabricNicConfig, clock: DeviceEnv<FabricConfig>['clock']): AnyNic {
  const rams = new Map(Object.entries(n.domainRam).map(([d, sab]) => [Number(d), new Uint8Array(sab)]));
  return nicModel(n.vendor, n.device) === 'virtio' ? new VqNic(n, rams, clock) : new HwNic(n, rams, clock);
}

/** The tunnel wires' sockets and I/O thread, if any wire ends in a tunnel. */
function vxlanOf(cfg: FabricConfig): VxlanIo | null {
  const ends = cfg.wires.flatMap((w, wire) => [w.a, w.b].flatMap((r) => ('vxlan' in r ? [{ wire, end: r.vxlan }] : [])));
  if (ends.length === 0) return null;
  if (!cfg.wake) throw new Error(`${ends[0].end.path}: a VXLAN wire needs the fabric's doorbell (a run on threads)`);
  return new VxlanIo(ends, cfg.wake);
}

export function boot(env: DeviceEnv<FabricConfig>): void | Promise<void> {
  const cfg = env.config;
  const nics = cfg.nics.map((n) => makeNic(n, env.clock));
  const switches = new Map(cfg.switches.map((s) => [s.name, new L2Switch(s.name, s.ports)]));
  const vx = vxlanOf(cfg);
  wire(cfg, nics, switches, vx);
  // Capture points: every NIC's wire port and VIs, every switch port, every tunnel's end.
  const capture = new CaptureSink(captureClock(env.clock));
  nics.forEach((n, i) => n.tapInto(capture, i));
  for (const s of switches.values()) s.tapInto(capture);
  vx?.tapInto(capture);

  // Each NIC's admin dispatcher (MCDI, or the virtio NIC's) counts the commands it refused (malformed: abi/mcdi.ts, abi/vdpa.ts).
  const mcdi = nics.map((nic, i) => {
    const server = nic instanceof VqNic ? vdpaServer(nic, env.log) : mcdiServer(nic as HwNic, env.log);
    env.channel(CH.mcdi, cfg.nics[i].dom0Uid).listen().onRequest(server.handle);
    return server;
  });

  const core = env.core;
  core.add('datapath', () => {
    let n = 0;
    // Filters inserted with an idle age go when their sweep is due (the timer below wakes us for it).
    for (let i = 0; i < nics.length; i++) nics[i].filters.age();
    // Frames whose last bit has left a port with a line rate reach the far end first: then TX has FIFO room again.
    for (let i = 0; i < nics.length; i++) n += nics[i].drainLine();
    for (let i = 0; i < nics.length; i++) n += nics[i].poll();
    for (let i = 0; i < nics.length; i++) nics[i].flushAll();
    return n;
  });
  core.wakeOn(() => nics.some((n) => n.txPending()));
  // Datagrams from the VXLAN I/O thread (it rings our doorbell when it queues them). After the datapath: its poll
  // also rings the I/O thread's wake word, once, for the frames the turn queued on the tunnels.
  if (vx) {
    core.add('vxlan', () => vx.poll());
    core.wakeOn(() => vx.pending());
  }
  core.timer(() => nics.reduce((t, n) => Math.min(t, n.filters.nextAgeAt(), n.nextLineDue()), Infinity));
  // A guest's doorbell ring (CH.kick) only wakes us: the rings tell what there is to do.
  const c = FABRIC_COUNTERS.zero();
  env.anyChannel(CH.kick).onMessage(() => {
    c.doorbellKicks++;
    core.wake();
  });
  core.sleepHooks = {
    // Doorbell protocol: say we are asleep, then look once more before sleeping.
    prepare: () => {
      for (const n of nics) n.markAsleep(true);
      return nics.some((n) => n.txPending()) || (vx?.pending() ?? false);
    },
    wake: () => {
      for (const n of nics) n.markAsleep(false);
    },
  };

  const control = fabricControl(env, nics, switches, capture, vx, () => ({
    core: { ...core.c },
    doorbellKicks: c.doorbellKicks,
    mcdiRefused: mcdi.map((m) => m.refused),
    ...(vx ? { vxlan: vx.stats() } : {}),
  }));
  env.control.onRequest(control.handle);
  // Booted once the I/O thread has bound every tunnel's socket (a bind that fails fails the boot, naming the wire).
  return vx?.start();
}

/** The fabric thread's own counters, beside the NICs' and the switches'. */
export const FABRIC_COUNTERS = declareCounters('nic fabric', {
  doorbellKicks: {
    kind: 'event',
    help: "doorbell messages from guests (CH.kick), each a wake of the NIC: only where the NIC shares its thread (a deterministic run); on threads a guest's pCPU rings the NIC's wake word (pCPU bus stats `kicks`)",
  },
});

/** The fabric thread's own numbers beside the NICs' and the switches'. */
interface FabricExtras {
  core: CoreCounters;
  doorbellKicks: number;
  mcdiRefused: number[];
  /** The tunnel wires' sockets and tunnels (vxlan/io.ts), when there are any. */
  vxlan?: ReturnType<VxlanIo['stats']>;
}

/** The NIC hardware's counters, as its stats op answers them. */
function fabricStats(nics: AnyNic[], switches: Map<string, L2Switch>, more: FabricExtras, refused: number) {
  const { mcdiRefused, ...rest } = more;
  return { nics: nics.map((n) => n.stats()), switches: [...switches.values()].map((s) => s.stats()), ...rest, control: { refused, mcdiRefused } };
}

/** What the fabric's stats op answers (and its shutdown, finally). */
export type FabricStats = ReturnType<typeof fabricStats>;

/** The fabric's control op table (abi/fabric-ops.ts's FABRIC_OPS), each op's arguments checked. */
function fabricControl(
  env: DeviceEnv<FabricConfig>,
  nics: AnyNic[],
  switches: Map<string, L2Switch>,
  capture: CaptureSink,
  vx: VxlanIo | null,
  more: () => FabricExtras,
): RpcOpServer<FabricOps> {
  const nicOf = (a: { nic: number }): AnyNic => {
    const n = nics[a.nic];
    if (!n) throw new Error(`fabric: no NIC ${String(a.nic)} (there are ${nics.length})`);
    return n;
  };
  const stats = (): FabricStats => fabricStats(nics, switches, more(), control.refused);
  const control = new RpcOpServer<FabricOps>(
    'fabric control',
    FABRIC_OPS,
    {
      stats: () => stats(),
      shutdown: () => {
        env.core.stop();
        const last = stats();
        vx?.close();
        return last;
      },
      ...captureHandlers(capture),
      link_set: (a) => {
        const nic = nicOf(a);
        nic.linkUp = a.up;
        return nic.linkUp;
      },
      wire_link_set: (a) => {
        // A tunnel wire end's link (the far end's partition is gone, or back): what is wired to it sees it as a NIC's.
        const t = Number.isInteger(a.wire) ? vx?.tunnels.get(a.wire) : undefined;
        if (!t) throw new Error(`fabric: wire ${String(a.wire)} is not a VXLAN tunnel (tunnel wires: ${[...(vx?.tunnels.keys() ?? [])].join(', ') || 'none'})`);
        t.linkUp = a.up;
        return t.linkUp;
      },
      add_domain: (a, { shared }) => {
        // A domain created at run time: its RAM, for DMA through the buffer table.
        if (!(shared[0] instanceof SharedArrayBuffer)) throw new Error("add_domain: the domain's RAM must come beside the request");
        nicOf(a).addDomain(a.domid, new Uint8Array(shared[0]));
        return true;
      },
      remove_domain: (a) => {
        nicOf(a).removeDomain(a.domid);
        return true;
      },
      forget_mac: (a) => {
        // A guest that left or moved: no switch keeps sending its traffic to the old port.
        let n = 0;
        for (const s of switches.values()) if (s.forget(a.mac)) n++;
        return n;
      },
    },
    { log: env.log },
  );
  return control;
}

/** Join every wire's ends. Ports of a switch are its wires' ports as the toolstack numbered them. */
function wire(cfg: FabricConfig, nics: AnyNic[], switches: Map<string, L2Switch>, vx: VxlanIo | null): void {
  const sw = (name: string): L2Switch => {
    const s = switches.get(name);
    if (!s) throw new Error(`fabric: no switch ${name}`);
    return s;
  };
  for (const [i, w] of cfg.wires.entries()) {
    // Each end hands frames to a function that forwards to the other end's input, set once both exist.
    let intoB: WireEnd = () => {};
    let intoA: WireEnd = () => {};
    const toB: WireEnd = (r, o, l) => intoB(r, o, l);
    const toA: WireEnd = (r, o, l) => intoA(r, o, l);
    intoA = attach(w.a, toB, i);
    intoB = attach(w.b, toA, i);
    // A NIC sees its peer's link: another NIC's, a tunnel's (up while its sockets are), a switch port's (always).
    const up = (ref: WireRef): (() => boolean) => {
      if ('nic' in ref) return () => nics[ref.nic].linkUp;
      const t = 'vxlan' in ref ? vx?.tunnels.get(i) : undefined;
      return t ? () => t.up : () => true;
    };
    if ('nic' in w.a) nics[w.a.nic].peerUp = up(w.b);
    if ('nic' in w.b) nics[w.b.nic].peerUp = up(w.a);
    // A line rate serialises at the NIC ends (a switch forwards at once: no queue at its ports).
    if (w.gbps !== undefined) for (const end of [w.a, w.b]) if ('nic' in end) nics[end.nic].setLineRate(w.gbps);
  }

  function attach(ref: WireRef, out: WireEnd, i: number): WireEnd {
    if ('vxlan' in ref) {
      const t = vx?.tunnels.get(i);
      if (!t) throw new Error(`fabric: no tunnel for ${ref.vxlan.path}`);
      t.out = out;
      return t.input;
    }
    if ('nic' in ref) {
      const nic = nics[ref.nic];
      if (!nic) throw new Error(`fabric: no NIC ${ref.nic}`);
      if (nic.wire) throw new Error(`fabric: NIC ${ref.nic} already has a wire (one port per NIC)`);
      nic.wire = out;
      return nic.fromWire;
    }
    return sw(ref.switch).plug(ref.port, out);
  }
}
