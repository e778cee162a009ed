/** What the end-to-end tests share: exact conservation around a stream, and waiting for a condition. */
import { expect } from 'vitest';
import { runStream, streamAccount, type Simulation, type StreamOptions, type StreamResult } from '@xsim/cli';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * A stream with exact accounting: delivered + growth of named drop counters = sent, and no
 * duplicates. Frames a bridge flooded (an ARP broadcast, an unknown unicast) during the stream
 * are extra copies that end in a drop counter too, so they widen the bound by exactly their number.
 */
export async function conservedStream(
  sim: Simulation,
  o: StreamOptions,
  during?: () => Promise<void>,
  /** Only drop counters whose path passes count (e.g. leave out an attacker's own counters). */
  keep: (path: string) => boolean = () => true,
): Promise<{ r: StreamResult; before: Json; after: Json; drops: Map<string, number> }> {
  await sim.request(o.from, 'arp_resolve', { ip: sim.domain(o.to).ip });
  const before = (await sim.stats()) as Json;
  const p = runStream(sim, o);
  if (during) await during();
  const r = await p;
  const after = (await sim.stats()) as Json;
  const all = streamAccount(before, after, r);
  const drops = new Map([...all.drops].filter(([k]) => keep(k)));
  const dropped = [...drops.values()].reduce((a, b) => a + b, 0);
  const copies = all.copies;
  expect(r.duplicated, 'duplicates').toBe(0);
  const why = `sent ${r.sent}, delivered ${r.delivered}, too old ${r.tooOld}, drops: ${JSON.stringify([...drops])}, flood copies: ${copies}`;
  expect(r.delivered + r.tooOld + dropped, why).toBeGreaterThanOrEqual(r.sent);
  expect(r.delivered + r.tooOld + dropped, why).toBeLessThanOrEqual(r.sent + copies);
  return { r, before, after, drops };
}

export async function waitFor(what: string, f: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
