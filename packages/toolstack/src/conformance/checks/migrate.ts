/**
 * A guest migrating out and back in: the stream's receiver moves live to the
 * sender's host and back, mid-stream. At each source the plugin lets go of its
 * vif (detach), the guest runs on the slow path in between, and each
 * destination's plugin takes it again; nothing is lost uncounted.
 */
import type { MigrationReport } from '../../migration.ts';
import { accountedStream, streamProblems, streamSummary } from '../accounting.ts';
import { detaching, ensureLoaded } from '../plugin-state.ts';
import { backToNormal } from '../quiet.ts';
import { afterSent } from '../waits.ts';
import { fail, pass, skip, type Check } from '../types.ts';

const moveLine = (r: MigrationReport) =>
  `to ${r.to.host}: blackout ${r.blackoutMs.toFixed(0)} ms, lost ${r.lostTotal}, plugin after: ${r.fastPath.after.join(', ') || 'none'}`;

export const migrateCheck: Check = {
  id: 'migrate',
  title: 'a guest migrating out and back in',
  async run(ctx) {
    if (ctx.from.host === ctx.to.host) return skip('the stream ends are on one host: no other host to move to');
    await ensureLoaded(ctx);
    const { sim } = ctx;
    const home = ctx.to;
    const away = { host: ctx.from.host, domain: home.domain };
    const at = Math.ceil(ctx.frames / 5);
    const reports: MigrationReport[] = [];
    const o = await accountedStream(ctx, {
      count: 2 * ctx.frames,
      during: async (ended) => {
        await afterSent(sim, ctx.from, at, ctx.deadlineMs, ended);
        reports.push(await detaching(ctx, home.host, sim.migrateDomain(home, away.host, { live: true }), `migrating ${home.domain} to ${away.host}`));
        // A fast stream may be over by the time the first move is: the guest comes home all the same.
        await afterSent(sim, ctx.from, at, ctx.deadlineMs, ended).catch((e: unknown) => {
          if (!ended()) throw e;
        });
        reports.push(await detaching(ctx, away.host, sim.migrateDomain(away, home.host, { live: true }), `migrating ${home.domain} back to ${home.host}`));
      },
    });
    const problems = streamProblems(o, { complete: true });
    const after = await backToNormal(ctx, `${home.domain}'s return`);
    problems.push(...after.problems);
    if (problems.length) return fail(problems.join('; '));
    return pass(`${home.domain} (the receiver) moved ${reports.map(moveLine).join('; then ')}; ${streamSummary(o)}; ${after.summary}`);
  },
};
