/**
 * A pCPU worker: one thread, one Pcpu scheduler, any number of domains
 * (vCPUs) placed on it at run time. The toolstack manages it over its sched
 * channel: create a domain (import its kernel, build its environment, boot
 * it, add it to the round), destroy one, report stats, shut down. A domain
 * whose turn throws is crashed: it is taken out of the round, its endpoints
 * closed, and the toolstack told; the others carry on.
 *
 * Kernel modules are imported once per worker and shared by every domain on
 * it (one transpile, one copy of the code), as a hypervisor's text is; each
 * domain's state lives in the objects its boot() made.
 */
import type { MessagePort } from 'node:worker_threads';
import { logPrinter, type LogLevel } from '../log.ts';
import { traceHandlers } from '../trace/tracer.ts';
import { SCHED_OPS, type SchedEvents, type SchedOps } from '../abi/sched-ops.ts';
import { ADDR_TOOLSTACK, Bus, CH, PortLink, pcpuAddr, type Addr } from '../bus/bus.ts';
import { importModule } from '../domain/loader.ts';
import { counterKinds } from '../metrics.ts';
import { DEFERRED, RpcEndpoint, type SyncWait } from '../rpc.ts';
import { RpcOpServer, type OpHandlers } from '../rpc-server.ts';
import { WakeWord } from '../wake.ts';
import { realClock } from './clock.ts';
import { DomainCore } from './core.ts';
import { buildDeviceEnv, buildEnv, type DomainSpec, type KernelModule } from './env.ts';
import { Pcpu } from './pcpu.ts';
import { unpackShared } from './shared-config.ts';

export interface PcpuTask {
  id: number;
  /** This pCPU's doorbell (a WakeWord at offset 0). */
  doorbell: SharedArrayBuffer;
  /** Watchdog words the toolstack reads: which domain's turn the pCPU is in. */
  watch: SharedArrayBuffer;
  /** To the main thread (toolstack, xenstored, hypervisor services): the default route. */
  hub: MessagePort;
  /** Direct links to other threads: envelopes for `addrs` go straight there. */
  links: { addrs: Addr[]; port: MessagePort; doorbell: SharedArrayBuffer | null }[];
  spinRounds?: number;
  maxSleepMs?: number;
  /** Kernel log lines at this level or more severe reach stderr (default info). */
  logLevel?: LogLevel;
}

interface Hosted {
  core: DomainCore;
  dispose(): void;
  name: string;
}

export default async function runPcpu(task: PcpuTask): Promise<unknown> {
  const bus = new Bus();
  const doorbell = new WakeWord(task.doorbell, 0);
  bus.defaultLink = new PortLink(task.hub, null);
  bus.addInbound(task.hub);
  const links = task.links.map((l) => {
    const link = new PortLink(l.port, l.doorbell ? new WakeWord(l.doorbell, 0) : null);
    for (const a of l.addrs) bus.route(a, link);
    bus.addInbound(l.port);
    return link;
  });
  const pcpu = new Pcpu(task.id, doorbell, bus, realClock, { spinRounds: task.spinRounds, maxSleepMs: task.maxSleepMs }, task.watch);
  const wait: SyncWait = {
    snapshot: () => doorbell.snapshot(),
    pump: () => void bus.pump(),
    sleep: (seen, ms) => void doorbell.sleep(seen, ms),
    now: () => performance.now(),
  };
  // A kernel's lines go to the process's stderr from here, filtered by level as the toolstack's own are.
  const log = logPrinter(task.logLevel ?? 'info', (s) => process.stderr.write(s));
  const hosted = new Map<Addr, Hosted>();
  const kernels = new Map<string, Promise<KernelModule>>();

  const self = pcpuAddr(task.id);
  const mgmtCore = new DomainCore(`pcpu${task.id}`, realClock);
  const mgmt = new RpcEndpoint<SchedEvents>(bus, self, ADDR_TOOLSTACK, CH.sched, { wait });
  mgmt.onArrive = () => mgmtCore.wake();
  mgmtCore.wakeOn(() => mgmt.queued > 0);
  mgmtCore.add('mgmt', () => mgmt.poll());

  const takeOut = (uid: Addr): Hosted | undefined => {
    const h = hosted.get(uid);
    if (!h) return undefined;
    hosted.delete(uid);
    pcpu.remove(h.core);
    h.dispose();
    return h;
  };

  const w: Worker = { task, bus, links, pcpu, wait, log, hosted, kernels, mgmtCore, mgmt, takeOut };
  mgmt.onRequest(new RpcOpServer<SchedOps>(`pcpu${task.id} sched`, SCHED_OPS, schedHandlers(w), { log }).handle);

  pcpu.add(mgmtCore);
  await pcpu.run();
  for (const uid of [...hosted.keys()]) takeOut(uid);
  mgmt.close();
  bus.close();
  return { pcpu: task.id, ...pcpu.c };
}

