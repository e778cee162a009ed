/**
 * Packet capture across the simulation (`xsim run --capture`, `xsim capture
 * start|stop`): every kernel keeps its own tap points (hypervisor's
 * capture/tap.ts); this gathers them into one pcapng file, one Interface
 * Description Block per tap point named after it (`host-a/vif1.0`,
 * `host-a/a1/vif0`, `host-b/nic/vi3`, `host-a/nic/wire`, `tor0/port1`…).
 *
 *   start  ask every domain and the NIC hardware for its tap points, match
 *          the specs (a name, a glob with *, or a host name for all of it),
 *          turn on only the matched ones, write the section and interfaces
 *   drain  (every drainMs on threads) take what each kernel recorded, merge
 *          by timestamp, append Enhanced Packet Blocks; a frame dropped at a
 *          tap carries the drop counter's full name as its comment
 *   stop   turn every tap off, drain the rest, append an Interface
 *          Statistics Block per interface (frames seen, frames not kept
 *          because a kernel's buffer was full), and rename the file into place
 *
 * Timestamps are nanoseconds: the process-wide monotonic clock on threads,
 * shifted to the Unix epoch once at start; the virtual clock in a
 * deterministic run (so the same seed gives the same file; drains happen only
 * at stop there, so capture does not perturb the seeded order).
 */
import { mergeRuns, type MergeRun } from './capture-merge.ts';
import { openOutFile, type OutFile } from './out-file.ts';
import { batchData, captureBlocks, interfaceDescription, interfaceStatistics, sectionHeader, tapPattern, type CaptureBatch } from '@xsim/hypervisor';

/** A kernel with tap points: a domain, or the NIC hardware. */
export interface CaptureTarget {
  /** What drop-counter names are prefixed with (`host-a/dom0.`, `fabric.`), as the stats name them. */
  prefix: string;
  /** The kernel's bus address: a domain that arrives by migration keeps it, and replaces its old target. */
  addr: number;
  /** A capture op (@xsim/hypervisor's CAPTURE_OPS_TABLE: every kernel serves them). */
  request<K extends OpName<CaptureOps>>(op: K, args: OpArgs<CaptureOps, K>, shared?: SharedArrayBuffer[]): Promise<OpReply<CaptureOps, K>>;
}

export interface CaptureOptions {
  file: string;
  /** Octets kept of each frame (default 262144: all of it). */
  snaplen?: number;
  /** How often a running capture is drained on threads (default 20 ms; 0: only at stop). */
  drainMs?: number;
  /**
   * Per kernel, octets buffered between drains before frames are counted lost
   * (default 32 MiB: on threads two such shared buffers per kernel with a tap
   * point selected at the start, 20 ms of one point at 10 Gbit/s with room to
   * spare; a deterministic run drains only at stop).
   */
  bufferBytes?: number;
}

/** How file I/O is awaited: a deterministic run must not run past real asynchrony (Runtime.hold). */
export type Hold = <T>(p: Promise<T>) => Promise<T>;

import type { CaptureSummary } from './schema/run.ts';
import type { CaptureOps, OpArgs, OpName, OpReply } from '@xsim/hypervisor';

export type { CaptureSummary };

interface Iface {
  id: number;
  name: string;
  packets: number;
  drops: number;
}

/** Turn capture specs into tap point names; a spec that matches nothing is an error naming what exists. */
export function matchTaps(specs: readonly string[], all: readonly string[]): string[] {
  const out = new Set<string>();
  for (const spec of specs) {
    const s = spec.trim();
    if (s === '') throw new Error('capture: empty tap spec');
    const re = tapPattern(s);
    const hits = all.filter((n) => re.test(n));
    if (hits.length === 0) throw new Error(`capture: no tap point matches "${s}" (tap points: ${all.join(', ')})`);
    for (const h of hits) out.add(h);
  }
  return [...out];
}

