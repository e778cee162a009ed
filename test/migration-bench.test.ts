/**
 * `xsim migration`'s measurement, on seeded deterministic runs (quick, and
 * the same every time): each case moves the receiver, reports its rounds,
 * pages and times, and loses nothing that no counter holds.
 */
import { describe, expect, it } from 'vitest';
import { MIGRATION_CASES, MIGRATION_SCHEMA, migrationReport, runMigrationBench } from '@xsim/bench';

describe('xsim migration (deterministic)', () => {
  it('measures every case: pages per round add up, downtime is known, nothing uncounted or duplicated', async () => {
    const r = await runMigrationBench({ cases: MIGRATION_CASES, reps: 1, frames: 20_000, frameSize: 1000, window: 64, migrateAfter: 1500, seed: 1 });
    expect(r.schema).toBe(MIGRATION_SCHEMA);
    expect(r.cases.map((c) => c.case)).toEqual([...MIGRATION_CASES]);
    for (const c of r.cases) {
      const [rep] = c.reps;
      expect(rep.uncounted, c.case).toBe(0);
      expect(rep.duplicated, c.case).toBe(0);
      expect(rep.pagesSent).toBe(rep.rounds.reduce((a, b) => a + b, 0));
      expect(rep.downtimeMs, c.case).not.toBeNull();
      expect(rep.sent).toBe(20_000);
      const dropped = Object.values(rep.drops).reduce((a, b) => a + b, 0);
      expect(rep.delivered + dropped).toBeGreaterThanOrEqual(rep.sent);
    }
    const byCase = Object.fromEntries(r.cases.map((c) => [c.case, c.reps[0]]));
    expect(byCase['vnic-vnic'].fastPath).toEqual({ before: ['vnic'], after: ['vnic'] });
    expect(byCase['vnic-vnic'].fastPathBackMs).not.toBeNull();
    expect(byCase['vnic-none'].fastPath).toEqual({ before: ['vnic'], after: [] });
    expect(byCase['slow-slow'].fastPath).toEqual({ before: [], after: [] });
    const text = migrationReport(r);
    expect(text).toMatch(/^vnic-vnic\s+\d+\s+\d+ \(/m);
    expect(text).toMatch(/uncounted/);
  });
});