/** What the worker's management handlers reach. */
interface Worker {
  task: PcpuTask;
  bus: Bus;
  links: PortLink[];
  pcpu: Pcpu;
  wait: SyncWait;
  log: (line: string) => void;
  hosted: Map<Addr, Hosted>;
  kernels: Map<string, Promise<KernelModule>>;
  mgmtCore: DomainCore;
  mgmt: RpcEndpoint<SchedEvents>;
  takeOut(uid: Addr): Hosted | undefined;
}

/** Boot a domain here: import its kernel (once per worker), build its environment, run boot(); answered once it runs. */
function create(w: Worker, spec: DomainSpec, reply: (v: unknown, err?: string) => void): void {
  const { kernels, mgmtCore, bus, wait, log, hosted, pcpu, task, mgmt, takeOut } = w;
  let mod = kernels.get(spec.kernel);
  if (!mod) kernels.set(spec.kernel, (mod = importModule(spec.kernel) as Promise<KernelModule>));
  mgmtCore.defer(
    mod,
    (m) => {
      if (typeof m.boot !== 'function') return reply(undefined, `kernel ${spec.kernel} exports no boot() function`);
      const built = m.kind === 'device' ? buildDeviceEnv(bus, spec, { clock: realClock, wait, log }) : buildEnv(bus, spec, { clock: realClock, wait, log });
      const core = built.env.core;
      core.onCrash = (e) => {
        takeOut(spec.uid);
        log(`[${spec.host}/${spec.name}] crashed: ${e.stack ?? e.message}`);
        mgmt.event('crashed', { uid: spec.uid, error: e.message });
      };
      hosted.set(spec.uid, { core, dispose: built.dispose, name: spec.name });
      const started = () => {
        pcpu.add(core);
        reply({ pcpu: task.id });
      };
      const failed = (e: unknown) => {
        takeOut(spec.uid);
        reply(undefined, `${spec.host}/${spec.name} failed to boot: ${e instanceof Error ? e.message : String(e)}`);
      };
      try {
        const r = m.boot(built.env as never);
        if (r instanceof Promise) mgmtCore.defer(r, started, failed);
        else started();
      } catch (e) {
        failed(e);
      }
    },
    (e) => reply(undefined, `cannot load kernel ${spec.kernel}: ${e.message}`),
  );
}

/** The pCPU worker's management ops (abi/sched-ops.ts's SCHED_OPS), each with its arguments checked. */
function schedHandlers(w: Worker): OpHandlers<SchedOps> {
  const { task, bus, links, pcpu, hosted, takeOut } = w;
  return {
    create: (a, { later, shared }) => {
      const spec = unpackShared<DomainSpec>(a.spec, shared);
      if (hosted.has(spec.uid)) throw new Error(`domain ${spec.uid} already runs here`);
      create(w, spec, later());
      return DEFERRED;
    },
    destroy: (a) => {
      // No cooperation: the domain simply stops (what it held is released by the toolstack and hypervisor).
      const h = takeOut(a.uid);
      if (h) h.core.stop();
      return { destroyed: h !== undefined };
    },
    reap: (a) => {
      // A domain that shut itself down: take it out of the round.
      const h = hosted.get(a.uid);
      if (h && h.core.running) return { reaped: false };
      takeOut(a.uid);
      return { reaped: h !== undefined };
    },
    route: (a) => {
      // Envelopes for `addr` go straight over one of our direct links (the NIC answering a dom0).
      const link = links[a.via];
      if (!link) throw new Error(`pcpu ${task.id}: no link ${String(a.via)}`);
      bus.route(a.addr, link);
      return true;
    },
    stats: () => ({
      pcpu: task.id,
      ...pcpu.c,
      domains: Object.fromEntries([...hosted].map(([uid, h]) => [uid, { name: h.name, ...h.core.c }])),
      bus: { ...bus.stats },
      kinds: counterKinds(),
    }),
    shutdown: () => {
      pcpu.stop();
      return true;
    },
    ...traceHandlers(realClock),
  };
}
