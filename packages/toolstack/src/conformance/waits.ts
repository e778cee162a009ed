/**
 * Waiting in the conformance suite: every wait is on the simulation's clock
 * (virtual in the suite's deterministic run) and has a deadline, so a plugin
 * that never answers fails its check instead of hanging the suite.
 */
import type { DomainRef } from '../domain-ref.ts';
import type { Simulation } from '../simulation.ts';

/** Thrown when a wait ran out: the check reports the message as its reason. */
export class DeadlineError extends Error {}

/** `p`'s value, or a DeadlineError naming `what` once `ms` of the simulation's clock have passed (`p` is then left to settle unheard). */
export async function within<T>(sim: Simulation, p: Promise<T>, ms: number, what: string): Promise<T> {
  let settled: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  p.then(
    (value) => (settled = { ok: true, value }),
    (error: unknown) => (settled = { ok: false, error }),
  );
  const deadline = sim.clock.now() + ms;
  while (settled === undefined) {
    if (sim.clock.now() >= deadline) throw new DeadlineError(`${what}: no answer within ${ms} ms`);
    await sim.sleep(5);
  }
  // Read through a function: TypeScript narrows `settled` to undefined after the loop otherwise.
  const s = (() => settled)()!;
  if (s.ok) return s.value;
  throw s.error;
}

/** Poll `pred` until it holds; past the deadline, throw what `why()` says is still missing. */
export async function until(sim: Simulation, ms: number, pred: () => Promise<boolean>, why: () => Promise<string>): Promise<void> {
  const deadline = sim.clock.now() + ms;
  while (!(await pred())) {
    if (sim.clock.now() >= deadline) throw new DeadlineError(`${await why()} (after ${ms} ms)`);
    await sim.sleep(5);
  }
}

/** UDP datagrams `from`'s stack has sent so far. */
async function txUdp(sim: Simulation, from: DomainRef): Promise<number> {
  const s = await sim.domainStats(from, 30_000);
  return s.endpoint?.stack.txUdp ?? 0;
}

/**
 * Resolve once `from` has sent `frames` more UDP frames than when called:
 * "mid-stream" measured by the stream's progress, not a guessed delay (by
 * the sender's, so a plugin that loses frames does not keep the event from
 * coming). If the stream ends first (`ended()`), say so.
 */
export async function afterSent(sim: Simulation, from: DomainRef, frames: number, ms: number, ended: () => boolean): Promise<void> {
  const start = await txUdp(sim, from);
  const deadline = sim.clock.now() + ms;
  for (;;) {
    const sent = (await txUdp(sim, from)) - start;
    if (sent >= frames) return;
    if (ended()) throw new Error(`the stream ended after ${sent} more frames, before the ${frames} ${from.host}/${from.domain} was to send before the event`);
    if (sim.clock.now() >= deadline) throw new DeadlineError(`${from.host}/${from.domain} sent ${sent} of ${frames} frames within ${ms} ms`);
    await sim.sleep(1);
  }
}