/**
 * Shared buffers kept from one capture to the next: a fresh one costs a page
 * fault and a zeroed page for every 4 KiB the sink writes, which a run that
 * starts and stops captures (the bench does) would pay each time.
 */
const bufferPool: SharedArrayBuffer[] = [];
const POOL_MAX = 64;

function takeBuffer(bytes: number): SharedArrayBuffer {
  const i = bufferPool.findIndex((b) => b.byteLength === bytes);
  return i >= 0 ? bufferPool.splice(i, 1)[0] : new SharedArrayBuffer(bytes);
}

function giveBack(bufs: readonly SharedArrayBuffer[]): void {
  for (const b of bufs) if (bufferPool.length < POOL_MAX) bufferPool.push(b);
}

export class PacketCapture {
  private readonly ifaces: Iface[] = [];
  private readonly byTarget = new Map<CaptureTarget, Map<string, Iface>>();
  /** On threads, each target's two shared buffers (see tap.ts): records cross threads without a copy. */
  private readonly buffers = new Map<CaptureTarget, SharedArrayBuffer[]>();
  private specs: string[] = [];
  private realTime = false;
  /** Per interface, frames its sink could not keep (known at the sink's stop). */
  private readonly lostAt = new Map<Iface, number>();
  /** Targets that answered capture_stop. */
  private readonly stopped = new Set<CaptureTarget>();
  /** The merge's output, reused from drain to drain (a drain's write finishes before the next drain starts). */
  private out = new Uint8Array(0);
  /** Batches a kernel answered with that were not what a sink writes (a hostile guest kernel could): skipped, counted. */
  private badBatches = 0;
  /** The pcapng file being written (beside its name until stop renames it). */
  private dest: OutFile | null = null;
  private bytes = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private draining: Promise<void> = Promise.resolve();
  private startNs = 0n;
  private lastNs = 0n;

  private constructor(
    private readonly o: Required<CaptureOptions>,
    private readonly epochOffsetNs: bigint,
    private readonly hold: Hold,
  ) {}

  /** Every tap point there is now, by target. */
  static async list(targets: readonly CaptureTarget[]): Promise<Map<CaptureTarget, string[]>> {
    const out = new Map<CaptureTarget, string[]>();
    await Promise.all(
      targets.map(async (t) => {
        const r = (await t.request('capture_taps', {}).catch(() => ({ taps: [] }))) as { taps?: string[] };
        out.set(t, r.taps ?? []);
      }),
    );
    return out;
  }

  static async start(
    targets: readonly CaptureTarget[],
    specs: readonly string[],
    o: CaptureOptions & { realTime: boolean; hold: Hold },
  ): Promise<PacketCapture> {
    const snaplen = o.snaplen ?? 262_144;
    if (!Number.isInteger(snaplen) || snaplen < 14 || snaplen > 262_144) throw new Error(`capture: snap length ${snaplen} is not from 14 to 262144`);
    const listed = await PacketCapture.list(targets);
    const all = [...listed.values()].flat();
    const wanted = new Set(matchTaps(specs, all));
    const offset = o.realTime ? BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint() : 0n;
    const c = new PacketCapture({ file: o.file, snaplen, drainMs: o.realTime ? (o.drainMs ?? 20) : 0, bufferBytes: o.bufferBytes ?? 32 << 20 }, offset, o.hold);
    // A directory, FIFO or missing directory is refused now, not when the capture stops.
    c.dest = await o.hold(openOutFile(o.file, 'capture: cannot write'));
    try {
      await c.begin(listed, wanted, specs, o.realTime, offset);
    } catch (e) {
      // Nothing of a capture that did not start is left: no temporary file to block the next one into that name.
      await c.abandon();
      throw e;
    }
    return c;
  }

