/**
 * Unload mid-stream: every vif detaches (the frontend drains, the backend
 * calls ctx.detached) and falls back to the slow path; the stream goes on
 * there with nothing lost uncounted; and the plugin gone holds nothing: the
 * guests' frames and grants, the NICs' VIs and filters are as before it came.
 */
import { accountedStream, streamProblems, streamSummary } from '../accounting.ts';
import { ensureLoaded, unloadEverywhere } from '../plugin-state.ts';
import { leaks, resources } from '../resources.ts';
import { afterSent } from '../waits.ts';
import { fail, pass, type Check } from '../types.ts';

export const unloadCheck: Check = {
  id: 'unload',
  title: 'unload mid-stream',
  async run(ctx) {
    await ensureLoaded(ctx);
    const at = Math.ceil(ctx.frames / 4);
    const o = await accountedStream(ctx, {
      count: ctx.frames,
      during: async (ended) => {
        await afterSent(ctx.sim, ctx.from, at, ctx.deadlineMs, ended);
        await unloadEverywhere(ctx);
      },
    });
    const problems = streamProblems(o, { complete: true });
    if (ctx.baseline) problems.push(...leaks(ctx.baseline, resources(ctx.sim, await ctx.sim.stats())));
    if (problems.length) return fail(problems.join('; '));
    const held = ctx.baseline ? '; every frame, grant, VI and filter it held given back' : '';
    return pass(`unloaded after ${at} frames; ${streamSummary(o)}; every vif back on the slow path at both ends${held}`);
  },
};
