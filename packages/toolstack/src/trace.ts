/**
 * `--trace out.json`: every thread's trace events (hypervisor trace/tracer.ts)
 * gathered into one Chrome / Perfetto JSON trace (the "Trace Event Format":
 * a traceEvents array, ts and dur in microseconds), which the Perfetto UI
 * (ui.perfetto.dev, Open trace file) and chrome://tracing open.
 *
 *   process per host: a thread (track) per domain, dom0 first, then its guests
 *   process "NIC hardware": the NIC and switch model's track
 *   process "pCPUs": a track per pCPU worker with its sleeps (asleep spans);
 *                    awake is the time between them
 *   a sampled frame's hops (tap points) are tiny slices joined by flow arrows
 *   ("frame journey"), first hop to last, across domains and threads
 */
import { checkOutPath, openOutFile } from './out-file.ts';
import {
  ADDR_FABRIC,
  PCPU_TRACK_BASE,
  EV_HOP,
  EV_INSTANT,
  EV_SPAN,
  DEFAULT_FRAME_SAMPLE,
  type Addr,
  type Runtime,
  type TraceBatch,
  type TraceEvent,
} from '@xsim/hypervisor';

export interface TraceOptions {
  file: string;
  /** Trace the journey of every Nth frame of a stream (by sequence number; default 1024). */
  sample?: number;
  /** Events kept per thread before the rest are counted dropped (default 1,000,000). */
  limit?: number;
}

import type { TraceSummary } from './schema/run.ts';

export type { TraceSummary };

/** Who a track is: the toolstack's names for domain uids. */
export interface TrackNames {
  domain(uid: Addr): { host: string; name: string; domid: number } | undefined;
  hosts: readonly string[];
  /** Each thread that answered, in the runtime's order (its pCPU workers, then the main thread). */
  threads: readonly string[];
}

type Json = Record<string, unknown>;

const PID_NIC = 1000;
const PID_PCPUS = 2000;

export class TraceSession {
  private constructor(
    private readonly runtime: Runtime,
    private readonly o: Required<TraceOptions>,
  ) {}

  static async start(runtime: Runtime, o: TraceOptions): Promise<TraceSession> {
    const sample = o.sample ?? DEFAULT_FRAME_SAMPLE;
    const limit = o.limit ?? 1_000_000;
    if (!Number.isInteger(sample) || sample < 1) throw new Error(`trace: frame sample ${sample} is not a whole number from 1`);
    if (!Number.isInteger(limit) || limit < 1000) throw new Error(`trace: event limit ${limit} is below 1000`);
    // Fail before tracing starts if the file could not be written (a FIFO, a directory, no such
    // directory, one not writable); the file itself is made only at stop, whole (writeTrace).
    await runtime.hold(checkOutPath(o.file, 'trace: cannot write'));
    const h = process.hrtime();
    await runtime.trace('trace_start', { startNs: h[0] * 1e9 + h[1], sample, limit }, 5000);
    return new TraceSession(runtime, { file: o.file, sample, limit });
  }

  get file(): string {
    return this.o.file;
  }

  /** Stop every thread's tracer and write the file. */
  async stop(names: TrackNames): Promise<TraceSummary> {
    const batches = await this.runtime.trace('trace_stop', {}, 5000);
    // Held, as capture and save hold their files: a deterministic run does not run on (by real time) while it is written.
    return this.runtime.hold(writeTrace(this.o.file, batches, names));
  }
}

