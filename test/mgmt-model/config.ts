/**
 * What a run of the management-plane model test does, from the environment
 * (documented at the top of test/mgmt-model.test.ts), and the product defects
 * it found: the open ones keep their command or combination out of the
 * default run (XSIM_MODEL_KNOWN=all, or a list of ids, puts them back).
 */

export type RuntimeMode = 'det' | 'threads';

/**
 * Defects the model test found that are still open. Each id names what the
 * default run leaves out (or stops checking strictly) so that `npm test` stays
 * green, and how to reproduce it; XSIM_MODEL_KNOWN=all (or a list of ids) puts
 * it back in.
 */
export const KNOWN_DEFECTS = {
  /**
   * A `dev add` that names a handle below the guest's next one winds the
   * handle counter back (hotplug.ts sets nextHandle to that handle + 1), so a
   * later unnamed add gives a handle that was given and removed before: vif1,
   * vif2, vif3 added; vif1 deleted; `dev add ... name vif1`; vif3 deleted; the
   * next `dev add` is vif3 again. The README says handles are not reused, so a
   * removed vif's counters keep their name (dom0 keeps them under it). Left
   * out: naming a handle below the guest's next one (the add goes unnamed).
   */
  handleRewind: "a dev add naming a lower handle winds the handle counter back: a removed vif's handle is given again",
  /**
   * A capture start and a destroy (or shutdown, save, migration) issued in the
   * same moment, the capture first: the capture asks every kernel to start,
   * including the guest that is going away, which never answers, and after 5 s
   * the start fails with "capture_start: no reply within 5000 ms" (threads:
   * "capture_start: channel closed"); in a deterministic run the destroy waits
   * as long. This happens even when the capture's spec does not match the guest
   * (`capture start host-a` beside `domain destroy host-b/b2`). f36b9e1 made the
   * start skip guests already going away and remove its temporary file (before
   * it, the .partial was left and blocked that file for the rest of the
   * process); a guest that starts going away after the capture began is still
   * waited on. Reproduction: Promise.all([captureStart(['host-a'], {file}),
   * destroyDomain(host-b/b2)]). Left out: a capture start in the same step as
   * an operation that takes a guest away.
   */
  captureLeaving: 'a capture start beside a guest going away (even one it does not capture) fails after 5 s',
  /**
   * `plugin unload NAME` without --host goes host by host and stops at the
   * first refusal, leaving the plugin unloaded on the hosts before it (vnic on
   * host-a only, then `plugin unload vnic`: host-a loses vnic, host-b refuses
   * "not loaded", the command fails). ec8d4dd made a load on every host all or
   * nothing (defect partialLoad below); the unload is not. It shows also when
   * another plugin operation of the step unloads it from one host first (a
   * swap on host-b beside `plugin unload vnic`: refused on host-b, host-a has
   * lost vnic). Left out: unloading from every host while some host does not
   * have the plugin (such unloads name one host instead), or beside another
   * plugin operation.
   */
  partialUnload: 'plugin unload on every host is not atomic: a refusal on one host leaves it unloaded on the hosts before',
  /**
   * A `dev add` the guest refuses ("probe failed: out of guest memory ...
   * (the vif was removed again)") can leave its frontend's device/vif/N and
   * device/vif/N/state in xenstore (2 nodes each time it happens): the guest
   * writes its state after the toolstack has removed the directory. Threaded
   * runs only (a deterministic one orders the writes): b1 with 4096 pages and
   * vnic loaded, twelve dev adds (three or four fit, the rest refused by the
   * guest), the added ones deleted: host-b has 84 nodes instead of 82 and b1's
   * device/vif lists a vif it does not have. e398fae removed the error
   * directories such an add left; this is the frontend's side. Not counted as
   * a leak: nodes under a guest's device/vif/N for an N it has no vif of.
   */
  probeNodes: "a dev add the guest refuses can leave its frontend's device/vif/N/state in xenstore (threads)",
} as const;

/**
 * Defects the model test found that have been fixed since (by the commit
 * named): nothing is left out for them any more, and the model expects what
 * the fix does. The record of what the test found.
 */