  /** The file's header and interfaces, then every kernel's sink started. */
  private async begin(listed: Map<CaptureTarget, string[]>, wanted: Set<string>, specs: readonly string[], realTime: boolean, offset: bigint): Promise<void> {
    const blocks: Uint8Array[] = [sectionHeader('xsim')];
    for (const [t, names] of listed) {
      const m = new Map<string, Iface>();
      this.byTarget.set(t, m);
      for (const name of names) if (wanted.has(name)) blocks.push(this.iface(t, m, name));
    }
    await this.write(Buffer.concat(blocks));
    // Each kernel gets the specs themselves: a point that appears there later (a VI attached, a vif added) is captured too.
    this.specs = specs.map((s) => s.trim());
    this.realTime = realTime;
    await Promise.all([...this.byTarget.keys()].map((t) => this.startAt(t, (this.byTarget.get(t)?.size ?? 0) > 0)));
    this.startNs = this.lastNs = realTime ? process.hrtime.bigint() + offset : 0n;
    if (this.o.drainMs > 0) this.timer = setInterval(() => void this.drain('capture_drain'), this.o.drainMs);
  }

  /**
   * Start `t`'s sink: the specs, the snap length, the epoch offset its
   * timestamps need and the prefix of its drop counters' names; on threads,
   * when `selected`, two shared buffers (pages a sink never fills are never
   * touched, so an idle kernel's are not resident; a kernel with nothing
   * selected yet is drained by copy).
   */
  private startAt(t: CaptureTarget, selected: boolean): Promise<unknown> {
    const shared = this.realTime && selected ? [takeBuffer(this.o.bufferBytes), takeBuffer(this.o.bufferBytes)] : undefined;
    if (shared) this.buffers.set(t, shared);
    return t.request(
      'capture_start',
      { specs: this.specs, snaplen: this.o.snaplen, limit: this.o.bufferBytes, prefix: t.prefix, offsetNs: String(this.epochOffsetNs) },
      shared,
    );
  }

  /**
   * A kernel that came up while the capture runs (a guest created, restored
   * or arrived by migration): its points the specs select are captured from
   * now on, described in the file when their first frames are drained.
   */
  async join(t: CaptureTarget): Promise<string[]> {
    // A kernel that had this address before and did not leave (it crashed) is drained no more.
    await this.leave(t.addr, false);
    const names = ((await t.request('capture_taps', {})) as { taps?: string[] }).taps ?? [];
    const selected = names.filter((n) => this.specs.some((s) => tapPattern(s).test(n)));
    this.byTarget.set(t, new Map());
    await this.startAt(t, selected.length > 0);
    return selected;
  }

  /**
   * A kernel about to go (shut down, destroyed, suspended to migrate): its
   * last records are taken into the file (when `drain`, and it answers), and
   * it is drained no more, so a drain never waits on a kernel that is gone.
   */
  leave(addr: number, drain = true): Promise<void> {
    const gone = [...this.byTarget.keys()].filter((t) => t.addr === addr);
    if (gone.length === 0) return this.draining;
    const forget = () => {
      for (const t of gone) {
        this.byTarget.delete(t);
        this.releaseBuffers(t);
      }
    };
    if (!drain) {
      this.draining = this.draining.then(forget);
      return this.draining;
    }
    return this.drain('capture_stop', gone).then(forget);
  }

  get file(): string {
    return this.o.file;
  }

  get interfaces(): string[] {
    return this.ifaces.map((f) => f.name);
  }

