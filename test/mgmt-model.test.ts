/**
 * A model-based test of the management plane (issue 20, "Prove it"): random
 * sequences of steps, each a batch of operations issued at once from several
 * clients (over the control socket, one connection per request as xsim's
 * commands do, or through the Simulation API): create, destroy, shutdown,
 * save, restore, migrate, dev add/del, plugin load/unload/swap, capture and
 * trace start/stop, link, MTU and NIC reset, and the read-only views, while a
 * stream runs between two guests no operation removes. After every step:
 *
 * - every operation answered, with success or a clear refusal (refusals.ts
 *   names every reason; anything else, or no answer in time, fails);
 * - an operation that wanted nothing another of its step wanted did what the
 *   model predicts (success, or the refusal it names);
 * - the real state is the model's: the same guests on the same hosts with
 *   the same vifs (handle, MAC, IP) and memory; names and domids unique per
 *   host, domids new and below Xen's reserved range, IPs and MACs unique;
 *   the plugins loaded, each NIC's link and MTU; the files on disk (images
 *   whole and holding the guest the model says, finished captures and traces
 *   whole, no temporary file but a running capture's);
 * - every stream round conserved: sent = delivered + too old + drops on the
 *   path (at most the flood copies more), none twice.
 *
 * At the end of each run everything is torn down and compared with the start:
 * xenstore nodes, watches, event-channel ports, grant mappings, VIs, filters,
 * bridge ports, live vifs, plugin channels, free skbs, and the files.
 *
 * Seeded and replayable. The environment:
 *   XSIM_MODEL_SEED=N        fast-check's seed (default 20; "random" for a new one). A failure prints
 *                            the seed and path to replay it.
 *   XSIM_MODEL_PATH=P        fast-check's path of a failing run (with its seed: replays just that run).
 *   XSIM_MODEL_STEPS=N       steps over the whole file, at most (default 240), spread over the modes
 *   XSIM_MODEL_STEPS_PER_RUN steps per simulation at most (default 60 deterministic, 120 threaded; fast-check
 *                            draws each run's length)
 *   XSIM_MODEL_MODES=det,threads  deterministic runs (seeded order, virtual clock) and/or real pCPU threads
 *   XSIM_MODEL_CONCURRENCY=N operations issued at once in a step, at most (default 4)
 *   XSIM_MODEL_KNOWN=ids|all put back what an open defect keeps out (config.ts: KNOWN_DEFECTS; the fixed
 *                            ones are listed there too, FIXED_DEFECTS, and are no longer left out)
 *   XSIM_MODEL_DET_SOCKET=1  deterministic runs over the control socket too (slow; see config.ts)
 *   XSIM_MODEL_ANSWER_MS=N   real time an operation may take before it counts as unanswered (default 60000)
 *   XSIM_MODEL_SHRINK=1      shrink a failing sequence (slow: each try is a fresh simulation)
 *   XSIM_MODEL_REPORT=FILE   write the figures as JSON
 *   XSIM_MODEL_VERBOSE=1     print every step
 * A long run, in pieces of a few hundred steps with their own seeds (one vitest run each; a failing piece
 * prints its replay): for s in 101 102 103; do XSIM_MODEL_SEED=$s XSIM_MODEL_STEPS=400 \
 *   XSIM_MODEL_REPORT=model-$s.json npx vitest run test/mgmt-model.test.ts; done
 */
import fc from 'fast-check';
import { afterAll, describe, it } from 'vitest';
import { modelConfig } from './mgmt-model/config.ts';
import { Figures } from './mgmt-model/figures.ts';
import { Env } from './mgmt-model/harness.ts';
import type { Model } from './mgmt-model/model.ts';
import { batchArb, specText, type OpSpec } from './mgmt-model/ops.ts';

const cfg = modelConfig();
const fig = new Figures();

/** Steps left to this mode. */
const budget = { left: 0, perRun: 0 };

/** One step of fast-check's command sequence: a batch of operations issued at once. */
class Step implements fc.AsyncCommand<Model, Env> {
  constructor(readonly ops: OpSpec[]) {}
  /** Runs end at XSIM_MODEL_STEPS_PER_RUN steps, and the mode at its share of XSIM_MODEL_STEPS. */
  check(m: Model): boolean {
    return m.steps < budget.perRun && budget.left > 0;
  }
  async run(m: Model, env: Env): Promise<void> {
    m.steps++;
    budget.left--;
    await env.run(this.ops);
  }
  toString(): string {
    return `[${this.ops.map(specText).join(' || ')}]`;
  }
}

describe.each(cfg.modes)('the management plane against its model (%s)', (mode) => {
  const seed = cfg.seed + (mode === 'threads' ? 1 : 0);
  const target = Math.ceil(cfg.steps / cfg.modes.length);
  const budgetMs = 120_000 + target * (mode === 'det' ? 1000 : 2000);

  it(
    `${target} steps over simulations of up to ${cfg.stepsPerRun[mode]} steps each, ${cfg.maxConcurrent} operations at once at most`,
    { timeout: budgetMs },
    async () => {
      const t0 = Date.now();
      // Shrinking and replays rerun runs after the budget is spent: they are not gated by it.
      budget.left = cfg.shrink || cfg.path ? Infinity : target;
      budget.perRun = cfg.stepsPerRun[mode];
      // fast-check draws each run's length (up to four times the limit, so that most runs reach it).
      const steps = fc.commands([batchArb(cfg.maxConcurrent).map((ops) => new Step(ops))], { maxCommands: cfg.stepsPerRun[mode] * 4, size: 'max' });
      const property = fc.asyncProperty(fc.integer({ min: 1, max: 1_000_000 }), steps, async (simSeed, cmds) => {
        // Runs go on until this mode's steps are done.
        if (budget.left <= 0) return;
        const t = Date.now();
        const lap = (what: string) => cfg.verbose && console.log(`[${mode}] ${what} at ${((Date.now() - t) / 1000).toFixed(1)} s`);
        const env = await Env.start(mode, simSeed, cfg, fig);
        lap('started');
        fig.runs++;
        try {
          await fc.asyncModelRun(() => ({ model: env.model, real: env }), cmds);
          lap(`${env.model.steps} steps done`);
          await env.teardown();
          lap('torn down');
        } finally {
          await env.close();
          lap('closed');
        }
      });
      try {
        await fc.assert(property, {
          seed,
          numRuns: Math.min(cfg.maxRuns, Math.ceil(target / cfg.stepsPerRun[mode]) * 4 + 4),
          endOnFailure: !cfg.shrink,
          ...(cfg.path ? { path: cfg.path } : {}),
        });
      } catch (e) {
        const m = /seed: (-?\d+), path: "([^"]+)"/.exec((e as Error).message);
        const replay = `XSIM_MODEL_MODES=${mode} XSIM_MODEL_SEED=${cfg.seed}${m ? ` XSIM_MODEL_PATH=${m[2]}` : ''} XSIM_MODEL_STEPS_PER_RUN=${cfg.stepsPerRun[mode]} npx vitest run test/mgmt-model.test.ts`;
        fig.failures.push(
          `${mode}: ${(e as Error).message.split('\n').find((l) => l.includes('broke the model') || l.includes('Error')) ?? 'failed'} (replay: ${replay})`,
        );
        console.error(`replay: ${replay}`);
        throw e;
      } finally {
        fig.ms[mode] = (fig.ms[mode] ?? 0) + (Date.now() - t0);
      }
    },
  );
});

afterAll(() => {
  console.log(fig.text());
  if (cfg.report) fig.save(cfg.report);
});
