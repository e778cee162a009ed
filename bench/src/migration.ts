/**
 * The figures of a live migration, per case, over repetitions: a receiver
 * (b1 on host-b) streamed to by a1 on host-a is migrated live to host-a once
 * a share of the stream has arrived. Three cases, as #11 asks:
 *
 *   vnic -> vnic   vnic loaded on both hosts, the flow learnt before the move
 *   vnic -> none   vnic on the source only: the guest lands on the slow path
 *   slow -> slow   no plugin anywhere
 *
 * Each repetition is a fresh Simulation (threads, or a seeded deterministic
 * run), so one move's leftovers never weigh on the next. Every stream is
 * accounted over its whole length: frames delivered + named drops = sent;
 * `uncounted` is what no counter holds and must be 0. Schema "xsim-migration/1".
 */
import { runMeta, type RunMeta } from '@xsim/toolstack';
import type { LogLevel } from '@xsim/hypervisor';
import { availableParallelism, cpus } from 'node:os';
import { defaultTopology } from '@xsim/toolstack';
import { Simulation } from '@xsim/toolstack';
import { runStream, rxUdp } from '@xsim/toolstack';
import { movedStats, streamAccount } from '@xsim/toolstack';
import type { MigrationReport } from '@xsim/toolstack';

export const MIGRATION_SCHEMA = 'xsim-migration/1';
export const MIGRATION_CASES = ['vnic-vnic', 'vnic-none', 'slow-slow'] as const;
export type MigrationCase = (typeof MIGRATION_CASES)[number];

export interface MigrationRep {
  rounds: number[];
  pagesSent: number;
  blackoutMs: number;
  downtimeMs: number | null;
  fastPathBackMs: number | null;
  fastPath: { before: string[]; after: string[] };
  sent: number;
  delivered: number;
  /** Drop counters that grew over the whole stream, by where. */
  drops: Record<string, number>;
  uncounted: number;
  duplicated: number;
}

export interface MigrationCaseResult {
  case: MigrationCase;
  reps: MigrationRep[];
  median: { pagesSent: number; rounds: number; blackoutMs: number; downtimeMs: number | null; fastPathBackMs: number | null; lost: number };
  spread: { blackoutMs: [number, number]; downtimeMs: [number, number] | null; pagesSent: [number, number] };
}

export interface MigrationJson {
  schema: typeof MIGRATION_SCHEMA;
  date: string;
  /** What produced it: xsim version, git commit, command line, Node, CPU, pCPUs. */
  meta: RunMeta;
  machine: { cores: number; node: string; cpu: string };
  run: { mode: string; pcpus: number | null; frames: number; frameSize: number; window: number; migrateAfter: number; reps: number };
  cases: MigrationCaseResult[];
}

export interface MigrationBenchOptions {
  cases: readonly MigrationCase[];
  reps: number;
  frames: number;
  frameSize: number;
  window: number;
  /** Migrate once the receiver has this many frames of the stream. */
  migrateAfter: number;
  pcpus?: number;
  /** Seeded deterministic runs (seed = first seed + repetition) instead of threads. */
  seed?: number;
  progress?: (line: string) => void;
  /** The simulations' log level (default warn: their warnings and errors, not their chatter). */
  logLevel?: LogLevel;
}

const A1 = { host: 'host-a', domain: 'a1' };
const B1 = { host: 'host-b', domain: 'b1' };