  /** Stop everywhere, write what is left and the statistics, and put the file in place. */
  async stop(): Promise<CaptureSummary> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const lost = this.lostAt;
    await this.drain('capture_stop');
    const end = this.lastNs;
    for (const t of [...this.buffers.keys()]) this.releaseBuffers(t);
    await this.write(
      Buffer.concat(
        this.ifaces.map((f) => interfaceStatistics(f.id, end, { start: this.startNs, end, recv: f.packets + (lost.get(f) ?? 0), drop: lost.get(f) ?? 0 })),
      ),
    );
    await this.hold(this.dest!.commit());
    this.dest = null;
    return {
      file: this.o.file,
      bytes: this.bytes,
      interfaces: this.ifaces.map((f) => ({ name: f.name, packets: f.packets, drops: f.drops, lost: lost.get(f) ?? 0 })),
      ...(this.badBatches ? { badBatches: this.badBatches } : {}),
    };
  }

  /** A capture that cannot finish (the simulation is going down badly): its partial file goes, nothing else is touched. */
  async abandon(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.dest?.discard();
    this.dest = null;
  }

  /**
   * `t`'s shared buffers go back to the pool when its sink answered its stop
   * and so let go of them; a sink that did not (a hung domain's) might still
   * write into them, so those are left to the garbage collector.
   */
  private releaseBuffers(t: CaptureTarget): void {
    const bufs = this.buffers.get(t);
    this.buffers.delete(t);
    if (bufs && this.stopped.has(t)) giveBack(bufs);
  }

  private scratch(n: number): Uint8Array {
    if (this.out.length < n) this.out = new Uint8Array(Math.max(n, this.out.length * 2));
    return this.out.subarray(0, n);
  }

  /** A new interface of `t` (its IDB returned, to be written before any of its packets). */
  private iface(t: CaptureTarget, m: Map<string, Iface>, name: string): Uint8Array {
    const f: Iface = { id: this.ifaces.length, name, packets: 0, drops: 0 };
    this.ifaces.push(f);
    m.set(name, f);
    return interfaceDescription(name, this.o.snaplen);
  }

  /**
   * Take every target's blocks (one drain at a time) into the file, merged by
   * timestamp (capture-merge.ts).
   */
  private drain(op: 'capture_drain' | 'capture_stop', only?: readonly CaptureTarget[]): Promise<void> {
    this.draining = this.draining.then(async () => {
      const targets = [...this.byTarget].filter(([t]) => !only || only.includes(t));
      const batches = await Promise.all(targets.map(async ([t, m]) => ({ t, m, b: (await t.request(op, {}).catch(() => null)) as CaptureBatch | null })));
      const idbs: Uint8Array[] = [];
      const runs: MergeRun[] = [];
      for (const { t, m, b } of batches) {
        if (!b) continue;
        if (op === 'capture_stop') this.stopped.add(t);
        // A point that appeared after the start is described the first time it has frames.
        const ifaceOf = b.taps.map((name, i) => m.get(name) ?? (b.kept[i] > 0 ? (idbs.push(this.iface(t, m, name)), m.get(name)) : undefined));
        ifaceOf.forEach((f, i) => {
          if (!f) return;
          f.packets += b.kept[i];
          f.drops += b.drops[i];
          // At a sink's stop, what its full buffer could not keep over the whole capture.
          if (op === 'capture_stop' && b.lost[i] > 0) this.lostAt.set(f, b.lost[i]);
        });
        let data: Uint8Array;
        let blocks: ReturnType<typeof captureBlocks>;
        try {
          data = batchData(b, this.buffers.get(t));
          blocks = captureBlocks(data);
        } catch {
          this.badBatches++;
          continue;
        }
        if (blocks.n === 0) continue;
        runs.push({ data, blocks, ids: ifaceOf.map((f) => f?.id ?? -1) });
      }
      const idbLen = idbs.reduce((n, x) => n + x.length, 0);
      const out = this.scratch(idbLen + runs.reduce((n, r) => n + r.data.length, 0));
      let at = 0;
      for (const x of idbs) {
        out.set(x, at);
        at += x.length;
      }
      const { end, lastHi, lastLo } = mergeRuns(runs, out, at);
      at = end;
      if (lastHi >= 0) {
        const ts = (BigInt(lastHi) << 32n) | BigInt(lastLo);
        if (ts > this.lastNs) this.lastNs = ts;
      }
      if (at > 0) await this.write(out.subarray(0, at));
    });
    return this.draining;
  }

  private async write(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0 || !this.dest) return;
    await this.hold(this.dest.write(bytes));
    this.bytes += bytes.length;
  }
}
