/**
 * A partition process (`xsim run --partitions local` starts one per
 * partition through child-boot.mjs): told its partition on its IPC channel,
 * it runs that partition's topology as a Simulation of its own, says when
 * every vif is Connected, then answers the parent's calls (protocol.ts).
 * It ends on the parent's shutdown, and on its own when the parent is gone
 * (the channel closes): a partition never outlives its coordinator.
 */
import { manageAnswer } from '../control-socket.ts';
import type { DomainRef } from '../domain-ref.ts';
import { Simulation } from '../simulation.ts';
import { validateTopology } from '../topo/validate.ts';
import { onePartition } from './one.ts';
import { partitionNet } from '../migrate-remote.ts';
import { partitionEndpoints } from '../topo/partition-split.ts';
import type { Call, CallOf, ChildMsg, ParentMsg, StartMsg, WireDown } from './protocol.ts';

let sim: Simulation | undefined;
let ending = false;

function send(m: ChildMsg, then?: () => void): void {
  if (process.connected) process.send!(m, undefined, {}, () => then?.());
  else then?.();
}

/** Shut the partition's simulation down and exit (once). */
async function end(code: number): Promise<void> {
  if (ending) return;
  ending = true;
  await sim?.shutdown().catch(() => {});
  process.exit(code);
}

async function start(m: StartMsg): Promise<void> {
  try {
    const full = validateTopology(m.topology);
    const topo = onePartition(full, { partition: m.partition, basePort: m.basePort });
    const t0 = performance.now();
    sim = await Simulation.start(topo, {
      logLevel: m.logLevel,
      // Migrations from the other partitions come in on TCP at our tunnels' address and port number.
      partition: partitionNet(full, m.partition, partitionEndpoints(full, { basePort: m.basePort })),
      ...(m.pcpus !== undefined ? { pcpus: m.pcpus } : {}),
      ...(m.connectTimeoutMs !== undefined ? { connectTimeoutMs: m.connectTimeoutMs } : {}),
    });
    send({ type: 'up', ms: performance.now() - t0, domains: sim.domains.length, threads: sim.threads().model });
  } catch (e) {
    send({ type: 'failed', error: e instanceof Error ? e.message : String(e) }, () => void end(1));
  }
}

/**
 * Another partition is gone: every tunnel end of ours whose cut wire (by its
 * VNI) led there goes link down in the fabric, as the cable of a failed host.
 */
async function partitionGone(s: Simulation, c: CallOf<'partitionGone'>): Promise<WireDown[]> {
  const down: WireDown[] = [];
  for (const [i, w] of s.topology.wires.entries()) {
    for (const side of ['a', 'b'] as const) {
      const end = w[side];
      if (typeof end === 'string' || !c.vnis.includes(end.vxlan.vni)) continue;
      await s.ctx.fabric('wire_link_set', { wire: i, up: false });
      down.push({ wire: i, vni: end.vxlan.vni, path: `wires[${i}].${side}` });
    }
  }
  return down;
}

type AnyRequest = (ref: DomainRef, op: string, args: Record<string, unknown>, timeoutMs: number) => Promise<unknown>;

async function call(c: Call): Promise<unknown> {
  if (!sim) throw new Error('the partition is not up');
  switch (c.op) {
    case 'request':
      // The parent forwards what the toolstack's own scenario asks a domain (arp_resolve, ping, stream_recv, stream_send).
      return (sim.request as unknown as AnyRequest).call(sim, c.ref, c.name, c.args, c.timeoutMs);
    case 'domainStats':
      return sim.domainStats(c.ref, c.timeoutMs);
    case 'stats':
      return sim.stats();
    case 'manage':
      return manageAnswer(sim, c.name, c.args);
    case 'waitAccelerated': {
      const own = new Set(sim.hostNames());
      return sim.waitAccelerated(
        c.refs.filter((r) => own.has(r.host)),
        { plugin: c.plugin, timeoutMs: c.timeoutMs },
      );
    }
    case 'partitionGone':
      return partitionGone(sim, c);
    case 'shutdown':
      return sim.shutdown();
  }
}

process.on('message', (m: ParentMsg) => {
  if (m.type === 'start') return void start(m);
  const { id } = m;
  call(m).then(
    (value) => send({ type: 'reply', id, ok: true, value: value ?? null }, m.op === 'shutdown' ? () => process.exit(0) : undefined),
    (e: unknown) => send({ type: 'reply', id, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});
// The coordinator is gone (it exited or was killed): end with it, leaving no orphan.
process.on('disconnect', () => void end(1));
// Ctrl-C reaches the whole process group: the coordinator shuts the partitions down in order.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => void end(0));