/** The events of every thread's batch as Trace Event Format objects, flows linking each frame's hops. */
export function traceEvents(batches: readonly (TraceBatch | null)[], names: TrackNames): { events: Json[]; dropped: number; frames: number; hops: number } {
  const out: Json[] = [];
  const seenTracks = new Map<string, Json[]>();
  const where = (track: number, thread: number): { pid: number; tid: number } => {
    let pid: number;
    let tid: number;
    let pname: string;
    let tname: string;
    if (track <= PCPU_TRACK_BASE) {
      pid = PID_PCPUS;
      tid = PCPU_TRACK_BASE - track + 1;
      pname = 'pCPUs';
      tname = `${names.threads[PCPU_TRACK_BASE - track] ?? `pCPU ${PCPU_TRACK_BASE - track}`}: asleep`;
    } else if (track === ADDR_FABRIC) {
      pid = PID_NIC;
      tid = 1;
      pname = 'NIC hardware';
      tname = 'NICs and switches';
    } else {
      const d = track > 0 ? names.domain(track) : undefined;
      if (d) {
        pid = names.hosts.indexOf(d.host) + 1;
        tid = d.domid + 1;
        pname = d.host;
        tname = d.domid === 0 ? 'dom0' : `${d.name} (domain ${d.domid})`;
      } else {
        pid = PID_PCPUS;
        tid = 100 + thread;
        pname = 'pCPUs';
        tname = track === 0 ? `${names.threads[thread] ?? `thread ${thread}`}: outside a domain's turn (bus, requests)` : `domain uid ${track} (gone)`;
      }
    }
    const key = `${pid}/${tid}`;
    if (!seenTracks.has(key)) {
      seenTracks.set(key, [
        { ph: 'M', name: 'process_name', pid, args: { name: pname } },
        { ph: 'M', name: 'process_sort_index', pid, args: { sort_index: pid } },
        { ph: 'M', name: 'thread_name', pid, tid, args: { name: tname } },
        { ph: 'M', name: 'thread_sort_index', pid, tid, args: { sort_index: tid } },
      ]);
    }
    return { pid, tid };
  };
  let dropped = 0;
  const journeys = new Map<string, { ts: number; pid: number; tid: number }[]>();
  batches.forEach((b, thread) => {
    if (!b) return;
    dropped += b.dropped;
    for (const e of b.events as TraceEvent[]) {
      const [kind, ts, dur, track, name, args, frame] = e;
      const at = where(track, thread);
      if (kind === EV_SPAN) out.push({ ph: 'X', cat: name === 'run' || name === 'asleep' ? 'sched' : 'xen', name, ts, dur, ...at, ...(args ? { args } : {}) });
      else if (kind === EV_INSTANT) out.push({ ph: 'i', s: 't', cat: 'xen', name, ts, ...at, ...(args ? { args } : {}) });
      else if (kind === EV_HOP && frame) {
        out.push({ ph: 'X', cat: 'frame', name: `frame ${frame} @ ${name}`, ts, dur: 0.5, ...at, args: { frame, tap: name, ...(args ?? {}) } });
        const j = journeys.get(frame) ?? [];
        j.push({ ts, ...at });
        journeys.set(frame, j);
      }
    }
  });
  // Flow arrows: each frame's hops in time order, bound to the hop slices ("bp": "e").
  let flowId = 0;
  let hops = 0;
  for (const j of journeys.values()) {
    hops += j.length;
    if (j.length < 2) continue;
    j.sort((a, b) => a.ts - b.ts);
    const id = ++flowId;
    j.forEach((h, i) =>
      out.push({ ph: i === 0 ? 's' : i === j.length - 1 ? 'f' : 't', bp: 'e', cat: 'frame', name: 'frame journey', id, ts: h.ts, pid: h.pid, tid: h.tid }),
    );
  }
  const meta = [...seenTracks.values()].flat();
  return { events: [...meta, ...out], dropped, frames: journeys.size, hops };
}

export async function writeTrace(file: string, batches: readonly (TraceBatch | null)[], names: TrackNames): Promise<TraceSummary> {
  const t = traceEvents(batches, names);
  // Written beside the name and renamed when whole: a trace that fails half-way leaves nothing under it.
  const out = await openOutFile(file, 'trace: cannot write');
  let bytes = 0;
  try {
    const put = async (s: string) => {
      bytes += Buffer.byteLength(s);
      await out.write(s);
    };
    await put('{"displayTimeUnit":"ns","traceEvents":[\n');
    for (let i = 0; i < t.events.length; i += 10_000) {
      const chunk = t.events
        .slice(i, i + 10_000)
        .map((e) => JSON.stringify(e))
        .join(',\n');
      await put((i > 0 ? ',\n' : '') + chunk);
    }
    await put(`\n],"otherData":${JSON.stringify({ producer: 'xsim', dropped: t.dropped, frames: t.frames, hops: t.hops })}}\n`);
    await out.commit();
  } catch (e) {
    await out.discard();
    throw e;
  }
  return { file, events: t.events.length, dropped: t.dropped, frames: t.frames, hops: t.hops, bytes };
}
