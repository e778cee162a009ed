/**
 * After an event (a swap, a reset, the link, the MTU, a migration) the plugin
 * must be back as it was: every vif attached again, a quiet stream delivered
 * whole, and, if the plugin accelerated before, frames on its fast path again.
 */
import { accountedStream, streamProblems, type StreamRules } from './accounting.ts';
import { waitAttached } from './plugin-state.ts';
import type { CheckContext } from './types.ts';

/** Drops an intercept plugin may cause by design: its vetoes, which driverlink counts. */
export function quietRules(ctx: CheckContext): StreamRules {
  const vetoes = ctx.plugin.features.includes('intercept');
  return { whole: true, complete: true, allow: (path) => vetoes && /\.nic\.vetoed(Rx|Tx)$/.test(path) };
}

/** Problems with the plugin after `event` (empty: back to normal), and a line on the stream that showed it. */
export async function backToNormal(ctx: CheckContext, event: string): Promise<{ problems: string[]; summary: string }> {
  await waitAttached(ctx);
  const o = await accountedStream(ctx, { count: Math.ceil(ctx.frames / 4) });
  const problems = streamProblems(o, quietRules(ctx)).map((p) => `after ${event}: ${p}`);
  if (ctx.accelerated && o.taken === 0)
    problems.push(`after ${event}, the plugin took none of a ${o.r.sent}-frame stream on its fast path (it took frames before ${event})`);
  const fast = ctx.plugin.features.includes('vif') ? `, ${o.taken} on the fast path` : '';
  return { problems, summary: `then ${o.r.delivered} of ${o.r.sent} delivered${fast}` };
}
