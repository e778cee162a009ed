/**
 * `xsim run topo.json --partitions local --serve --idle`: one control socket
 * at the coordinator (the same path rules and op table as `run --serve`:
 * control-socket.ts, manage-ops.ts), each op checked there and forwarded over
 * the IPC channel (protocol.ts's `manage` call) to the partition that holds
 * the host or domain its arguments name, where that partition's own
 * simulation answers it. The lists (domains, vifs, NICs, plugins, tap
 * points) are every running partition's, joined in partition order. What
 * cannot work across partitions (a migration to a host of another
 * partition, a capture or trace, which each partition would write to a file
 * of its own) is refused naming the partitions. A partition that died is a
 * failed host (procs.ts): the others go on serving; an op for its hosts is
 * refused naming it.
 */
import { checkRequest, serveRequests, type ControlServer } from '../control-socket.ts';
import type { ManageProtocol } from '../manage-ops.ts';
import { partitionNames, partitionOf } from '../topo/partition-split.ts';
import type { Topology } from '../topo/types.ts';
import { LocalPartitions, type LocalPartitionsOptions, type PartitionDeath, type PartitionProc } from './procs.ts';

type ManageOp = keyof ManageProtocol;

/** The ops whose answer is a list: every running partition's, joined. */
const LISTS: ReadonlySet<ManageOp> = new Set<ManageOp>(['mgmtdev.list', 'dev.list', 'domain.list', 'plugin.list', 'capture.list']);

/** The ops no partition can answer for the whole run. */
const NOT_ACROSS: Partial<Record<ManageOp, string>> = {
  'capture.start':
    'a capture across partitions is not built (each partition would write a pcapng file of its own): run that partition alone with --partition NAME --serve',
  'capture.stop': 'no capture runs across partitions (capture.start is refused there)',
  'trace.start':
    'a trace across partitions is not built (each partition would write a trace file of its own): run that partition alone with --partition NAME --serve',
  'trace.stop': 'no trace runs across partitions (trace.start is refused there)',
};

/** How long a forwarded op may take (a migration or a save is the longest): the client's own deadline is shorter. */
const FORWARD_MS = 180_000;

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The host an op's arguments name (undefined: the op names none, or names it optionally and did not). */
function hostOf(topo: Topology, op: ManageOp, a: Record<string, unknown>): string | undefined {
  if (op.startsWith('dev.')) return str(a.dev)?.split('/')[0];
  if (op === 'mgmtdev.set') {
    // A NIC by its management-device name (HOST-nic) or its host's.
    const dev = str(a.dev) ?? '';
    return topo.hosts.find((h) => h.name === dev || `${h.name}-nic` === dev)?.name ?? dev;
  }
  return str(a.host);
}

/**
 * The coordinator's side of the control socket: `own` ops (shutdown) here,
 * every management op checked, then forwarded to the partition it concerns,
 * or to every running one for a list. Never throws past a rejected promise.
 */
export async function partitionsAnswer(run: LocalPartitions, req: unknown, own: Record<string, () => Promise<unknown>>): Promise<unknown> {
  const c = checkRequest(req, Object.keys(own));
  if (c.kind === 'extra') return own[c.op]();
  const op: ManageOp = c.op;
  const topo = run.topology;
  const refused = NOT_ACROSS[op];
  if (refused) throw new Error(`${op}: ${refused}`);
  const forward = (p: PartitionProc) => run.call(p, { op: 'manage', name: op, args: c.args }, FORWARD_MS);
  const live = run.alive;
  const deadNote = () => (run.deaths.length ? ` (${run.deaths.map((d) => d.message).join('; ')}: left out)` : '');
  if (LISTS.has(op)) {
    if (live.length === 0) throw new Error(`${op}: no partition is running${deadNote()}`);
    const parts = await Promise.all(live.map((p) => forward(p)));
    return parts.flatMap((x) => (Array.isArray(x) ? (x as unknown[]) : [x]));
  }
  const host = hostOf(topo, op, c.args);
  if (host === undefined) {
    if (op === 'plugin.load' || op === 'plugin.unload') return (await Promise.all(live.map((p) => forward(p)))).flat();
    // domain.restore without a host: the simulation would pick one, but which partition's?
    throw new Error(`${op}: name the host in a run of several partitions (partitions: ${partitionNames(topo).join(', ')})`);
  }
  if (!topo.hosts.some((h) => h.name === host))
    throw new Error(`${op}: no host "${host}" in topology "${topo.name}" (hosts: ${topo.hosts.map((h) => h.name).join(', ')})`);
  const name = partitionOf(topo, host);
  if (op === 'domain.migrate') {
    const to = str(c.args.to) ?? '';
    if (!topo.hosts.some((h) => h.name === to))
      throw new Error(`${op}: no host "${to}" in topology "${topo.name}" (hosts: ${topo.hosts.map((h) => h.name).join(', ')})`);
    // To another partition: the source partition's toolstack carries it to the destination's over TCP (migrate-remote.ts).
    const there = partitionOf(topo, to);
    const gone = run.deaths.find((d) => d.name === there);
    if (gone) throw new Error(`${op}: ${to} is in partition ${there}, which is gone: ${gone.message}`);
  }
  const p = run.procs.find((x) => x.name === name)!;
  const death = run.deaths.find((d) => d.name === name);
  if (p.exit) throw new Error(`${op}: ${host} is in partition ${name}, which is gone: ${death?.message ?? `partition ${name} (pid ${p.pid}) ${p.how()}`}`);
  return forward(p);
}

export interface PartitionsServeOptions extends LocalPartitionsOptions {
  /** The control socket's path (control-socket.ts's rules: a live socket or another file there is refused). */
  socket: string;
  /** Every partition is up. */
  onUp?: (run: LocalPartitions) => void;
  /** The socket is served. */
  onServing?: (server: ControlServer) => void;
  /** Stop serving (Ctrl-C): every partition is shut down. */
  signal?: AbortSignal;
}

/**
 * Start every partition, serve the control socket until `xsim shutdown`, the
 * signal, or every partition gone; then close it and end every partition.
 * Resolves with the partitions that died meanwhile.
 */
export async function servePartitionsLocal(full: Topology, o: PartitionsServeOptions): Promise<{ dead: PartitionDeath[] }> {
  let stop: () => void = () => {};
  const stopped = new Promise<void>((r) => (stop = r));
  const abort = () => stop();
  if (o.signal?.aborted) throw new Error('stopped before the partitions started');
  o.signal?.addEventListener('abort', abort, { once: true });
  const allGone: { run?: LocalPartitions } = {};
  const onDeath = (d: PartitionDeath) => {
    o.onDeath?.(d);
    if (allGone.run && allGone.run.alive.length === 0) stop();
  };
  try {
    const started = LocalPartitions.start(full, { ...o, onDeath });
    const run = await Promise.race([
      started,
      stopped.then(() => Promise.reject(new Error('interrupted while the partitions booted: every partition shut down'))),
    ]).catch(async (e: unknown) => {
      await started.then((r) => r.shutdown()).catch(() => {});
      throw e;
    });
    allGone.run = run;
    try {
      o.onUp?.(run);
      const server = await serveRequests(o.socket, (req) =>
        partitionsAnswer(run, req, {
          shutdown: async () => {
            stop();
            return 'shutting down';
          },
        }),
      );
      o.onServing?.(server);
      try {
        await stopped;
      } finally {
        await server.close();
      }
      await run.settled();
      return { dead: [...run.deaths] };
    } finally {
      await run.shutdown();
    }
  } finally {
    o.signal?.removeEventListener('abort', abort);
  }
}
