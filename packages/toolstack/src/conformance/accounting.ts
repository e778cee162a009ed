/**
 * A stream with exact accounting, as the conformance checks run it: every
 * frame sent is delivered once or counted under a named drop counter
 * (drops.ts's streamAccount), and a frame a plugin frontend took but neither
 * put on its hardware nor counted dropped is a failure that names startXmit
 * (netfront's accel host counts those txUnaccounted).
 */
import { movedStats, streamAccount } from '../drops.ts';
import { guestStatsIfAny, type StatsTree } from '../stats.ts';
import { runStream, type StreamResult } from '../traffic.ts';
import type { DomainRef } from '../domain-ref.ts';
import type { CheckContext } from './types.ts';
import { within } from './waits.ts';

export interface StreamSpec {
  count: number;
  /** Run while the stream does (`ended` tells whether it already ended); a throw fails the check once the stream is over. */
  during?: (ended: () => boolean) => Promise<void>;
  /** A guest the check moves while the stream runs (its counters are compared under its new place). */
  moved?: { domain: string; from: string; to: string };
  /** The receiver's end, if the check moved it before the stream. */
  to?: DomainRef;
  frameSize?: number;
  window?: number;
  /** The UDP destination port (default: the stream's, 5001). */
  port?: number;
  /** How long the stream may run at most (simulation ms). */
  timeoutMs?: number;
}

export interface StreamOutcome {
  r: StreamResult;
  drops: Map<string, number>;
  dropped: number;
  copies: number;
  conserved: boolean;
  excess: number;
  /** txUnaccounted growth per guest vif ("host/domain vifN"): frames a plugin frontend took and lost. */
  unaccounted: Map<string, number>;
  /** Frames the sender's plugin frontend took (txTaken growth). */
  taken: number;
  /** The plugin has vifs (a frontend that may take frames). */
  vif: boolean;
  before: StatsTree;
  after: StatsTree;
}

/** Per guest vif, keyed by the guest's name (it may have moved host), with its txTaken and txUnaccounted. */
function accelCounts(sim: CheckContext['sim'], s: StatsTree): Map<string, { label: string; taken: number; unaccounted: number }> {
  const out = new Map<string, { label: string; taken: number; unaccounted: number }>();
  for (const d of sim.domains) {
    if (d.domid === 0) continue;
    const g = guestStatsIfAny(s, { host: d.host, domain: d.name });
    for (const v of g?.vifs ?? [])
      out.set(`${d.name} vif${v.handle}`, {
        label: `${d.host}/${d.name} vif${v.handle}`,
        taken: v.accel?.txTaken ?? 0,
        unaccounted: v.accel?.txUnaccounted ?? 0,
      });
  }
  return out;
}

/** Run one stream from ctx.from to ctx.to (or spec.to), with `during` beside it, and account for every frame. */
export async function accountedStream(ctx: CheckContext, spec: StreamSpec): Promise<StreamOutcome> {
  const { sim } = ctx;
  const to = spec.to ?? ctx.to;
  const timeoutMs = spec.timeoutMs ?? 30_000;
  const before = await sim.stats();
  const beforeCounts = accelCounts(sim, before);
  const p = runStream(sim, {
    from: ctx.from,
    to,
    count: spec.count,
    frameSize: spec.frameSize ?? 1500,
    window: spec.window ?? 128,
    port: spec.port,
    timeoutMs,
  });
  let ended = false;
  p.then(
    () => (ended = true),
    () => (ended = true),
  );
  let duringError: unknown;
  if (spec.during) await spec.during(() => ended).catch((e: unknown) => (duringError = e));
  // The stream is always waited for, so no check leaves one running into the next.
  const r = await within(sim, p, timeoutMs + 10_000, `the stream ${ctx.from.host}/${ctx.from.domain} -> ${to.host}/${to.domain}`);
  if (duringError !== undefined) throw duringError;
  const after = await sim.stats();
  const m = spec.moved;
  const acc = streamAccount(m ? movedStats({ ...before }, m.domain, m.from, m.to) : before, after, r);
  const afterCounts = accelCounts(sim, after);
  const unaccounted = new Map<string, number>();
  for (const [k, a] of afterCounts) {
    const n = a.unaccounted - (beforeCounts.get(k)?.unaccounted ?? 0);
    if (n > 0) unaccounted.set(a.label, n);
  }
  const senderKey = `${ctx.from.domain} vif0`;
  const taken = (afterCounts.get(senderKey)?.taken ?? 0) - (beforeCounts.get(senderKey)?.taken ?? 0);
  return { r, ...acc, unaccounted, taken, vif: ctx.plugin.features.includes('vif'), before, after };
}