async function oneMove(c: MigrationCase, o: MigrationBenchOptions, rep: number): Promise<MigrationRep> {
  const opts = o.seed !== undefined ? { deterministic: { seed: o.seed + rep } } : { pcpus: o.pcpus };
  const sim = await Simulation.start(defaultTopology(), { ...opts, logLevel: o.logLevel ?? 'warn' });
  try {
    if (c !== 'slow-slow') {
      await sim.loadPlugin('vnic');
      await sim.waitFor('vnic on every vif', async () => (await sim.listDomains()).every((d) => d.domid === 0 || d.vifs.every((v) => v.accel === 'vnic')));
      if (c === 'vnic-none') await sim.unloadPlugin('vnic', { host: 'host-a' });
    }
    const stream = { from: A1, to: B1, frameSize: o.frameSize, window: o.window, srcPort: 7001 };
    // Warm: ARP resolved, and on vnic the flow learnt before the move.
    await runStream(sim, { ...stream, count: 500 });
    const before = (await sim.stats()) as Record<string, unknown>;
    const start = await rxUdp(sim, B1);
    const p = runStream(sim, { ...stream, count: o.frames });
    await sim.waitFor(`${o.migrateAfter} frames before the move`, async () => (await rxUdp(sim, B1)) >= start + o.migrateAfter, 60_000);
    const m: MigrationReport = await sim.migrateDomain(B1, 'host-a', { live: true });
    const r = await p;
    const after = (await sim.stats()) as Record<string, unknown>;
    // The receiver's own counters moved with it.
    const acc = streamAccount(movedStats(before, 'b1', 'host-b', 'host-a'), after, r);
    return {
      rounds: m.rounds.map((x) => x.pages),
      pagesSent: m.pagesSent,
      blackoutMs: m.blackoutMs,
      downtimeMs: m.downtimeMs,
      fastPathBackMs: m.fastPath.backAfterMs,
      fastPath: { before: m.fastPath.before, after: m.fastPath.after },
      sent: r.sent,
      delivered: r.delivered,
      drops: Object.fromEntries(acc.drops),
      uncounted: Math.max(0, r.sent - r.delivered - r.tooOld - acc.dropped),
      duplicated: r.duplicated,
    };
  } finally {
    await sim.shutdown();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function medianOrNull(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length === 0 ? null : median(v);
}

function range(xs: number[]): [number, number] {
  return [Math.min(...xs), Math.max(...xs)];
}

export async function runMigrationBench(o: MigrationBenchOptions): Promise<MigrationJson> {
  const cases: MigrationCaseResult[] = [];
  for (const c of o.cases) {
    const reps: MigrationRep[] = [];
    for (let i = 0; i < o.reps; i++) {
      o.progress?.(`migration ${c}: repetition ${i + 1}/${o.reps}`);
      reps.push(await oneMove(c, o, i));
    }
    const down = reps.map((r) => r.downtimeMs).filter((x): x is number => x !== null);
    cases.push({
      case: c,
      reps,
      median: {
        pagesSent: median(reps.map((r) => r.pagesSent)),
        rounds: median(reps.map((r) => r.rounds.length)),
        blackoutMs: median(reps.map((r) => r.blackoutMs)),
        downtimeMs: medianOrNull(reps.map((r) => r.downtimeMs)),
        fastPathBackMs: medianOrNull(reps.map((r) => r.fastPathBackMs)),
        lost: median(reps.map((r) => r.sent - r.delivered)),
      },
      spread: {
        blackoutMs: range(reps.map((r) => r.blackoutMs)),
        downtimeMs: down.length ? range(down) : null,
        pagesSent: range(reps.map((r) => r.pagesSent)),
      },
    });
  }
  return {
    schema: MIGRATION_SCHEMA,
    meta: runMeta(o.seed !== undefined ? null : (o.pcpus ?? availableParallelism())),
    date: new Date().toISOString(),
    machine: { cores: availableParallelism(), node: process.version, cpu: cpus()[0]?.model ?? 'unknown' },
    run: {
      mode: o.seed !== undefined ? `deterministic, seeds ${o.seed}..${o.seed + o.reps - 1}` : 'threads',
      pcpus: o.seed !== undefined ? null : (o.pcpus ?? null),
      frames: o.frames,
      frameSize: o.frameSize,
      window: o.window,
      migrateAfter: o.migrateAfter,
      reps: o.reps,
    },
    cases,
  };
}
