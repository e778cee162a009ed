/**
 * NIC reset mid-stream, on the sender's host and then on the receiver's: the
 * plugin is suspended, its vifs detach and fall back, the NIC resets, and it
 * resumes and attaches them again; nothing is lost uncounted, and the fast
 * path comes back.
 */
import { accountedStream, streamProblems, streamSummary } from '../accounting.ts';
import { detaching, ensureLoaded } from '../plugin-state.ts';
import { backToNormal } from '../quiet.ts';
import { afterSent } from '../waits.ts';
import { fail, pass, type Check } from '../types.ts';

export const resetCheck: Check = {
  id: 'reset',
  title: 'NIC reset mid-stream',
  async run(ctx) {
    await ensureLoaded(ctx);
    const { sim } = ctx;
    const at = Math.ceil(ctx.frames / 4);
    const hosts = [...new Set([ctx.from.host, ctx.to.host])];
    const o = await accountedStream(ctx, {
      count: ctx.frames,
      during: async (ended) => {
        for (const h of hosts) {
          await afterSent(sim, ctx.from, at, ctx.deadlineMs, ended);
          await detaching(ctx, h, sim.nicReset(h), `the NIC reset of ${h}`);
        }
      },
    });
    const problems = streamProblems(o, { complete: true });
    const after = await backToNormal(ctx, 'the resets');
    problems.push(...after.problems);
    if (problems.length) return fail(problems.join('; '));
    return pass(`reset ${hosts.join(', then ')}, ${at} frames apart; ${streamSummary(o)}; ${after.summary}`);
  },
};