/** The drop counters that grew, biggest first (at most `n`). */
export function dropList(drops: Map<string, number>, n = 4): string {
  if (drops.size === 0) return 'none';
  const all = [...drops].sort((a, b) => b[1] - a[1]);
  const shown = all.slice(0, n).map(([k, v]) => `${k} +${v}`);
  return shown.join(', ') + (all.length > n ? `, and ${all.length - n} more` : '');
}

export interface StreamRules {
  /** A quiet stream: nothing may be dropped, except under counters `allow` accepts. */
  whole?: boolean;
  allow?: (path: string) => boolean;
  /** The sender must get every frame out: one that gave up (its credits stopped coming back) means traffic stopped moving. */
  complete?: boolean;
}

/** What is wrong with a stream's accounting (empty: every frame delivered once or counted, and, if whole, delivered). */
export function streamProblems(o: StreamOutcome, rules: StreamRules = {}): string[] {
  const { r } = o;
  const out: string[] = [];
  for (const [label, n] of o.unaccounted)
    out.push(
      `startXmit lost ${n} frame(s) at ${label}: it took them (answered true) but neither put them on its hardware (txPosted) nor counted them dropped (txDropped); counted txUnaccounted`,
    );
  if (r.duplicated > 0) out.push(`${r.duplicated} frame(s) delivered twice`);
  if (!o.conserved && o.excess < 0)
    out.push(
      `sent ${r.sent}, delivered ${r.delivered}, too old ${r.tooOld}, counted ${o.dropped} (${dropList(o.drops)}): ${-o.excess} frame(s) neither delivered nor counted`,
    );
  // Frames a plugin lost are counted (txUnaccounted) wherever they came from, the receiver's credits too: more counted than sent is that, said above.
  else if (!o.conserved && o.unaccounted.size === 0)
    out.push(`sent ${r.sent}, delivered ${r.delivered}, counted ${o.dropped}, flood copies ${o.copies}: ${o.excess} frame(s) counted more than sent`);
  if (rules.complete && r.sent < r.count)
    out.push(
      `the sender gave up after ${r.sent} of ${r.count} frames (no credits came back: the receiver stopped getting them), ${r.sent - r.delivered - r.tooOld} lost (${dropList(o.drops, 2)})`,
    );
  if (rules.whole && out.length === 0) {
    // Whole: every frame sent delivered, but for the drops the plugin may make by design (an intercept's vetoes).
    // Other drop counters may grow by flood copies (an ARP broadcast ends in every stack's rxNotForUs): they are not the stream's frames.
    const allowed = [...o.drops].filter(([k]) => rules.allow?.(k)).reduce((n, [, v]) => n + v, 0);
    if (r.delivered + r.tooOld + allowed < r.sent) {
      const lost = new Map([...o.drops].filter(([k]) => !rules.allow?.(k)));
      out.push(`a quiet stream lost frames: sent ${r.sent}, delivered ${r.delivered}; counted: ${dropList(lost)}`);
    }
  }
  return out;
}

/** One line on what a stream did: frames not delivered are named by the counters that grew (flood copies aside, they are the stream's). */
export function streamSummary(o: StreamOutcome): string {
  const { r } = o;
  const lost = r.sent - r.delivered - r.tooOld;
  return `${r.sent} sent, ${r.delivered} delivered${lost > 0 ? `, ${lost} lost and counted (${dropList(o.drops, 2)})` : ''}${o.vif ? `, ${o.taken} on the fast path at ${r.from}` : ''}`;
}
