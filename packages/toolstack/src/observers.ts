/**
 * What looks inside a running simulation without changing it: the packet
 * capture (capture.ts) and the trace (trace.ts). Here they meet the
 * toolstack: which kernels a capture drains (every running domain and the
 * NIC hardware), guests that come up or go while one runs, and the names a
 * trace gives its tracks.
 */
import { ADDR_FABRIC, logWarn, type Addr } from '@xsim/hypervisor';
import { PacketCapture, type CaptureOptions, type CaptureSummary, type CaptureTarget } from './capture.ts';
import { TraceSession, type TraceOptions, type TraceSummary } from './trace.ts';
import type { RunningDomain, ToolstackContext } from './context.ts';

export class Observers {
  private capture: PacketCapture | null = null;
  private trace: TraceSession | null = null;
  /** The file of a capture or trace whose start is under way: reserved before its first await. */
  private captureStarting: string | null = null;
  private traceStarting: string | null = null;
  /** Names of every domain seen while tracing, by uid (the trace's tracks). */
  private readonly traced = new Map<Addr, { host: string; name: string; domid: number }>();

  constructor(private readonly d: ToolstackContext) {}

  /** Every kernel with tap points: the running domains, then the NIC hardware. */
  private targets(): CaptureTarget[] {
    // A domain going away (shut down, destroyed, saved, migrating) would not answer a start: one migrating joins again where it lands.
    const live = this.d.domains.filter((x) => !x.crashed && !x.hung && this.d.locks.ending(x.uid) === undefined);
    return [...live.map((x) => this.target(x)), { prefix: 'fabric.', addr: ADDR_FABRIC, request: (op, args, shared) => this.d.fabric(op, args, shared) }];
  }

  private target(x: RunningDomain): CaptureTarget {
    return { prefix: `${x.host}/${x.name}.`, addr: x.uid, request: (op, args, shared) => this.d.ask(x, op, args, this.d.answerMs, shared) };
  }

  /** The tap points a capture may name (`xsim capture list`). */
  async captureTaps(): Promise<string[]> {
    return [...(await PacketCapture.list(this.targets())).values()].flat();
  }

  async captureStart(specs: readonly string[], o: CaptureOptions): Promise<{ file: string; interfaces: string[] }> {
    if (this.capture) throw new Error(`capture: already capturing into ${this.capture.file} (stop it first)`);
    if (this.captureStarting !== null) throw new Error(`capture: a capture into ${this.captureStarting} is starting (stop it once it has)`);
    // Reserved before the first await: two concurrent starts cannot both pass the check and orphan one.
    this.captureStarting = o.file;
    const rt = this.d.runtime;
    try {
      this.capture = await PacketCapture.start(this.targets(), specs, { ...o, realTime: rt.kind !== 'deterministic', hold: (p) => rt.hold(p) });
    } finally {
      this.captureStarting = null;
    }
    this.d.log(`capturing ${this.capture.interfaces.length} tap point(s) into ${o.file}`);
    return { file: this.capture.file, interfaces: this.capture.interfaces };
  }

  async captureStop(): Promise<CaptureSummary> {
    const c = this.capture;
    if (!c) throw new Error('capture: not capturing');
    this.capture = null;
    const s = await c.stop();
    this.d.log(`capture ${s.file}: ${s.interfaces.reduce((n, f) => n + f.packets, 0)} frames, ${s.bytes} octets`);
    return s;
  }

  /** Trace every thread into a Chrome / Perfetto JSON file until traceStop() (see trace.ts). */
  async traceStart(o: TraceOptions): Promise<{ file: string }> {
    if (this.trace) throw new Error(`trace: already tracing into ${this.trace.file} (stop it first)`);
    if (this.traceStarting !== null) throw new Error(`trace: a trace into ${this.traceStarting} is starting (stop it once it has)`);
    this.traceStarting = o.file;
    try {
      this.trace = await TraceSession.start(this.d.runtime, o);
    } finally {
      this.traceStarting = null;
    }
    this.name();
    this.d.log(`tracing into ${o.file}`);
    return { file: o.file };
  }

  async traceStop(): Promise<TraceSummary> {
    const t = this.trace;
    if (!t) throw new Error('trace: not tracing');
    this.trace = null;
    // Domains that came and went while tracing keep their names (a migrated guest has a uid per host).
    this.name();
    const rt = this.d.runtime;
    const th = rt.threads();
    const threads =
      rt.kind === 'deterministic'
        ? ['main thread (every domain, deterministic)']
        : [...Array.from({ length: th.pcpus }, (_, i) => `pCPU ${i}`), 'NIC thread', 'main thread'];
    const s = await t.stop({ domain: (uid) => this.traced.get(uid), hosts: this.d.hostNames(), threads });
    this.d.log(`trace ${s.file}: ${s.events} events, ${s.frames} frame journeys${s.dropped ? `, ${s.dropped} events not kept` : ''}`);
    return s;
  }

  private name(): void {
    for (const x of this.d.domains) this.traced.set(x.uid, { host: x.host, name: x.name, domid: x.domid });
  }

  /** A guest's kernel came up (created, restored, arrived by migration): a running capture takes in its tap points. */
  async joined(x: RunningDomain): Promise<void> {
    if (this.trace) this.name();
    if (!this.capture) return;
    const points = await this.capture.join(this.target(x)).catch((e: Error) => this.d.log(logWarn(`capture: ${x.host}/${x.name} not captured: ${e.message}`)));
    if (points?.length) this.d.log(`capture: ${x.host}/${x.name} joined: ${points.join(', ')}`);
  }

  /** A domain about to stop while it can still answer: a running capture takes its last records and drains it no more. */
  async leaving(x: RunningDomain): Promise<void> {
    if (this.trace) this.name();
    await this.capture?.leave(x.uid).catch((e: Error) => this.d.log(logWarn(`capture: ${x.host}/${x.name}'s last records: ${e.message}`)));
  }

  /** At shutdown: a capture or trace still running is finished, its file whole. */
  async finish(): Promise<void> {
    if (this.capture) await this.captureStop().catch((e: Error) => this.d.log(logWarn(`capture: ${e.message}`)));
    if (this.trace) await this.traceStop().catch((e: Error) => this.d.log(logWarn(`trace: ${e.message}`)));
  }
}
