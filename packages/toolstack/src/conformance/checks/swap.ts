/**
 * Swap mid-stream: the plugin is unloaded for another (the partner, null by
 * default), which is unloaded in turn for the plugin again, all while a
 * stream runs; nothing is lost uncounted, and the plugin is back on every vif.
 */
import { accountedStream, streamProblems, streamSummary } from '../accounting.ts';
import { ensureLoaded, loadEverywhere, unloadEverywhere } from '../plugin-state.ts';
import { backToNormal } from '../quiet.ts';
import { afterSent, within } from '../waits.ts';
import { fail, pass, type Check } from '../types.ts';

export const swapCheck: Check = {
  id: 'swap',
  title: 'swap with another plugin mid-stream',
  skip: (ctx) => (ctx.partner === ctx.plugin.name ? `the partner plugin (${ctx.partner}) is the plugin under test: give another` : undefined),
  async run(ctx) {
    await ensureLoaded(ctx);
    const { sim, partner } = ctx;
    const at = Math.ceil(ctx.frames / 6);
    const o = await accountedStream(ctx, {
      count: ctx.frames,
      during: async (ended) => {
        await afterSent(sim, ctx.from, at, ctx.deadlineMs, ended);
        await unloadEverywhere(ctx);
        await within(sim, sim.loadPlugin(partner), ctx.deadlineMs, `loading ${partner}`);
        await afterSent(sim, ctx.from, at, ctx.deadlineMs, ended);
        await unloadEverywhere(ctx, partner);
        await loadEverywhere(ctx, { attach: false });
      },
    });
    const problems = streamProblems(o, { complete: true });
    const after = await backToNormal(ctx, `the swap back from ${partner}`);
    problems.push(...after.problems);
    if (problems.length) return fail(problems.join('; '));
    return pass(`${ctx.plugin.name} -> ${partner} -> ${ctx.plugin.name}, ${at} frames apart; ${streamSummary(o)}; ${after.summary}`);
  },
};
