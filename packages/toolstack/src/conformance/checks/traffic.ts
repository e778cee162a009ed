/**
 * Traffic with exact conservation: a quiet cross-host stream with the plugin
 * loaded is delivered whole, every frame once; a frame a vif plugin's
 * frontend took (startXmit answered true) and neither put on its hardware nor
 * counted dropped fails the check, naming startXmit and where.
 */
import { accountedStream, streamProblems, streamSummary } from '../accounting.ts';
import { ensureLoaded } from '../plugin-state.ts';
import { quietRules } from '../quiet.ts';
import { fail, pass, type Check } from '../types.ts';

export const trafficCheck: Check = {
  id: 'traffic',
  title: 'fast-path traffic, exact conservation',
  async run(ctx) {
    await ensureLoaded(ctx);
    const o = await accountedStream(ctx, { count: Math.ceil(ctx.frames / 2) });
    const problems = streamProblems(o, quietRules(ctx));
    if (problems.length) return fail(problems.join('; '));
    ctx.accelerated = o.taken > 0;
    const how = ctx.plugin.features.includes('vif')
      ? o.taken > 0
        ? `${((100 * o.taken) / o.r.sent).toFixed(1)}% of the sender's frames on the fast path`
        : 'the plugin took no frame (it declines them all: the slow path carried the stream)'
      : 'through the intercept hooks';
    return pass(`${streamSummary(o)}; ${how}; nothing lost or uncounted`);
  },
};