export const FIXED_DEFECTS = {
  /** Two creates (or a create beside anything that changes its host's domains) booted one guest with the other's spec: create looked its record up as the host's last after its awaits. */
  createRace: '3965187',
  /** `dev del` of a guest's last vif was accepted; the vif-less guest could not migrate, and its save image could not be restored: the guest was lost. */
  lastVif: 'e398fae',
  /** A destroyed topology guest's domid was given to the next create (peekDomid started from the live guests when nothing had been created yet). */
  domidReuse: 'e398fae',
  /** `domain restore FIFO` blocked in open() until a writer came; a deterministic run froze under runtime.hold() and every later request hung. */
  restoreFifo: 'e398fae',
  /** A dev add the guest refused left /local/domain/<domid>/error/device/vif (3 empty nodes) in xenstore. */
  errorNodes: 'e398fae',
  /** `trace stop` wrote its file without runtime.hold(): seconds under a stream in a deterministic run, and not reproducible. */
  traceHold: 'e398fae',
  /** An MTU set at run time was not seen by migrate, restore and dev add, which checked the topology's. */
  runtimeMtu: '5f0ddd2',
  /** A vif that connected (or that a NIC reset re-attached) while a plugin unloaded was attached to it; the unload never answered and the plugin stayed unloading for good. */
  unloadAttach: '8936a6a',
  /** Two loads of one plugin on one host both passed the "already loaded" check; the second was refused by driverlink in its own words after creating a backend. */
  loadRace: '8936a6a',
  /** A load on every host stopped at the first refusal and left the plugin loaded on the hosts before it. */
  partialLoad: 'ec8d4dd',
} as const;

export type DefectId = keyof typeof KNOWN_DEFECTS;

export interface ModelConfig {
  /** fast-check's seed (printed on failure; XSIM_MODEL_SEED replays it). */
  seed: number;
  /** Steps (batches of concurrent operations) over the whole file, shared by the modes. */
  steps: number;
  /** Steps per simulation, at most (fast-check draws each run's length), by mode: a threaded simulation takes seconds to start. */
  stepsPerRun: Record<RuntimeMode, number>;
  /** Simulations per mode at most (fast-check's numRuns): runs stop once the mode's steps are done. */
  maxRuns: number;
  modes: RuntimeMode[];
  /** Defects whose commands are back in the run. */
  known: Set<DefectId>;
  /** Shrink a failing sequence (slow: every try is a fresh simulation). */
  shrink: boolean;
  /** fast-check's replay path (XSIM_MODEL_PATH, printed with the seed on failure). */
  path: string | undefined;
  /** Write the figures as JSON here. */
  report: string | undefined;
  /** Largest number of operations issued at once in one step. */
  maxConcurrent: number;
  /** Real time an operation may take before it counts as unanswered. */
  answerMs: number;
  /** Print every step. */
  verbose: boolean;
  /**
   * Deterministic runs send their operations over the control socket too (as
   * threaded runs do). Off by default: the deterministic scheduler lets a socket's
   * I/O in only every 4096 busy rounds, so with the stream running each request
   * costs seconds, and where a request arrives is then decided by real time,
   * which a seed cannot replay. Through the API, a seed replays the whole run.
   */
  detSocket: boolean;
}

function int(name: string, dflt: number, min = 1): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}: "${v}" is not an integer >= ${min}`);
  return n;
}

export function modelConfig(): ModelConfig {
  const steps = int('XSIM_MODEL_STEPS', 240);
  const perRun = process.env.XSIM_MODEL_STEPS_PER_RUN ? int('XSIM_MODEL_STEPS_PER_RUN', 80) : undefined;
  const modes = (process.env.XSIM_MODEL_MODES ?? 'det,threads').split(',').map((s) => s.trim());
  for (const m of modes) if (m !== 'det' && m !== 'threads') throw new Error(`XSIM_MODEL_MODES: "${m}" is not det or threads`);
  const knownRaw = process.env.XSIM_MODEL_KNOWN ?? '';
  const ids = Object.keys(KNOWN_DEFECTS) as DefectId[];
  const known = new Set<DefectId>(
    knownRaw === 'all'
      ? ids
      : knownRaw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .map((s) => {
            if (!(ids as string[]).includes(s)) throw new Error(`XSIM_MODEL_KNOWN: "${s}" is not one of ${ids.join(', ')} (or all)`);
            return s as DefectId;
          }),
  );
  const seedRaw = process.env.XSIM_MODEL_SEED;
  const seed = seedRaw === 'random' ? Date.now() ^ (Math.random() * 0x7fffffff) : int('XSIM_MODEL_SEED', 20, -0x80000000);
  return {
    seed,
    steps,
    stepsPerRun: { det: perRun ?? 60, threads: perRun ?? 120 },
    maxRuns: int('XSIM_MODEL_MAX_RUNS', 1000),
    modes: modes as RuntimeMode[],
    known,
    shrink: process.env.XSIM_MODEL_SHRINK === '1',
    path: process.env.XSIM_MODEL_PATH || undefined,
    report: process.env.XSIM_MODEL_REPORT || undefined,
    maxConcurrent: int('XSIM_MODEL_CONCURRENCY', 4),
    answerMs: int('XSIM_MODEL_ANSWER_MS', 60_000),
    verbose: process.env.XSIM_MODEL_VERBOSE === '1',
    detSocket: process.env.XSIM_MODEL_DET_SOCKET === '1',
  };
}
