/**
 * Every counter in a real stats tree is declared (issue 18, item 5): a
 * deterministic run of the default topology with the vnic plugin, a short
 * stream and a short TCP stream, then every numeric leaf of every domain's and the NIC hardware's
 * stats must be a name the registry knows (this worker's declarations merged
 * with the `kinds` snapshot each domain ships, as drops.ts reads them) or be
 * on the allow-list below of numbers that are not counters. A counter that is
 * not declared has no kind, so drop accounting cannot see it.
 */
import { describe, expect, it } from 'vitest';
import { counterKinds, mergeCounterKinds, type CounterKind } from '@xsim/hypervisor';
import { Simulation, defaultTopology, runTcpStream, type DomainRef } from '@xsim/toolstack';
import { conservedStream } from './helpers.ts';

/**
 * Numbers in the stats tree that are not counters, by leaf name (an array's
 * elements by the array's name): each says what it is. Levels computed when
 * the stats are asked for (free skbs, queue lengths) are here too: they have
 * no storage to declare.
 */
const NOT_COUNTERS: Record<string, string> = {
  // Identities.
  domid: 'a domain id (dom0, a guest, the domain owning a NIC VI)',
  pcpu: 'the pCPU a domain or the fabric runs on',
  handle: "a guest vif's handle",
  port: "a switch port's index",
  vi: "a plugin vif's VI number",
  // Configuration.
  mtu: 'the MTU configured (NIC, primary driver)',
  // States (numbers of an enum, not counts).
  state: 'a xenbus state (netback vif, netfront)',
  frontendState: 'the xenbus state netback reads of its frontend',
  backendState: 'the xenbus state netfront reads of its backend',
  viState: "VI 0's state as the primary driver sees it (layout.ts VI_STATE_*)",
  fault: "a VI's fault reason (layout.ts FAULT_*): 0 when healthy",
  // Levels and sizes of the moment (what the simulation holds now, not what happened).
  ports: "the bridge's port count",
  macs: 'MAC addresses a switch has learnt',
  filters: 'filters in a NIC filter table',
  skbsFree: "dom0's free skbs",
  freeFrames: "a guest's free RAM frames",
  freeGrants: "a guest's free grant references",
  grantMappings: 'grants dom0 has mapped now',
  sending: 'streams an endpoint is sending now',
  receiving: 'streams an endpoint is receiving now',
  rxQueued: "frames queued for a guest in netback's RX path now",
  backlog: "frames in the uplink's backlog now",
  // A stream's progress as its receiver tracks it (the toolstack's per-interval rates), by port.
  delivered: 'frames a stream receiver has taken so far (progress)',
  highest: 'the highest sequence number a stream receiver has seen (progress)',
  duplicated: 'duplicates a stream receiver has seen (progress)',
  // Resume timing (virtual ms).
  at: 'when the guest resumed',
  firstRxAt: 'when each vif first received after a resume (one per vif)',
  mac: 'a MAC address (a bridge fdb entry)',
  // A multi-queue vif: how many queues, which one, and the steering its control ring configured.
  numQueues: 'queues a vif has connected now (either end)',
  maxQueues: "the most queues a vif's netfront may ask for",
  id: "a vif queue's index (its queues[] entry)",
  flags: "the hash types a vif's control ring configured (XEN_NETIF_CTRL_HASH_TYPE_* bits)",
  mappingSize: "entries of a vif's hash mapping table",
  mapping: "a queue number of a vif's hash mapping table (one per entry)",
  // Levels a plugin computes when asked (vnic's frontend), not stored counters.
  fastDestinations: "MACs vnic's frontend sends to on the fast path now",
  freeTxSlots: "vnic's frontend's free fast-path TX slots now",
  freeTsoSlots: "how many 64 KiB frames vnic's free TX pages hold now (0 without its tso argument)",
  // TCP: levels of the moment (connections in the table, segments in the interface queue) and
  // each connection as `ss -ti` shows it (endpoint.tcpConns), and a sink's octets so far (tcpProgress).
  conns: 'TCP connections in the table now (TIME-WAIT included)',
  queued: "segments in the stack's interface queue now",
  localPort: "a TCP connection's local port",
  remoteIp: "a TCP connection's peer address",
  remotePort: "a TCP connection's peer port",
  cwnd: "a TCP connection's congestion window now",
  ssthresh: "a TCP connection's slow-start threshold now",
  sndWnd: "the window a TCP connection's peer offers now",
  rcvWnd: 'the window a TCP connection offers now',
  inFlight: 'octets a TCP connection has sent and not had acknowledged now',
  unsent: 'octets queued on a TCP connection and not sent yet',
  srttMs: "a TCP connection's smoothed round-trip time",
  rtoMs: "a TCP connection's retransmission timeout",
  sendMss: 'the most a TCP connection puts in a segment',
  bytes: 'octets a TCP sink has received so far (progress)',
};

interface Leaf {
  path: string;
  name: string;
}

/** Every numeric leaf of a stats tree, with the name it is read by (its key; an array element by the array's). */
function numericLeaves(tree: unknown): Leaf[] {
  const out: Leaf[] = [];
  const walk = (o: unknown, path: string, parent: string) => {
    if (o === null || typeof o !== 'object') return;
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      const p = path ? `${path}.${k}` : k;
      const name = Array.isArray(o) ? parent : k;
      if (typeof v === 'number') out.push({ path: p, name });
      else if (typeof v === 'object' && k !== 'kinds') walk(v, p, name);
    }
  };
  walk(tree, '', '');
  return out;
}

/** The registry: this worker's declarations and every `kinds` snapshot in the tree. */
function kindsIn(tree: unknown): Map<string, CounterKind> {
  const kinds = new Map(Object.entries(counterKinds()));
  for (const [key, entry] of Object.entries(tree as Record<string, unknown>)) {
    const k = (entry as { kinds?: Record<string, unknown> } | null)?.kinds;
    if (k) mergeCounterKinds(kinds, k, key);
  }
  return kinds;
}

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };

describe('counters in the stats tree', () => {
  it('every numeric leaf of a real run (default topology, vnic, a short stream) is a declared counter or a named non-counter', async () => {
    const sim = await Simulation.start(defaultTopology(), { deterministic: { seed: 1 }, log: () => {} });
    try {
      await sim.loadPlugin('vnic');
      await sim.waitFor('vnic attached to a1', async () => (await sim.guestStats(a1)).vifs[0].accel?.current?.ready === true);
      await conservedStream(sim, { from: a1, to: b1, count: 300, frameSize: 512, window: 64, srcPort: 40000 });
      // A TCP stream too: its counters, and its connections still listed (TIME-WAIT) when the stats are read.
      expect((await runTcpStream(sim, { from: a1, to: b1, bytes: 50_000 })).complete).toBe(true);
      const tree = await sim.stats();
      const kinds = kindsIn(tree);
      const leaves = numericLeaves(tree);
      expect(leaves.length).toBeGreaterThan(100);
      const undeclared = leaves.filter((l) => !kinds.has(l.name) && !(l.name in NOT_COUNTERS));
      const names = [...new Set(undeclared.map((l) => l.name))].sort();
      expect(names, undeclared.map((l) => l.path).join('\n')).toEqual([]);
      // And nothing on the allow-list is a declared counter after all (it would be one or the other).
      expect(Object.keys(NOT_COUNTERS).filter((n) => kinds.has(n))).toEqual([]);
    } finally {
      await sim.shutdown();
    }
  });
});
