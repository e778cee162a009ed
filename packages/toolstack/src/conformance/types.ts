/**
 * The conformance suite's types: what a check is, what it answers, and what
 * the whole run reports. A check is one small module (one promise xsim makes
 * about plugins); the runner (runner.ts) takes a plugin through them in order
 * on one simulation and collects a row per check.
 */
import type { DomainRef } from '../domain-ref.ts';
import type { Simulation } from '../simulation.ts';
import type { Resources } from './resources.ts';

export type CheckStatus = 'pass' | 'fail' | 'skip';

/** One row of the report: a check, its verdict, and why (a failure names what went wrong and where). */
export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  reason: string;
  /** Wall-clock milliseconds the check took. */
  ms: number;
}

export interface ConformanceReport {
  /** What was asked for: a bundled name or a directory. */
  target: string;
  /** The plugin's own name and version (from its manifest), once it loaded. */
  plugin: string;
  version: string | null;
  features: string[];
  /** The seed of the deterministic simulation the suite ran on (null: a simulation the caller gave). */
  seed: number | null;
  results: CheckResult[];
  /** No check failed. */
  passed: boolean;
  ms: number;
}

export interface ConformanceOptions {
  /** Load arguments for the plugin (as `plugin load --args`). */
  args?: Record<string, unknown>;
  /** The seed of the deterministic simulation the suite starts (default 1). Ignored when `sim` is given. */
  seed?: number;
  /**
   * Run on this simulation instead of starting one: it must have two hosts with a
   * guest each and no plugin loaded; the suite leaves no plugin loaded either.
   */
  sim?: Simulation;
  /**
   * The stream's ends (default: the first guest by name of the first host, and of the second).
   * The migration check moves `to` to `from`'s host and back.
   */
  from?: DomainRef;
  to?: DomainRef;
  /** The plugin swapped in and out mid-stream (default null, or vnic when testing null). */
  partner?: string;
  /** Frames of a mid-stream check's stream (default 12,000; the quiet streams are a quarter of it). */
  frames?: number;
  /** Every wait on the simulation's clock ends after this many ms (default 10,000). */
  deadlineMs?: number;
  /** Only these checks (by id); the others are reported skipped. */
  only?: readonly string[];
  /** Told as each check finishes (progress lines). */
  onResult?: (r: CheckResult) => void;
}

/** The plugin as the suite knows it: its name from where it was found, its version and features once it has loaded. */
export interface PluginUnderTest {
  target: string;
  name: string;
  /** Its modules' URLs (the manifest is read from the backend once the loader has vetted and loaded it). */
  backend: string;
  frontend?: string;
  version: string | null;
  features: readonly string[];
  args: Record<string, unknown>;
}

/** What every check is handed: the simulation, the plugin, and the suite's state so far. */
export interface CheckContext {
  readonly sim: Simulation;
  readonly plugin: PluginUnderTest;
  readonly partner: string;
  /** The stream's ends, a guest on each of two hosts. */
  readonly from: DomainRef;
  readonly to: DomainRef;
  readonly hosts: readonly string[];
  readonly frames: number;
  readonly deadlineMs: number;
  /** The plugin is loaded on every host now (as the checks expect to find it). */
  loaded: boolean;
  /** The plugin took frames on the quiet stream: after each event it must take frames again. */
  accelerated: boolean;
  /** The load's answers, one per host (the version handshake looks at them). */
  loadReplies: unknown[];
  /** What the guests and NICs held before the plugin was first loaded (the unload check compares). */
  baseline: Resources | null;
  /** A check left the host in a state the next ones cannot start from (e.g. a plugin stuck unloading): the rest are skipped. */
  wedged: string | null;
}

export interface Verdict {
  status: CheckStatus;
  reason: string;
}

export interface Check {
  id: string;
  title: string;
  /** Runs even after a check wedged the host (it reports on the others). */
  always?: boolean;
  /** Makes the plugin fail on purpose: the runner leaves judging the failures it sees to the check. */
  ownTrouble?: boolean;
  /** Why the check does not apply to this plugin (it is then skipped with that reason), or undefined. */
  skip?(ctx: CheckContext): string | undefined;
  run(ctx: CheckContext): Promise<Verdict>;
}

export const pass = (reason: string): Verdict => ({ status: 'pass', reason });
export const fail = (reason: string): Verdict => ({ status: 'fail', reason });
export const skip = (reason: string): Verdict => ({ status: 'skip', reason });
