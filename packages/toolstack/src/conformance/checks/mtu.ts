/**
 * MTU change: the sender's NIC goes to MTU 1400 (or the plugin refuses, with
 * a reason). Frames that still fit are carried whole; 1500-byte frames are
 * counted where they are refused; back at 1500 the plugin carries traffic as
 * before.
 */
import { accountedStream, dropList, streamProblems } from '../accounting.ts';
import { ensureLoaded } from '../plugin-state.ts';
import { backToNormal, quietRules } from '../quiet.ts';
import { within } from '../waits.ts';
import { fail, pass, type Check, type CheckContext, type Verdict } from '../types.ts';

const LOW = 1400;

/** At MTU LOW: a stream that fits is whole, one over it all counted. */
async function atLowMtu(ctx: CheckContext): Promise<{ problems: string[]; summary: string }> {
  const fits = await accountedStream(ctx, { count: Math.ceil(ctx.frames / 8), frameSize: 1000 });
  const over = await accountedStream(ctx, { count: Math.ceil(ctx.frames / 20), frameSize: 1500, window: 0, timeoutMs: 1500 });
  return {
    problems: [
      ...streamProblems(fits, quietRules(ctx)).map((p) => `1000-byte frames at MTU ${LOW}: ${p}`),
      ...streamProblems(over).map((p) => `1500-byte frames at MTU ${LOW}: ${p}`),
    ],
    summary: `at MTU ${LOW}: 1000-byte frames ${fits.r.delivered} of ${fits.r.sent} delivered${fits.vif ? ` (${fits.taken} on the fast path)` : ''}, 1500-byte frames ${over.r.delivered} of ${over.r.sent} delivered, the rest counted (${dropList(over.drops, 2)})`,
  };
}

export const mtuCheck: Check = {
  id: 'mtu',
  title: 'MTU change',
  async run(ctx): Promise<Verdict> {
    await ensureLoaded(ctx);
    const { sim } = ctx;
    const host = ctx.from.host;
    let refused: string | undefined;
    await within(sim, sim.setMtu(host, LOW), ctx.deadlineMs, `MTU ${LOW} on ${host}`).catch((e: Error) => (refused = e.message));
    if (refused !== undefined && !refused.includes(ctx.plugin.name)) return fail(`MTU ${LOW} on ${host} failed, not refused by the plugin: ${refused}`);
    const low = refused === undefined ? await atLowMtu(ctx) : { problems: [], summary: `the plugin refused MTU ${LOW} (${refused})` };
    if (refused === undefined) {
      const back = await within(sim, sim.setMtu(host, 1500), ctx.deadlineMs, `MTU 1500 on ${host}`).catch((e: Error) => e);
      if (back instanceof Error) return fail(`MTU back to 1500 on ${host} was refused: ${back.message}`);
    }
    const after = await backToNormal(ctx, 'the MTU back at 1500');
    const problems = [...low.problems, ...after.problems];
    if (problems.length) return fail(problems.join('; '));
    return pass(`${low.summary}; MTU 1500 again: ${after.summary}`);
  },
};
